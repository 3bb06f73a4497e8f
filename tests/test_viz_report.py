"""t-SNE of CNN codes, training pictures, the ``cnnlab viz`` / ``cnnlab report`` commands
and the HTML report's screenshot, on one small digits run shared by every test."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import cnnlab  # noqa: E402
from cnnlab.autograd.tensor import Tensor, no_grad  # noqa: E402
from cnnlab.cli import main  # noqa: E402
from cnnlab.training.run import TrainConfig, evaluation_loader, fit, load_for_evaluation  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header; also checks the signature."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# ------------------------------------------------- what a picture shows, read from its pixels
TAB10 = np.array([[0.122, 0.467, 0.706], [1.0, 0.498, 0.055], [0.173, 0.627, 0.173], [0.839, 0.153, 0.157],
                  [0.58, 0.404, 0.741], [0.549, 0.337, 0.294], [0.890, 0.467, 0.761], [0.498, 0.498, 0.498],
                  [0.737, 0.741, 0.133], [0.090, 0.745, 0.812]])   # matplotlib's class colours


def read_rgb(path: Path) -> np.ndarray:
    """The PNG's pixels as (H, W, 3) floats in [0, 1]; also checks the signature."""
    import matplotlib.image as mpimg

    png_size(path)
    return np.asarray(mpimg.imread(path), dtype=np.float64)[..., :3]


def near(a: np.ndarray, rgb, tol: float = 0.06) -> np.ndarray:
    """(H, W) mask of the pixels within ``tol`` of the colour ``rgb`` in every channel."""
    return np.all(np.abs(a - np.asarray(rgb, dtype=np.float64)) <= tol, axis=-1)


def runs(mask: np.ndarray, gap: int = 0) -> list[tuple[int, int]]:
    """[start, stop) of the True runs of a 1-D mask, joining runs at most ``gap`` apart."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    stops = np.r_[idx[breaks] + 1, idx[-1] + 1]
    return list(zip(starts.tolist(), stops.tolist()))


def assert_curves_picture(path: Path) -> np.ndarray:
    """Two panels side by side (loss, accuracy), each with a train (blue) and a test (orange) line."""
    a = read_rgb(path)
    H, W = a.shape[:2]
    assert W > 2 * H, f"{path}: {W}x{H} is not two square-ish panels side by side"
    for half in (a[:, :W // 2], a[:, W // 2:]):
        assert near(half, TAB10[0]).sum() > 30 and near(half, TAB10[1]).sum() > 30
    return a


def assert_confusion_picture(path: Path, k: int) -> None:
    """A k x k heat map whose dark cells are its diagonal (a good model's matrix)."""
    a = read_rgb(path)
    dark = (a[..., 0] < 0.4) & (a[..., 2] - a[..., 0] > 0.25)   # the dark end of "Blues"
    cols = max(runs(dark.any(axis=0), gap=2), key=lambda r: r[1] - r[0])   # the matrix, not the colour bar
    rows = runs(dark[:, cols[0]:cols[1]].any(axis=1), gap=2)
    rows = (rows[0][0], rows[-1][1])
    m = dark[rows[0]:rows[1], cols[0]:cols[1]].astype(np.float64)
    h, w = m.shape
    assert 0.9 < h / w < 1.1, f"{path}: the matrix is {w}x{h} pixels, not square"
    cells = np.array([[m[i * h // k:(i + 1) * h // k, j * w // k:(j + 1) * w // k].mean() for j in range(k)]
                      for i in range(k)])
    off = cells[~np.eye(k, dtype=bool)]
    assert cells.diagonal().min() > 0.6 and off.max() < 0.1, np.round(cells, 2)


def assert_titled_grid(path: Path, n: int, ncols: int) -> None:
    """``n`` panels in rows of ``ncols``, each under its red "true -> predicted" title."""
    a = read_rgb(path)
    red = (a[..., 0] > 0.45) & (a[..., 1] < 0.3) & (a[..., 0] - a[..., 2] > 0.25)
    bands = runs(red.any(axis=1), gap=8)     # a title's two lines (true, -> predicted) are one band
    per_row = [len(runs(red[r0:r1].any(axis=0), gap=12)) for r0, r1 in bands]
    expected = [ncols] * (n // ncols) + ([n % ncols] if n % ncols else [])
    assert per_row == expected, f"{path}: titles per row {per_row}, expected {expected}"
    below = a[bands[0][1]:bands[1][0] if len(bands) > 1 else None]
    assert below.std() > 0.2          # the images under the titles: black ink and white strokes


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits_cnn trained 5 epochs (~20 s), its model, meta, test set and inputs."""
    out = tmp_path_factory.mktemp("viz_run") / "run"
    res = fit(TrainConfig(dataset="digits", epochs=5), out=out, progress=False, report=lambda m: None)
    model, meta = load_for_evaluation(out / "model.npz")
    test, loader = evaluation_loader(meta, None, None)
    x = np.concatenate([xb.data for xb, _ in loader])
    with no_grad():
        logits = model(Tensor(x)).data
    return {"dir": out, "result": res, "model": model, "meta": meta, "test": test, "loader": loader,
            "x": x, "y": np.asarray(test.y), "pred": logits.argmax(1)}


# ------------------------------------------------------------------- embedding
def test_extract_codes_is_the_penultimate_activation(run):
    from cnnlab.viz.embedding import extract_codes, penultimate_layer

    m = run["model"]
    assert penultimate_layer(m) == "classifier.1"
    codes = extract_codes(m, None, run["x"], batch_size=97)     # uneven batches
    with no_grad():   # the same thing by hand: features -> flatten -> FC 64 -> ReLU
        h = m.classifier[1](m.classifier[0](m.flatten(m.features(Tensor(run["x"]))))).data
    assert codes.shape == (len(run["x"]), 64)
    np.testing.assert_allclose(codes, h, rtol=1e-5, atol=1e-5)   # float32 GEMMs of other batch sizes
    flat = extract_codes(m, "features.5", run["x"][:5])
    assert flat.shape == (5, 32 * 2 * 2)
    with pytest.raises(ValueError, match=r"no layer 'nope'.*features\.0.*classifier\.2"):
        extract_codes(m, "nope", run["x"][:2])


def test_tsne_of_codes_separates_the_digits(run, tmp_path):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from cnnlab.viz.embedding import extract_codes, plot_tsne_mosaic, plot_tsne_scatter, tsne

    codes = extract_codes(run["model"], "classifier.1", run["x"])
    emb = tsne(codes, perplexity=30, seed=0)
    assert emb.shape == (len(codes), 2) and np.all(np.isfinite(emb))
    knn = cross_val_score(KNeighborsClassifier(5), emb, run["y"], cv=5).mean()
    assert knn >= 0.85, f"5-NN accuracy in the t-SNE map {knn:.3f}"
    small = tsne(codes[:60], perplexity=10, seed=3, n_iter=100)
    np.testing.assert_array_equal(small, tsne(codes[:60], perplexity=10, seed=3, n_iter=100))   # seeded
    p = plot_tsne_scatter(emb, run["y"], tmp_path / "scatter.png", run["test"].classes, dpi=50)
    a = read_rgb(p)
    for c in range(10):                                   # every class's points, in its own colour
        assert near(a, TAB10[c], tol=0.1).sum() >= 3, f"no points of class {c}"
    p = plot_tsne_mosaic(emb, run["test"].x, tmp_path / "mosaic.png", size=16, labels=run["y"])
    # a square grid of 16-pixel cells, about 10% more than images: every image in its own
    # cell, framed in its class colour, and the spare cells white
    a = read_rgb(p)
    side = a.shape[0] // 16
    assert a.shape[:2] == (side * 16, side * 16) and side ** 2 >= 1.1 * len(emb)
    cells = a.reshape(side, 16, side, 16, 3).transpose(0, 2, 1, 3, 4)
    filled = (cells < 1.0).any(axis=(2, 3, 4))
    assert filled.sum() == len(emb)
    corners = cells[filled][:, 0, 0]                      # each thumbnail's frame
    frame = np.abs(corners[:, None] - TAB10[None]).max(axis=-1).argmin(axis=1)
    np.testing.assert_array_equal(np.bincount(frame, minlength=10), np.bincount(run["y"], minlength=10))


def test_grid_assignment_keeps_the_layout():
    from cnnlab.viz.embedding import grid_assignment

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 2))
    cells = grid_assignment(pts, (8, 8))
    assert len({tuple(c) for c in cells}) == 50                     # no two images share a cell
    assert cells.min() >= 0 and cells[:, 0].max() < 8 and cells[:, 1].max() < 8
    # x goes to the column and y upwards to the row: rank correlations stay strongly positive
    rx = np.corrcoef(np.argsort(np.argsort(pts[:, 0])), cells[:, 1])[0, 1]
    ry = np.corrcoef(np.argsort(np.argsort(pts[:, 1])), -cells[:, 0])[0, 1]
    assert rx > 0.8 and ry > 0.8
    line = np.stack([np.arange(4.0), np.zeros(4)], 1)             # 4 points on a line, 1x4 grid
    np.testing.assert_array_equal(grid_assignment(line, (1, 4)), [[0, 0], [0, 1], [0, 2], [0, 3]])
    with pytest.raises(ValueError, match="do not fit"):
        grid_assignment(pts, (5, 5))


# ------------------------------------------------------------- training pictures
def test_confusion_matches_sklearn(run, tmp_path):
    from sklearn.metrics import confusion_matrix

    from cnnlab.viz.training_plots import confusion, plot_confusion

    cm, preds, targets = confusion(run["model"], run["loader"], num_classes=10)
    np.testing.assert_array_equal(preds, run["pred"])
    np.testing.assert_array_equal(targets, run["y"])
    np.testing.assert_array_equal(cm, confusion_matrix(run["y"], run["pred"], labels=list(range(10))))
    assert np.trace(cm) / cm.sum() == pytest.approx(run["result"].test_accuracy)
    assert_confusion_picture(plot_confusion(cm, run["test"].classes, tmp_path / "cm.png"), k=10)


def test_misclassified_are_exactly_the_wrong_argmaxes(run, tmp_path):
    from cnnlab.viz.training_plots import misclassified, plot_misclassified

    idx, preds, targets = misclassified(run["model"], run["loader"])
    expected = np.flatnonzero(run["pred"] != run["y"])
    assert len(expected) > 0
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(preds, run["pred"][expected])
    np.testing.assert_array_equal(targets, run["y"][expected])
    # a dataset of model inputs gives the same answer as the loader
    from cnnlab.data.datasets import ArrayDataset
    idx2, _, _ = misclassified(run["model"], ArrayDataset(run["x"], run["y"]))
    np.testing.assert_array_equal(idx2, expected)
    p = plot_misclassified(run["test"].x[idx], preds, targets, run["test"].classes, tmp_path / "w.png",
                           max_n=16, ncols=8)
    assert_titled_grid(p, n=min(len(idx), 16), ncols=8)


def test_history_and_curves(run, tmp_path):
    from cnnlab.viz.training_plots import plot_curves, read_history

    hist = read_history(run["dir"])
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4, 5]
    assert [h["val_acc"] for h in hist] == [h["val_acc"] for h in run["result"].history]
    full = assert_curves_picture(plot_curves(run["dir"], tmp_path / "c.png"))
    half = read_rgb(plot_curves(hist, tmp_path / "c2.png", dpi=50))
    assert half.shape[:2] == (full.shape[0] // 2, full.shape[1] // 2)   # the same figure at half the dpi
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_history(tmp_path)


# ------------------------------------------------------------------------ CLI
def test_image_file_goes_through_the_run_pipeline(run, tmp_path):
    import matplotlib.pyplot as plt

    from cnnlab.viz.inputs import image_to_model_input, load_image_file

    k = 5
    img = run["test"].x[k, 0]
    raw, x = image_to_model_input(img, run["meta"])         # already 8x8: only normalised
    np.testing.assert_allclose(x[0], run["x"][k], atol=1e-5)
    # through an 8-bit PNG file, in colour, and inverted twice: equal up to quantisation
    plt.imsave(tmp_path / "digit.png", np.repeat(1.0 - img[..., None], 3, axis=2))
    loaded = load_image_file(tmp_path / "digit.png")
    assert loaded.shape == (8, 8, 3) and 0.0 <= loaded.min() and loaded.max() <= 1.0
    raw2, x2 = image_to_model_input(loaded, run["meta"], invert=True)
    np.testing.assert_allclose(raw2[0, 0], img, atol=1 / 255 + 1e-6)   # imsave may floor to 8 bits


def _run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_methods_end_to_end(run, tmp_path, capsys):
    ckpt, out = str(run["dir"] / "model.npz"), str(tmp_path / "viz")
    k = 3
    rc, text, _ = _run_cli(capsys, "viz", "saliency", "--checkpoint", ckpt, "--index", str(k), "--out", out)
    assert rc == 0
    assert f"wrote {Path(out) / f'saliency_test{k}.png'}" in text
    name = run["test"].classes
    assert f"predicted {name[run['pred'][k]]} (p=" in text and f"true {name[run['y'][k]]}" in text
    w, h = png_size(Path(out) / f"saliency_test{k}.png")
    assert w > 100 and h > 50

    rc, text, _ = _run_cli(capsys, "viz", "confusion", "--checkpoint", str(run["dir"]), "--out", out)
    assert rc == 0
    assert_confusion_picture(Path(out) / "confusion.png", k=10)
    correct = int((run["pred"] == run["y"]).sum())
    assert f"({correct}/{len(run['y'])})" in text

    rc, text, _ = _run_cli(capsys, "viz", "curves", "--checkpoint", ckpt, "--out", out)
    assert rc == 0
    assert_curves_picture(Path(out) / "curves.png")
    assert f"test acc {run['result'].test_accuracy:.4f}" in text

    rc, text, _ = _run_cli(capsys, "viz", "misclassified", "--checkpoint", ckpt, "--out", out)
    wrong = int((run["pred"] != run["y"]).sum())
    assert rc == 0 and text.splitlines()[-1].startswith(f"{wrong} of {len(run['y'])} test images")

    bad = int(np.flatnonzero(run["pred"] != run["y"])[0])   # occlusion shows p(true class), not p(predicted)
    rc, text, _ = _run_cli(capsys, "viz", "occlusion", "--checkpoint", ckpt, "--index", str(bad),
                           "--size", "2", "--stride", "2", "--out", out)
    assert rc == 0 and (Path(out) / f"occlusion_test{bad}.png").is_file()
    assert f"; p({name[run['y'][bad]]}) under occlusion" in text
    lo, hi = map(float, re.search(r"under occlusion ([\d.]+) \.\. ([\d.]+)", text).groups())
    assert 0.0 <= lo <= hi <= 1.0

    rc, text, _ = _run_cli(capsys, "viz", "dead-filters", "--checkpoint", ckpt, "--layer", "features.1",
                           "--out", out)
    assert rc == 0 and re.search(r"features\.1 \d+/16", text)
    assert (Path(out) / "dead_filters.json").is_file()


def test_cli_errors_are_clear(run, tmp_path, capsys):
    ckpt = str(run["dir"] / "model.npz")
    rc, _, err = _run_cli(capsys, "viz", "activations", "--checkpoint", ckpt, "--layer", "features.9")
    assert rc == 2
    assert "no layer 'features.9'" in err and "features.0" in err and "classifier.2" in err
    rc, _, err = _run_cli(capsys, "viz", "saliency", "--checkpoint", str(tmp_path / "missing.npz"))
    assert rc == 2 and "missing.npz does not exist" in err
    rc, _, err = _run_cli(capsys, "viz", "saliency", "--checkpoint", ckpt, "--index", "100000")
    assert rc == 2 and "--index must be in [0, 359]" in err
    rc, _, err = _run_cli(capsys, "viz", "saliency", "--checkpoint", ckpt, "--image",
                          str(tmp_path / "no.png"))
    assert rc == 2 and "no.png does not exist" in err
    with pytest.raises(SystemExit):   # argparse: unknown method
        main(["viz", "nonsense", "--checkpoint", ckpt])
    assert "invalid choice" in capsys.readouterr().err


# --------------------------------------------------------------------- report
def _load_screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_report",
                                                  ROOT / "scripts" / "screenshot_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    cnnlab.manual_seed(0)
    rc = main(["report", str(run["dir"]), "--out", str(out), "--max-tsne", "200", "--examples", "2"])
    assert rc == 0
    return out


def test_report_is_one_self_contained_page(report):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert 'class="error"' not in page, re.findall(r'class="error">([^<]*)', page)
    # no external assets: every src is an inline PNG, no stylesheet or script links
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) >= 10 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "<script" not in page and "http://" not in page and "https://" not in page
    for title in ("Training curves", "Confusion matrix", "First-layer filters", "Activations",
                  "Occlusion and saliency", "t-SNE of the CNN codes", "Misclassified test images"):
        assert f"{title}</h2>" in page
    assert "digits_cnn on digits" in page and "13,706" in page and "Smoothness" in page
    # every figure has a caption and the embedded PNGs decode
    import base64
    assert page.count("<figcaption>") == len(srcs)
    for s in srcs[:3]:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (/usr/bin/chromium, Debian package "
                    "'chromium') is not installed, so the report cannot be rendered")
def test_report_screenshot_in_headless_chromium(report, tmp_path):
    import matplotlib.image as mpimg

    shot = _load_screenshot_module().screenshot(report, tmp_path / "shot.png", width=1280, height=1600)
    assert png_size(shot) == (1280, 1600)
    a = mpimg.imread(shot)[..., :3]
    assert a.std() > 0.05                                   # not a blank page
    header = a[:60, :, 2].mean() > a[:60, :, 0].mean() + 0.15   # the blue header band rendered
    assert header
    rows = np.abs(a - a[-1:, -1:]).sum(axis=(1, 2)) > 1    # rows that differ from the background
    assert rows.mean() > 0.5                               # content fills most of the viewport


def test_viz_kernels_on_a_bundled_photo_needs_no_checkpoint(tmp_path, capsys):
    """`cnnlab viz kernels` alone filters scikit-image's camera photo (shrunk to --max-side)
    with every classic kernel, and the identity response is the shrunk photo itself."""
    from cnnlab.cli import main
    from cnnlab.viz.inputs import sample_photo, shrink

    photo = sample_photo("camera")
    assert photo.shape == (512, 512) and 0.0 <= photo.min() and photo.max() <= 1.0
    small = shrink(photo, 64)
    assert small.shape == (64, 64)
    assert abs(small.mean() - photo.mean()) < 0.01          # anti-aliased: the mean survives
    assert main(["viz", "kernels", "--max-side", "64", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "kernels_camera.png").is_file()
    std_identity = float(out.split("identity ")[1].split(",")[0])
    assert abs(std_identity - small.std()) < 1e-3
    with pytest.raises(ValueError, match="--photo must be one of"):
        sample_photo("lena")
