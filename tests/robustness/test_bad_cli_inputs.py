"""A table of a careless or hostile user's command lines: each ends with exit code 2
(the user's mistake) or 1 (the machine refused), a one-line message naming the
problem, no Python traceback, and nothing in the run folder changed."""
import errno
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tally import count
from test_bad_values import png_header_only

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
    deep: list = []
    for _ in range(500):
        deep = [deep]
    weights = sorted(k for k in arrays if k.startswith("model/"))
    bad_checkpoints = {      # checksum-valid files whose contents cnnlab did not write
        "unknown_key": (arrays, {**meta, "config": {**meta["config"], "bogus": 1}}),
        "bad_type": (arrays, {**meta, "config": {**meta["config"], "lr": "fast"}}),
        "deep": (arrays, {**meta, "config": {**meta["config"], "lr_mult": deep}}),
        "bad_norm": (arrays, {**meta, "normalize": "yes"}),
        "bad_input": (arrays, {**meta, "model_spec": {**meta["model_spec"], "input": {"from": 10**9}}}),
        "bad_history": (arrays, {**meta, "history": [{"epoch": "x"}]}),
        "bad_classes": (arrays, {**meta, "classes": 7}),
        "missing_array": ({k: v for k, v in arrays.items() if k != weights[0]}, meta),
    }
    for key, (a, m) in bad_checkpoints.items():
        bad = d / key / "checkpoints"
        bad.mkdir(parents=True)
        save_arrays(bad / "epoch-001.npz", a, m)
        files[key] = str(d / key)
    for key, rows in {"rows_list": "[1, 2]\n", "rows_no_epoch": '{"train_loss": 1}\n',
                      "rows_str": '{"epoch": 1, "test_acc": "high"}\n'}.items():
        shutil.copytree(run, d / key, ignore=shutil.ignore_patterns("checkpoints"))
        (d / key / "metrics.jsonl").write_text(rows)
        files[key] = str(d / key)
    files["huge_png"] = str(png_header_only(d / "huge.png", 12000, 12000))
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
    (["evaluate", "{d}/folder"], 2, "holds no model.npz; it is not a run folder"),
    (["evaluate", "/dev/zero"], 2, "not a regular file"),
    (["features", "{run}/model.npz", "--layer", "fc", "--out", "{d}/folder"], 2, "is a folder"),
    (["report", "{run}", "--out", "{d}/folder"], 2, "is a folder"),
    (["linear", "{nan}", "--test", "{good}"], 2, "NaN"),
    (["linear", "{1d}", "--test", "{good}"], 2, "(N, D)"),
    (["linear", "{str}", "--test", "{good}"], 2, "(N, D) array of numbers"),
    (["linear", "{huge_label}", "--test", "{good}"], 2, "labels must lie in"),
    (["linear", "{empty}", "--test", "{good}"], 2, "non-empty"),
    (["linear", "{good}", "--test", "{good}", "--lr", "nan"], 2, "finite"),
    (["linear", "{good}", "--test", "{good}", "--lr", "1e30"], 2, "train_linear: diverged in epoch"),
    (["train", "--lr", "1e6", "--train-size", "60", "--batch-size", "20", "--out", "{d}/diverged"], 2,
     "training diverged: loss is nan"),
    (["viz", "occlusion", "--checkpoint", "{run}", "--size", "0"], 2, "must be >= 1"),
    (["viz", "kernels", "--checkpoint", "{run}", "--max-side", "0"], 2, "must be >= 1"),
    (["viz", "saliency", "--checkpoint", "{run}", "--image", "{d}/folder"], 2, "is a folder"),
    (["viz", "saliency", "--checkpoint", "{run}", "--image", "{huge_png}"], 2, "over the limit"),
    (["train", "--out", "{deep}", "--resume"], 2, "key 'lr_mult' is [[[["),
    (["evaluate", "{bad_norm}/checkpoints/epoch-001.npz"], 2, "its normalize is yes"),
    (["evaluate", "{bad_input}/checkpoints/epoch-001.npz"], 2, "its model_spec input is"),
    (["evaluate", "{bad_history}/checkpoints/epoch-001.npz"], 2, "history row 1 has epoch x"),
    (["evaluate", "{bad_classes}/checkpoints/epoch-001.npz"], 2, "its classes is 7"),
    (["evaluate", "{missing_array}/checkpoints/epoch-001.npz"], 2, "does not fit the model"),
    (["train", "--out", "{missing_array}", "--resume"], 2, "missing keys"),
    (["viz", "curves", "--checkpoint", "{rows_list}"], 2, "row 1 is list, not an object"),
    (["viz", "curves", "--checkpoint", "{rows_no_epoch}"], 2, "row 1 has epoch None"),
    (["viz", "curves", "--checkpoint", "{rows_str}"], 2, "test_acc is 'high', not a number"),
    (["report", "{rows_str}", "--out", "{d}/r.html"], 2, "test_acc is 'high', not a number"),
    (["explore", "/dev/zero"], 2, "not a regular file"),
    (["explore", "{d}/nothing/"], 2, "does not exist"),
    (["explore", "{run}", "--port", "70000"], 2, "--port must be in [1, 65535]"),
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
    count("command line", "refused")


WRITERS = {     # a command that writes -> (argv, the file or folder it makes)
    "train": (["train", "--epochs", "1", "--train-size", "60", "--out", "{d}/fault_run"], "fault_run"),
    "features": (["features", "{run}/model.npz", "--layer", "classifier.0", "--out", "{d}/codes.npz"],
                 "codes.npz"),
    "report": (["report", "{run}", "--out", "{d}/fault.html"], "fault.html"),
    "viz": (["viz", "curves", "--checkpoint", "{run}", "--out", "{d}/fault_viz"], "fault_viz/curves.png"),
}
FAULTS = {"disk full": (errno.ENOSPC, "fsync"), "read-only": (errno.EROFS, "mkstemp")}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_a_full_disk_or_read_only_folder_is_a_message_with_exit_code_1(world, capsys, monkeypatch,
                                                                        command, fault):
    import cnnlab._files as files

    code, where = FAULTS[fault]

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(files.os if where == "fsync" else files.tempfile, where, refuse)
    argv, made = WRITERS[command]
    assert cli.main([a.format(**world) for a in argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(f"error: /\\S+: {os.strerror(code)}$", err[0]), err   # which file
    assert not os.path.exists(os.path.join(world["d"], made))
    for folder, _, names in os.walk(world["d"]):
        assert not [n for n in names if n.endswith(files.TEMP_SUFFIX)], folder


def test_explore_on_a_taken_port_is_one_line_before_any_url(world, capsys):
    pytest.importorskip("uvicorn")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(["explore", world["run"], "--port", str(port)]) == 1
    out, err = capsys.readouterr()
    assert "http://" not in out
    assert err.strip() == f"cnnlab explore: error: 127.0.0.1:{port}: {os.strerror(errno.EADDRINUSE)}"
    count("command line", "refused")


def test_no_traceback_reaches_a_real_terminal(world):
    """The same table's first rows as real subprocesses (what a user sees)."""
    for argv, code, message in CASES[:1] + CASES[11:12]:
        proc = subprocess.run([sys.executable, "-m", "cnnlab", *[a.format(**world) for a in argv]],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == code and message in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
