"""The compiled (numba) loops agree with their NumPy twins, which are the specification."""
import numpy as np
import pytest

from cnnlab.kernels import _numba as nb
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import conv_depthwise
from cnnlab.kernels import pool as pool_k

pytestmark = pytest.mark.skipif(not nb.AVAILABLE, reason="numba is not installed")

CASES = [  # N, C, H, W, O, K, stride, padding, dilation, groups
    (2, 1, 12, 11, 3, 5, 1, 2, 1, 1),
    (3, 4, 9, 9, 6, 3, 2, 1, 1, 2),
    (2, 3, 10, 8, 4, (3, 2), (1, 2), (1, 0), (2, 1), 1),
    (1, 6, 7, 7, 6, 3, 1, 1, 1, 6),
]


def both(monkeypatch, fn):
    """Run ``fn`` with the compiled loops, then with NumPy alone."""
    fast = fn()
    monkeypatch.setattr(nb, "AVAILABLE", False)
    slow = fn()
    monkeypatch.setattr(nb, "AVAILABLE", True)
    return fast, slow


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channel_major", [False, True])
def test_conv_cols_layout_numba_equals_numpy(monkeypatch, case, channel_major):
    N, C, H, W, O, K, s, p, d, g = case
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    K, s, p, d = pair(K), pair(s), pair(p), pair(d)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W))
    if channel_major:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    w = rng.standard_normal((O, C // g, *K))
    b = rng.standard_normal(O)
    pad4 = (p[0], p[0], p[1], p[1])

    def run():
        y, cache = conv_k.conv2d_forward(x, w, b, s, pad4, d, g, layout="cols")
        dy = np.random.default_rng(1).standard_normal(y.shape)
        return (y.copy(), *conv_k.conv2d_backward(dy, cache))

    fast, slow = both(monkeypatch, run)
    for a, b_ in zip(fast, slow):
        np.testing.assert_allclose(a, b_, atol=1e-12, rtol=0)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (2, 2, 1), ((3, 2), 2, 0), (3, 2, 1), (3, 1, 0),
                                   ((2, 3), (1, 2), (1, 1))])
@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 0, 2, 3), (0, 2, 3, 1)])
@pytest.mark.parametrize("nans", [False, True])
def test_max_pool_numba_equals_numpy_including_ties(monkeypatch, k, s, p, order, nans):
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    rng = np.random.default_rng(2)
    base = rng.integers(0, 3, size=(2, 3, 9, 8)).astype(np.float64)   # many ties
    if nans:      # single and several NaNs in a window: a NaN wins, the last one of them
        base[0, 0, 0, 0] = base[0, 1, 2, 3] = base[0, 1, 3, 2] = base[1, 2, 4, 4] = np.nan
        base[1, 2, 4, 5] = base[1, 2, 5, 4] = base[1, 2, 5, 5] = np.nan
    x = np.ascontiguousarray(base.transpose(order)).transpose(np.argsort(order))

    def run():
        y, cache = pool_k.max_pool2d_forward(x, pair(k), pair(s), pair(p))
        dy = np.random.default_rng(3).standard_normal(y.shape)
        return y.copy(), cache.argmax.copy(), pool_k.max_pool2d_backward(dy, cache)

    (y1, a1, dx1), (y2, a2, dx2) = both(monkeypatch, run)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(a1, a2)       # the same winner on every tie and NaN
    assert np.isnan(y1).any() == nans
    # overlapping windows may add the same gradients in another order
    np.testing.assert_allclose(dx1, dx2, atol=1e-12, rtol=0)


@pytest.mark.parametrize("case", [(2, 6, 9, 6, 3, 1, 1, 1), (2, 4, 10, 8, 3, 2, 1, 1),
                                  (1, 3, 11, 3, (3, 2), 1, (2, 0), 2), (2, 5, 7, 5, 1, 1, 0, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_depthwise_direct_kernel_equals_the_gemm_layouts(case, dtype):
    N, C, H, O, K, s, p, d = case
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    K, p = pair(K), pair(p)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, C, H, H)).astype(dtype)
    w = rng.standard_normal((O, 1, *K)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    pad4 = (p[0], p[0], p[1], p[1])
    results = {}
    for layout in ("depthwise", "cols"):
        y, cache = conv_k.conv2d_forward(x, w, b, (s, s), pad4, (d, d), C, layout=layout)
        assert cache.layout == layout
        dy = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
        results[layout] = (y.copy(), *conv_k.conv2d_backward(dy, cache))
    tol = 1e-10 if dtype == np.float64 else 1e-3
    for a, b_ in zip(results["depthwise"], results["cols"]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b_, atol=tol, rtol=tol)
    assert conv_k.choose_layout(w.shape, C) == "depthwise"


@pytest.mark.parametrize("case", [(2, 6, 9, 6, 3, 1, 1, 1), (2, 4, 10, 8, 3, 2, 1, 1),
                                  (1, 3, 11, 3, (3, 2), 1, (2, 0), 2), (2, 5, 7, 5, 1, 1, 0, 1),
                                  (3, 4, 8, 4, 3, 1, (2, 1), 1), (2, 3, 9, 6, (2, 3), (2, 1), 1, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_depthwise_loops_equal_their_numpy_twins(monkeypatch, case, dtype):
    """The compiled depthwise loops (general and 3x3, channel multipliers 1 and 2)
    against depthwise_maps_forward / depthwise_maps_backward: the same forward sums in
    the same order, and gradients equal up to the order of their sums."""
    N, C, H, O, K, s, p, d = case
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    K, s, p = pair(K), pair(s), pair(p)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, C, H, H + 1)).astype(dtype)
    w = rng.standard_normal((O, 1, *K)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    pad4 = (p[0], p[0], p[1], p[1])

    def run():
        y, cache = conv_k.conv2d_forward(x, w, b, s, pad4, (d, d), C, layout="depthwise")
        dy = np.random.default_rng(12).standard_normal(y.shape).astype(dtype)
        return (y.copy(), *conv_k.conv2d_backward(dy, cache))

    (y1, *grads1), (y2, *grads2) = both(monkeypatch, run)
    np.testing.assert_array_equal(y1, y2)
    tol = 1e-12 if dtype == np.float64 else 1e-4
    for a, b_ in zip(grads1, grads2):
        assert a.dtype == b_.dtype == dtype
        np.testing.assert_allclose(a, b_, atol=tol, rtol=tol)


@pytest.mark.parametrize("shape", [(6, 4, 5, 3), (4, 3), (5, 7, 9), (1, 2, 3, 3)])
@pytest.mark.parametrize("layout", ["nchw", "channel_major", "strided"])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_fused_kernel_equals_numpy(monkeypatch, shape, layout, affine, relu):
    """The fused BN kernel: same y, x_hat, running stats, dx, dgamma, dbeta, in training
    and eval, whatever the input's memory layout; and y keeps x's layout.  With a
    ReLU fused in (``relu``), both are max(BN(x), 0) and take dy through it."""
    from cnnlab.kernels import norm as norm_k

    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 3 + 1
    if layout == "channel_major" and len(shape) == 4:
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    C = shape[1]
    gamma, beta = (rng.standard_normal(C), rng.standard_normal(C)) if affine else (None, None)
    dy = rng.standard_normal(shape)

    def run():
        out = []
        for training in (True, False):
            rm, rv = np.full(C, 0.5), np.full(C, 2.0)
            y, cache = norm_k.batch_norm_forward(x, rm, rv, gamma, beta, training, 0.1, 1e-5,
                                                 relu=relu)
            keeps_layout = layout == "strided" or y.strides == x.strides
            out += [y, keeps_layout, rm, rv,
                    *norm_k.batch_norm_backward(dy, cache, relu_y=y if relu else None)]
        return out

    fast, slow = both(monkeypatch, run)
    for a, b_ in zip(fast, slow):
        np.testing.assert_allclose(a, b_, atol=1e-11, rtol=0)
    assert fast[1] is True and fast[8] is True
    if relu:
        assert (fast[0] == 0).any() and (fast[0] >= 0).all()


@pytest.mark.parametrize("layout", ["nchw", "channel_major", "mismatched", "sliced"])
def test_relu_backward_one_pass_kernel_equals_numpy(monkeypatch, layout):
    """ReLU backward's compiled pass: exact zeros at y == 0, any dense memory order;
    mismatched or sliced layouts fall back to NumPy with the same result."""
    from cnnlab.kernels import activation as act

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 5, 6)).round(1)      # rounding puts exact zeros in x
    dy = rng.standard_normal(x.shape)
    if layout == "channel_major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
        dy = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "mismatched":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "sliced":
        x, dy = x[:, :, ::2], dy[:, :, ::2]
    y = act.relu_forward(x)
    assert np.any(x == 0)
    fast, slow = both(monkeypatch, lambda: act.relu_backward(dy, y))
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, np.where(x > 0, dy, 0.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["nchw", "channel_major", "sliced"])
def test_relu_forward_compiled_pass_equals_numpy_maximum(monkeypatch, dtype, layout):
    """ReLU forward's compiled pass keeps NaN (as torch.relu and np.maximum), maps
    -0.0, negatives and -inf to 0, keeps +inf, and keeps the memory order."""
    from cnnlab.kernels import activation as act

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5, 6, 7)).round(1).astype(dtype)
    x[0, 0, 0, :4] = [np.nan, -0.0, np.inf, -np.inf]
    if layout == "channel_major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "sliced":
        x = x[:, :, ::2]
    fast, slow = both(monkeypatch, lambda: act.relu_forward(x))
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, np.maximum(x, 0))
    assert np.isnan(fast[0, 0, 0, 0]) and fast[0, 0, 0, 2] == np.inf and fast[0, 0, 0, 3] == 0
    assert fast.dtype == dtype
    if layout == "channel_major":
        assert fast.strides == x.strides


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("padding", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2), (2, 0, 1, 2)])
def test_depthwise_3x3_fast_loops_match_torch(multiplier, padding):
    """The 3x3 stride-1 depthwise loops (one pass per row; dX as a correlation of dY
    padded by 2 with the kernels turned round) against torch, in float64, for channel
    multipliers 1 (the fast dX) and 2 (the general dX), and any padding."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    C = 5
    x = rng.standard_normal((3, C, 7, 9))
    w = rng.standard_normal((C * multiplier, 1, 3, 3))
    b = rng.standard_normal(C * multiplier)
    y, cache = conv_k.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), C)
    assert cache.layout == "depthwise" and conv_depthwise.is_3x3_unit(w.shape, (1, 1), (1, 1))
    pt, pb, pl, pr = padding
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (pl, pr, pt, pb)), wt, bt, groups=C)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12, rtol=0)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = conv_k.conv2d_backward(dy, cache)
    for ours, theirs in ((dx, xt), (dw, wt), (db, bt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), atol=1e-12, rtol=0)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    y32, _ = conv_k.conv2d_forward(x32, w32, None, (1, 1), padding, (1, 1), C)
    assert y32.dtype == np.float32


def test_depthwise_weight_gradient_with_an_infinite_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x, w = rng.random((1, 2, 5, 5)) + 0.1, rng.standard_normal((2, 1, 3, 3))
    y, cache = conv_k.conv2d_forward(x, w, None, (1, 1), (0, 0, 0, 0), (1, 1), 2)
    dy = rng.random(y.shape)
    dy[0, 0, 0, 0] = np.inf
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(xt, wt, groups=2).backward(torch.tensor(dy))
    _, dw, _ = conv_k.conv2d_backward(dy, cache)
    np.testing.assert_allclose(dw, wt.grad.numpy(), atol=1e-12, rtol=0)   # inf, not NaN
    assert np.isinf(dw).any() and not np.isnan(dw).any()
