"""Every zoo model exports (opset 17; opset 13 too for a sample covering the
subgraph layers: LeNet-5 (1998), GoogLeNet, DenseNet-BC, a CIFAR ResNet) and
onnxruntime's CPU provider gives cnnlab's outputs, on
a random input and on a real photo (rtol 1e-4, atol 1e-5, float32), at the smallest
input each model takes.  The models over 30M parameters (AlexNet, ZFNet, every VGG)
and the deepest ResNets (101, 152: resnet50's blocks, more of them) take 10-30 s
each to build, serialise and load, so they run with CNNLAB_ONNX_FULL_ZOO=1;
``benchmarks/onnx_parity.py`` measures all of them for the README's table."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import cnnlab
from cnnlab.models import list_models

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skimage")
co = pytest.importorskip("cnnlab.onnx")

_spec = importlib.util.spec_from_file_location(
    "onnx_parity", Path(__file__).resolve().parent.parent / "benchmarks" / "onnx_parity.py")
parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parity)

LARGE = {"alexnet", "alexnet_original", "zfnet", "resnet101", "resnet152",
         *(n for n in list_models() if n.startswith("vgg"))}
OPSET_13 = {"lenet5_1998", "googlenet", "densenet_bc_100_12", "resnet20"}
FULL = os.environ.get("CNNLAB_ONNX_FULL_ZOO") == "1"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.skipif(
    n in LARGE and not FULL, reason="large: CNNLAB_ONNX_FULL_ZOO=1")) for n in list_models()])
def test_zoo_model_runs_identically_in_onnxruntime(name):
    model, size = parity.zoo_model(name)
    x = np.concatenate([np.random.default_rng(0).random((1, *size), dtype=np.float32),
                        parity.photo(size[0], size[1])])
    want = model(cnnlab.Tensor(x)).numpy()
    for opset in (17, 13) if name in OPSET_13 else (17,):
        proto = co.to_onnx(model, size, opset)
        onnx.checker.check_model(proto, full_check=True)
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x})[0]
        assert got.shape == want.shape == (2, 10)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{name} opset {opset}")
