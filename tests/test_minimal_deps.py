"""NumPy is the only hard dependency: the CLI trains with every optional package blocked."""
import subprocess
import sys
import textwrap

import numpy as np

from cnnlab.data import write_idx

BLOCKED = ["sklearn", "tqdm", "matplotlib", "numba", "torch"]


def make_mnist(root, n_train=256, n_test=128):
    """A small MNIST-format dataset: class k is a bright k-th horizontal band."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, 2 + 2 * k:4 + 2 * k, 4:24] = 255
        write_idx(root / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", y)


def test_cli_trains_with_numpy_alone(tmp_path):
    make_mnist(tmp_path)
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import importlib.abc, runpy, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"{{name}} is blocked for this test")
        sys.meta_path.insert(0, Block())
        sys.argv = ["cnnlab", "train", "--dataset", "mnist", "--data-dir", {str(tmp_path)!r},
                    "--epochs", "4", "--batch-size", "16", "--progress", "--out", {str(out)!r}]
        runpy.run_module("cnnlab", run_name="__main__")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy")
    assert float(last.split()[2]) > 0.5         # the bands are easy to learn
    assert (out / "model.npz").exists()
    assert not (out / "curves.png").exists()    # no matplotlib, no plot, no crash
