"""examples/ work on any run ``cnnlab train`` wrote: gallery.sh takes its layers from the
model and writes where the user says (never into the tracked docs/img), and
fc_to_conv_lenet.py checks its windows on a CLI-trained (standardised) model."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def train(out: Path, **kw) -> Path:
    fit(TrainConfig(epochs=1, seed=0, **kw), out, progress=False, report=lambda _: None)
    return out


def test_gallery_takes_its_layers_from_the_model_and_writes_where_told(tmp_path):
    run = train(tmp_path / "my-run", train_size=200)
    # a python3 on PATH that runs the script's own Python (the layer lookup) and logs the rest
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "calls.txt"
    (shim / "python3").write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-" ]; then exec {shlex.quote(sys.executable)} "$@"; fi\n'
        f'echo "$@" >> {shlex.quote(str(log))}\n')
    (shim / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(["bash", str(ROOT / "examples" / "gallery.sh"), str(run)], cwd=work,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    viz = [c.split() for c in calls if c.startswith("-m cnnlab viz")]
    assert len(viz) == 9 and all(c[c.index("--out") + 1] == "gallery/my-run" for c in viz)
    layers = {c[3]: c[c.index("--layer") + 1] for c in viz if "--layer" in c}
    assert layers == {"activations": "features.1", "top-k": "features.4"}   # digits_cnn's ReLUs
    assert "docs/img" not in "\n".join(calls)
    assert calls[-1].endswith("gallery/my-run/report.html gallery/my-run/report.png "
                              "--width 1280 --height 1400")
    proc = subprocess.run(["bash", str(ROOT / "examples" / "gallery.sh")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "usage: bash examples/gallery.sh RUN [OUT]" in proc.stderr


def test_fc_to_conv_checks_real_windows_on_a_cli_trained_model(tmp_path):
    pytest.importorskip("matplotlib")
    from cnnlab.data import load_fashion_mnist

    try:
        load_fashion_mnist("test")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    run = train(tmp_path / "fm", dataset="fashion-mnist", model="lenet5", train_size=300)
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "fc_to_conv_lenet.py"),
                           "--model", str(run / "model.npz"), "--out", str(tmp_path / "s.png")],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "side ring is zero: 6 windows" in proc.stdout
    assert "checked: the 6 cells on the images equal the model on each image" in proc.stdout
    assert (tmp_path / "s.png").is_file()
