"""Data-parallel training on a real MPI: `mpiexec -n 2 cnnlab train --distributed`.

Every test launches real processes with Open MPI's mpiexec (oversubscribed, as
root when the tests run as root, over the shared-memory transport) and has a
timeout.  Equality with one process is "within float32 summation noise": the
gradient of a global batch is summed in another order (each rank's share, then
the Allreduce) than one process's single GEMM, a relative difference of ~1e-7
per step that training carries along; 1e-5 of each tensor's largest magnitude
bounds it with margin (measured: 1.4e-7 after a whole digits epoch).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.training import load_training_state
from cnnlab.training.config import TrainConfig
from cnnlab.training.run import fit

pytest.importorskip("mpi4py", reason="the distributed extra (mpi4py) is not installed")
MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None,
                                reason="no mpiexec on PATH (pip install -e '.[distributed]')")

ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-5
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
       "OMPI_MCA_btl": "self,sm", "CNNLAB_NUM_THREADS": "1", "CNNLAB_NUMBA": "0"}
TRAIN = [sys.executable, "-m", "cnnlab", "train", "--no-progress"]


def mpiexec(*apps: list[str], n: int = 2, timeout: float = 90, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    """``mpiexec -n n app`` (or one process per app, ``app1 : app2``, each a
    list that may start with ``--wdir DIR``)."""
    cmd = [MPIEXEC, "--oversubscribe", "-x", "PYTHONPATH"]
    if len(apps) == 1:
        cmd += ["-n", str(n), *apps[0]]
    else:
        for i, app in enumerate(apps):
            cmd += ([":"] if i else []) + ["-n", "1", *app]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=cwd)


def one_process(out: Path, **options) -> None:
    fit(TrainConfig(**options), out, progress=False, report=lambda line: None)


def weights(path: Path) -> dict[str, np.ndarray]:
    return load_training_state(path).model_state


def assert_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rtol: float = RTOL) -> None:
    assert a.keys() == b.keys()
    for k in a:
        scale = max(float(np.abs(b[k]).max()), 1e-12)
        assert float(np.abs(a[k].astype(np.float64) - b[k]).max()) <= rtol * scale, k


def test_mpi_checks_broadcast_sync_bn_buckets_and_shares():
    """Three ranks, float64: ranks seeded differently agree after the broadcast;
    sync BN plus the bucketed Allreduce (1, 2 and 9 buckets) give one process's
    outputs, running statistics and every gradient on an uneven batch of 7;
    the training shares cover every batch, the evaluation shares every sample."""
    r = mpiexec([sys.executable, str(ROOT / "tests" / "mpi_checks.py")], n=3, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert sorted(row["rank"] for row in rows) == [0, 1, 2]
    for row in rows:
        assert row["differed_before_broadcast"] and row["equal_after_broadcast"]
        assert row["synced_layers"] == 2 and row["state_dict_names_kept"]
        assert (row["one_buckets"], row["two_buckets"]) == (1, 2) and row["several_buckets"] > 2
        for name in ("one", "two", "several"):
            assert row[f"{name}_total"] == 7
            assert row[f"{name}_forward_rel"] < 1e-12
            assert row[f"{name}_grad_rel"] < 1e-12
            assert row[f"{name}_buffers_rel"] < 1e-12
        assert row["shares_cover_batches"] and row["eval_covers_all"]
        assert row["train_dropped"] == 1


def test_two_ranks_equal_one_process_over_a_digits_epoch_and_only_rank_0_writes(tmp_path):
    """A whole digits epoch at global batch 64 (1437 images: 22 batches and an
    uneven last one of 29, shares 14 and 15).  Rank 0 and rank 1 run in their
    own working folders: the run folder is rank 0's, rank 1's stays empty."""
    args = ["--epochs", "1", "--batch-size", "64", "--distributed", "--out", "run"]
    (tmp_path / "r0").mkdir()
    (tmp_path / "r1").mkdir()
    r = mpiexec(["--wdir", str(tmp_path / "r0"), *TRAIN, *args],
                ["--wdir", str(tmp_path / "r1"), *TRAIN, *args])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("test accuracy") == 1 and r.stdout.count("distributed: 2 ranks") == 1
    assert list((tmp_path / "r1").iterdir()) == []
    run = tmp_path / "r0" / "run"
    assert {"checkpoints", "config.json", "metrics.jsonl", "model.npz"} <= {p.name for p in run.iterdir()}
    one_process(tmp_path / "single", epochs=1, batch_size=64)
    assert_close(weights(run / "model.npz"), weights(tmp_path / "single" / "model.npz"))
    dist_row = json.loads((run / "metrics.jsonl").read_text())
    single_row = json.loads((tmp_path / "single" / "metrics.jsonl").read_text())
    # the epoch's row is scored on the validation split (the test set once, at the end)
    for key in ("train_loss", "val_loss"):
        assert dist_row[key] == pytest.approx(single_row[key], rel=1e-5)
    assert dist_row["val_acc"] == pytest.approx(single_row["val_acc"], abs=1 / 100)


def test_lenet5_five_steps_in_many_buckets_equal_one_process(tmp_path):
    """LeNet-5, SGD with momentum, 5 steps of global batch 64, the gradients in
    buckets of 16 KiB (several Allreduce calls per step)."""
    opts = dict(model="lenet5", train_size=320, epochs=1, batch_size=64, lr=0.05)
    r = mpiexec([*TRAIN, "--model", "lenet5", "--train-size", "320", "--epochs", "1",
                 "--batch-size", "64", "--lr", "0.05", "--distributed", "--bucket-mb", "0.015625",
                 "--out", str(tmp_path / "dist")])
    assert r.returncode == 0, r.stderr
    assert "in 5 Allreduce buckets" in r.stdout
    one_process(tmp_path / "single", **opts)
    assert_close(weights(tmp_path / "dist" / "model.npz"), weights(tmp_path / "single" / "model.npz"))


# bn_cnn with its dropout layer passed through: dropout draws per rank, so only
# a model without random layers can equal one process.
NO_DROPOUT = ("import sys; from cnnlab.nn.modules.dropout import Dropout; "
              "Dropout.forward = lambda self, x: x; from cnnlab.cli import main; sys.exit(main())")


def test_sync_bn_equals_one_process(tmp_path, monkeypatch):
    """bn_cnn (BatchNorm2d and BatchNorm1d layers) with --sync-bn: weights and
    running statistics equal one process's at the same global batch."""
    from cnnlab.nn.modules.dropout import Dropout

    monkeypatch.setattr(Dropout, "forward", lambda self, x: x)
    opts = dict(model="bn_cnn", train_size=100, epochs=1, batch_size=50)
    r = mpiexec([sys.executable, "-c", NO_DROPOUT, "train", "--no-progress", "--model", "bn_cnn",
                 "--train-size", "100", "--epochs", "1", "--batch-size", "50", "--distributed",
                 "--sync-bn", "--out", str(tmp_path / "dist")])
    assert r.returncode == 0, r.stderr
    assert re.search(r"BatchNorm: \d+ layers synchronised", r.stdout)
    one_process(tmp_path / "single", **opts)
    assert_close(weights(tmp_path / "dist" / "model.npz"), weights(tmp_path / "single" / "model.npz"))


def test_resume_under_mpi_is_bit_identical_and_one_process_continues_it(tmp_path):
    """Two epochs under mpiexec; the same run resumed under mpiexec from its
    first checkpoint ends bit-identical; resumed on one process (the global
    batch kept) it ends equal within float32 summation noise."""
    common = ["--train-size", "120", "--epochs", "2", "--batch-size", "40"]
    r = mpiexec([*TRAIN, *common, "--distributed", "--out", str(tmp_path / "full")])
    assert r.returncode == 0, r.stderr
    for name in ("again", "one"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        shutil.copy(tmp_path / "full" / "checkpoints" / "epoch-001.npz", tmp_path / name / "checkpoints")
    r = mpiexec([*TRAIN, "--resume", "--distributed", "--out", str(tmp_path / "again")])
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout
    full = weights(tmp_path / "full" / "model.npz")
    again = weights(tmp_path / "again" / "model.npz")
    assert all(np.array_equal(full[k], again[k]) for k in full)
    fit(TrainConfig(), tmp_path / "one", resume=True, progress=False, report=lambda line: None)
    assert_close(weights(tmp_path / "one" / "model.npz"), full)


def test_without_distributed_mpiexec_is_told_it_runs_independent_copies(tmp_path):
    r = mpiexec([*TRAIN, "--epochs", "0"], timeout=60, cwd=tmp_path)
    assert r.returncode != 0
    assert r.stderr.count("running 2 independent copies") >= 1   # each copy says it (until stopped)
    assert "add --distributed" in r.stderr


def test_a_setup_error_is_printed_once_and_every_rank_exits_2(tmp_path):
    r = mpiexec([*TRAIN, "--epochs", "0", "--distributed"], timeout=60, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.count("--epochs must be >= 1") == 1
    assert "Traceback" not in r.stderr


# rank 1 fails in the third epoch (after rank 0 has written the first checkpoint
# for sure: the second epoch's first Allreduce waits for it): raises, or is killed
FAULT = """import os, signal, sys
from mpi4py import MPI
import cnnlab.training.run as run
plain = run.train_one_epoch
def failing(model, loader, *args, **kwargs):
    if MPI.COMM_WORLD.Get_rank() == 1 and loader.epoch == 2:
        if sys.argv[1] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise ValueError("a bad batch")
    return plain(model, loader, *args, **kwargs)
run.train_one_epoch = failing
from cnnlab.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("fault", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_and_the_last_checkpoint_survives(tmp_path, fault):
    out = tmp_path / "run"
    r = mpiexec([sys.executable, "-c", FAULT, fault, "train", "--no-progress", "--train-size", "80",
                 "--batch-size", "40", "--epochs", "3", "--distributed", "--out", str(out)], timeout=60)
    assert r.returncode != 0
    if fault == "raise":
        assert r.stderr.count("error on rank 1 of 2: ValueError: a bad batch") == 1
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept in (["epoch-001.npz"], ["epoch-001.npz", "epoch-002.npz"])   # never a partial file
    for i, name in enumerate(kept, 1):
        assert load_training_state(out / "checkpoints" / name).epoch == i
