"""ONNX export, run by onnxruntime's CPU provider: every layer with its edge cases
(ceil_mode, count_include_pad, asymmetric 'same'/'full' pads, LRN sizes, Softmax
axes...), then every zoo model.  Tolerance: float32, rtol 1e-4 and atol 1e-5."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
co = pytest.importorskip("cnnlab.onnx")

RTOL, ATOL = 1e-4, 1e-5


def run_ort(proto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def check(model, input_size, opsets=(17, 13), batch=3, x=None, seed=0):
    model.eval()
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal((batch, *input_size)).astype(np.float32)
    want = model(cnnlab.Tensor(x)).numpy()
    for opset in opsets:
        proto = co.to_onnx(model, input_size, opset)
        onnx.checker.check_model(proto, full_check=True)
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        got = run_ort(proto, x)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"opset {opset}")
    return proto


def seq(*layers):
    cnnlab.manual_seed(0)
    return nn.Sequential(*layers)


LAYERS = {
    "conv": (lambda: seq(nn.Conv2d(3, 4, 3, padding=1)), (3, 7, 7)),
    "conv_stride_dilation_groups": (lambda: seq(nn.Conv2d(4, 6, 3, stride=2, dilation=2, groups=2,
                                                          bias=False)), (4, 11, 9)),
    "conv_same_strided_asymmetric": (lambda: seq(nn.Conv2d(2, 3, 4, stride=2, padding="same")),
                                     (2, 9, 8)),
    "conv_full": (lambda: seq(nn.Conv2d(2, 3, 3, stride=2, padding="full")), (2, 6, 7)),
    "conv1d": (lambda: seq(nn.Conv1d(2, 3, 3, stride=2, padding=1)), (2, 9)),
    "conv_transpose": (lambda: seq(nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                      output_padding=1)), (3, 4, 5)),
    "linear_gemm": (lambda: seq(nn.Flatten(), nn.Linear(12, 5)), (3, 2, 2)),
    "linear_3d_matmul": (lambda: seq(nn.Linear(4, 3)), (2, 4)),
    "maxpool_ceil": (lambda: seq(nn.MaxPool2d(3, 2, ceil_mode=True)), (2, 8, 9)),
    "maxpool_pad_dilation_ceil": (lambda: seq(nn.MaxPool2d(3, 2, padding=1, dilation=2,
                                                           ceil_mode=True)), (2, 10, 7)),
    "maxpool1d": (lambda: seq(nn.MaxPool1d(2, ceil_mode=True)), (2, 7)),
    "avgpool_pad_include": (lambda: seq(nn.AvgPool2d(3, 2, padding=1)), (2, 7, 8)),
    "avgpool_pad_exclude": (lambda: seq(nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)),
                            (2, 7, 8)),
    "avgpool_ceil_include": (lambda: seq(nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)), (2, 8, 8)),
    "avgpool_ceil_exclude": (lambda: seq(nn.AvgPool2d(2, 2, ceil_mode=True,
                                                      count_include_pad=False)), (2, 5, 7)),
    "avgpool_divisor_override": (lambda: seq(nn.AvgPool2d(2, divisor_override=3)), (2, 6, 6)),
    "avgpool1d": (lambda: seq(nn.AvgPool1d(3, 2, padding=1)), (2, 9)),
    "adaptive_avg_global": (lambda: seq(nn.AdaptiveAvgPool2d(1)), (3, 5, 6)),
    "adaptive_avg_even": (lambda: seq(nn.AdaptiveAvgPool2d((2, 3))), (3, 6, 6)),
    "adaptive_avg_overlapping": (lambda: seq(nn.AdaptiveAvgPool2d((3, 2))), (3, 7, 5)),
    "adaptive_max_overlapping": (lambda: seq(nn.AdaptiveMaxPool2d((3, 2))), (2, 7, 5)),
    "lp_pool_p2": (lambda: seq(nn.ReLU(), nn.LPPool2d(2, 2)), (2, 6, 6)),
    "lp_pool_p1_ceil": (lambda: seq(nn.LPPool2d(1, 2, ceil_mode=True)), (2, 5, 7)),
    "stochastic_pool_eval": (lambda: seq(nn.ReLU(), nn.StochasticPool2d(2)), (2, 6, 6)),
    "subsample": (lambda: _randomised(seq(nn.Subsample2d(3, 2))), (3, 7, 6)),
    "batchnorm2d": (lambda: _randomised(seq(nn.BatchNorm2d(3))), (3, 4, 4)),
    "batchnorm1d": (lambda: _randomised(seq(nn.Flatten(), nn.BatchNorm1d(12))), (3, 2, 2)),
    "batchnorm_batch_statistics": (lambda: seq(nn.BatchNorm2d(3, track_running_stats=False)),
                                   (3, 4, 4)),
    "instancenorm": (lambda: seq(nn.InstanceNorm2d(3, affine=True)), (3, 4, 5)),
    "groupnorm": (lambda: _randomised(seq(nn.GroupNorm(2, 4))), (4, 3, 3)),
    "layernorm": (lambda: _randomised(seq(nn.LayerNorm((4, 3)))), (2, 4, 3)),
    "lrn_odd": (lambda: seq(nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0)), (7, 3, 3)),
    "lrn_even": (lambda: seq(nn.LocalResponseNorm(4, alpha=1e-2, beta=0.75, k=1.0)), (7, 3, 3)),
    "activations": (lambda: seq(nn.LeakyReLU(0.2), nn.ELU(0.7), nn.Tanh(), nn.Sigmoid(),
                                nn.ScaledTanh(), nn.ReLU()), (3, 4)),
    "softmax_dim1": (lambda: seq(nn.Softmax(1)), (4, 3, 2)),
    "softmax_last": (lambda: seq(nn.LogSoftmax(-1)), (4, 3, 2)),
    "softmax_none": (lambda: seq(nn.Flatten(), nn.Softmax()), (3, 2, 2)),
    "dropout_flatten_order": (lambda: seq(nn.Dropout(0.5), nn.Dropout2d(0.3), nn.Flatten(),
                                          nn.Identity()), (3, 2, 4)),
    "flatten_partial": (lambda: seq(nn.Flatten(1, 2)), (3, 2, 4)),
    "locally_connected2d": (lambda: seq(nn.LocallyConnected2d(2, 3, (6, 5), 3, stride=2,
                                                              padding=1)), (2, 6, 5)),
    "locally_connected1d": (lambda: seq(nn.LocallyConnected1d(2, 3, 7, 3, stride=2)), (2, 7)),
    "learned_combination": (lambda: seq(nn.LearnedCombination(3, 4, 3, stride=2,
                                                              padding="same")), (3, 7, 7)),
    "connection_table": (lambda: seq(nn.ConnectionTable(nn.lenet5_c3_table(), 5)), (6, 9, 9)),
    "rbf": (lambda: seq(nn.Flatten(), nn.RBFOutput(12, 4)), (3, 2, 2)),
}


def _randomised(model):
    """Non-trivial affine parameters and running statistics."""
    rng = np.random.default_rng(1)
    for m in model.modules():
        for p in m._parameters.values():
            if p is not None:
                p.data[...] = rng.uniform(0.5, 1.5, p.shape)
        for name in ("running_mean", "running_var"):
            if getattr(m, name, None) is not None:
                m._buffers[name][...] = rng.uniform(0.5, 1.5, m._buffers[name].shape)
    return model


@pytest.mark.parametrize("case", sorted(LAYERS))
def test_layer_matches_onnxruntime(case):
    build, size = LAYERS[case]
    check(build(), size)


def test_glue_operations_between_layers_export():
    """Residual add, concat, negation, scalar arithmetic and reshape written in forward."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 1)

        def forward(self, x):
            y = self.a(x)
            z = cnnlab.cat([y + self.b(x), -y * 0.5, y / 2.0 - 1.0], 1)
            return z.reshape(z.shape[0], 9, -1).transpose(0, 2, 1).sum(axis=1)

    cnnlab.manual_seed(0)
    check(Net(), (2, 4, 4))


def test_batch_dimension_is_dynamic(tmp_path):
    cnnlab.manual_seed(0)
    model = seq(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)).eval()
    path = co.export(model, tmp_path / "m.onnx", (1, 4, 4))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        x = np.random.default_rng(n).standard_normal((n, 1, 4, 4)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"input": x})[0],
                                   model(cnnlab.Tensor(x)).numpy(), rtol=RTOL, atol=ATOL)


def test_training_mode_is_restored_and_not_exported():
    model = seq(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    model.train()
    co.to_onnx(model, (1, 5, 5))
    assert all(m.training for m in model.modules())


def test_inexpressible_layers_are_refused_with_their_name_and_reason():
    with pytest.raises(co.ExportError, match=r"layer 0 \(MaxPool2d\).*output tuple"):
        co.to_onnx(seq(nn.MaxPool2d(2, return_indices=True)), (1, 4, 4))

    class SumBatch(nn.Module):
        def forward(self, x):
            return x.sum(axis=0, keepdims=True)

    with pytest.raises(co.ExportError, match="ReduceSum over the batch dimension"):
        co.to_onnx(SumBatch(), (2, 2))
    with pytest.raises(co.ExportError, match="parameter 0.weight is float64"):
        co.to_onnx(seq(nn.Linear(2, 2)).double(), (2,))
    with pytest.raises(co.ExportError, match="opset must be an int from 13"):
        co.to_onnx(seq(nn.ReLU()), (2,), opset=11)


def test_export_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(co.ExportError):
        co.export(seq(nn.MaxPool2d(2, return_indices=True)), target, (1, 4, 4))
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
