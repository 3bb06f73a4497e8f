"""The allocator setting cnnlab.kernels applies at import (see cnnlab/kernels/_memory.py)."""
import os
import platform
import subprocess
import sys

import pytest


def test_malloc_tuning_is_applied_on_glibc_and_can_be_turned_off():
    """cnnlab.kernels sets glibc's mmap/trim thresholds at import (a ResNet-20 step
    1.2 -> 0.8-0.9 s here); CNNLAB_MALLOC_TUNE=0 leaves the allocator alone."""
    from cnnlab.kernels import _memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt tuning applies to glibc only")
    assert _memory.TUNED is True
    code = "import cnnlab.kernels._memory as m; print(m.TUNED)"
    env = {**os.environ, "CNNLAB_MALLOC_TUNE": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
