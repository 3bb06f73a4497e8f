"""Nothing a user has is lost: atomic writes, planted symlinks, taken run folders,
concurrent runs, poisoned weights, a checkpoint that lies about its epoch, kill -9."""
import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cnnlab
from cnnlab._files import (
    TEMP_SUFFIX,
    UnsafePathError,
    append_text,
    atomic_write,
    clean_orphans,
    write_text_atomic,
)
from cnnlab.serialization import CheckpointError, load_arrays, save_arrays
from cnnlab.training import run as run_mod
from cnnlab.training.checkpoint import TrainingDivergedError, save_model
from cnnlab.training.config import ConfigError, TrainConfig
from cnnlab.training.folder import RUN_FILES, RunExistsError, RunLockedError, run_folder_taken, run_lock

TINY = dict(epochs=2, train_size=60, batch_size=20, seed=3)
QUIET = dict(progress=False, report=lambda m: None)


def tiny_fit(out, **kw):
    return run_mod.fit(TrainConfig(**{**TINY, **kw}), out, **QUIET)


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True,
                          timeout=timeout)


# ------------------------------------------------------------ the atomic writer
def test_atomic_write_replaces_whole_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


def test_a_planted_symlink_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "run" / "curves.png"
    link.parent.mkdir()
    link.symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symlink"):
        write_text_atomic(link, "overwrite")
    with pytest.raises(UnsafePathError, match="symlink"):
        append_text(link, "more")
    assert victim.read_text() == "precious" and link.is_symlink()


def test_a_symlink_the_user_named_is_followed(tmp_path):
    real = tmp_path / "real.npz"
    real.write_text("old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    cnnlab.save({"w": np.ones(2)}, link)              # the user named the link
    assert link.is_symlink() and cnnlab.load(link)["w"].tolist() == [1.0, 1.0]


def test_the_old_fixed_temp_names_cannot_be_used_against_us(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in (".curves.tmp.png", ".report.html.tmp", ".model.npz.tmp", ".config.json.tmp"):
        (run / name).symlink_to(victim)
    tiny_fit(run, epochs=1)
    assert victim.read_text() == "precious"
    assert (run / "model.npz").is_file() and not (run / "model.npz").is_symlink()


def test_a_folder_as_target_is_a_clear_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(UnsafePathError, match="is a folder"):
        write_text_atomic(tmp_path / "d", "x")


def test_orphans_of_dead_writers_are_cleaned_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=30).stdout.strip()
    orphan = tmp_path / f".model.npz.{dead}.abc123{TEMP_SUFFIX}"
    live = tmp_path / f".model.npz.{os.getpid()}.def456{TEMP_SUFFIX}"
    orphan.write_bytes(b"x" * 100)
    live.write_bytes(b"y")
    write_text_atomic(tmp_path / "config.json", "{}")      # the next write to the folder
    assert not orphan.exists() and live.exists()
    assert clean_orphans(tmp_path) == []


METHODS = {"savefig", "imsave", "write_text", "write_bytes"}          # any object's
MODULE_CALLS = {"os": {"replace", "rename", "open"}, "shutil": {"copy", "copyfile", "copy2", "move"},
                "np": {"save", "savez", "savez_compressed"}, "tempfile": {"mkstemp", "NamedTemporaryFile"}}


def test_every_writer_goes_through_the_atomic_helper():
    """No module but cnnlab/_files.py writes a file, renames one or makes a temp
    file by itself: every figure, array and text goes into the file object of
    ``atomic_write`` (the first argument ``f``)."""
    root = Path(cnnlab.__file__).parent
    bad = []
    for p in root.rglob("*.py"):
        if p.name == "_files.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            first = node.args[0] if node.args else None
            into_f = isinstance(first, ast.Name) and first.id == "f"
            if name == "open" and not isinstance(fn, ast.Attribute):
                modes = [a.value for a in node.args[1:2] + [k.value for k in node.keywords
                                                             if k.arg == "mode"]
                         if isinstance(a, ast.Constant)]
                if any(set(str(m)) & set("wax+") for m in modes):
                    bad.append(f"{p.relative_to(root)}:{node.lineno}")
            module = getattr(getattr(fn, "value", None), "id", "")
            if not into_f and (name in METHODS or name in MODULE_CALLS.get(module, ())):
                bad.append(f"{p.relative_to(root)}:{node.lineno} {module}.{name}")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------ run folders
@pytest.mark.parametrize("name", RUN_FILES)
def test_a_folder_holding_any_run_file_is_never_overwritten(tmp_path, name):
    out = tmp_path / "finished"
    out.mkdir()
    p = out / name
    p.mkdir() if name == "checkpoints" else p.write_text("mine")
    with pytest.raises(RunExistsError, match="already holds a run"):
        tiny_fit(out)
    assert sorted(os.listdir(out)) == [name]
    if name != "checkpoints":
        assert p.read_text() == "mine"


def test_a_finished_run_without_checkpoints_is_refused_by_the_cli(tmp_path):
    out = tmp_path / "done"
    tiny_fit(out, epochs=1)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for p in (out / "checkpoints").iterdir():
        p.unlink()
    (out / "checkpoints").rmdir()
    proc = cli("train", "--epochs", "1", "--train-size", "60", "--out", str(out))
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


HOLD = """
import sys, time
from pathlib import Path
from cnnlab.training.folder import run_lock
with run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_the_same_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            tiny_fit(out)
        proc = cli("train", "--epochs", "1", "--out", str(out))
        assert proc.returncode == 2 and f"PID {holder.pid}" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with run_lock(out):          # the lock died with its holder
        pass
    tiny_fit(out, epochs=1)
    assert (out / "model.npz").exists() and not (out / ".lock").exists()


def test_the_lock_is_released_and_an_unused_folder_removed(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ConfigError):
        tiny_fit(out, lr=float("inf"))
    assert not out.exists()


@pytest.mark.parametrize("existing", [False, True])
def test_a_run_that_fails_before_its_first_checkpoint_leaves_the_folder_free(tmp_path, existing):
    """Diverged in epoch 1: its config.json and empty metrics.jsonl would mark the
    folder taken with nothing to resume; they go, and the next run may use it."""
    out = tmp_path / "run"
    if existing:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    with pytest.raises(TrainingDivergedError), np.errstate(all="ignore"):
        tiny_fit(out, lr=1e6)
    assert not run_folder_taken(out)
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not out.exists()


# ------------------------------------------------------------ poisoned weights
def test_non_finite_weights_are_never_written(tmp_path):
    model = cnnlab.nn.Linear(3, 2)
    good = tmp_path / "model.npz"
    save_model(good, model)
    before = good.read_bytes()
    model.weight.data[1, 2] = np.nan
    with pytest.raises(TrainingDivergedError, match="weight"):
        save_model(good, model)
    model.weight.data[1, 2] = np.inf
    with pytest.raises(TrainingDivergedError, match="diverged"):
        save_model(good, model)
    assert good.read_bytes() == before


def test_divergence_on_the_last_step_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = run_mod.train_one_epoch
    calls = []

    def poisoned(model, *a, **k):
        res = real(model, *a, **k)
        calls.append(1)
        if len(calls) == 2:                    # the last step of epoch 2 blew the weights up
            next(iter(model.parameters())).data[...] = np.inf
        return res

    monkeypatch.setattr(run_mod, "train_one_epoch", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match="not written and the last good checkpoint"), \
            np.errstate(all="ignore"):
        tiny_fit(out, epochs=3)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-001.npz"]
    assert not (out / "model.npz").exists()
    load_arrays(out / "checkpoints" / "epoch-001.npz")      # intact


@pytest.mark.parametrize("field", ["lr", "momentum", "weight_decay", "gamma", "clip_grad_norm"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -float("inf")])
def test_non_finite_hyper_parameters_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be a finite number"):
        TrainConfig(**{field: value}).resolved()


def test_a_checkpoint_claiming_a_huge_epoch_is_refused(tmp_path):
    out = tmp_path / "run"
    tiny_fit(out, epochs=1)
    ckpt = out / "checkpoints" / "epoch-001.npz"
    arrays, meta = load_arrays(ckpt)
    meta["epoch"] = 10**9
    save_arrays(ckpt, arrays, meta)
    model_before = (out / "model.npz").read_bytes()
    with pytest.raises(CheckpointError, match="claims epoch 1000000000"):
        run_mod.fit(TrainConfig(), out, resume=True, **QUIET)
    assert (out / "model.npz").read_bytes() == model_before


# ------------------------------------------------------------ kill -9
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    args = ["train", "--epochs", "3", "--train-size", "120", "--batch-size", "20", "--seed", "1",
            "--no-progress"]
    full = tmp_path / "full"
    assert cli(*args, "--out", str(full)).returncode == 0
    part = tmp_path / "part"
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", *args, "--out", str(part)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (part / "checkpoints" / "epoch-002.npz").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the run ended before epoch 2"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = cli(*args, "--out", str(part), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, _ = load_arrays(full / "model.npz")
    b, _ = load_arrays(part / "model.npz")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rows = [json.loads(r) for r in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert not [p for p in part.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
