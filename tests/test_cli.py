"""The command line, run as a user runs it: a subprocess on the digits data."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.serialization import load_arrays


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"cnnlab {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def three_epoch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    proc = run("train", "--epochs", "3", "--seed", "5", "--out", str(out))
    return out, proc


def test_train_one_epoch_writes_a_complete_run_folder(tmp_path):
    out = tmp_path / "one"
    proc = run("train", "--epochs", "1", "--out", str(out))
    assert "epoch   1/1" in proc.stdout and "val acc" in proc.stdout
    assert "1293 train / 144 val / 360 test images" in proc.stdout   # a tenth held out, stratified
    assert "test accuracy" in proc.stdout.splitlines()[-1]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and set(rows[0]) >= {"train_loss", "train_acc", "val_acc", "epoch_time_s"}
    assert "test_acc" not in rows[0]            # the test set is scored once, after training
    assert 0.5 < rows[0]["val_acc"] <= 1.0      # one epoch already learns something
    _, meta = load_arrays(out / "model.npz")
    assert f"test accuracy {meta['test_accuracy']:.4f}" in proc.stdout.splitlines()[-1]
    assert (out / "checkpoints" / "epoch-001.npz").exists()
    assert (out / "model.npz").exists() and (out / "curves.png").stat().st_size > 10_000
    assert json.loads((out / "config.json").read_text())["model"] == "digits_cnn"


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(three_epoch_run, tmp_path):
    full, _ = three_epoch_run
    # an "interrupted" run: only the first epoch's checkpoint survived
    part = tmp_path / "part"
    (part / "checkpoints").mkdir(parents=True)
    shutil.copy(full / "checkpoints" / "epoch-001.npz", part / "checkpoints")
    proc = run("train", "--out", str(part), "--resume")
    assert "resuming from" in proc.stdout and "epoch   2/3" in proc.stdout
    a, _ = load_arrays(full / "model.npz")
    b, _ = load_arrays(part / "model.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    full_rows = (full / "metrics.jsonl").read_text().splitlines()
    part_rows = (part / "metrics.jsonl").read_text().splitlines()
    strip = lambda r: {k: v for k, v in json.loads(r).items() if "time" not in k}  # noqa: E731
    assert [strip(r) for r in full_rows] == [strip(r) for r in part_rows]


def test_evaluate_prints_accuracy_and_confusion_matrix(three_epoch_run):
    full, _ = three_epoch_run
    proc = run("evaluate", str(full / "model.npz"))
    _, meta = load_arrays(full / "model.npz")
    assert f"test accuracy {meta['test_accuracy']:.4f}" in proc.stdout
    assert "true \\ predicted" in proc.stdout and "recall" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line[:1].isdigit() and "recall" not in line]
    counts = np.array([[int(v) for v in line.split()[1:11]] for line in rows[:10]])
    assert counts.sum() == 360                   # every test image is in the matrix


def test_corrupt_checkpoint_is_refused_and_nothing_is_overwritten(three_epoch_run, tmp_path):
    full, _ = three_epoch_run
    run_dir = tmp_path / "copy"
    shutil.copytree(full, run_dir)
    ckpt = run_dir / "checkpoints" / "epoch-003.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])          # truncated
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = run("train", "--out", str(run_dir), "--resume", "--epochs", "4", check=False)
    assert proc.returncode == 2
    assert "epoch-003.npz" in proc.stderr and "corrupt" in proc.stderr
    assert "Traceback" not in proc.stderr
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before
    proc = run("evaluate", str(ckpt), check=False)
    assert proc.returncode == 2 and "corrupt" in proc.stderr


def test_existing_run_folder_is_not_overwritten(three_epoch_run):
    full, _ = three_epoch_run
    proc = run("train", "--epochs", "1", "--out", str(full), check=False)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr


def test_bad_arguments_get_clear_errors(tmp_path):
    proc = run("train", "--epochs", "0", "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "epochs must be >= 1" in proc.stderr
    proc = run("train", "--model", "nope", "--epochs", "1", "--out", str(tmp_path / "y"), check=False)
    assert proc.returncode == 2 and "unknown model" in proc.stderr
    proc = run("train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out",
               str(tmp_path / "z"), check=False)
    assert proc.returncode == 2 and "train-images-idx3-ubyte" in proc.stderr


def test_models_command_lists_the_zoo():
    assert "lenet5" in run("models").stdout.split()


def test_summary_command_prints_the_table():
    proc = run("summary", "lenet5", "--input", "1x28x28")
    assert "features.0" in proc.stdout and "parameters: 61,706" in proc.stdout
    bad = run("summary", "lenet5", "--input", "28x28", check=False)
    assert bad.returncode == 2 and "CxHxW" in bad.stderr


def test_any_zoo_model_trains_with_its_input_resized(tmp_path):
    # digits are 8x8; lenet5 needs at least 20x20, so the pipeline resizes, and evaluate too
    out = tmp_path / "l5"
    proc = run("train", "--model", "lenet5", "--epochs", "1", "--out", str(out))
    assert "resized to 20x20" in proc.stdout
    _, meta = load_arrays(out / "model.npz")
    ev = run("evaluate", str(out / "model.npz"))
    assert f"test accuracy {meta['test_accuracy']:.4f}" in ev.stdout


@pytest.mark.parametrize("command, hint", [("train", True), ("explore", False), ("viz", False)])
def test_ctrl_c_says_interrupted_and_only_train_speaks_of_checkpoints(monkeypatch, capsys, command, hint):
    import argparse

    import cnnlab.cli as cli

    def stopped(args):
        raise KeyboardInterrupt

    parser = argparse.ArgumentParser()
    parser.set_defaults(command=command, func=stopped)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cnnlab {command}: interrupted")
    assert ("--resume" in err) == hint
