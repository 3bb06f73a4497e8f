"""conv2d and pooling: parity with torch (float64), gradcheck, the notes' formulas."""
import numpy as np
import pytest
from helpers import _torch, check_op, leaves

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import conv_gemm
from cnnlab.kernels import pool as pool_k
from cnnlab.kernels import reference as ref

torch = _torch()
TF = torch.nn.functional

# (N, C, H, W, O, KH, KW, stride, padding, dilation, groups)
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1, 1),          # batch 1, single channel
    (2, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1),          # 'same'-like padding
    (2, 3, 10, 11, 5, 3, 3, 2, 1, 1, 1),        # stride 2, odd width
    (3, 4, 12, 12, 6, 5, 3, (2, 1), (2, 1), 1, 1),  # non-square kernel, stride, padding
    (2, 4, 11, 11, 4, 3, 3, 1, 2, 2, 1),        # dilation 2
    (2, 4, 11, 9, 6, 3, 2, (1, 2), (0, 1), (2, 3), 2),  # dilation pair + groups
    (2, 6, 8, 8, 6, 3, 3, 1, 1, 1, 6),          # depthwise
    (2, 4, 7, 7, 8, 1, 1, 1, 0, 1, 1),          # 1x1
    (2, 3, 13, 13, 4, 11, 11, 4, 0, 1, 1),      # AlexNet-like 11x11 stride 4 (small)
    (1, 2, 6, 6, 2, 4, 4, 3, 1, 1, 2),          # stride 3 with remainder, groups
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case):
    N, C, H, W, O, KH, KW, s, p, d, g = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C // g, KH, KW))
    b = rng.standard_normal(O)
    check_op(lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
             lambda x, w, b: TF.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
             [x, w, b])


def test_conv2d_without_bias_and_unbatched():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 7, 7)), rng.standard_normal((5, 3, 3, 3))
    check_op(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1),
             [x, w])


@pytest.mark.parametrize("mode", ["valid", "same"])
@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (3, 2)])
def test_conv2d_string_padding_matches_torch(mode, k, d):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 2, 9, 8)), rng.standard_normal((3, 2, k, k))
    check_op(lambda x, w: F.conv2d(x, w, padding=mode, dilation=d),
             lambda x, w: TF.conv2d(x, w, padding=mode, dilation=d), [x, w])


def test_conv2d_full_padding_is_true_full_convolution():
    # 'full' pads F - 1 on every side: the output is W + F - 1 and equals the
    # explicit symmetric padding F - 1.
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 1, 6, 5)), rng.standard_normal((1, 1, 3, 2))
    y = F.conv2d(cnnlab.Tensor(x), cnnlab.Tensor(w), padding="full")
    assert y.shape == (1, 1, 8, 6)
    yt = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=(2, 1))
    np.testing.assert_allclose(y.data, yt.numpy(), atol=1e-12, rtol=0)
    # and on a single channel it is MATLAB's conv2(x, rot180(w), 'full')
    np.testing.assert_allclose(y.data[0, 0], ref.conv2d_full(x[0, 0], w[0, 0, ::-1, ::-1]),
                               atol=1e-12, rtol=0)


def test_strided_same_padding_follows_tensorflow_rule():
    # output = ceil(W / S), extra pixel on the far side
    x = cnnlab.Tensor(np.ones((1, 1, 7, 8)))
    w = cnnlab.Tensor(np.ones((1, 1, 3, 3)))
    y = F.conv2d(x, w, stride=2, padding="same")
    assert y.shape == (1, 1, 4, 4)
    assert F.conv_padding("same", (3, 3), (2, 2), (1, 1), (7, 8)) == (1, 1, 0, 1)


@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_conv_matches_naive_loops_and_torch_gradients(case):
    N, C, H, W, O, KH, KW, s, p, d, g = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C // g, KH, KW))
    b = rng.standard_normal(O)
    s2, d2 = F.pair(s, "s"), F.pair(d, "d")
    p2 = F.conv_padding(p, (KH, KW), s2, d2, (H, W))
    fast, cache = conv_k.conv2d_forward(x, w, b, s2, p2, d2, g, layout="cols")
    assert cache.layout == "cols"
    if N * O * H * W < 3000:   # the loop reference is slow
        slow = ref.conv2d_naive(x, w, b, s2, p2, d2, g)
        np.testing.assert_allclose(fast, slow, atol=1e-12, rtol=0)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = TF.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=g)
    np.testing.assert_allclose(fast, yt.detach().numpy(), atol=1e-9, rtol=0)
    dy = rng.standard_normal(fast.shape)
    yt.backward(torch.tensor(dy))
    for dy_layout in (dy, np.asfortranarray(dy)):   # any memory layout of the gradient
        dx, dw, db = conv_k.conv2d_backward(dy_layout, cache)
        np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-9, rtol=0)
        np.testing.assert_allclose(dw, wt.grad.numpy(), atol=1e-9, rtol=0)
        np.testing.assert_allclose(db, bt.grad.numpy(), atol=1e-9, rtol=0)


def test_conv2d_backward_is_the_notes_full_and_valid_convolutions():
    # delta_i = sum_j conv2(delta_j, k_ij, 'full');  dk = conv2(x, rot180(delta), 'valid')
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    y, cache = conv_k.conv2d_forward(x, w, b, (1, 1), (0, 0, 0, 0), (1, 1), 1, layout="cols")
    delta = rng.standard_normal(y.shape)
    dx, dw, db = conv_k.conv2d_backward(delta, cache)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward_notes(x, w, delta)
    np.testing.assert_allclose(dx, dx_ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(dw, dw_ref, atol=1e-12, rtol=0)
    np.testing.assert_allclose(db, db_ref, atol=1e-12, rtol=0)


def test_conv2d_im2col_shapes_of_the_notes_alexnet_example():
    # X 227x227x3, 96 filters 11x11x3, stride 4: X_col 363 x 3025, W_row 96 x 363,
    # np.dot(W_row, X_col) 96 x 3025 reshaped to 55x55x96
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 3, 227, 227)).astype(np.float32)
    w = rng.standard_normal((96, 3, 11, 11)).astype(np.float32)
    y, cache = conv_k.conv2d_forward(x, w, None, (4, 4), (0, 0, 0, 0), (1, 1), 1, layout="cols")
    (x_col,) = cache.cols          # one sample: one batch chunk
    assert x_col.shape == (1, 363, 3025)
    assert cache.w_rows.shape == (1, 96, 363)
    assert y.shape == (1, 96, 55, 55)
    # float32: the GEMM's blocking (one BLAS thread here) changes the last bits only
    np.testing.assert_allclose(y[0].reshape(96, 3025), np.dot(cache.w_rows[0], x_col[0]),
                               rtol=1e-5, atol=1e-4)


def test_empty_batch_gives_zero_gradients():
    rng = np.random.default_rng(6)
    for layout in ("cols", "winograd"):
        x = np.zeros((0, 3, 6, 6))
        w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
        y, cache = conv_k.conv2d_forward(x, w, b, (1, 1), (1, 1, 1, 1), layout=layout)
        assert y.shape == (0, 4, 6, 6)
        dx, dw, db = conv_k.conv2d_backward(np.zeros(y.shape), cache)
        assert dx.shape == x.shape and not dw.any() and not db.any() and dw.shape == w.shape


@pytest.mark.parametrize("s,p,d,g", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 1, 2, 1), (2, 2, 1, 2)])
def test_conv2d_gradcheck(s, p, d, g):
    rng = np.random.default_rng(7)
    x, w, b = leaves(rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((4, 4 // g, 3, 2)),
                     rng.standard_normal(4))
    cnnlab.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
                     [x, w, b])


def test_conv2d_float32_stays_float32():
    x = cnnlab.Tensor(np.ones((1, 2, 5, 5), dtype=np.float32), requires_grad=True)
    w = cnnlab.Tensor(np.ones((3, 2, 3, 3), dtype=np.float32), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_conv_output_size_and_invalid_settings():
    assert cnnlab.conv_output_size(227, 11, 4) == 55
    assert cnnlab.conv_output_size(32, 5) == 28
    assert cnnlab.conv_output_size(28, 5, padding=2) == 28
    assert cnnlab.conv_output_size(10, 3, stride=2, strict=False) == 4
    with pytest.raises(ValueError, match="not an integer"):
        cnnlab.conv_output_size(10, 3, stride=2)
    with pytest.raises(ValueError, match="does not fit"):
        cnnlab.conv_output_size(3, 5)


def test_conv2d_errors_name_shapes():
    x = cnnlab.Tensor(np.zeros((2, 1, 8, 8)))
    w = cnnlab.Tensor(np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"expects input \(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match="smaller than the effective kernel"):
        F.conv2d(cnnlab.Tensor(np.zeros((1, 3, 2, 2))), w)
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(cnnlab.Tensor(np.zeros((1, 3, 5, 5), dtype=np.float32)), w)


# ------------------------------------------------------------------- pooling
POOL_CASES = [
    # (shape, kernel, stride, padding)
    ((2, 3, 8, 8), 2, None, 0),
    ((1, 2, 7, 9), 3, 2, 0),        # overlapping 3x3/2
    ((2, 2, 7, 7), 3, 2, 1),        # with padding
    ((2, 1, 9, 6), (3, 2), (2, 1), (1, 0)),
    ((1, 1, 5, 5), 2, 2, 0),        # remainder dropped (floor)
]


@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_max_pool2d_matches_torch(shape, k, s, p):
    x = np.random.default_rng(8).standard_normal(shape)
    check_op(lambda x: F.max_pool2d(x, k, s, p), lambda x: TF.max_pool2d(x, k, s, p), [x])


@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_avg_pool2d_matches_torch(shape, k, s, p):
    x = np.random.default_rng(9).standard_normal(shape)
    check_op(lambda x: F.avg_pool2d(x, k, s, p), lambda x: TF.avg_pool2d(x, k, s, p), [x])
    check_op(lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=False),
             lambda x: TF.avg_pool2d(x, k, s, p, count_include_pad=False), [x])


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (3, 1)])
def test_max_pool2d_ties_match_torch(k, s):
    # integer-valued inputs in a small range give many ties in every window
    x = np.random.default_rng(10).integers(0, 3, size=(2, 3, 9, 9)).astype(np.float64)
    check_op(lambda x: F.max_pool2d(x, k, s), lambda x: TF.max_pool2d(x, k, s), [x])
    # a constant input: every window is one big tie, the first position wins
    c = np.ones((1, 1, 4, 4))
    xt = cnnlab.Tensor(c, requires_grad=True)
    F.max_pool2d(xt, 2).sum().backward()
    assert xt.grad[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("shape,k,s,p,ceil", [((2, 3, 8, 8), 2, 2, 0, False),
                                               ((2, 3, 7, 9), 2, 2, 0, True),
                                               ((2, 2, 7, 7), 3, 2, 1, False)])
def test_max_pool_buffers_left_unset_are_written_in_full(monkeypatch, shape, k, s, p, ceil):
    # buffers the kernels take unzeroed (outputs, and the gradient when 2x2 windows tile the
    # input) come here filled with NaN: every element must still be written
    def poisoned(shape, like, dtype=None, fill=True):
        a = zeros_like_layout(shape, like, dtype, fill)
        if not fill:
            a[...] = np.nan if np.issubdtype(a.dtype, np.floating) else 99
        return a

    zeros_like_layout = pool_k.zeros_like_layout
    monkeypatch.setattr(pool_k, "zeros_like_layout", poisoned)
    x = np.random.default_rng(14).standard_normal(shape)
    check_op(lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil),
             lambda x: TF.max_pool2d(x, k, s, p, ceil_mode=ceil), [x])


def test_max_pool_backward_routes_to_argmax_as_in_the_notes():
    # the notes' window [1, 2, 3, 2]: backward gives [0, 0, g, 0]
    x = cnnlab.Tensor(np.array([[[[1.0, 2.0], [3.0, 2.0]]]]), requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.item() == 3.0
    y.backward(np.array([[[[3.0]]]]))
    assert x.grad.reshape(-1).tolist() == [0.0, 0.0, 3.0, 0.0]


def test_max_pool_matches_naive_reference():
    x = np.random.default_rng(11).integers(-2, 3, size=(2, 2, 7, 8)).astype(np.float64)
    y = F.max_pool2d(cnnlab.Tensor(x), 3, 2, 1)
    y_ref, _ = ref.max_pool2d_naive(x, (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(y.data, y_ref)


@pytest.mark.parametrize("fn", [lambda x: F.max_pool2d(x, 3, 2, 1),
                                lambda x: F.avg_pool2d(x, 2),
                                lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)])
def test_pool_gradcheck(fn):
    (x,) = leaves(np.random.default_rng(12).standard_normal((2, 2, 6, 7)))
    cnnlab.gradcheck(fn, [x])


def test_pool_errors():
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\)"):
        F.max_pool2d(cnnlab.Tensor(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(cnnlab.Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 0, 2, 3), (0, 2, 3, 1)])
def test_pooling_keeps_the_memory_layout_and_values(order):
    # conv outputs are channel-major views, other layouts come from the user; pooling must give
    # the same numbers whatever the layout, and keep it for the next layer
    rng = np.random.default_rng(13)
    base = rng.integers(0, 4, size=(2, 3, 8, 6)).astype(np.float64)
    phys = np.ascontiguousarray(base.transpose(order))
    x_view = phys.transpose(np.argsort(order))          # logical NCHW, physical `order`
    for fn, tfn in [(lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: TF.max_pool2d(t, 3, 2, 1)),
                    (lambda t: F.avg_pool2d(t, 2), lambda t: TF.avg_pool2d(t, 2))]:
        xt = cnnlab.Tensor(x_view, requires_grad=True)
        y = fn(xt)
        tx = torch.tensor(base, requires_grad=True)
        ty = tfn(tx)
        np.testing.assert_array_equal(y.data, ty.detach().numpy())
        g = rng.standard_normal(y.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(xt.grad, tx.grad.numpy(), atol=1e-12, rtol=0)
        assert np.argsort(y.data.strides)[::-1].tolist() == list(order)


@pytest.mark.parametrize("m,k", [(6, 25), (16, 3), (4, 4)])
@pytest.mark.parametrize("groups", [1, 3])
def test_blocked_products_equal_plain_products(monkeypatch, m, k, groups):
    # the GEMMs cut into column blocks (OpenBLAS's small-matrix sizes) are the plain
    # products: force narrow, uneven blocks; the weight gradient takes both orders (k >= m, k < m)
    monkeypatch.setattr(conv_gemm, "_small_gemm", True)     # as with OpenBLAS's AVX-512 kernels
    monkeypatch.setattr(conv_gemm, "SMALL_GEMM_MACS", m * k * 7)
    monkeypatch.setattr(conv_gemm, "MIN_BLOCK_OUT", 1)
    monkeypatch.setattr(conv_gemm, "MIN_BLOCK_SUM", 1)
    n = 45
    assert len(conv_gemm.column_blocks(n, m * k, 1)) == 7
    assert conv_gemm.column_blocks(n, m * k, 8) == [(0, n)]       # blocks too narrow: one
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((groups, m, k)), rng.standard_normal((groups, k, n))
    out = np.full((groups, m, n), np.nan)
    np.testing.assert_allclose(conv_gemm.matmul_columns(a, b, out), a @ b, atol=1e-12, rtol=0)
    d, c = rng.standard_normal((groups, m, n)), rng.standard_normal((groups, k, n))
    for swap_max in (0, 1 << 20):          # both orders of the product when k >= m
        monkeypatch.setattr(conv_gemm, "DW_SWAP_MAX", swap_max)
        np.testing.assert_allclose(conv_gemm.matmul_nt_blocks(d, c), d @ c.transpose(0, 2, 1),
                                   atol=1e-12, rtol=0)
    monkeypatch.setattr(conv_gemm, "_small_gemm", False)    # another kernel: whole products
    assert conv_gemm.column_blocks(n, m * k, 1) == [(0, n)]


@pytest.mark.parametrize("case", CONV_CASES[:6])
def test_conv_in_column_blocks_matches_torch(monkeypatch, case):
    # every GEMM of forward and backward cut into blocks of a few columns
    monkeypatch.setattr(conv_gemm, "_small_gemm", True)
    monkeypatch.setattr(conv_gemm, "SMALL_GEMM_MACS", 1)
    monkeypatch.setattr(conv_gemm, "MIN_BLOCK_OUT", 1)
    monkeypatch.setattr(conv_gemm, "MIN_BLOCK_SUM", 1)
    N, C, H, W, O, KH, KW, s, p, d, g = case
    rng = np.random.default_rng(22)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C // g, KH, KW))
    b = rng.standard_normal(O)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = TF.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=g)
    xc, wc, bc = (cnnlab.Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xc, wc, bc, stride=s, padding=p, dilation=d, groups=g)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), atol=1e-9, rtol=0)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    y.backward(dy)
    for mine, theirs in ((xc, xt), (wc, wt), (bc, bt)):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), atol=1e-9, rtol=0)


@pytest.mark.parametrize("layout,keep", [("cols", False), ("cols", True)])
@pytest.mark.parametrize("per_chunk", [1, 2])
@pytest.mark.parametrize("case", CONV_CASES[:6])
def test_conv_in_batch_chunks_matches_torch(monkeypatch, case, per_chunk, layout, keep):
    # inputs are processed in batch chunks (spread over the threads); large "cols" inputs
    # recompute their X_col in backward instead of keeping it.  Force both on small
    # shapes (chunks of 1 sample, and of 2)
    N, C, H, W, O, KH, KW, s, p, d, g = case
    s2, d2 = F.pair(s, "s"), F.pair(d, "d")
    p4 = F.conv_padding(p, (KH, KW), s2, d2, (H, W))
    OH = (H + p4[0] + p4[1] - d2[0] * (KH - 1) - 1) // s2[0] + 1
    OW = (W + p4[2] + p4[3] - d2[1] * (KW - 1) - 1) // s2[1] + 1
    n = N + 5
    monkeypatch.setattr(conv_gemm, "CHUNK_BYTES", per_chunk * C * KH * KW * OH * OW * 8)
    monkeypatch.setattr(conv_gemm, "SPLIT_BYTES", 0)
    monkeypatch.setattr(conv_gemm, "KEEP_BYTES", 1 << 40 if keep else 0)
    rng = np.random.default_rng(21)
    x = rng.standard_normal((n, C, H, W))        # more than two chunks
    w = rng.standard_normal((O, C // g, KH, KW))
    b = rng.standard_normal(O)
    y, cache = conv_k.conv2d_forward(x, w, b, s2, p4, d2, g, layout=layout)
    assert cache.chunk == per_chunk
    if keep:
        assert len(cache.cols) == -(-n // per_chunk) and cache.x is None
    else:
        assert cache.cols is None and cache.x is x
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = TF.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d, groups=g)
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-9, rtol=0)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw, db = conv_k.conv2d_backward(dy, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-9, rtol=0)
    np.testing.assert_allclose(dw, wt.grad.numpy(), atol=1e-9, rtol=0)
    np.testing.assert_allclose(db, bt.grad.numpy(), atol=1e-9, rtol=0)
    dx_only, dw_none, _ = conv_k.conv2d_backward(dy, cache, need_dw=False)
    assert dw_none is None
    np.testing.assert_allclose(dx_only, dx, atol=0, rtol=0)
