"""Pooling layers beyond max/avg 2-D: 1-D pools, LP pools, stochastic pooling,
adaptive pools and LeNet's trainable subsampling.  Parity with torch in
float64 where torch has the layer, gradcheck and equivalences where it does not."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import _torch, check_op

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F

torch = _torch()
TF = torch.nn.functional


def T(a, grad=False):
    return cnnlab.Tensor(np.array(a, dtype=np.float64), requires_grad=grad)


# ---------------------------------------------------------------------- 1-D pools
def _pool1d_cases(n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        k = int(rng.integers(1, 6))
        s = int(rng.integers(1, k + 2))
        p = int(rng.integers(0, k // 2 + 1))
        d = int(rng.integers(1, 3))
        L = int(rng.integers(d * (k - 1) + 1, 20))
        yield rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 4)), L)), k, s, p, \
            d, bool(rng.integers(0, 2))


@pytest.mark.parametrize("case", list(_pool1d_cases(25, 0)))
def test_max_pool1d_matches_torch(case):
    x, k, s, p, d, ceil = case
    check_op(lambda t: F.max_pool1d(t, k, s, p, d, ceil),
             lambda t: TF.max_pool1d(t, k, s, p, d, ceil), [x])
    _, idx = F.max_pool1d(T(x), k, s, p, d, ceil, return_indices=True)
    _, tidx = TF.max_pool1d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(idx.data, tidx.numpy())


@pytest.mark.parametrize("case", list(_pool1d_cases(25, 1)))
def test_avg_pool1d_matches_torch(case):
    x, k, s, p, _, ceil = case
    for cip in (True, False):
        check_op(lambda t, c=cip: F.avg_pool1d(t, k, s, p, ceil, c),
                 lambda t, c=cip: TF.avg_pool1d(t, k, s, p, ceil, c), [x])


def test_pool1d_modules_unbatched_and_ties():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, (2, 3, 13)).astype(np.float64)   # many ties
    check_op(lambda t: nn.MaxPool1d(3, 2, 1, ceil_mode=True)(t),
             lambda t: torch.nn.MaxPool1d(3, 2, 1, ceil_mode=True)(t), [x])
    check_op(lambda t: nn.AvgPool1d(4, 3, 2, True, False)(t),
             lambda t: torch.nn.AvgPool1d(4, 3, 2, True, False)(t), [x])
    check_op(lambda t: nn.MaxPool1d(3)(t), lambda t: torch.nn.MaxPool1d(3)(t), [x[0]])
    y, idx = nn.MaxPool1d(2, return_indices=True)(T(x[0]))
    _, tidx = torch.nn.MaxPool1d(2, return_indices=True)(torch.tensor(x[0]))
    assert y.shape == (3, 6)
    np.testing.assert_array_equal(idx.data, tidx.numpy())


def test_pool1d_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"max_pool1d: expected input \(N, C, L\)"):
        F.max_pool1d(T(np.zeros((1, 1, 4, 4))), 2)
    with pytest.raises(ValueError, match="max_pool1d: padding 2 must be between 0 and half"):
        F.max_pool1d(T(np.zeros((1, 1, 8))), 3, padding=2)
    with pytest.raises(ValueError, match="avg_pool1d: input length 2 .* smaller than the window 3"):
        F.avg_pool1d(T(np.zeros((1, 1, 2))), 3)
    with pytest.raises(ValueError, match=r"MaxPool1d\(kernel_size=5.*smaller than the window 5"):
        nn.MaxPool1d(5)(T(np.zeros((1, 1, 3))))
    with pytest.raises(ValueError, match=r"AvgPool1d\(kernel_size=2.*expects input \(N, C, L\)"):
        nn.AvgPool1d(2)(T(np.zeros((1, 1, 3, 3))))
    with pytest.raises(ValueError, match="AvgPool1d: kernel_size and stride must be >= 1, got 0"):
        nn.AvgPool1d(0)
    with pytest.raises(ValueError, match="max_pool1d: kernel_size must be an int or a 1-tuple"):
        F.max_pool1d(T(np.zeros((1, 1, 8))), (2, 2))


# -------------------------------------------- the notes' example, AlexNet's pools
def test_notes_worked_example_max_and_average():
    # the window [1, 2, 3, 2]: as a 1-D window of 4 and as a 2x2 window
    for x, fmax, favg in [(T([[[1, 2, 3, 2]]], True), lambda t: F.max_pool1d(t, 4),
                           lambda t: F.avg_pool1d(t, 4)),
                          (T([[[[1, 2], [3, 2]]]], True), lambda t: F.max_pool2d(t, 2),
                           lambda t: F.avg_pool2d(t, 2))]:
        g = 5.0
        y = fmax(x)
        assert y.data.ravel().tolist() == [3.0]
        (y * g).sum().backward()
        assert x.grad.ravel().tolist() == [0, 0, g, 0]
        x.grad = None
        y = favg(x)
        assert y.data.ravel().tolist() == [2.0]
        (y * g).sum().backward()
        assert x.grad.ravel().tolist() == [g / 4] * 4


def test_max_pool_tie_rule_first_in_scan_order():
    x = T([[[3, 1, 3, 3]]], True)
    F.max_pool1d(x, 4).sum().backward()
    assert x.grad.ravel().tolist() == [1, 0, 0, 0]
    assert "first maximum in scan order" in nn.MaxPool2d.__doc__
    assert "[1, 2, 3, 2]" in nn.modules.pooling.__doc__


@pytest.mark.parametrize("size,ceil,out", [(55, False, 27), (55, True, 27), (56, False, 27),
                                           (56, True, 28), (13, False, 6), (14, True, 7)])
def test_alexnet_overlapping_3x3_stride_2(size, ceil, out):
    x = np.random.default_rng(size).standard_normal((1, 2, size, size))
    m = nn.MaxPool2d(3, 2, ceil_mode=ceil)
    assert m(T(x)).shape == (1, 2, out, out)
    check_op(lambda t: m(t), lambda t: torch.nn.MaxPool2d(3, 2, ceil_mode=ceil)(t), [x])
    check_op(lambda t: nn.AvgPool2d(3, 2, ceil_mode=ceil)(t),
             lambda t: torch.nn.AvgPool2d(3, 2, ceil_mode=ceil)(t), [x])


# ----------------------------------------------------------------------- LP pool
def _lp_cases(n, seed):
    rng = np.random.default_rng(seed)
    ps = [1, 2, 3, 1.5, 4.0, 0.5]
    for i in range(n):
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        s = (int(rng.integers(1, kh + 2)), int(rng.integers(1, kw + 2)))
        H, W = int(rng.integers(kh, 10)), int(rng.integers(kw, 10))
        yield ps[i % len(ps)], (kh, kw), s, bool(rng.integers(0, 2)), \
            rng.uniform(0.1, 2.0, (2, 3, H, W))


@pytest.mark.parametrize("p,k,s,ceil,x", list(_lp_cases(24, 3)))
def test_lp_pool2d_matches_torch(p, k, s, ceil, x):
    check_op(lambda t: F.lp_pool2d(t, p, k, s, ceil), lambda t: TF.lp_pool2d(t, p, k, s, ceil),
             [x])
    check_op(lambda t: nn.LPPool2d(p, k, s, ceil)(t),
             lambda t: torch.nn.LPPool2d(p, k, s, ceil)(t), [x])


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool_signed_inputs_and_zero_windows_match_torch(p):
    # integer p on signed inputs (p = 3 can make a window's sum negative: NaN in
    # both), and an all-zero window whose gradient torch gates to 0
    x = np.random.default_rng(p).standard_normal((2, 2, 6, 6))
    x[0, 0, :2, :2] = 0
    if p == 3:
        x = np.abs(x)
    check_op(lambda t: F.lp_pool2d(t, p, 2), lambda t: TF.lp_pool2d(t, p, 2), [x])


def test_lp_pool1d_matches_torch():
    x = np.random.default_rng(4).uniform(0.1, 2, (2, 3, 11))
    for a in [(2, 3, 2, True), (1, 2, None, False), (1.5, 4, 1, False)]:
        check_op(lambda t, a=a: F.lp_pool1d(t, *a), lambda t, a=a: TF.lp_pool1d(t, *a), [x])
        check_op(lambda t, a=a: nn.LPPool1d(*a)(t), lambda t, a=a: torch.nn.LPPool1d(*a)(t), [x])


def test_lp_pool_special_cases_sum_and_l2():
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 8))
    s1 = F.lp_pool2d(T(x), 1, 2).data
    np.testing.assert_allclose(s1, x.reshape(2, 3, 3, 2, 4, 2).sum(axis=(3, 5)), atol=1e-12)
    l2 = F.lp_pool2d(T(x), 2, (3, 2)).data
    np.testing.assert_allclose(l2, np.sqrt((x ** 2).reshape(2, 3, 2, 3, 4, 2).sum(axis=(3, 5))),
                               atol=1e-12)


def test_lp_pool_gradcheck_and_errors():
    x = T(np.random.default_rng(6).uniform(0.2, 2, (1, 2, 5, 5)), True)
    cnnlab.gradcheck(lambda t: F.lp_pool2d(t, 2.5, 2, 1, True), [x])
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValueError, match=f"LPPool2d: norm_type must be positive and finite, "
                                             f"got {bad}"):
            nn.LPPool2d(bad, 2)
        with pytest.raises(ValueError, match="lp_pool2d: norm_type must be positive"):
            F.lp_pool2d(x, bad, 2)
    with pytest.raises(ValueError, match="LPPool1d: norm_type"):
        nn.LPPool1d(0, 2)
    with pytest.raises(ValueError, match=r"LPPool2d\(norm_type=2.*smaller than the window"):
        nn.LPPool2d(2, 6)(x)


# ------------------------------------------------------------- stochastic pooling
def _positive(shape, seed):
    return np.random.default_rng(seed).uniform(0.1, 2.0, shape)


def test_stochastic_pool_eval_gradcheck_and_formula():
    x = _positive((2, 2, 7, 7), 7)
    for k, s in [(2, 2), (3, 2), ((2, 3), (1, 2))]:
        cnnlab.gradcheck(lambda t, k=k, s=s: F.stochastic_pool2d(t, k, s, training=False),
                         [T(x, True)])
        # sum p_i a_i = sum a^2 / sum a = avg_pool(a^2) / avg_pool(a)
        expect = F.avg_pool2d(T(x ** 2), k, s).data / F.avg_pool2d(T(x), k, s).data
        np.testing.assert_allclose(F.stochastic_pool2d(T(x), k, s, training=False).data, expect,
                                   atol=1e-12)


def test_stochastic_pool_train_gradcheck_with_fixed_seed():
    x = _positive((2, 2, 6, 6), 8)

    def fn(t):
        cnnlab.manual_seed(11)   # the same draws at every evaluation
        return F.stochastic_pool2d(t, 3, 2, training=True)
    cnnlab.gradcheck(fn, [T(x, True)])


def test_stochastic_pool_train_samples_with_probability_proportional_to_activation():
    window = np.array([[0.0, 1.0], [3.0, 4.0]])          # p = 0, 1/8, 3/8, 1/2
    x = np.tile(window, (10, 20, 40, 40))                 # 10 * 20 * 40 * 40 = 320000 draws / 4
    cnnlab.manual_seed(0)
    y = F.stochastic_pool2d(T(x), 2).data
    freq = np.array([(y == v).mean() for v in (0.0, 1.0, 3.0, 4.0)])
    assert freq[0] == 0                                   # zero activations are never picked
    np.testing.assert_allclose(freq, [0, 1 / 8, 3 / 8, 1 / 2], atol=0.005)


def test_stochastic_pool_kernel_inverse_cdf_edges():
    # u = 0 picks the first positive position; u at (or rounded up to) 1 the last one
    from cnnlab.kernels import pool_extra
    x = np.array([[[[0.0, 2.0, 0.0], [5.0, 0.0, 0.0]]]], dtype=np.float32)
    for u, want in [(0.0, 2.0), (0.5, 5.0), (1.0, 5.0)]:
        y, cache = pool_extra.stochastic_pool2d_train_forward(
            x, (2, 3), (1, 1), np.full((1, 1, 1, 1), u))
        assert y.item() == want and y.dtype == np.float32
        assert x.reshape(-1)[cache.chosen.item()] == want


def test_stochastic_pool_train_routes_gradient_to_sampled_position():
    x = T(np.random.default_rng(9).permutation(64).reshape(1, 1, 8, 8) + 1.0, True)
    cnnlab.manual_seed(1)
    y = F.stochastic_pool2d(x, 2)
    up = np.random.default_rng(1).standard_normal(y.shape)
    (y * cnnlab.Tensor(up)).sum().backward()
    # distinct values: the sampled position is the one holding the output value
    expect = np.zeros((8, 8))
    for i in range(4):
        for j in range(4):
            block = x.data[0, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
            r, c = np.argwhere(block == y.data[0, 0, i, j])[0]
            expect[2 * i + r, 2 * j + c] = up[0, 0, i, j]
    np.testing.assert_array_equal(x.grad[0, 0], expect)


def test_stochastic_pool_reproducible_with_seed_and_module_modes():
    x = T(_positive((2, 3, 8, 8), 10))
    m = nn.StochasticPool2d(2)
    cnnlab.manual_seed(42)
    a = m(x).data
    cnnlab.manual_seed(42)
    b = m(x).data
    c = m(x).data                                       # the generator moved on
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)
    m.eval()
    e1, e2 = m(x).data, m(x).data
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(e1, F.stochastic_pool2d(x, 2, training=False).data)


def test_stochastic_pool_zero_windows_and_errors():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = [[1.0, 2.0], [3.0, 0.0]]
    for training in (True, False):
        t = T(x, True)
        y = F.stochastic_pool2d(t, 2, training=training)
        assert y.data[0, 0, 0, 0] == 0 and y.data[0, 0, 0, 1] == 0 and y.data[0, 0, 1, 0] == 0
        y.sum().backward()
        assert not t.grad[0, 0, :2].any() and not t.grad[0, 0, :, :2].any()
        assert np.isfinite(t.grad).all()
    with pytest.raises(ValueError, match="stochastic_pool2d: input must be non-negative"):
        F.stochastic_pool2d(T(x - 1), 2)
    with pytest.raises(ValueError, match=r"StochasticPool2d\(kernel_size=\(2, 2\).*non-negative"):
        nn.StochasticPool2d(2)(T(x - 1))
    with pytest.raises(ValueError, match=r"StochasticPool2d: kernel_size and stride must be >= 1"):
        nn.StochasticPool2d(0)


def test_stochastic_pool_keeps_float32():
    x = cnnlab.Tensor(_positive((1, 2, 4, 4), 12).astype(np.float32), requires_grad=True)
    for training in (True, False):
        y = F.stochastic_pool2d(x, 2, training=training)
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32


# ---------------------------------------------------------------------- adaptive
ADAPTIVE_CASES = [((7, 7), 1), ((7, 7), 7), ((5, 5), 2), ((6, 6), 2), ((9, 10), (4, 3)),
                  ((3, 4), (5, 7)), ((2, 3), 6), ((8, 5), (None, 3)), ((8, 5), (3, None)),
                  ((13, 11), (6, 6)), ((1, 1), 3), ((10, 7), (3, 7))]


@pytest.mark.parametrize("hw,out", ADAPTIVE_CASES)
def test_adaptive_pools_match_torch(hw, out):
    x = np.random.default_rng(sum(hw)).standard_normal((2, 3, *hw))
    check_op(lambda t: F.adaptive_avg_pool2d(t, out), lambda t: TF.adaptive_avg_pool2d(t, out), [x])
    check_op(lambda t: nn.AdaptiveMaxPool2d(out)(t),
             lambda t: torch.nn.AdaptiveMaxPool2d(out)(t), [x])
    _, idx = F.adaptive_max_pool2d(T(x), out, return_indices=True)
    _, tidx = TF.adaptive_max_pool2d(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(idx.data, tidx.numpy())


def test_adaptive_pools_random_sizes_ties_unbatched_and_1d():
    rng = np.random.default_rng(13)
    for _ in range(15):
        H, W, OH, OW = (int(v) for v in rng.integers(1, 12, 4))
        x = rng.integers(0, 3, (2, 2, H, W)).astype(np.float64)    # ties
        o2, oh, ow = (OH, OW), OH, OW
        check_op(lambda t, o=o2: F.adaptive_max_pool2d(t, o),
                 lambda t, o=o2: TF.adaptive_max_pool2d(t, o), [x])
        check_op(lambda t, o=o2: nn.AdaptiveAvgPool2d(o)(t),
                 lambda t, o=o2: torch.nn.AdaptiveAvgPool2d(o)(t), [x])
        check_op(lambda t, o=oh: F.adaptive_avg_pool2d(t, o),
                 lambda t, o=oh: TF.adaptive_avg_pool2d(t, o), [x[0]])
        check_op(lambda t, o=ow: nn.AdaptiveAvgPool1d(o)(t),
                 lambda t, o=ow: torch.nn.AdaptiveAvgPool1d(o)(t), [x[:, 0]])
        check_op(lambda t, o=ow: nn.AdaptiveMaxPool1d(o)(t),
                 lambda t, o=ow: torch.nn.AdaptiveMaxPool1d(o)(t), [x[:, :, 0]])
        _, idx = F.adaptive_max_pool1d(T(x[0]), OW, return_indices=True)
        _, tidx = TF.adaptive_max_pool1d(torch.tensor(x[0]), OW, return_indices=True)
        np.testing.assert_array_equal(idx.data, tidx.numpy())


@pytest.mark.parametrize("size,bins", [(5, [(0, 3), (2, 5)]), (6, [(0, 3), (3, 6)])])
def test_adaptive_quadrants_as_in_the_notes(size, bins):
    # one output per quadrant whatever the input size; odd sizes share the middle row/column
    x = np.random.default_rng(size).standard_normal((2, 3, size, size))
    avg = nn.AdaptiveAvgPool2d(2)(T(x)).data
    mx = nn.AdaptiveMaxPool2d(2)(T(x)).data
    for i, (r0, r1) in enumerate(bins):
        for j, (c0, c1) in enumerate(bins):
            block = x[:, :, r0:r1, c0:c1]
            np.testing.assert_allclose(avg[:, :, i, j], block.mean(axis=(2, 3)), atol=1e-12)
            np.testing.assert_array_equal(mx[:, :, i, j], block.max(axis=(2, 3)))


def test_global_average_pooling_and_errors():
    x = np.random.default_rng(14).standard_normal((3, 4, 5, 7))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(T(x)).data[:, :, 0, 0], x.mean(axis=(2, 3)),
                               atol=1e-12)
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d: output_size must be a positive int"):
        nn.AdaptiveAvgPool2d(0)
    with pytest.raises(ValueError, match=r"AdaptiveMaxPool2d: output_size .* got \(2, 2, 2\)"):
        nn.AdaptiveMaxPool2d((2, 2, 2))
    with pytest.raises(ValueError, match=r"AdaptiveMaxPool1d: output_size must be a positive int"):
        nn.AdaptiveMaxPool1d((2, 2))
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must be positive ints"):
        F.adaptive_avg_pool2d(T(x), (0, 1))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d\(output_size=2\) expects input"):
        nn.AdaptiveAvgPool2d(2)(T(x[0, 0]))


def test_adaptive_pools_keep_float32():
    x = cnnlab.Tensor(np.random.default_rng(15).standard_normal((1, 2, 5, 6)).astype(np.float32),
                      requires_grad=True)
    for fn in (lambda t: F.adaptive_avg_pool2d(t, 3), lambda t: F.adaptive_max_pool2d(t, (2, 4)),
               lambda t: F.lp_pool2d(t.abs(), 2, 2)):
        x.grad = None
        y = fn(x)
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32


# -------------------------------------------------------------------- subsample
def _block_sum(x, n):
    N, C, H, W = x.shape
    H2, W2 = H // n, W // n
    return x[:, :, :H2 * n, :W2 * n].reshape(N, C, H2, n, W2, n).sum(axis=(3, 5))


def test_subsample_gradcheck():
    rng = np.random.default_rng(16)
    x, w, b = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal(3), rng.standard_normal(3)
    cnnlab.gradcheck(lambda *a: F.subsample2d(a[0], a[1], a[2], 2), [T(x, True), T(w, True),
                                                                      T(b, True)])
    cnnlab.gradcheck(lambda a, c: F.subsample2d(a, c, None, (2, 3)), [T(x, True), T(w, True)])


def test_subsample_forward_and_gradients_as_in_the_notes():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 3, 7, 8))           # 7 rows: the last one is dropped
    m = nn.Subsample2d(3, 2).double()
    m.weight.data[...] = rng.standard_normal(3)
    m.bias.data[...] = rng.standard_normal(3)
    xt = T(x, True)
    y = m(xt)
    down = _block_sum(x, 2)
    np.testing.assert_allclose(y.data, m.weight.data[:, None, None] * down
                               + m.bias.data[:, None, None], atol=1e-12)
    delta = rng.standard_normal(y.shape)
    (y * cnnlab.Tensor(delta)).sum().backward()
    np.testing.assert_allclose(m.weight.grad, (delta * down).sum(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(m.bias.grad, delta.sum(axis=(0, 2, 3)), atol=1e-12)
    up = np.kron(delta * m.weight.data[:, None, None], np.ones((2, 2)))
    np.testing.assert_allclose(xt.grad[:, :, :6], up, atol=1e-12)
    assert not xt.grad[:, :, 6].any()


def test_subsample_with_inverse_area_weight_is_average_pooling():
    x = np.random.default_rng(18).standard_normal((2, 4, 9, 9))
    for n in (2, 3):
        m = nn.Subsample2d(4, n).double()
        m.weight.data[...] = 1.0 / n ** 2
        check_op(m, lambda t, n=n: TF.avg_pool2d(t, n), [x])


def test_subsample_init_dtype_and_errors():
    m = nn.Subsample2d(6, 2)
    assert [name for name, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.shape == (6,) and (m.weight.data == 1).all() and (m.bias.data == 0).all()
    assert m.weight.dtype == np.float32
    assert repr(m) == "Subsample2d(6, kernel_size=(2, 2))"
    y = m(cnnlab.Tensor(np.ones((1, 6, 4, 4), dtype=np.float32)))
    assert y.dtype == np.float32 and (y.data == 4).all()
    assert nn.Subsample2d(2, 2, bias=False).bias is None
    with pytest.raises(ValueError, match=r"Subsample2d\(6, kernel_size=\(2, 2\)\) expects input "
                                         r"\(N, 6, H, W\), got \(1, 5, 4, 4\)"):
        m(cnnlab.Tensor(np.ones((1, 5, 4, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"Subsample2d\(6.*smaller than the window 2"):
        m(cnnlab.Tensor(np.ones((1, 6, 1, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="Subsample2d: channels must be >= 1, got 0"):
        nn.Subsample2d(0, 2)
    with pytest.raises(ValueError, match=r"Subsample2d: kernel_size must be >= 1, got \(0, 0\)"):
        nn.Subsample2d(3, 0)
    with pytest.raises(ValueError, match=r"subsample2d: weight must have shape \(3,\) .* got \(2,\)"):
        F.subsample2d(T(np.ones((1, 3, 4, 4))), T(np.ones(2)), None, 2)
    with pytest.raises(TypeError, match="subsample2d: all inputs must share one dtype"):
        F.subsample2d(T(np.ones((1, 3, 4, 4))), np.ones(3, dtype=np.float32), None, 2)


def test_exports():
    for name in ["MaxPool1d", "AvgPool1d", "LPPool1d", "LPPool2d", "StochasticPool2d",
                 "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d",
                 "AdaptiveMaxPool2d", "Subsample2d"]:
        assert name in nn.modules.pooling.__all__ and hasattr(nn, name)
    for name in ["max_pool1d", "avg_pool1d", "lp_pool1d", "lp_pool2d", "stochastic_pool2d",
                 "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
                 "adaptive_max_pool2d", "subsample2d"]:
        assert hasattr(F, name)


def test_non_contiguous_inputs_give_the_same_values_and_gradients():
    # inputs come in any memory layout (conv outputs are channel-major views); every op must read them
    x = np.abs(np.random.default_rng(19).standard_normal((2, 5, 7, 3))).transpose(0, 3, 1, 2)
    w = cnnlab.Tensor(np.random.default_rng(20).standard_normal(3))
    fns = [lambda t: F.adaptive_avg_pool2d(t, 3), lambda t: F.adaptive_max_pool2d(t, (2, 4)),
           lambda t: F.lp_pool2d(t, 2, 2), lambda t: F.max_pool1d(t[:, :, 0], 2, 1),
           lambda t: F.avg_pool1d(t[:, :, 0], 2), lambda t: F.subsample2d(t, w, None, 2),
           lambda t: F.stochastic_pool2d(t, 2, training=False),
           lambda t: (cnnlab.manual_seed(0), F.stochastic_pool2d(t, 2))[1]]
    up = np.random.default_rng(21)
    for fn in fns:
        a, b = T(np.ascontiguousarray(x), True), cnnlab.Tensor(x, requires_grad=True)
        assert b.data.flags.c_contiguous is False and a.data.flags.c_contiguous
        ya, yb = fn(a), fn(b)
        np.testing.assert_array_equal(yb.data, ya.data)
        g = cnnlab.Tensor(up.standard_normal(ya.shape))
        (ya * g).sum().backward()
        (yb * g).sum().backward()
        np.testing.assert_allclose(b.grad, a.grad, rtol=0, atol=1e-14)
