"""The arithmetic of benchmarks/distributed.py's scaling projection, without timing
anything: the ring Allreduce cost, the efficiency, and the global batch below which
N nodes fall under 50% efficiency."""
import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))   # for its `import harness`
# loaded by path under its own name: a top-level `distributed` may be another package
_spec = importlib.util.spec_from_file_location("benchmark_distributed", BENCHMARKS / "distributed.py")
distributed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(distributed)


def test_ring_allreduce_sends_2_n_minus_1_over_n_of_the_bytes_and_pays_2_n_minus_1_latencies():
    # 1.25e9 bytes = 10 Gbit: 1 s on a 10 Gb/s link for the whole buffer
    assert distributed.ring_allreduce_s(1.25e9, 2, 10, 0.0) == pytest.approx(1.0)
    assert distributed.ring_allreduce_s(1.25e9, 4, 10, 0.0) == pytest.approx(1.5)
    assert distributed.ring_allreduce_s(0, 8, 10, 1e-3) == pytest.approx(14e-3)


def test_the_tables_follow_from_the_inputs():
    args = argparse.Namespace(nodes=[2, 4], links=[10], latency_us=0.0, node_batch=4, node_speedup=1.0)
    # model A: 1e6 MACs, 1.25e8 bytes (0.1 s to reduce on 2 nodes over 10 Gb/s, 0.15 s on 4);
    # model B: twice the MACs (so 2x the measured time per image), the same bytes
    inputs = {"A": (10 ** 6, 125_000_000), "B": (2 * 10 ** 6, 125_000_000)}
    lines = distributed.projection(0.025, args, inputs)
    # A on 2 nodes: compute 4 x 0.025 = 0.1 s, allreduce 0.1 s -> 50%; on 4: 0.1 / 0.25 = 40%
    eff_a = next(line for line in lines if line.startswith("| A | 1 M"))
    assert eff_a.rstrip(" |").split(" | ")[-2:] == ["50%", "40%"]
    # B: compute 0.2 s -> 0.2 / 0.3 = 67% and 0.2 / 0.35 = 57%
    eff_b = next(line for line in lines if line.startswith("| B | 2 M"))
    assert eff_b.rstrip(" |").split(" | ")[-2:] == ["67%", "57%"]
    # B_min = N x allreduce / time per image: A 2 x 0.1 / 0.025 = 8, 4 x 0.15 / 0.025 = 24
    stop_a = next(line for line in lines if line.startswith("| A | 10 Gb/s"))
    assert stop_a.rstrip(" |").split(" | ")[-2:] == ["8", "24"]
    # speed-up at which N=4 falls to 50%: compute 0.1 s / allreduce 0.15 s
    faster_a = [line for line in lines if line.startswith("| A |")][-1]
    assert faster_a.rstrip(" |").split(" | ")[-1] == "0.67x"
