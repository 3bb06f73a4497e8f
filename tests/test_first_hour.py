"""What a newcomer meets first: evaluating a run folder, class names written
whole, "32 shown of 1,164 wrong", labelled class models, ``--sweep`` with
spaces, and ``cnnlab.load`` of a run's model.npz."""
from __future__ import annotations

import shutil

import matplotlib.text
import numpy as np
import pytest

import cnnlab
from cnnlab.cli import main
from cnnlab.data import FASHION_MNIST_CLASSES
from cnnlab.models import get_model
from cnnlab.training import TrainConfig, fit, format_confusion_matrix


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fh") / "run"
    fit(TrainConfig(epochs=1, train_size=200, seed=2), out, progress=False, report=lambda _: None)
    return out


def figure_texts(monkeypatch, module):
    """Collect every text drawn on the figures ``module`` saves."""
    seen: list[str] = []
    real = module.save_exact

    def save_exact(fig, path, dpi):
        seen.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        return real(fig, path, dpi)

    monkeypatch.setattr(module, "save_exact", save_exact)
    return seen


def test_evaluate_takes_a_run_folder(run_dir, tmp_path, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "true \\ predicted" in text
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "holds no model.npz; it is not a run folder" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    shutil.copy(run_dir / "checkpoints" / "epoch-001.npz", unfinished / "checkpoints")
    assert main(["evaluate", str(unfinished)]) == 2
    assert "training did not finish: pass its newest checkpoint" in capsys.readouterr().err
    assert main(["evaluate", str(unfinished / "checkpoints" / "epoch-001.npz")]) == 0


def test_cnnlab_load_of_a_model_file_is_a_loadable_state_dict(run_dir):
    state = cnnlab.load(run_dir / "model.npz")
    model = get_model("digits_cnn")
    model.load_state_dict(state)                   # no KeyError: no "model/" prefix
    assert set(state) == set(model.state_dict())
    ckpt = cnnlab.load(run_dir / "checkpoints" / "epoch-001.npz")
    assert set(ckpt) == set(state)


def test_class_names_are_never_cut_in_the_text_confusion_matrix():
    cm = np.eye(10, dtype=np.int64) * 3
    cm[0, 9] = 1164
    table = format_confusion_matrix(cm, FASHION_MNIST_CLASSES)
    for name in FASHION_MNIST_CLASSES:
        assert name in table
    rows = table.splitlines()[2:12]
    assert rows[0].startswith("T-shirt/top ") and rows[9].startswith("Ankle boot ")
    assert len({len(row) for row in rows}) == 1                             # columns aligned


def test_class_names_are_whole_in_the_pictures(monkeypatch, tmp_path):
    from cnnlab.viz import training_plots as tp

    texts = figure_texts(monkeypatch, tp)
    cm = np.eye(10, dtype=np.int64)
    tp.plot_confusion(cm, FASHION_MNIST_CLASSES, tmp_path / "cm.png")
    assert "T-shirt/top" in texts and "Ankle boot" in texts
    texts.clear()
    imgs = np.random.default_rng(0).random((32, 1, 28, 28))
    preds, targets = np.full(32, 9), np.zeros(32, dtype=int)
    tp.plot_misclassified(imgs, preds, targets, FASHION_MNIST_CLASSES, tmp_path / "m.png",
                          total_wrong=1164)
    assert "T-shirt/top\n\u2192 Ankle boot" in texts
    assert "misclassified: 32 shown of 1,164 wrong (true \u2192 predicted)" in texts


def test_viz_misclassified_and_class_model_and_sweep(run_dir, tmp_path, monkeypatch, capsys):
    from cnnlab.viz import synthesis

    out = tmp_path / "viz"
    assert main(["viz", "misclassified", "--checkpoint", str(run_dir), "--out", str(out),
                 "--max-n", "4"]) == 0
    assert "4 shown of" in capsys.readouterr().out
    import cnnlab.plots as plots

    texts = []
    real = plots.save_exact

    def save_exact(fig, path, dpi):
        texts.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        fig.canvas.draw()
        w, _ = fig.canvas.get_width_height()
        title = next(t for t in fig.findobj(matplotlib.text.Text) if "class models" in t.get_text())
        box = title.get_window_extent()
        assert 0 <= box.x0 and box.x1 <= w               # the title is not clipped
        return real(fig, path, dpi)

    monkeypatch.setattr(plots, "save_exact", save_exact)
    drawn = []                                           # the command draws through the library's plot
    real_plot = synthesis.plot_class_models

    def plot_class_models(images, labels, *args, **kwargs):
        drawn.append(list(labels))
        return real_plot(images, labels, *args, **kwargs)

    monkeypatch.setattr(synthesis, "plot_class_models", plot_class_models)
    assert main(["viz", "class-model", "--checkpoint", str(run_dir), "--out", str(out),
                 "--steps", "3"]) == 0
    assert sum(t.startswith(f"{k} (p=") for t in texts for k in range(10)) == 10   # a label per tile
    assert (out / "class_model_all.png").is_file()
    capsys.readouterr()
    assert main(["viz", "fgsm", "--checkpoint", str(run_dir), "--index", "0", "--out", str(out),
                 "--sweep", "0", "0.05,0.1"]) == 0
    assert "eps 0 " in capsys.readouterr().out
    assert len(drawn) == 1 and len(drawn[0]) == 10


def test_sweep_parsing():
    from cnnlab.viz.commands.synthesis import parse_eps_list

    assert parse_eps_list(["0,0.01", "0.05"]) == [0.0, 0.01, 0.05]
    assert parse_eps_list("0, 0.1") == [0.0, 0.1]
    with pytest.raises(ValueError, match="--sweep takes numbers"):
        parse_eps_list(["0.1", "x"])
    with pytest.raises(ValueError, match="eps >= 0"):
        parse_eps_list(["-1"])
