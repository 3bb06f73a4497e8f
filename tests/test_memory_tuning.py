"""The glibc allocator setting (cnnlab/kernels/_memory.py): applied by the cnnlab
command and by cnnlab.tune_memory(), never by importing cnnlab."""
import os
import platform
import subprocess
import sys

import pytest

# Where a fresh process puts a 4 MiB array: glibc's default mmap threshold (128 KiB)
# maps it apart from the heap; with cnnlab's 32 MiB threshold it comes from the heap.
PROBE = """
import sys
import numpy as np
import cnnlab
if sys.argv[1] == "tune":
    print(cnnlab.tune_memory())
a = np.empty(4 << 20, np.uint8)
for line in open("/proc/self/maps"):
    if line.rstrip().endswith("[heap]"):
        lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
        if lo <= a.ctypes.data < hi:
            print("heap")
"""


def probe(mode: str, **env: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not os.path.exists("/proc/self/maps"),
                                 reason="mallopt tuning applies to glibc on Linux only")


@needs_glibc
def test_importing_cnnlab_leaves_the_allocator_alone():
    assert probe("import") == []           # a large block is still mmap-ed, as glibc's default


@needs_glibc
def test_tune_memory_keeps_large_blocks_on_the_heap_and_can_be_turned_off():
    """A ResNet-20 step took 1.2 s with glibc's defaults and 0.8-0.9 s tuned, here."""
    assert probe("tune") == ["True", "heap"]
    assert probe("tune", CNNLAB_MALLOC_TUNE="0") == ["False"]


def test_the_cnnlab_command_tunes_its_process(monkeypatch, capsys):
    from cnnlab import cli

    calls = []
    monkeypatch.setattr(cli, "tune_memory", lambda: calls.append(1) or True)
    assert cli.main(["models"]) == 0
    assert calls == [1]
    assert "lenet5" in capsys.readouterr().out
