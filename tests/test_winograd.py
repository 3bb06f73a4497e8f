"""Winograd F(2x2, 3x3): the transforms against their matrix formulas, the convolution
and its data gradient against torch (float64), the compiled kernels against the NumPy
specification, and the layout choice."""
import numpy as np
import pytest
from helpers import _torch, check_op, leaves

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.kernels import _numba as nb
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import winograd as wg

# (N, C, H, W, O, padding (top, bottom, left, right))
CASES = [
    (2, 3, 7, 9, 4, (1, 1, 1, 1)),      # odd output sizes: the last tile is cropped
    (3, 5, 8, 8, 6, (0, 0, 0, 0)),      # 'valid'
    (1, 2, 6, 5, 3, (2, 1, 0, 2)),      # batch 1, asymmetric padding
    (4, 8, 9, 11, 7, (2, 2, 2, 2)),     # 'full'
    (2, 4, 3, 3, 2, (0, 0, 0, 0)),      # a single output pixel
]


def test_the_transform_matrices_compute_a_2x2_by_3x3_correlation():
    # F(2, 3) in one dimension: A^T [(G g) . (B^T d)] = the two outputs of d correlated with g
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    direct = np.array([d[0:3] @ g, d[1:4] @ g])
    np.testing.assert_allclose(wg.A_T @ ((wg.G @ g) * (wg.B_T @ d)), direct, atol=1e-14)
    # and the filter transform is G g G^T for every filter and channel
    w = rng.standard_normal((3, 2, 3, 3))
    u = wg.transform_filters(w)
    for o in range(3):
        for c in range(2):
            np.testing.assert_allclose(u[:, o, c].reshape(4, 4), wg.G @ w[o, c] @ wg.G.T,
                                       atol=1e-14)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_conv3x3_and_its_data_gradient_match_torch(case, compiled, monkeypatch):
    t = _torch()
    if compiled and not nb.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(nb, "AVAILABLE", compiled)
    N, C, H, W, O, p = case
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, 3, 3)), rng.standard_normal(O)
    xt = t.tensor(x, requires_grad=True)
    yt = t.nn.functional.conv2d(t.nn.functional.pad(xt, (p[2], p[3], p[0], p[1])), t.tensor(w),
                                t.tensor(b))
    y = wg.conv3x3(x, w, b, p)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12, rtol=0)
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous          # channel-major, as "cols"
    dy = rng.standard_normal(y.shape)
    yt.backward(t.tensor(dy))
    dx = wg.conv3x3_backward_data(dy, w, p, (H, W))
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12, rtol=0)


def test_compiled_transforms_equal_the_numpy_specification():
    if not nb.AVAILABLE:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(2)
    for tH, tW in [(1, 1), (3, 4), (5, 2)]:
        xp = rng.standard_normal((3, 2, 2 * tH + 2, 2 * tW + 2))
        np.testing.assert_array_equal(nb.winograd_in(xp, tH, tW), wg.transform_input(xp, tH, tW))
        for OH, OW in [(2 * tH, 2 * tW), (2 * tH - 1, 2 * tW - 1)]:
            m = rng.standard_normal((16, 4, 2 * tH * tW))
            bias = rng.standard_normal(4)
            y1, y2 = np.empty((4, 2, OH, OW)), np.empty((4, 2, OH, OW))
            nb.winograd_out(m, y1, bias)
            wg.transform_output(m, y2, bias)
            np.testing.assert_allclose(y1, y2, atol=1e-13, rtol=0)


def test_float32_error_is_float32_rounding():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 64, 14, 14)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    y = wg.conv3x3(x, w, None, (1, 1, 1, 1))
    assert y.dtype == np.float32
    exact, _ = conv_k.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None,
                                     (1, 1), (1, 1, 1, 1), layout="cols")
    rel = np.abs(y - exact).max() / np.abs(exact).max()
    assert rel < 5e-6, rel          # eps(float32) = 1.2e-7; sums of 576 products


def test_layout_choice_and_refusals():
    assert conv_k.choose_layout((64, 64, 3, 3), 1, (1, 1), (1, 1, 1, 1)) == "winograd"
    assert conv_k.choose_layout((16, 16, 3, 3), 1, (1, 1), (1, 1, 1, 1)) == "cols"
    assert conv_k.choose_layout((64, 64, 3, 3), 1, (2, 2), (1, 1, 1, 1)) == "cols"
    assert conv_k.choose_layout((64, 64, 5, 5), 1, (1, 1), (2, 2, 2, 2)) == "cols"
    assert conv_k.choose_layout((64, 64, 3, 3), 1, (1, 1), (1, 1, 1, 1), (2, 2)) == "cols"
    assert conv_k.choose_layout((64, 64, 3, 3), 1, (1, 1), (3, 3, 3, 3)) == "cols"
    x, w = np.zeros((1, 2, 8, 8)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="winograd.*stride 1"):
        conv_k.conv2d_forward(x, w, None, (2, 2), (1, 1, 1, 1), layout="winograd")


@pytest.mark.parametrize("case", CASES)
def test_winograd_layout_forward_and_every_gradient_match_torch(case, monkeypatch):
    # route small convolutions to Winograd, through the kernel and through F.conv2d
    monkeypatch.setattr(conv_k, "WINOGRAD_MIN_CHANNELS", 1)
    t = _torch()
    N, C, H, W, O, p = case
    pt, pb, pl, pr = p
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, 3, 3)), rng.standard_normal(O)
    y, cache = conv_k.conv2d_forward(x, w, b, (1, 1), p)
    assert cache.layout == "winograd"
    xt, wt, bt = (t.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = t.nn.functional.conv2d(t.nn.functional.pad(xt, (pl, pr, pt, pb)), wt, bt)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12, rtol=0)
    dy = rng.standard_normal(y.shape)
    yt.backward(t.tensor(dy))
    dx, dw, db = conv_k.conv2d_backward(dy, cache)
    for ours, theirs in ((dx, xt), (dw, wt), (db, bt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), atol=1e-10, rtol=0)
    assert conv_k.conv2d_backward(dy, cache, need_dx=False)[0] is None
    # symmetric padding and 'same' through the functional op, every gradient
    for pad in (pt, "same"):
        check_op(lambda x, w, b, pad=pad: F.conv2d(x, w, b, padding=pad),
                 lambda x, w, b, pad=pad: t.nn.functional.conv2d(x, w, b, padding=pad), [x, w, b])


def test_winograd_layout_gradcheck(monkeypatch):
    monkeypatch.setattr(conv_k, "WINOGRAD_MIN_CHANNELS", 1)
    rng = np.random.default_rng(5)
    x, w, b = leaves(rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 3)),
                     rng.standard_normal(4))
    y, cache = conv_k.conv2d_forward(x.data, w.data, b.data, (1, 1), (1, 1, 1, 1))
    assert cache.layout == "winograd"
    cnnlab.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, w, b])


def test_infinities_never_go_through_the_transforms(monkeypatch):
    # inf - inf = NaN inside a Winograd tile: non-finite inputs take im2col instead
    monkeypatch.setattr(conv_k, "WINOGRAD_MIN_CHANNELS", 1)
    t = _torch()
    rng = np.random.default_rng(9)
    x, w = rng.random((2, 3, 6, 6)), rng.random((4, 3, 3, 3))
    x[0, 1, 2, 3] = np.inf
    y, cache = conv_k.conv2d_forward(x, w, None, (1, 1), (1, 1, 1, 1))
    assert cache.layout == "cols"
    yt = t.nn.functional.conv2d(t.tensor(x), t.tensor(w), padding=1).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    np.testing.assert_allclose(y[np.isfinite(yt)], yt[np.isfinite(yt)], atol=1e-12, rtol=0)
    # a finite forward, then an infinite gradient: dx by col2im, as torch
    x[0, 1, 2, 3] = 0.5
    y, cache = conv_k.conv2d_forward(x, w, None, (1, 1), (1, 1, 1, 1))
    assert cache.layout == "winograd"
    dy = rng.random(y.shape)
    dy[1, 2, 3, 3] = np.inf
    xt = t.tensor(x, requires_grad=True)
    t.nn.functional.conv2d(xt, t.tensor(w), padding=1).backward(t.tensor(dy))
    dx, _, _ = conv_k.conv2d_backward(dy, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12, rtol=0)   # inf where torch has inf
    assert not np.isnan(dx).any()


@pytest.mark.parametrize("relu", [False, True])
def test_the_dispatcher_sends_winograds_backward_to_winograd(monkeypatch, relu):
    """conv2d_backward on a Winograd cache takes dX by the Winograd convolution of dY
    (WinogradCache extends GemmCache: a type test must not send it to im2col's col2im)."""
    from cnnlab.kernels import conv as conv_k
    from cnnlab.kernels import winograd as wino

    calls = []
    plain = wino.conv3x3_backward_data

    def counting(*a, **k):
        calls.append(1)
        return plain(*a, **k)

    monkeypatch.setattr(wino, "conv3x3_backward_data", counting)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 64, 6, 6)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    y, cache = conv_k.conv2d_forward(x, w, None, (1, 1), (1, 1, 1, 1), relu=relu)
    assert isinstance(cache, wino.WinogradCache)
    conv_k.conv2d_backward(np.ones_like(y), cache, relu_y=y if relu else None)
    assert calls == [1]
