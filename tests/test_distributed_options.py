"""The distributed options and helpers that need no MPI: launcher detection,
the config checks, Goyal et al.'s linear scaling rule, bucket planning, shares,
and that importing cnnlab (and training one process) never imports mpi4py."""
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.nn import Linear
from cnnlab.training.builders import build_optimizer, build_scheduler
from cnnlab.training.config import ConfigError, TrainConfig
from cnnlab.training.distributed import launched_by_mpi
from cnnlab.training.distributed.buckets import plan_buckets
from cnnlab.training.distributed.data import share_bounds


def test_launchers_are_recognised_by_their_variables():
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2"}) == (2, 4)
    assert launched_by_mpi({"PMI_SIZE": "2", "PMI_RANK": "1"}) == (1, 2)
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "1"}) is None
    assert launched_by_mpi({}) is None


@pytest.mark.parametrize("field, value", [("bucket_mb", 0.0), ("lr_scale_batch", 0)])
def test_bad_distributed_options_name_the_option(field, value):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{field: value}).resolved()
    assert field in e.value.options


def test_linear_scaling_rule_scales_the_lr_and_the_warm_up_starts_from_the_unscaled_one():
    cfg = TrainConfig(lr=0.1, batch_size=256, lr_scale_batch=64, scheduler="warmup-cosine",
                      epochs=10, warmup_epochs=2).resolved()
    assert cfg.scaled_lr == pytest.approx(0.4)
    opt = build_optimizer(cfg, Linear(3, 2))
    build_scheduler(cfg, opt)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)           # epoch 0: Goyal's eta
    assert TrainConfig(lr=0.1).resolved().scaled_lr == 0.1           # off by default


class _P:
    def __init__(self, n, dtype=np.float32):
        self.data, self.grad = np.zeros(n, dtype), None


def test_buckets_fill_in_order_per_dtype_and_a_large_parameter_stands_alone():
    params = [_P(10), _P(10), _P(100), _P(5), _P(3, np.float64)]
    buckets = plan_buckets(params, bucket_bytes=80)
    assert [[params.index(p) for p in b.params] for b in buckets] == [[0, 1], [2], [3], [4]]
    assert buckets[0].buffer.size == 21 and buckets[3].buffer.dtype == np.float64
    assert len(plan_buckets(params, bucket_bytes=10 ** 6)) == 2     # one per dtype


@pytest.mark.parametrize("m, size", [(64, 2), (29, 2), (7, 3), (3, 3)])
def test_shares_are_contiguous_disjoint_and_cover_the_batch(m, size):
    bounds = [share_bounds(m, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_importing_cnnlab_and_its_cli_does_not_import_mpi4py():
    code = ("import sys, cnnlab, cnnlab.cli, cnnlab.training.run, cnnlab.training.distributed; "
            "print('mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "False"
