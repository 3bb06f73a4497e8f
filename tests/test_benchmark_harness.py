"""The benchmarks' bookkeeping (benchmarks/harness.py), without timing anything: the
machine description, the order of the fresh processes, the statistics, and the
OpenBLAS environment the children get.  Timings themselves are never tested."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402

OPENBLAS = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}


def test_the_frameworks_take_turns_the_first_swapping_each_round():
    order = []

    def run(fw):
        order.append(fw)
        return {"step (s)": float(len(order))}

    runs = harness.alternate(run, ("cnnlab", "torch"), 3)
    assert order == ["cnnlab", "torch", "torch", "cnnlab", "cnnlab", "torch"]
    assert [r["step (s)"] for r in runs["cnnlab"]] == [1.0, 4.0, 5.0]
    assert harness.stats(runs["cnnlab"]) == {"step (s)": (1.0, 4.0)}    # (min, median)
    assert harness.stats(runs["torch"]) == {"step (s)": (2.0, 3.0)}


def test_the_openblas_variables_are_inherited_unless_unset_and_the_output_says_which():
    # a dict stands for the parent's environment: the tests never touch the real variables
    assert "not set" in harness.openblas_env_line(False, {"PATH": "/bin"})
    parent = {"PATH": "/bin", **OPENBLAS}
    env = harness.child_env(False, parent)
    assert env == parent and env is not parent
    line = harness.openblas_env_line(False, parent)
    assert "OPENBLAS_CORETYPE=Haswell" in line and "inherited" in line
    assert harness.child_env(True, parent) == {"PATH": "/bin"}
    line = harness.openblas_env_line(True, parent)
    assert "unset in the child processes" in line and "OPENBLAS_CORETYPE=Haswell" in line
    assert parent == {"PATH": "/bin", **OPENBLAS}                  # the parent's is unchanged


def test_the_header_names_the_cpu_avx512_the_blas_kernel_and_torchs_capability():
    info = harness.probe()
    assert info["cpu"] and isinstance(info["avx512"], list)
    assert info["torch_capability"]
    text = harness.header({**info, "date": "2026-12-05 12:00 UTC", "commit": "abc1234"},
                          False, "min and median of 3 fresh processes")
    assert f"CPU: {info['cpu']}" in text
    assert ("AVX-512: yes (" in text) == bool(info["avx512"]) and "AVX-512: " in text
    assert f"CPU capability {info['torch_capability']}" in text
    if info["threadpools"] is not None:
        blas = [p for p in info["threadpools"] if p["api"] == "openblas"]
        assert all(f"kernel {p['architecture']}" in text for p in blas)
    assert "abc1234" in text and text.endswith("min and median of 3 fresh processes")


@pytest.mark.parametrize("avx, shown", [([], "AVX-512: no"),
                                        (["avx512f", "avx512bw"], "AVX-512: yes (avx512f avx512bw)")])
def test_the_header_says_whether_avx512_is_present(avx, shown):
    info = {"cpu": "Some CPU", "llvm_cpu": None, "cores": 2, "avx512": avx, "torch": "2.13.0",
            "torch_capability": "AVX2", "torch_threads": 2, "cnnlab_threads": 2,
            "cnnlab_tree": "/src", "commit": None, "numpy": "2", "python": "3", "date": "today",
            "threadpools": None}
    text = harness.header(info, False, "method")
    assert shown in text and "threadpoolctl not installed" in text


def test_without_avx512_keeps_every_library_to_avx2_in_the_children_and_the_header_says_so():
    parent = {"PATH": "/bin"}
    env = harness.child_env(False, parent, without_avx512=True)
    assert parent == {"PATH": "/bin"}
    assert {k: env[k] for k in harness.AVX2_ONLY} == harness.AVX2_ONLY
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    targets = harness.numpy_avx512_targets()
    assert env.get("NPY_DISABLE_CPU_FEATURES", "") == " ".join(targets)
    line = harness.masked_line(env)
    assert line.startswith("AVX-512 masked") and "emulated" in line and "ONEDNN_MAX_CPU_ISA=AVX2" in line
    assert harness.masked_line(parent) is None
    assert "NUMBA_CPU_NAME" not in harness.child_env(False, parent)

