"""Importing cnnlab changes nothing in the process: no numba, no threads, no allocator
setting (that one is tests/test_memory_tuning.py); numba loads at the first kernel."""
import json
import os
import subprocess
import sys

import pytest

CHECK = """
import json, sys, threading
import numpy as np
import cnnlab
after_import = {"numba": "numba" in sys.modules, "threads": threading.active_count()}
from cnnlab.kernels import _numba
x = cnnlab.Tensor(np.ones((2, 1, 6, 6), np.float32))
cnnlab.nn.Conv2d(1, 2, 3)(x).sum().backward()
print(json.dumps({**after_import, "numba_after_conv": "numba" in sys.modules,
                  "available": _numba.AVAILABLE}))
"""


def run_check(**env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHECK], env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_import_loads_no_numba_and_starts_no_threads():
    pytest.importorskip("numba")
    seen = run_check()
    assert seen == {"numba": False, "threads": 1, "numba_after_conv": True, "available": True}


def test_cnnlab_numba_0_keeps_numba_out_and_the_numpy_twins_run():
    seen = run_check(CNNLAB_NUMBA="0")
    assert seen == {"numba": False, "threads": 1, "numba_after_conv": False, "available": False}


def test_first_use_from_two_threads_binds_the_loops_once():
    pytest.importorskip("numba")
    code = """
import threading
from cnnlab.kernels import _numba
seen = []
threads = [threading.Thread(target=lambda: seen.append(_numba.im2col_cm)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
assert len(seen) == 4 and all(f is seen[0] for f in seen) and _numba.AVAILABLE, seen
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_drawing_pictures_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    """A notebook's inline backend must survive cnnlab's plots: they are drawn on
    pyplot-free figures, never through matplotlib.use("Agg")."""
    pytest.importorskip("matplotlib")
    code = f"""
import sys
import matplotlib
matplotlib.use("svg")
import numpy as np
from cnnlab.viz.image import save_png
from cnnlab.viz.training_plots import plot_confusion, plot_curves
history = [{{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5, "test_loss": 1 / e, "test_acc": 0.6}}
           for e in (1, 2)]
plot_curves(history, {str(tmp_path / "curves.png")!r})
plot_confusion(np.array([[3, 1], [0, 4]]), None, {str(tmp_path / "confusion.png")!r})
save_png(np.zeros((4, 4)), {str(tmp_path / "image.png")!r})
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "False"]
    assert all((tmp_path / f).stat().st_size > 100 for f in ("curves.png", "confusion.png", "image.png"))
