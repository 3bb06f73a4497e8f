"""ONNX import: models written with torch.nn and exported by torch.onnx.export (the
TorchScript exporter, ``dynamo=False``: the dynamo one needs onnxscript, which is not
installed) load into cnnlab, match torch's outputs and train like torch; cnnlab's own
exports round-trip; hostile files are refused with an error naming them."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import cnnlab
from cnnlab.optim import SGD

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
co = pytest.importorskip("cnnlab.onnx")
tnn = torch.nn


@pytest.fixture(autouse=True)
def torch_float32():
    """ONNX files here are float32; tests/helpers.py makes float64 torch's default for the
    parity tests, so it is set for each test and put back after."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(before)


def torch_onnx(model, input_size, path, opset=17, fold=True):
    """torch.onnx.export; ``fold=False`` keeps BatchNormalization nodes (folding merges
    them into the convolutions)."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.randn(2, *input_size), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          do_constant_folding=fold,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


class ResBlock(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                       tnn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class Inception(tnn.Module):
    def __init__(self):
        super().__init__()
        self.b1 = tnn.Conv2d(3, 4, 1)
        self.b2 = tnn.Sequential(tnn.Conv2d(3, 2, 1), tnn.ReLU(), tnn.Conv2d(2, 4, 3, padding=1))
        self.b3 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1), tnn.Conv2d(3, 2, 1))
        self.head = tnn.Sequential(tnn.ReLU(), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(),
                                   tnn.Dropout(0.3), tnn.Linear(10, 5), tnn.LogSoftmax(1))

    def forward(self, x):
        return self.head(torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1))


def lenet():
    return tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Conv2d(6, 16, 5), tnn.Tanh(), tnn.AvgPool2d(2, ceil_mode=True),
                          tnn.Flatten(), tnn.Linear(16 * 3 * 3, 32), tnn.LeakyReLU(0.1),
                          tnn.Linear(32, 10))


def resnet_stack():
    return tnn.Sequential(tnn.Conv2d(3, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(),
                          ResBlock(8, 16, 2), ResBlock(16, 16, 1), tnn.AdaptiveAvgPool2d(1),
                          tnn.Flatten(), tnn.Linear(16, 4))


def bn_model():
    return tnn.Sequential(tnn.Conv2d(3, 6, 3, stride=2, padding=1), tnn.BatchNorm2d(6),
                          tnn.ELU(), tnn.MaxPool2d(3, 2, ceil_mode=True), tnn.Hardtanh(-2.0, 2.0),
                          tnn.Flatten(), tnn.Linear(6 * 4 * 4, 8), tnn.BatchNorm1d(8),
                          tnn.Sigmoid(), tnn.Linear(8, 3), tnn.Softmax(1))


def _perturb_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return model


TORCH_MODELS = {"lenet": (lenet, (1, 18, 18)), "resnet_stack": (resnet_stack, (3, 12, 12)),
                "inception": (Inception, (3, 8, 8)), "bn_eval": (bn_model, (3, 15, 15))}


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_torch_export_imports_and_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    build, size = TORCH_MODELS[name]
    tm = _perturb_bn(build()).eval()
    model = co.load(torch_onnx(tm, size, tmp_path / f"{name}.onnx", fold=name != "bn_eval"))
    if name == "bn_eval":
        assert sum(isinstance(m, cnnlab.nn.BatchNorm2d) for m in model.modules()) == 1
    x = np.random.default_rng(0).standard_normal((3, *size)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(cnnlab.Tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)
    assert model.input_size == size


def test_imported_layers_carry_the_node_names(tmp_path):
    torch.manual_seed(0)
    model = co.load(torch_onnx(resnet_stack(), (3, 12, 12), tmp_path / "r.onnx", fold=False))
    names = dict(model.named_children())
    assert isinstance(names["3_conv1"], cnnlab.nn.Conv2d)
    assert isinstance(names["3_shortcut_0"], cnnlab.nn.Conv2d)
    assert isinstance(names["7"], cnnlab.nn.Linear)
    assert "3_bn1.running_mean" in model.state_dict()


@pytest.mark.parametrize("name", ["lenet", "resnet_stack"])
def test_training_the_import_matches_torch_training(name, tmp_path):
    """Three SGD steps from the same weights, in training mode (BN batch statistics)."""
    torch.manual_seed(0)
    build, size = TORCH_MODELS[name]
    tm_f = build()
    tm = copy.deepcopy(tm_f).double()      # the same (float32-representable) weights
    model = co.load(torch_onnx(tm_f, size, tmp_path / "m.onnx", fold=False)).double().train()
    tm.train()
    rng = np.random.default_rng(1)
    opt_t = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    opt_c = SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        x = rng.standard_normal((4, *size))
        y = rng.integers(0, 4, 4)
        opt_t.zero_grad()
        lt = tnn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
        lt.backward()
        opt_t.step()
        opt_c.zero_grad()
        lc = cnnlab.nn.functional.cross_entropy(model(cnnlab.Tensor(x)), y)
        lc.backward()
        opt_c.step()
        assert abs(lc.item() - lt.item()) < 1e-7
    x = rng.standard_normal((2, *size))
    model.eval()
    tm.eval()
    with torch.no_grad():
        # ONNX stores LeakyRelu's alpha as float32 (0.1 -> 0.10000000149): relative 1.5e-8
        np.testing.assert_allclose(model(cnnlab.Tensor(x)).numpy(), tm(torch.from_numpy(x)).numpy(),
                                   rtol=1e-6, atol=1e-9)


def test_opset_13_import(tmp_path):
    torch.manual_seed(0)
    tm = Inception().eval()
    model = co.load(torch_onnx(tm, (3, 8, 8), tmp_path / "i.onnx", opset=13))
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(model(cnnlab.Tensor(x)).numpy(), tm(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_view_with_a_dynamic_batch_imports(tmp_path):
    """x.view(x.size(0), -1) exports as Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = tnn.Conv2d(1, 2, 3), tnn.Linear(2 * 3 * 3, 3)

        def forward(self, x):
            y = self.conv(x)
            return self.fc(y.view(y.size(0), -1))

    torch.manual_seed(0)
    tm = Net().eval()
    model = co.load(torch_onnx(tm, (1, 5, 5), tmp_path / "v.onnx"))
    x = np.random.default_rng(0).standard_normal((4, 1, 5, 5)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(model(cnnlab.Tensor(x)).numpy(), tm(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- round trip
@pytest.mark.parametrize("name,size", [("lenet5_1998", (1, 32, 32)), ("googlenet", (3, 64, 64)),
                                       ("resnet20", (3, 16, 16)), ("densenet_bc_100_12", (3, 16, 16)),
                                       ("alexnet_like", (3, 19, 19))])
def test_round_trip_same_graph_and_bit_identical_weights(name, size, tmp_path):
    cnnlab.manual_seed(0)
    nn = cnnlab.nn
    if name == "alexnet_like":   # alexnet_original's layers (two-group convs, LRN) at a small size
        model = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding="same"), nn.ReLU(),
                              nn.LocalResponseNorm(5, 1e-4 * 5, 0.75, 2.0),
                              nn.MaxPool2d(3, 2, ceil_mode=True),
                              nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Dropout(), nn.Linear(72, 10))
    else:
        model = cnnlab.models.get_model(name, num_classes=10, in_channels=size[0],
                                        input_size=size[1])
    model.eval()
    path = co.export(model, tmp_path / "a.onnx", size)
    loaded = co.load(path)
    first, second = co.to_onnx(model, size), co.to_onnx(loaded, size)
    assert [(n.op_type, n.attribute) for n in first.graph.node] == \
        [(n.op_type, n.attribute) for n in second.graph.node]
    nh = onnx.numpy_helper
    assert len(first.graph.initializer) == len(second.graph.initializer)
    for a, b in zip(first.graph.initializer, second.graph.initializer):
        assert nh.to_array(a).tobytes() == nh.to_array(b).tobytes()
    x = np.random.default_rng(0).random((2, *size), dtype=np.float32)
    # bit-identical for the zoo models; the overlapping adaptive pool comes back as a
    # Linear with the bin matrix and LRN's alpha as float32, a last-ulp difference
    np.testing.assert_allclose(loaded(cnnlab.Tensor(x)).numpy(), model(cnnlab.Tensor(x)).numpy(),
                               rtol=1e-5, atol=1e-7)


def test_loaded_model_summarises_and_saves(tmp_path, capsys):
    cnnlab.manual_seed(0)
    model = cnnlab.models.get_model("digits_cnn")
    loaded = co.load(co.export(model, tmp_path / "d.onnx", (1, 8, 8)))
    cnnlab.summary(loaded, loaded.input_size)
    out = capsys.readouterr().out
    assert "features_0" in out and "Conv2d" in out
    cnnlab.save(loaded.state_dict(), tmp_path / "d.npz")
    again = co.load(tmp_path / "d.onnx")
    again.load_state_dict(cnnlab.load(tmp_path / "d.npz"))


# -------------------------------------------------------------------- unsupported
def test_unsupported_operator_names_node_and_supported_list(tmp_path):
    h = onnx.helper
    node = h.make_node("HardSwish", ["x"], ["y"], name="act7")
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", 1, ["N", 3])],
                         [h.make_tensor_value_info("y", 1, ["N", 3])])
    path = tmp_path / "u.onnx"
    path.write_bytes(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(co.UnsupportedOperatorError, match=r"node act7 uses operator HardSwish.*"
                                                          r"supported: Abs, Add, AveragePool"):
        co.load(path)


# -------------------------------------------------------------------- hostile files
def _small_model_bytes() -> bytes:
    cnnlab.manual_seed(0)
    model = cnnlab.nn.Sequential(cnnlab.nn.Conv2d(1, 4, 3), cnnlab.nn.ReLU(), cnnlab.nn.Flatten(),
                                 cnnlab.nn.Linear(16, 3))
    return co.to_onnx(model, (1, 4, 4)).SerializeToString()


def test_truncated_files_are_refused_naming_the_file(tmp_path):
    data = _small_model_bytes()
    path = tmp_path / "cut.onnx"
    for cut in sorted({1, 2, 7, 20, 64, 100, 300, len(data) // 3, len(data) // 2,
                       len(data) - 200, len(data) - 9, len(data) - 1}):
        path.write_bytes(data[:cut])
        with pytest.raises(co.OnnxFileError, match="cut.onnx"):
            co.load(path)
    path.write_bytes(b"not an onnx file at all \x00\xff" * 10)
    with pytest.raises(co.OnnxFileError, match="cut.onnx"):
        co.load(path)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.onnx"
    path.write_bytes(_small_model_bytes())
    with pytest.raises(co.OnnxFileError, match="over the limit of 100"):
        co.load(path, max_bytes=100)


def _model_with_weight(tensor) -> bytes:
    h = onnx.helper
    node = h.make_node("Gemm", ["x", "w"], ["y"], transB=1)
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", 1, ["N", 4])],
                         [h.make_tensor_value_info("y", 1, ["N", 2])], [tensor])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]).SerializeToString()


def test_declared_size_beyond_the_bytes_present_is_refused_without_allocating(tmp_path):
    import tracemalloc

    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[10**6, 10**6],
                         raw_data=b"\x00" * 16)
    path = tmp_path / "huge.onnx"
    path.write_bytes(_model_with_weight(t))
    tracemalloc.start()
    with pytest.raises(co.OnnxFileError, match=r"huge.onnx.*1,000,000,000,000 elements"):
        co.load(path)
    assert tracemalloc.get_traced_memory()[1] < 50 * 2**20
    tracemalloc.stop()
    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2, 4],
                         raw_data=b"\x00" * 12)
    path.write_bytes(_model_with_weight(t))
    with pytest.raises(co.OnnxFileError, match="declares 8 elements .32 bytes. but holds 12"):
        co.load(path)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../x.bin",
                                      "link.bin"])
def test_external_data_may_not_leave_the_models_folder(location, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 32)
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2, 4])
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "32")):
        e = t.external_data.add()
        e.key, e.value = k, v
    path = folder / "m.onnx"
    path.write_bytes(_model_with_weight(t))
    with pytest.raises(co.OnnxFileError, match="outside the model's folder"):
        co.load(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    w = np.arange(8, dtype=np.float32).reshape(2, 4)
    (tmp_path / "w.bin").write_bytes(b"pad!" + w.tobytes())
    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=[2, 4])
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "4"), ("length", "32")):
        e = t.external_data.add()
        e.key, e.value = k, v
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_with_weight(t))
    model = co.load(path)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(model(cnnlab.Tensor(x)).numpy(), x @ w.T)
