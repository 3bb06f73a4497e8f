"""A photo or drawing made the way the model's dataset was (cnnlab/viz/rasterize.py), and
``cnnlab viz --image``'s warnings."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")

from cnnlab.viz.rasterize import (  # noqa: E402
    digits_style,
    fashion_style,
    looks_inverted,
    mnist_style,
    rasterize,
)


def meta(dataset: str | None, size: int, channels: int = 1) -> dict:
    return {"dataset": dataset, "model_spec": {"name": "m", "kwargs": {"in_channels": channels,
                                                                       "input_size": size},
                                               "input": {"from": size, "to": size, "how": None}}}


def bitmap32() -> np.ndarray:
    """A 32x32 binary digit whose ink spans all 32 rows and 20 columns (a '0')."""
    b = np.zeros((32, 32))
    b[:, 6:26] = 1.0
    b[4:28, 11:21] = 0.0
    return b


def test_digits_are_a_32x32_bitmap_counted_in_4x4_blocks():
    b = bitmap32()
    expected = b.reshape(8, 4, 8, 4).sum(axis=(1, 3)) / 16
    np.testing.assert_array_equal(digits_style(b), expected)     # already filling the box: exact
    # the same digit drawn small and off-centre on a large canvas: the same 8x8 values
    canvas = np.zeros((300, 240))
    canvas[150:182, 20:52] = b
    np.testing.assert_array_equal(digits_style(canvas), expected)
    # drawn three times larger (nearest): each block's count within one pixel of the bitmap's
    big = np.zeros((300, 300))
    big[10:106, 150:246] = np.kron(b, np.ones((3, 3)))
    got = digits_style(big)
    assert np.all((got * 16) == np.round(got * 16)) and np.abs(got - expected).max() <= 4 / 16


def test_mnist_fits_20x20_and_centres_by_mass():
    canvas = np.zeros((200, 200))
    canvas[10:90, 120:140] = 1.0          # a tall bar in a corner
    canvas[10:20, 100:140] = 1.0          # with a flag: the mass leans right
    out = mnist_style(canvas)
    ys, xs = np.nonzero(out > 0.05)
    assert out.shape == (28, 28) and ys.max() - ys.min() + 1 <= 21 and ys.max() - ys.min() + 1 >= 19
    ys, xs = np.mgrid[0:28, 0:28]
    cy, cx = (ys * out).sum() / out.sum(), (xs * out).sum() / out.sum()
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_fashion_longer_side_is_28_and_blank_stays_blank():
    canvas = np.zeros((100, 300))
    canvas[40:60, 50:250] = 1.0
    out = fashion_style(canvas)
    cols = np.nonzero(out.max(axis=0) > 0.5)[0]
    assert cols.min() == 0 and cols.max() == 27
    for f in (digits_style, mnist_style, fashion_style):
        assert not f(np.zeros((50, 50))).any()


def test_rasterize_picks_the_style_warns_on_inverted_and_keeps_dataset_sized_images():
    img = np.zeros((64, 64))
    img[8:56, 28:36] = 1.0
    r = rasterize(img, meta("digits", 8))
    assert r.style == "digits" and r.image.shape == (1, 8, 8) and r.notes == []
    r = rasterize(1.0 - img, meta("mnist", 28))
    assert r.style == "mnist" and "looks inverted" in r.notes[0] and "--invert" in r.notes[0]
    r = rasterize(1.0 - img, meta("mnist", 28), invert=True)
    assert r.notes == [] and r.image.max() == pytest.approx(1.0, abs=0.05)
    small = np.random.default_rng(0).random((8, 8))
    np.testing.assert_array_equal(rasterize(small, meta("digits", 8)).image[0], small)
    assert rasterize(np.ones((40, 60, 3)) * 0.2, meta(None, 32, 3)).style == "crop"
    assert looks_inverted(np.ones((10, 10))) == 1.0 and looks_inverted(np.zeros((10, 10))) is None
    with pytest.raises(ValueError, match="NaN"):
        rasterize(np.full((9, 9), np.nan), meta("digits", 8))


def test_viz_image_says_folder_and_warns_inverted(tmp_path, capsys):
    pytest.importorskip("sklearn")
    import matplotlib.pyplot as plt

    from cnnlab.cli import main
    from cnnlab.training.run import TrainConfig, fit

    run = tmp_path / "run"
    fit(TrainConfig(dataset="digits", epochs=1), out=run, progress=False, report=lambda m: None)
    assert main(["viz", "saliency", "--checkpoint", str(run), "--image", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    img = np.ones((64, 64))
    img[8:56, 28:36] = 0.0                 # a dark 1 on white paper
    plt.imsave(tmp_path / "one.png", img, cmap="gray")
    assert main(["viz", "saliency", "--checkpoint", str(run), "--image", str(tmp_path / "one.png"),
                 "--out", str(tmp_path / "viz")]) == 0
    assert "looks inverted" in capsys.readouterr().err
    assert main(["viz", "saliency", "--checkpoint", str(run), "--image", str(tmp_path / "one.png"),
                 "--invert", "--out", str(tmp_path / "viz")]) == 0
    assert "looks inverted" not in capsys.readouterr().err
