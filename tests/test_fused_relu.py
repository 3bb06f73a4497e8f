"""A layer and the ReLU after it in a Sequential run as one node (Conv2dReLU,
LinearReLU, BatchNormReLU): exactly the two layers' values and gradients, checked
against the unfused layers, against torch in float64 and by finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
from cnnlab import nn
from cnnlab.autograd.relu_modes import relu_backward_mode
from cnnlab.gradcheck import gradcheck
from cnnlab.kernels import _threads
from cnnlab.kernels import activation as act
from cnnlab.kernels import conv as conv_k
from cnnlab.nn.functional_conv import _conv, _linear_relu
from cnnlab.nn.functional_norm import _batch_norm
from tests.helpers import _torch, module_parity


def _net(dtype=np.float64) -> nn.Sequential:
    """Every convolution algorithm and edge the fusion meets, each conv followed by a ReLU:
    padding, stride 2, dilation, groups, Winograd (64 -> 64 3x3), depthwise, FC."""
    cnnlab.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=2, groups=2), nn.ReLU(),
        nn.Conv2d(16, 64, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, groups=64), nn.ReLU(),
        nn.Conv2d(64, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 20), nn.ReLU(),
        nn.Linear(20, 12, bias=False), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 5))
    return net.double() if dtype == np.float64 else net


def _run(net: nn.Module, x: np.ndarray, fuse: bool, upstream_seed: int = 1):
    """Output, input gradient and parameter gradients; ``fuse=False`` puts a no-op
    forward hook on every module, which turns the fusion off."""
    handles = [] if fuse else [m.register_forward_hook(lambda *a: None) for m in net.modules()]
    try:
        net.zero_grad()
        xt = cnnlab.tensor(x, requires_grad=True)
        y = net(xt)
        up = np.random.default_rng(upstream_seed).standard_normal(y.shape).astype(x.dtype)
        (y * cnnlab.tensor(up)).sum().backward()
        return [np.array(y.data), np.array(xt.grad)] + [np.array(p.grad) for p in net.parameters()]
    finally:
        for h in handles:
            h.remove()


def _node_names(t: cnnlab.Tensor) -> set[str]:
    seen, stack, names = set(), [t._ctx], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.add(type(fn).__name__)
        stack.extend(i._ctx for i in fn.inputs if i is not None)
    return names


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [2, 70])      # 70 samples: several batch chunks
@pytest.mark.parametrize("training", [True, False])
def test_fused_equals_unfused_bit_for_bit(dtype, batch, training):
    net, twin = _net(dtype), _net(dtype)
    net.train(training)
    twin.train(training)
    x = np.random.default_rng(0).standard_normal((batch, 3, 13, 13)).astype(dtype)
    fused, plain = _run(net, x, True), _run(twin, x, False)
    for i, (a, b) in enumerate(zip(fused, plain)):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b, err_msg=f"array {i}")
    for (name, a), b in zip(net.named_buffers(), twin.buffers()):   # running statistics
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def test_the_fused_nodes_are_used_and_hooks_turn_them_off():
    net = _net()
    x = cnnlab.tensor(np.random.default_rng(0).standard_normal((2, 3, 13, 13)), requires_grad=True)
    names = _node_names(net(x))
    assert {"Conv2dReLU", "LinearReLU", "BatchNormReLU"} <= names and "ReLU" not in names
    h = net[1].register_forward_hook(lambda *a: None)       # a hook on the ReLU only
    names = _node_names(net(x))
    h.remove()
    assert "ReLU" in names and "Conv2d" in names and "Conv2dReLU" in names   # only that pair


def test_subclasses_and_other_activations_are_not_fused():
    class MyConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    class MyReLU(nn.ReLU):
        pass

    x = cnnlab.tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)), requires_grad=True)
    for net in (nn.Sequential(MyConv(3, 4, 3), nn.ReLU()), nn.Sequential(nn.Conv2d(3, 4, 3), MyReLU()),
                nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh())):
        names = _node_names(net.double()(x))
        assert "Conv2dReLU" not in names
    y = nn.Sequential(MyConv(3, 4, 3), nn.ReLU()).double()(x)
    assert float(y.data.min()) >= 0 and "ReLU" in _node_names(y)


def test_relu_at_exactly_zero_and_nan_gradients_behave_like_the_relu():
    # zero weights and bias: every output is exactly 0, where the ReLU's gradient is 0;
    # an inf/NaN upstream gradient there gives 0 too (torch's threshold_backward)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU()).double()
    for p in net.parameters():
        p.data[...] = 0
    x = cnnlab.tensor(np.random.default_rng(0).standard_normal((2, 2, 6, 6)), requires_grad=True)
    y = net(x)
    assert "Conv2dReLU" in _node_names(y) and np.all(y.data == 0)
    up = np.full(y.shape, np.nan)
    y.backward(up)
    assert np.all(np.asarray(x.grad) == 0) and np.all(np.asarray(net[0].weight.grad) == 0)


@pytest.mark.parametrize("mode", ["guided", "deconvnet"])
def test_guided_backprop_and_deconvnet_modes_apply_to_the_fused_relu(mode):
    net = _net()
    x = np.random.default_rng(2).standard_normal((3, 3, 13, 13))
    with relu_backward_mode(mode):
        fused, plain = _run(net, x, True), _run(net, x, False)
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a, b)
    normal = _run(net, x, True)
    assert not np.array_equal(fused[1], normal[1])      # the mode did change the gradient


def test_results_do_not_depend_on_the_thread_count():
    net = _net(np.float32)
    x = np.random.default_rng(3).standard_normal((70, 3, 13, 13)).astype(np.float32)
    before = _threads.get_num_threads()
    try:
        _threads.set_num_threads(1)
        one = _run(net, x, True)
        _threads.set_num_threads(2)
        two = _run(net, x, True)
    finally:
        _threads.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("training", [True, False])
def test_fused_layers_match_torch_in_float64(training):
    t = _torch()

    def layers(m):
        return m.Sequential(m.Conv2d(3, 6, 5, padding=2), m.ReLU(), m.MaxPool2d(2),
                            m.Conv2d(6, 16, 3, stride=2), m.BatchNorm2d(16), m.ReLU(), m.Flatten(),
                            m.Linear(16 * 3 * 3, 12), m.ReLU(), m.Linear(12, 8),
                            m.BatchNorm1d(8), m.ReLU(), m.Linear(8, 4))
    ours, theirs = layers(nn), layers(t.nn)
    ours.train(training)
    theirs.train(training)
    if not training:            # running statistics that are not the initial ones
        for name, b in theirs.named_buffers():
            if "running" in name:
                b.copy_(t.rand(b.shape) + 0.5)
    x = np.random.default_rng(0).standard_normal((5, 3, 14, 14))
    module_parity(ours, theirs, x)
    buffers = dict(ours.named_buffers())
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(np.asarray(buffers[name]), b.numpy(), rtol=0, atol=1e-12)
    names = _node_names(ours(cnnlab.tensor(x, requires_grad=True)))
    assert {"Conv2dReLU", "LinearReLU", "BatchNormReLU"} <= names


def test_conv1d_relu_is_fused_and_matches_torch():
    t = _torch()
    ours = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU())
    theirs = t.nn.Sequential(t.nn.Conv1d(2, 4, 3, padding=1), t.nn.ReLU())
    x = np.random.default_rng(0).standard_normal((3, 2, 9))
    module_parity(ours, theirs, x)
    assert "Conv2dReLU" in _node_names(ours(cnnlab.tensor(x, requires_grad=True)))


def test_fused_nodes_pass_a_finite_difference_gradcheck():
    rng = np.random.default_rng(0)
    x, w, b = (cnnlab.tensor(a, requires_grad=True) for a in
               (rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3)),
                rng.standard_normal(4)))
    gradcheck(lambda x, w, b: _conv(x, w, b, (2, 1), (1, 1), (1, 1), 1, "conv2d", relu=True),
              [x, w, b])
    xs, ws, bs = (cnnlab.tensor(a, requires_grad=True) for a in
                  (rng.standard_normal((5, 6)), rng.standard_normal((3, 6)), rng.standard_normal(3)))
    gradcheck(_linear_relu, [xs, ws, bs])
    xb, g, b = (cnnlab.tensor(a, requires_grad=True) for a in
                (rng.standard_normal((4, 3, 5, 5)), rng.standard_normal(3) + 1.5,
                 rng.standard_normal(3)))
    for training in (True, False):
        gradcheck(lambda x, g, b, training=training: _batch_norm(
            x, np.zeros(3), np.ones(3), g, b, training, 0.0, 1e-5, relu=True), [xb, g, b])


def test_the_kernel_relu_flag_equals_relu_of_the_plain_kernel():
    """The kernels' specification: conv2d_forward(relu=True) is max(conv2d_forward(), 0)
    and its backward takes dy through the ReLU, for each algorithm."""
    rng = np.random.default_rng(4)
    for layout, cin, groups in (("cols", 8, 1), ("winograd", 64, 1), ("depthwise", 8, 8)):
        x = rng.standard_normal((3, cin, 9, 9)).astype(np.float32)
        w = rng.standard_normal((cin, cin // groups, 3, 3)).astype(np.float32)
        b = rng.standard_normal(cin).astype(np.float32)
        args = ((1, 1), (1, 1, 1, 1), (1, 1), groups, layout)
        y_plain, c_plain = conv_k.conv2d_forward(x, w, b, *args)
        y, cache = conv_k.conv2d_forward(x, w, b, *args, relu=True)
        np.testing.assert_array_equal(y, np.maximum(y_plain, 0))
        dy = rng.standard_normal(y.shape).astype(np.float32)
        want = conv_k.conv2d_backward(np.where(y_plain > 0, dy, 0), c_plain)
        got = conv_k.conv2d_backward(dy, cache, relu_y=y)
        for a, b_ in zip(got, want):
            np.testing.assert_allclose(a, b_, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_chunk_gradient_equals_its_numpy_specification(monkeypatch, dtype):
    """relu_delta_cols (a compiled loop over one chunk's columns) against relu_delta
    (np.where), with exact zeros in y and inf / NaN in the gradient, with and without numba."""
    from cnnlab.kernels import _numba as nb
    from cnnlab.kernels import conv_gemm

    rng = np.random.default_rng(5)
    y = np.maximum(rng.standard_normal((2, 3, 40)).round(1), 0).astype(dtype)
    d = rng.standard_normal(y.shape).astype(dtype)
    d[0, 0, :4] = [np.inf, -np.inf, np.nan, np.nan]
    y[0, 0, :4] = [0, 1, 0, 1]
    for c0, c1 in ((0, 40), (8, 27), (39, 40)):
        want = conv_gemm.relu_delta(d[:, :, c0:c1], y[:, :, c0:c1])
        fast = conv_gemm.relu_delta_cols(d, y, c0, c1)
        monkeypatch.setattr(nb, "AVAILABLE", False)
        slow = conv_gemm.relu_delta_cols(d, y, c0, c1)
        monkeypatch.setattr(nb, "AVAILABLE", True)
        for got in (fast, slow):
            assert got.dtype == dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    head = conv_gemm.relu_delta_cols(d, y, 0, 4)[0, 0]       # y = 0, 1, 0, 1
    assert head[0] == 0 and head[1] == -np.inf and head[2] == 0 and np.isnan(head[3])


def test_zoo_blocks_fuse_bn_relu_and_after_folding_conv_relu():
    """ResNet's blocks call conv_bn_relu: the ReLU joins the batch norm while training,
    and the convolution once fold_batchnorm has replaced the batch norm by an Identity."""
    from cnnlab.models import get_model
    from cnnlab.nn.utils import fold_batchnorm

    cnnlab.manual_seed(0)
    model = get_model("resnet18", num_classes=4)
    x = cnnlab.tensor(np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32),
                      requires_grad=True)
    assert "BatchNormReLU" in _node_names(model(x))
    model.eval()
    folded = fold_batchnorm(model, x.detach())
    names = _node_names(folded(x))
    assert "Conv2dReLU" in names and "BatchNormReLU" not in names and "BatchNorm" not in names
    with cnnlab.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_blocks_fused_equal_unfused_bit_for_bit(dtype):
    """A ResNet with every fusion (BN+ReLU, sum+ReLU) against the same ResNet with hooks
    on every module (no fusion): outputs, input and parameter gradients, running stats."""
    from cnnlab.models import get_model

    nets = []
    for _ in range(2):
        cnnlab.manual_seed(0)
        net = get_model("resnet20")
        nets.append(net.double() if dtype == np.float64 else net)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(dtype)
    fused, plain = _run(nets[0], x, True), _run(nets[1], x, False)
    for i, (a, b) in enumerate(zip(fused, plain)):
        np.testing.assert_array_equal(a, b, err_msg=f"array {i}")
    for a, b in zip(nets[0].buffers(), nets[1].buffers()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    xt = cnnlab.tensor(x, requires_grad=True)
    assert {"AddReLU", "BatchNormReLU"} <= _node_names(nets[0](xt))


def test_the_sum_and_relu_node_passes_gradcheck_and_matches_its_specification(monkeypatch):
    from cnnlab.autograd.activation_ops import AddReLU
    from cnnlab.kernels import _numba as nb

    rng = np.random.default_rng(6)
    a, b = (cnnlab.tensor(rng.standard_normal((2, 3, 4, 5)), requires_grad=True) for _ in range(2))
    gradcheck(lambda a, b: AddReLU.apply(a, b), [a, b])
    x, y = rng.standard_normal((2, 3, 4, 5)).round(1), rng.standard_normal((2, 3, 4, 5)).round(1)
    x[0, 0, 0, :2], y[0, 0, 0, :2] = [np.nan, 1.0], [1.0, -1.0]       # NaN stays; 1 - 1 is 0
    fast = act.add_relu_forward(x, y)
    monkeypatch.setattr(nb, "AVAILABLE", False)
    slow = act.add_relu_forward(x, y)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, np.maximum(x + y, 0))
    assert np.isnan(fast[0, 0, 0, 0]) and fast[0, 0, 0, 1] == 0
