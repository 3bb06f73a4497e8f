"""Run options a newcomer reaches for in the first hour: training a bit more
(``--extend``), how many checkpoints stay (``--keep-checkpoints``), Adam's
default learning rate, ``--data-dir`` with the digits, and the validation split
that stands in for the test set during training."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.serialization import load_arrays
from cnnlab.training import TrainConfig, fit
from cnnlab.training.config import ConfigError


def quiet(_line: str) -> None:
    pass


def weights(path):
    arrays, _ = load_arrays(path)
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


def epochs_on_disk(out):
    return sorted(int(p.stem.split("-")[1]) for p in (out / "checkpoints").glob("epoch-*.npz"))


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """A 2-epoch cosine run, then --extend 2."""
    out = tmp_path_factory.mktemp("ext") / "run"
    cfg = TrainConfig(epochs=2, train_size=150, batch_size=32, seed=3, keep_checkpoints=0)
    first = fit(cfg, out, progress=False, report=quiet)
    lines = []
    res = fit(TrainConfig(), out, extend=2, progress=False, report=lines.append)
    return out, first, res, lines


def test_extend_starts_a_new_cosine_segment(extended):
    out, first, res, lines = extended
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert res.history[:2] == first.history                       # the first segment is kept
    lrs = [h["lr"] for h in res.history]
    assert lrs == pytest.approx([0.02, 0.01, 0.02, 0.01])          # cosine T=2, then again from 0.02
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 4 and config["segments"] == [{"start": 2, "lr": 0.02}]
    assert any("extending from" in line and "epochs 3-4" in line for line in lines)
    _, meta = load_arrays(out / "model.npz")
    assert meta["epochs"] == 4 and meta["test_accuracy"] == res.test_accuracy


def test_an_extended_run_resumes_bit_exactly(extended, tmp_path):
    out, _, _, _ = extended
    part = tmp_path / "part"
    (part / "checkpoints").mkdir(parents=True)
    shutil.copy(out / "checkpoints" / "epoch-003.npz", part / "checkpoints")   # stopped in the segment
    res = fit(TrainConfig(), part, resume=True, progress=False, report=quiet)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    a, b = weights(out / "model.npz"), weights(part / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # resumed exactly at the segment boundary: the new segment starts on resume
    edge = tmp_path / "edge"
    (edge / "checkpoints").mkdir(parents=True)
    shutil.copy(out / "checkpoints" / "epoch-002.npz", edge / "checkpoints")
    fit(TrainConfig(), edge, extend=2, progress=False, report=quiet)
    c = weights(edge / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)


def test_extend_with_its_own_learning_rate_and_errors(extended, tmp_path, capsys):
    out, _, _, _ = extended
    again = tmp_path / "again"
    shutil.copytree(out, again)
    res = fit(TrainConfig(lr=0.005), again, extend=1, progress=False, report=quiet)
    assert res.history[-1]["lr"] == pytest.approx(0.005)
    with pytest.raises(ConfigError, match="extend must be >= 1"):
        fit(TrainConfig(), again, extend=0, progress=False, report=quiet)
    # a cosine run cannot be stretched by --epochs: the message points at --extend
    assert main(["train", "--out", str(again), "--resume", "--epochs", "9", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot be stretched to 9" in err and "--extend 4" in err and "--epochs" in err


def test_cli_extend(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["train", "--epochs", "1", "--train-size", "100", "--out", str(out),
                 "--no-progress"]) == 0
    assert main(["train", "--out", str(out), "--extend", "1", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "extending from" in text and "epoch   2/2" in text
    assert main(["train", "--extend", "1"]) == 2
    assert "--extend needs --out" in capsys.readouterr().err


def test_keep_checkpoints_keeps_the_last_k_and_the_best(tmp_path, monkeypatch):
    import cnnlab.training.run as run_mod

    scripted = iter([0.9, 0.5, 0.6, 0.7, 0.8])        # epoch 1 is the best
    real = run_mod.evaluate

    def evaluate(model, loader, *a, **k):
        res = real(model, loader, *a, **k)
        if len(loader.dataset) == 10:                  # the validation split
            res.accuracy = next(scripted)
        return res

    monkeypatch.setattr(run_mod, "evaluate", evaluate)
    out = tmp_path / "k"
    fit(TrainConfig(epochs=5, train_size=100, keep_checkpoints=2), out, progress=False, report=quiet)
    assert epochs_on_disk(out) == [1, 4, 5]
    assert TrainConfig().keep_checkpoints == 3
    with pytest.raises(ConfigError, match="keep_checkpoints must be >= 0"):
        TrainConfig(keep_checkpoints=-1).resolved()


def test_keep_checkpoints_default_and_zero(extended, tmp_path):
    out, _, _, _ = extended
    assert epochs_on_disk(out) == [1, 2, 3, 4]        # keep_checkpoints=0: all of them
    out3 = tmp_path / "d"
    fit(TrainConfig(epochs=5, train_size=100, val_split=0), out3, progress=False, report=quiet)
    assert epochs_on_disk(out3) == [3, 4, 5]           # the default: the last 3 (no validation)


def test_adam_defaults_to_its_own_learning_rate():
    assert TrainConfig(optimizer="adam").resolved().lr == 1e-3
    assert TrainConfig(optimizer="adam", lr=0.01).resolved().lr == 0.01
    assert TrainConfig().resolved().lr == 0.02
    assert TrainConfig(optimizer="adam", model="lenet5_1998").resolved().lr == 1e-3


def test_data_dir_with_the_digits_is_an_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="does not apply to the digits"):
        TrainConfig(data_dir=str(tmp_path)).resolved()
    assert main(["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_validation_split_by_default_and_val_split_zero(tmp_path):
    res = fit(TrainConfig(epochs=1, train_size=200), tmp_path / "v", progress=False, report=quiet)
    row = res.history[0]
    assert "val_acc" in row and "test_acc" not in row
    assert row["val_acc"] * 20 == pytest.approx(round(row["val_acc"] * 20))   # 10% of 200
    old = fit(TrainConfig(epochs=1, train_size=200, val_split=0), tmp_path / "o", progress=False,
              report=quiet)
    assert "val_acc" not in old.history[0] and old.test_accuracy == old.history[0]["test_acc"]
    assert not math.isnan(res.test_accuracy)
