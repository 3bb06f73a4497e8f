"""A table of a careless or hostile user's command lines: each ends with exit code 2
(the user's mistake) or 1 (the machine refused), a one-line message naming the
problem, no Python traceback, and nothing in the run folder changed."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnlab import cli
from cnnlab.serialization import load_arrays, save_arrays
from cnnlab.training import run as run_mod
from cnnlab.training.config import TrainConfig


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("world")
    run = d / "run"
    run_mod.fit(TrainConfig(epochs=1, train_size=60, batch_size=20), run, progress=False,
                report=lambda m: None)
    (d / "folder").mkdir()

    def codes(name, codes, labels):
        np.savez(d / name, codes=codes, labels=labels, layer=np.array("fc"))
        return str(d / name)

    good = codes("good.npz", np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32),
                 np.arange(20) % 3)
    files = {
        "nan": codes("nan.npz", np.full((20, 4), np.nan, np.float32), np.arange(20) % 3),
        "1d": codes("flat.npz", np.zeros(20, np.float32), np.arange(20) % 3),
        "str": codes("str.npz", np.array([["a"] * 4] * 20), np.arange(20) % 3),
        "huge_label": codes("huge.npz", np.zeros((20, 4), np.float32), np.full(20, 10**9)),
        "empty": codes("empty.npz", np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
    }
    ckpt = run / "checkpoints" / "epoch-001.npz"
    arrays, meta = load_arrays(ckpt)
    for key, change in {"unknown_key": {"bogus": 1}, "bad_type": {"lr": "fast"}}.items():
        bad = d / key / "checkpoints"
        bad.mkdir(parents=True)
        save_arrays(bad / "epoch-001.npz", arrays, {**meta, "config": {**meta["config"], **change}})
        files[key] = str(d / key)
    return {"d": str(d), "run": str(run), "good": good, **files}


CASES = [
    (["train", "--lr", "inf", "--out", "{d}/x"], 2, "--lr must be a finite number"),
    (["train", "--momentum", "nan", "--out", "{d}/x"], 2, "--momentum must be a finite number"),
    (["train", "--input-size", "100000", "--out", "{d}/x"], 2, "--input-size must be in [1, 4096]"),
    (["train", "--epochs", "0", "--out", "{d}/x"], 2, "--epochs must be >= 1"),
    (["train", "--out", "{run}", "--epochs", "1"], 2, "already holds a run"),
    (["train", "--out", "{unknown_key}", "--resume"], 2, "unknown key 'bogus'"),
    (["train", "--out", "{bad_type}", "--resume"], 2, "key 'lr' is 'fast'"),
    (["summary", "lenet5", "--batch-size", "0"], 2, "must be >= 1"),
    (["summary", "lenet5", "--input", "3x100000x100000"], 2, "input values; at most"),
    (["evaluate", "{d}/nothing.npz"], 2, "does not exist"),
    (["evaluate", "{d}/folder"], 2, "is a folder"),
    (["evaluate", "/dev/zero"], 2, "not a regular file"),
    (["features", "{run}/model.npz", "--layer", "fc", "--out", "{d}/folder"], 2, "is a folder"),
    (["report", "{run}", "--out", "{d}/folder"], 2, "is a folder"),
    (["linear", "{nan}", "--test", "{good}"], 2, "NaN"),
    (["linear", "{1d}", "--test", "{good}"], 2, "(N, D)"),
    (["linear", "{str}", "--test", "{good}"], 2, "(N, D) array of numbers"),
    (["linear", "{huge_label}", "--test", "{good}"], 2, "labels must lie in"),
    (["linear", "{empty}", "--test", "{good}"], 2, "non-empty"),
    (["linear", "{good}", "--test", "{good}", "--lr", "nan"], 2, "finite"),
    (["viz", "occlusion", "--checkpoint", "{run}", "--size", "0"], 2, "must be >= 1"),
    (["viz", "kernels", "--checkpoint", "{run}", "--max-side", "0"], 2, "must be >= 1"),
    (["viz", "saliency", "--checkpoint", "{run}", "--image", "{d}/folder"], 2, "is a folder"),
]


@pytest.mark.parametrize("argv, code, message", CASES, ids=[" ".join(c[0][:2]) + f" #{i}"
                                                            for i, c in enumerate(CASES)])
def test_a_bad_command_line_is_one_clear_line(world, capsys, argv, code, message):
    before = sorted(os.listdir(world["run"]))
    argv = [a.format(**world) for a in argv]
    try:
        got = cli.main(argv)
    except SystemExit as e:          # argparse's own refusal
        got = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code, err
    assert message in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert sorted(os.listdir(world["run"])) == before


def test_a_full_disk_is_a_message_with_exit_code_1(world, capsys, monkeypatch):
    import cnnlab._files as files

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(files.os, "fsync", full)
    out = os.path.join(world["d"], "codes.npz")
    assert cli.main(["features", f"{world['run']}/model.npz", "--layer", "classifier.0", "--out", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert not os.path.exists(out)
    assert not [n for n in os.listdir(world["d"]) if n.endswith(files.TEMP_SUFFIX)]


def test_no_traceback_reaches_a_real_terminal(world):
    """The same table's first rows as real subprocesses (what a user sees)."""
    for argv, code, message in CASES[:1] + CASES[11:12]:
        proc = subprocess.run([sys.executable, "-m", "cnnlab", *[a.format(**world) for a in argv]],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == code and message in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
