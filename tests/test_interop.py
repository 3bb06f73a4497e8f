"""cnnlab.interop: torchvision-style state dicts, safetensors, .pth files, load_weights.

The torch models below are written with torch.nn in torchvision's exact
structure and names (torchvision itself is not installable beside the pinned
torch wheel), given random weights and random BatchNorm statistics, copied
into the cnnlab model of the same architecture, and both are run on the same
input in eval mode.
"""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import _torch

import cnnlab
from cnnlab.interop import (
    IncompatibleKeys,
    SafetensorsError,
    StateDictError,
    TorchCheckpointError,
    load_pth,
    load_safetensors,
    load_torch_state_dict,
    load_weights,
    safetensors_metadata,
    save_safetensors,
)
from cnnlab.models import alexnet, lenet5, resnet18, vgg11
from cnnlab.models.densenet import DenseBlock
from cnnlab.models.googlenet import Inception
from cnnlab.training.checkpoint import save_model, save_training_state

torch = _torch()
tnn = torch.nn


# ============================================================ torchvision twins (torch.nn)
class TorchLeNet5(tnn.Module):
    """cnnlab's lenet5() for 28x28 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2))
        self.classifier = tnn.Sequential(
            tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class TorchAlexNet(tnn.Module):
    """torchvision.models.AlexNet."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = tnn.Sequential(
            tnn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), tnn.ReLU(inplace=True),
            tnn.MaxPool2d(kernel_size=3, stride=2),
            tnn.Conv2d(64, 192, kernel_size=5, padding=2), tnn.ReLU(inplace=True),
            tnn.MaxPool2d(kernel_size=3, stride=2),
            tnn.Conv2d(192, 384, kernel_size=3, padding=1), tnn.ReLU(inplace=True),
            tnn.Conv2d(384, 256, kernel_size=3, padding=1), tnn.ReLU(inplace=True),
            tnn.Conv2d(256, 256, kernel_size=3, padding=1), tnn.ReLU(inplace=True),
            tnn.MaxPool2d(kernel_size=3, stride=2))
        self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
        self.classifier = tnn.Sequential(
            tnn.Dropout(p=0.5), tnn.Linear(256 * 6 * 6, 4096), tnn.ReLU(inplace=True),
            tnn.Dropout(p=0.5), tnn.Linear(4096, 4096), tnn.ReLU(inplace=True),
            tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class TorchVGG(tnn.Module):
    """torchvision.models.VGG (without batch norm)."""

    def __init__(self, cfg: list, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[tnn.Module] = []
        c = 3
        for v in cfg:
            if v == "M":
                layers.append(tnn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [tnn.Conv2d(c, v, kernel_size=3, padding=1), tnn.ReLU(inplace=True)]
                c = v
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(p=0.5),
            tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(p=0.5),
            tnn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


VGG11_CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class TorchBasicBlock(tnn.Module):
    """torchvision.models.resnet.BasicBlock."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class TorchResNet18(tnn.Module):
    """torchvision.models.resnet18."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = tnn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> tnn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = tnn.Sequential(tnn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                        tnn.BatchNorm2d(planes))
        layers = [TorchBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [TorchBasicBlock(planes, planes) for _ in range(1, blocks)]
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TorchDenseLayer(tnn.Module):
    """torchvision.models.densenet._DenseLayer (drop_rate 0, no checkpointing)."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = tnn.BatchNorm2d(num_input_features)
        self.relu1 = tnn.ReLU(inplace=True)
        self.conv1 = tnn.Conv2d(num_input_features, bn_size * growth_rate, 1, stride=1, bias=False)
        self.norm2 = tnn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(bn_size * growth_rate, growth_rate, 3, stride=1, padding=1, bias=False)

    def forward(self, inputs):
        x = torch.cat(inputs, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class TorchDenseBlock(tnn.ModuleDict):
    """torchvision.models.densenet._DenseBlock."""

    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            TorchDenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size))

    def forward(self, init_features):
        features = [init_features]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class TorchBasicConv2d(tnn.Module):
    """torchvision.models.googlenet.BasicConv2d."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = tnn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = tnn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class TorchInception(tnn.Module):
    """torchvision.models.googlenet.Inception."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) -> None:
        super().__init__()
        self.branch1 = TorchBasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = tnn.Sequential(TorchBasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                      TorchBasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = tnn.Sequential(TorchBasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                      TorchBasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = tnn.Sequential(tnn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                      TorchBasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


INCEPTION_ARGS = (16, 8, 8, 12, 4, 6, 6)
# name -> (torch twin, cnnlab model, input shape)
CASES = {
    "lenet5": (TorchLeNet5, lenet5, (2, 1, 28, 28)),
    "alexnet": (lambda: TorchAlexNet(10), lambda: alexnet(num_classes=10), (2, 3, 64, 64)),
    "vgg11": (lambda: TorchVGG(VGG11_CFG, 10), lambda: vgg11(num_classes=10), (2, 3, 32, 32)),
    # input_size=224 keeps torchvision's 7x7/2 stem and max-pool (below 64 px cnnlab swaps it)
    "resnet18": (lambda: TorchResNet18(10), lambda: resnet18(num_classes=10, input_size=224),
                 (2, 3, 64, 64)),
    "densenet_block": (lambda: TorchDenseBlock(3, 8, 4, 4), lambda: DenseBlock(3, 8, 4, 4), (2, 8, 8, 8)),
    "inception": (lambda: TorchInception(*INCEPTION_ARGS), lambda: Inception(*INCEPTION_ARGS),
                  (2, 16, 9, 9)),
}
NUM_BATCHES = 7


def randomize_(tm: tnn.Module, seed: int = 0) -> tnn.Module:
    """Random weights (He-uniform, so activations stay of order 1 through deep nets),
    biases, BatchNorm affine parameters and running statistics: every entry of the
    state dict is overwritten (models built on the meta device rely on it)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in tm.named_parameters():
            if p.ndim > 1:
                bound = (6.0 / p[0].numel()) ** 0.5
                p.uniform_(-bound, bound, generator=g)
            elif name.endswith("weight"):   # BatchNorm's gamma
                p.uniform_(0.5, 1.5, generator=g)
            else:
                p.uniform_(-0.2, 0.2, generator=g)
        for name, b in tm.named_buffers():
            if name.endswith("running_mean"):
                b.uniform_(-0.2, 0.2, generator=g)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5, generator=g)
            elif name.endswith("num_batches_tracked"):
                b.fill_(NUM_BATCHES)
            else:
                raise AssertionError(f"randomize_ does not know buffer {name}")
    return tm


def numpy_state(tm: tnn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


def torch_lenet(dtype=np.float64) -> tnn.Module:
    tm = randomize_(TorchLeNet5())
    return tm.float() if dtype == np.float32 else tm.double()


def skip_cnnlab_init(tensor, *args, **kwargs):
    """Stands in for cnnlab.nn.init's random fills while a model is built: its
    weights are poisoned and then loaded anyway, and drawing VGG's 100M random
    FC weights twice would take most of this file's time budget."""
    tensor.data[...] = 0
    return tensor


# ============================================================ parity with torch
@pytest.mark.parametrize("name", list(CASES))
def test_torch_weights_give_torchs_outputs(name, monkeypatch):
    make_torch, make_ours, shape = CASES[name]
    with torch.device("meta"):   # no torch init either: randomize_ fills everything
        tm = make_torch()
    tm = randomize_(tm.to_empty(device="cpu").float(), seed=1).eval()
    with monkeypatch.context() as mp:
        mp.setattr(cnnlab.nn.init, "uniform_", skip_cnnlab_init)
        mp.setattr(cnnlab.nn.init, "normal_", skip_cnnlab_init)
        m = make_ours().eval()   # float32, as cnnlab builds models
    x64 = np.random.default_rng(2).standard_normal(shape)

    for dtype, atol in ((np.float32, 1e-4), (np.float64, 1e-9)):
        if dtype == np.float64:   # the same (float32-representable) weights, in float64
            tm, m = tm.double(), m.double()
        for p in m.parameters():   # poison: anything not loaded shows up as NaN
            p.data[...] = np.nan
        for _, b in m.named_buffers():
            b[...] = -1 if b.dtype.kind == "i" else np.nan
        t_state = tm.state_dict()
        assert list(m.state_dict()) == list(t_state), "the twin's names differ from cnnlab's"

        result = load_torch_state_dict(m, t_state)   # torch tensors, as they come
        assert result == IncompatibleKeys([], [])
        for key, value in m.state_dict().items():
            is_count = key.endswith("num_batches_tracked")
            assert value.dtype == (np.int64 if is_count else dtype), key
            assert np.array_equal(value, t_state[key].numpy()), key
            assert not is_count or int(value) == NUM_BATCHES

        x = x64.astype(dtype)
        with cnnlab.no_grad():
            ours = m(cnnlab.Tensor(x)).data
        with torch.no_grad():
            theirs = tm(torch.from_numpy(x)).numpy()
        assert ours.dtype == dtype and ours.shape == theirs.shape
        assert np.abs(theirs).max() > 0.1, "outputs too small for the comparison to mean anything"
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol, err_msg=f"{name} {dtype.__name__}")


# ============================================================ key reporting
def test_missing_and_unexpected_keys_are_reported_as_torch_does():
    state = numpy_state(torch_lenet())
    del state["classifier.4.bias"], state["features.3.weight"]
    state["classifier.9.weight"] = np.zeros(3)
    state["features.0.extra"] = np.zeros(2)
    state["head.weight"] = np.zeros((2, 2))
    theirs = TorchLeNet5().load_state_dict({k: torch.from_numpy(v) for k, v in state.items()},
                                           strict=False)
    m = lenet5().double()
    ours = load_torch_state_dict(m, state, strict=False)
    assert isinstance(ours, IncompatibleKeys)
    assert ours.missing_keys == theirs.missing_keys == ["features.3.weight", "classifier.4.bias"]
    assert sorted(ours.unexpected_keys) == sorted(theirs.unexpected_keys)
    assert ours.unexpected_keys == ["classifier.9.weight", "features.0.extra", "head.weight"]
    np.testing.assert_array_equal(m.features[0].weight.data, state["features.0.weight"])   # loaded

    with pytest.raises(RuntimeError) as t_err:
        TorchLeNet5().load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    fresh = lenet5().double()
    before = fresh.state_dict()
    with pytest.raises(StateDictError) as err:
        load_torch_state_dict(fresh, state)
    assert isinstance(err.value, RuntimeError)
    for key in ("features.3.weight", "classifier.4.bias", "classifier.9.weight", "head.weight"):
        assert f'"{key}"' in str(err.value) and f'"{key}"' in str(t_err.value)
    assert err.value.missing_keys == ours.missing_keys
    assert err.value.unexpected_keys == ours.unexpected_keys
    for key, value in fresh.state_dict().items():   # strict failure wrote nothing (torch writes the rest)
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_missing_num_batches_tracked_follows_torchs_version_rule():
    def torch_net():
        return tnn.Sequential(tnn.Conv2d(3, 4, 3, bias=False), tnn.BatchNorm2d(4))

    def our_net():
        return cnnlab.nn.Sequential(cnnlab.nn.Conv2d(3, 4, 3, bias=False), cnnlab.nn.BatchNorm2d(4))

    full = randomize_(torch_net()).state_dict()   # an OrderedDict with torch's version metadata
    del full["1.num_batches_tracked"]
    plain = {k: v.numpy() for k, v in full.items()}   # no metadata, as from an old torchvision file

    theirs = torch_net().load_state_dict({k: torch.from_numpy(v) for k, v in plain.items()})
    m = our_net()
    assert load_torch_state_dict(m, plain) == IncompatibleKeys([], []) == tuple(theirs)
    assert int(m[1].num_batches_tracked) == 0   # kept its value
    np.testing.assert_allclose(m[1].running_var, plain["1.running_var"], rtol=1e-7)

    theirs = torch_net().load_state_dict(full, strict=False)
    ours = load_torch_state_dict(our_net(), full, strict=False)
    assert ours.missing_keys == theirs.missing_keys == ["1.num_batches_tracked"]
    with pytest.raises(StateDictError, match="num_batches_tracked"):
        load_torch_state_dict(our_net(), full)


def test_shape_mismatch_raises_naming_key_and_shapes_and_writes_nothing():
    state = numpy_state(torch_lenet())
    state["classifier.4.weight"] = np.zeros((5, 84))
    state["features.0.bias"] = np.zeros(7)
    m = lenet5().double()
    before = m.state_dict()
    for strict in (True, False):
        with pytest.raises(StateDictError) as err:
            load_torch_state_dict(m, state, strict=strict)
        msg = str(err.value)
        assert "classifier.4.weight" in msg and "(5, 84)" in msg and "(10, 84)" in msg
        assert "features.0.bias" in msg and "(7,)" in msg and "(6,)" in msg
        assert err.value.mismatched == [("features.0.bias", (7,), (6,)),
                                        ("classifier.4.weight", (5, 84), (10, 84))]
        for key, value in m.state_dict().items():
            np.testing.assert_array_equal(value, before[key], err_msg=key)
    with pytest.raises(RuntimeError, match="size mismatch"):   # torch also refuses, strict or not
        TorchLeNet5().load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)


def test_values_are_cast_and_checked():
    tm = torch_lenet(np.float64)
    m = lenet5()   # float32
    load_torch_state_dict(m, numpy_state(tm))
    assert all(p.data.dtype == np.float32 for p in m.parameters())
    np.testing.assert_array_equal(m.classifier[4].weight.data,
                                  tm.classifier[4].weight.detach().numpy().astype(np.float32))

    bf16 = {k: v.to(torch.bfloat16) for k, v in tm.state_dict().items()}
    load_torch_state_dict(m, bf16)
    np.testing.assert_array_equal(m.features[0].weight.data, bf16["features.0.weight"].float().numpy())

    for bad, what in (("hello", "not an array"), (np.zeros(6, dtype=complex), "complex")):
        state = numpy_state(tm)
        state["features.0.bias"] = bad
        with pytest.raises(StateDictError, match=rf"features\.0\.bias.*{what}"):
            load_torch_state_dict(lenet5(), state)
    with pytest.raises(TypeError, match="mapping"):
        load_torch_state_dict(lenet5(), [1, 2])


def test_nested_and_data_parallel_state_dicts_are_unwrapped():
    state = numpy_state(torch_lenet())
    for wrapped in ({"model": state, "epoch": 3, "optimizer": {"state": {}}},
                    {"state_dict": state, "hyper_parameters": {"lr": 0.1}},
                    {"model": {"state_dict": state}},
                    {f"module.{k}": v for k, v in state.items()}):
        m = lenet5().double()
        assert load_torch_state_dict(m, wrapped) == IncompatibleKeys([], [])
        np.testing.assert_array_equal(m.classifier[2].bias.data, state["classifier.2.bias"])


# ============================================================ safetensors
def st_bytes(header: dict, data: bytes, pad: bool = False) -> bytes:
    """A safetensors file built by hand from the specification."""
    blob = json.dumps(header).encode("utf-8")
    if pad:
        blob += b" " * (-len(blob) % 8)
    return struct.pack("<Q", len(blob)) + blob + data


def parse_st(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


ROUND_TRIP = {
    "f64": np.arange(6, dtype=np.float64).reshape(2, 3) / 7,
    "f32_scalar": np.array(3.25, dtype=np.float32),
    "f16": np.array([1.5, -2.0, 65504.0], dtype=np.float16),
    "i64": np.array([-(2 ** 62), 0, 2 ** 62], dtype=np.int64),
    "i32": np.array([[-5], [7]], dtype=np.int32),
    "i16": np.array([-32768, 32767], dtype=np.int16),
    "i8": np.array([-128, 127, 0], dtype=np.int8),
    "u8": np.arange(5, dtype=np.uint8),
    "u16": np.array([65535], dtype=np.uint16),
    "u32": np.array([2 ** 32 - 1], dtype=np.uint32),
    "u64": np.array([2 ** 64 - 1], dtype=np.uint64),
    "bool": np.array([True, False, True]),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,
    "big_endian": np.array([1.0, -2.5], dtype=">f4"),
}
CODES = {"f64": "F64", "f32_scalar": "F32", "f16": "F16", "i64": "I64", "i32": "I32", "i16": "I16",
         "i8": "I8", "u8": "U8", "u16": "U16", "u32": "U32", "u64": "U64", "bool": "BOOL",
         "empty": "F32", "transposed": "F32", "big_endian": "F32"}


def test_safetensors_round_trip_every_dtype(tmp_path):
    path = tmp_path / "all.safetensors"
    meta = {"format": "np", "note": "ünïcode"}
    assert save_safetensors(path, ROUND_TRIP, metadata=meta) == path
    loaded = load_safetensors(path)
    assert set(loaded) == set(ROUND_TRIP)
    for name, a in ROUND_TRIP.items():
        assert loaded[name].dtype == a.dtype.newbyteorder("="), name
        assert loaded[name].shape == a.shape, name
        np.testing.assert_array_equal(loaded[name], a, err_msg=name)
    assert safetensors_metadata(path) == meta

    raw = path.read_bytes()   # the layout, read by hand
    header, data = parse_st(raw)
    assert int.from_bytes(raw[:8], "little") % 8 == 0, "header padded to 8 bytes"
    assert header.pop("__metadata__") == meta
    for name, info in header.items():
        a = ROUND_TRIP[name]
        begin, end = info["data_offsets"]
        assert info["dtype"] == CODES[name] and info["shape"] == list(a.shape)
        assert begin % a.dtype.itemsize == 0, "tensors are aligned"
        le = a.astype(a.dtype.newbyteorder("<"))
        assert data[begin:end] == np.ascontiguousarray(le).tobytes(), name
    assert sum(e - b for b, e in (i["data_offsets"] for i in header.values())) == len(data)
    assert sorted(os.listdir(tmp_path)) == ["all.safetensors"]   # no temporary files left


def test_safetensors_bf16_is_upcast_to_float32(tmp_path):
    values = np.array([1.5, -2.0, 3.140625, 0.0, -0.0078125, np.inf], dtype=np.float32)   # exact in bf16
    words = (values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(st_bytes({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}},
                              words.tobytes()))
    out = load_safetensors(path)["w"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.reshape(2, 3))

    t = torch.randn(4, 5).to(torch.bfloat16)   # written from a torch bfloat16 tensor
    save_safetensors(path, {"t": t, "n": torch.arange(3)})
    assert parse_st(path.read_bytes())[0]["t"]["dtype"] == "BF16"
    loaded = load_safetensors(path)
    np.testing.assert_array_equal(loaded["t"], t.float().numpy())
    np.testing.assert_array_equal(loaded["n"], np.arange(3))


def test_safetensors_agrees_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {k: np.ascontiguousarray(v.astype(v.dtype.newbyteorder("=")))
              for k, v in ROUND_TRIP.items()}
    save_safetensors(tmp_path / "ours.safetensors", arrays, {"a": "b"})
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    st.save_file(arrays, str(tmp_path / "theirs.safetensors"), metadata={"a": "b"})
    ours = load_safetensors(tmp_path / "theirs.safetensors")
    for name, a in arrays.items():
        np.testing.assert_array_equal(theirs[name], a, err_msg=name)
        np.testing.assert_array_equal(ours[name], a, err_msg=name)
    assert safetensors_metadata(tmp_path / "theirs.safetensors") == {"a": "b"}


F32x4 = np.arange(4, dtype="<f4").tobytes()
DUPLICATE = (b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
             b'"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}')


def _valid(tmp_path) -> bytes:
    save_safetensors(tmp_path / "ok.safetensors", {"a": np.arange(4, dtype=np.float32),
                                                   "b": np.ones((2, 2), dtype=np.float64)})
    return (tmp_path / "ok.safetensors").read_bytes()


CORRUPT = {
    "truncated": (lambda ok: ok[:-3], "past the end"),
    "header_length_past_eof": (lambda ok: struct.pack("<Q", len(ok)) + ok[8:], "runs past the end"),
    "shorter_than_length_field": (lambda ok: ok[:5], "too short"),
    "empty": (lambda ok: b"", "too short"),
    "overlapping": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                                        F32x4), "overlap"),
    "bad_dtype": (lambda ok: st_bytes({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}},
                                      F32x4), "dtype 'F128'"),
    "size_mismatch": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}},
                                          F32x4), "needs 20"),
    "gap": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                                F32x4), "gap"),
    "trailing_bytes": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                           F32x4), "trailing"),
    "offsets_past_buffer": (lambda ok: st_bytes(
        {"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}, F32x4), "past the end"),
    "reversed_offsets": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}},
                                             F32x4), "begin <= end"),
    "negative_dim": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
                                         F32x4), "shape"),
    "missing_field": (lambda ok: st_bytes({"a": {"dtype": "F32", "shape": [4]}}, F32x4), "data_offsets"),
    "not_json": (lambda ok: struct.pack("<Q", 4) + b"{{{{" + F32x4, "JSON"),
    "not_utf8": (lambda ok: struct.pack("<Q", 4) + b"\xff\xfe{}" + F32x4, "UTF-8"),
    "not_an_object": (lambda ok: st_bytes([1, 2], b""), "JSON object"),
    "duplicate_name": (lambda ok: struct.pack("<Q", len(DUPLICATE)) + DUPLICATE + F32x4, "duplicate"),
    "bad_metadata": (lambda ok: st_bytes({"__metadata__": {"n": 3},
                                          "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                                         F32x4), "__metadata__"),
    "bool_byte": (lambda ok: st_bytes({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
                                      b"\x01\x02"), "BOOL"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_safetensors_are_refused_naming_the_file(tmp_path, case):
    make, phrase = CORRUPT[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(make(_valid(tmp_path)))
    with pytest.raises(SafetensorsError) as err:
        load_safetensors(path)
    assert isinstance(err.value, ValueError)
    assert str(path) in str(err.value)
    assert phrase in str(err.value), str(err.value)
    with pytest.raises(SafetensorsError):
        load_weights(lenet5(), path)


def test_hand_built_safetensors_load(tmp_path):
    path = tmp_path / "hand.safetensors"   # padded header, zero-size tensor, no metadata
    path.write_bytes(st_bytes({"z": {"dtype": "I64", "shape": [0], "data_offsets": [16, 16]},
                               "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}},
                              F32x4, pad=True))
    out = load_safetensors(path)
    np.testing.assert_array_equal(out["a"], np.arange(4, dtype=np.float32).reshape(2, 2))
    assert out["z"].shape == (0,) and out["z"].dtype == np.int64
    assert safetensors_metadata(path) == {}
    with pytest.raises(FileNotFoundError):
        load_safetensors(tmp_path / "absent.safetensors")


def test_save_safetensors_refuses_bad_input_and_leaves_the_old_file(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"a": np.ones(3, dtype=np.float32)})
    old = path.read_bytes()
    for tensors, metadata, phrase in (
            ({"a": np.array([object()])}, None, "dtype object"),
            ({"a": np.ones(2, dtype=np.complex64)}, None, "complex64"),
            ({"__metadata__": np.ones(2)}, None, "invalid tensor name"),
            ({"a": np.ones(2)}, {"epoch": 3}, "metadata")):
        with pytest.raises(SafetensorsError, match=phrase) as err:
            save_safetensors(path, tensors, metadata)
        assert str(path) in str(err.value)
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]
    save_safetensors(path, {"b": np.zeros(2)})   # a successful save replaces the file
    assert list(load_safetensors(path)) == ["b"]


# ============================================================ load_weights and .pth
def lenet_outputs(m, tm, dtype=np.float64):
    x = np.random.default_rng(5).standard_normal((2, 1, 28, 28)).astype(dtype)
    with cnnlab.no_grad():
        ours = m.eval()(cnnlab.Tensor(x)).data
    with torch.no_grad():
        theirs = tm.eval()(torch.from_numpy(x)).numpy()
    return ours, theirs


def test_load_weights_from_safetensors_written_from_torch_tensors(tmp_path):
    tm = torch_lenet(np.float32)
    path = save_safetensors(tmp_path / "lenet.safetensors", tm.state_dict(), {"format": "pt"})
    m = lenet5()
    assert load_weights(m, path) == IncompatibleKeys([], [])
    ours, theirs = lenet_outputs(m, tm, np.float32)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)

    bad = numpy_state(tm)
    bad["classifier.0.weight"] = bad["classifier.0.weight"][:, :100]
    save_safetensors(tmp_path / "bad.safetensors", bad)
    with pytest.raises(StateDictError, match=re.escape(str(tmp_path / "bad.safetensors"))):
        load_weights(lenet5(), tmp_path / "bad.safetensors")


def test_pth_state_dict_loads(tmp_path):
    tm = torch_lenet()
    torch.save(tm.state_dict(), tmp_path / "lenet.pth")
    m = lenet5().double()
    assert load_weights(m, tmp_path / "lenet.pth") == IncompatibleKeys([], [])
    ours, theirs = lenet_outputs(m, tm)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)

    torch.save({"model": tm.state_dict(), "epoch": 4, "optimizer": {"lr": [0.1]}}, tmp_path / "ck.pt")
    raw = load_pth(tmp_path / "ck.pt")
    assert raw["epoch"] == 4 and raw["optimizer"] == {"lr": [0.1]}
    assert isinstance(raw["model"]["features.0.weight"], np.ndarray)
    m2 = lenet5().double()
    load_weights(m2, tmp_path / "ck.pt")
    np.testing.assert_array_equal(m2.classifier[0].weight.data, tm.classifier[0].weight.detach().numpy())

    torch.save({"w": torch.ones(3, dtype=torch.bfloat16)}, tmp_path / "bf16.pt")
    w = load_pth(tmp_path / "bf16.pt")["w"]
    assert w.dtype == np.float32 and w.tolist() == [1.0, 1.0, 1.0]


class Payload:
    """Unpickling this would run os.mkdir: what weights_only must refuse."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pth_with_arbitrary_objects_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2), "payload": Payload(str(marker))}, path)
    with pytest.raises(TorchCheckpointError, match="weights_only") as err:
        load_weights(lenet5(), path)
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)
    assert "mkdir" in str(err.value)   # torch's line naming the refused global is kept
    assert not marker.exists()

    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(TorchCheckpointError, match="not a readable PyTorch checkpoint"):
        load_pth(tmp_path / "junk.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(TorchCheckpointError, match="not a mapping"):
        load_pth(tmp_path / "tensor.pt")
    with pytest.raises(FileNotFoundError):
        load_pth(tmp_path / "absent.pth")


def test_pth_without_torch_is_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # makes `import torch` fail
    (tmp_path / "m.pth").write_bytes(b"\x80\x02 a legacy torch.save pickle")
    with pytest.raises(ImportError, match="needs PyTorch"):
        load_weights(lenet5(), tmp_path / "m.pth")


def test_importing_interop_does_not_import_torch():
    code = "import sys, cnnlab.interop; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_load_weights_from_cnnlab_npz_files(tmp_path):
    tm = torch_lenet(np.float32)
    src = lenet5()
    load_torch_state_dict(src, tm.state_dict())

    cnnlab.save(src.state_dict(), tmp_path / "plain.npz")
    save_model(tmp_path / "model.npz", src, {"model": "lenet5"})
    opt = cnnlab.optim.SGD(src.parameters(), lr=0.1, momentum=0.9)
    save_training_state(tmp_path / "epoch-001.npz", src, optimizer=opt, epoch=1)
    for name in ("plain.npz", "model.npz", "epoch-001.npz"):
        m = lenet5()
        assert load_weights(m, tmp_path / name) == IncompatibleKeys([], []), name
        for key, value in m.state_dict().items():
            np.testing.assert_array_equal(value, src.state_dict()[key], err_msg=f"{name}: {key}")

    (tmp_path / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="extension"):
        load_weights(lenet5(), tmp_path / "weights.h5")
