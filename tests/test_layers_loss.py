"""Losses and LeNet-5's RBF output: torch parity in float64, gradcheck, equivalences, errors."""
import zlib

import numpy as np
import pytest
from helpers import _torch, check_op, leaves

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab.nn.modules.rbf import RBFOutput

torch = _torch()
TF = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]


def _rng(*key):
    """A generator seeded by the test's parameters (stable across runs)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _class_problem(rng, shape_kind, ignore):
    """Random logits and targets for the class-index losses; some targets ignored."""
    C = int(rng.integers(2, 6))
    if shape_kind == "unbatched":
        x_shape, t_shape = (C,), ()
    elif shape_kind == "2d":
        N = int(rng.integers(3, 8))
        x_shape, t_shape = (N, C), (N,)
    else:
        N, d1, d2 = (int(v) for v in rng.integers(2, 4, 3))
        x_shape, t_shape = (N, C, d1, d2), (N, d1, d2)
    x = rng.standard_normal(x_shape) * 3
    t = rng.integers(0, C, t_shape)
    if ignore is not None and t.ndim:
        t.reshape(-1)[::3] = ignore          # some ignored, the rest kept
    return x, t, C


# ------------------------------------------------------------- cross_entropy / nll
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape_kind", ["unbatched", "2d", "4d"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_matches_torch(reduction, shape_kind, weighted, smoothing):
    rng = _rng("ce", reduction, shape_kind, weighted, smoothing)
    ignore = int(rng.choice([-100, 1, 7]))      # 7 is out of range: allowed when ignored
    x, t, C = _class_problem(rng, shape_kind, ignore)
    w = rng.uniform(0.2, 2.0, C) if weighted else None
    kw = dict(ignore_index=ignore, reduction=reduction, label_smoothing=smoothing)
    check_op(lambda z: F.cross_entropy(z, t, weight=w, **kw),
             lambda z: TF.cross_entropy(z, torch.tensor(t),
                                        weight=None if w is None else torch.tensor(w), **kw), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape_kind", ["unbatched", "2d", "4d"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(reduction, shape_kind, weighted):
    rng = _rng("nll", reduction, shape_kind, weighted)
    ignore = int(rng.choice([-100, 0, 9]))
    x, t, C = _class_problem(rng, shape_kind, ignore)   # any scores, not only log-probs
    w = rng.uniform(0.2, 2.0, C) if weighted else None
    kw = dict(ignore_index=ignore, reduction=reduction)
    check_op(lambda z: F.nll_loss(z, t, weight=w, **kw),
             lambda z: TF.nll_loss(z, torch.tensor(t),
                                   weight=None if w is None else torch.tensor(w), **kw), [x])


def test_nll_of_log_softmax_equals_cross_entropy():
    rng = _rng("nll-ce")
    x, t, C = _class_problem(rng, "4d", 2)
    w = rng.uniform(0.5, 1.5, C)
    (a,), (b,) = leaves(x), leaves(x)
    la = F.cross_entropy(a, t, weight=w, ignore_index=2)
    lb = F.nll_loss(F.log_softmax(b, 1), t, weight=w, ignore_index=2)
    la.backward()
    lb.backward()
    np.testing.assert_allclose(la.data, lb.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.grad, b.grad, rtol=0, atol=1e-12)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    z = np.random.default_rng(1).standard_normal((3, 4))
    t = np.full(3, -100)
    ours = F.cross_entropy(cnnlab.Tensor(z), t, label_smoothing=0.1).item()
    theirs = TF.cross_entropy(torch.tensor(z), torch.tensor(t), label_smoothing=0.1).item()
    assert np.isnan(ours) and np.isnan(theirs)
    assert F.cross_entropy(cnnlab.Tensor(z), t, reduction="sum").item() == 0.0


def test_cross_entropy_gradient_is_softmax_minus_smoothed_onehot():
    """The notes' gradient, written out: (softmax(z) - ((1 - eps) onehot + eps / C)) / N."""
    rng = _rng("ce-grad")
    z, t, eps = rng.standard_normal((5, 4)), rng.integers(0, 4, 5), 0.2
    (zt,) = leaves(z)
    F.cross_entropy(zt, t, label_smoothing=eps).backward()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    target = np.full((5, 4), eps / 4) + (1 - eps) * np.eye(4)[t]
    np.testing.assert_allclose(zt.grad, (p - target) / 5, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- BCE
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, "full", "last"])
def test_binary_cross_entropy_matches_torch(reduction, weight_shape):
    rng = _rng("bce", reduction, weight_shape)
    shape = tuple(int(v) for v in rng.integers(2, 5, int(rng.integers(1, 4))))
    x = rng.uniform(0.02, 0.98, shape)
    y = rng.uniform(0, 1, shape)
    y.reshape(-1)[::4] = 1.0
    w = {None: None, "full": rng.uniform(0.1, 2, shape),
         "last": rng.uniform(0.1, 2, shape[-1:])}[weight_shape]
    check_op(lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction),
             lambda a, b: TF.binary_cross_entropy(
                 a, b, weight=None if w is None else torch.tensor(w), reduction=reduction),
             [x, y])


def test_binary_cross_entropy_clamps_log_at_minus_100_like_torch():
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    check_op(lambda a: F.binary_cross_entropy(a, cnnlab.Tensor(y), reduction="none"),
             lambda a: TF.binary_cross_entropy(a, torch.tensor(y), reduction="none"), [x])
    loss = F.binary_cross_entropy(cnnlab.Tensor(x), cnnlab.Tensor(y), reduction="none")
    assert loss.data[2] == 100.0 and loss.data[3] == 100.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_bce_with_logits_matches_torch(reduction, weighted, pos_weighted):
    rng = _rng("bcel", reduction, weighted, pos_weighted)
    N, C = (int(v) for v in rng.integers(2, 6, 2))
    shape = (N, C) if rng.integers(2) else (N, 2, C)
    x = rng.standard_normal(shape) * 5
    x.reshape(-1)[::5] = 60.0          # saturated: the stable form must not overflow
    x.reshape(-1)[1::5] = -60.0
    y = rng.uniform(0, 1, shape)
    w = rng.uniform(0.1, 2, shape[-2:]) if weighted else None
    pw = rng.uniform(0.1, 3, C) if pos_weighted else None
    check_op(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w, reduction=reduction,
                                                             pos_weight=pw),
             lambda a, b: TF.binary_cross_entropy_with_logits(
                 a, b, weight=None if w is None else torch.tensor(w), reduction=reduction,
                 pos_weight=None if pw is None else torch.tensor(pw)),
             [x, y])


def test_bce_with_logits_equals_bce_of_sigmoid():
    rng = _rng("bcel-eq")
    x, y = rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3))
    (a,), (b,) = leaves(x), leaves(x)
    la = F.binary_cross_entropy_with_logits(a, cnnlab.Tensor(y))
    lb = F.binary_cross_entropy(F.sigmoid(b), cnnlab.Tensor(y))
    la.backward()
    lb.backward()
    np.testing.assert_allclose(la.data, lb.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.grad, b.grad, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.grad, (1 / (1 + np.exp(-x)) - y) / y.size, rtol=0, atol=1e-12)


def test_cross_entropy_keeps_learning_where_squared_error_saturates():
    """The notes' argument (002): with a sigmoid output a = sigma(z), squared error's
    gradient carries sigma'(z) and vanishes when the unit is saturated and wrong;
    cross-entropy's gradient is a - y and stays large."""
    z = np.array([8.0, 12.0, -10.0])      # badly wrong, saturated units
    y = np.array([0.0, 0.0, 1.0])
    (zc,), (zm,) = leaves(z), leaves(z)
    F.binary_cross_entropy_with_logits(zc, cnnlab.Tensor(y), reduction="sum").backward()
    F.squared_error_loss(F.sigmoid(zm), cnnlab.Tensor(y)).backward()
    sig = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(zc.grad, sig - y, rtol=0, atol=1e-15)
    np.testing.assert_allclose(zm.grad, (sig - y) * sig * (1 - sig), rtol=1e-12)
    assert np.all(np.abs(zc.grad) > 0.99)
    assert np.all(np.abs(zm.grad) < 5e-4)
    assert np.all(np.abs(zc.grad) / np.abs(zm.grad) > 1000)


# --------------------------------------------------------------- multi-margin
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_multi_margin_loss_matches_torch(reduction, p, weighted, batched):
    rng = _rng("mm", reduction, p, weighted, batched)
    N, C = int(rng.integers(2, 7)), int(rng.integers(2, 6))
    x = rng.standard_normal((N, C) if batched else (C,))
    t = rng.integers(0, C, (N,) if batched else ())
    margin = float(rng.uniform(0.5, 2))
    w = rng.uniform(0.2, 2, C) if weighted else None
    check_op(lambda a: F.multi_margin_loss(a, t, p=p, margin=margin, weight=w,
                                           reduction=reduction),
             lambda a: TF.multi_margin_loss(a, torch.tensor(t), p=p, margin=margin,
                                            weight=None if w is None else torch.tensor(w),
                                            reduction=reduction), [x])


def test_multi_margin_loss_is_the_notes_svm_hinge():
    x = np.array([[3.2, 5.1, -1.7]])     # cs231n's example: class 0 scores 3.2
    loss = F.multi_margin_loss(cnnlab.Tensor(x), np.array([0]), reduction="sum")
    assert loss.item() == pytest.approx((max(0, 1 - 3.2 + 5.1) + max(0, 1 - 3.2 - 1.7)) / 3)


# --------------------------------------------------------- squared error / MSE
def test_squared_error_loss_is_half_the_summed_mse():
    rng = _rng("sq")
    y, t = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    check_op(lambda a, b: F.squared_error_loss(a, b),
             lambda a, b: 0.5 * TF.mse_loss(a, b, reduction="sum"), [y, t])
    check_op(lambda a, b: nn.SquaredErrorLoss()(a, b),
             lambda a, b: 0.5 * ((b - a) ** 2).sum(), [y, t])


# ------------------------------------------------------------------- modules
def _module_pairs(rng, reduction):
    C = 4
    w = rng.uniform(0.2, 2, C)
    pw = rng.uniform(0.2, 2, C)
    tw = torch.tensor(w)
    return [
        (nn.CrossEntropyLoss(w, ignore_index=2, reduction=reduction, label_smoothing=0.1),
         torch.nn.CrossEntropyLoss(tw, ignore_index=2, reduction=reduction, label_smoothing=0.1),
         "class"),
        (nn.NLLLoss(w, ignore_index=1, reduction=reduction),
         torch.nn.NLLLoss(tw, ignore_index=1, reduction=reduction), "class"),
        (nn.MultiMarginLoss(2, 0.7, w, reduction=reduction),
         torch.nn.MultiMarginLoss(2, 0.7, tw, reduction=reduction), "class"),
        (nn.BCELoss(w, reduction=reduction), torch.nn.BCELoss(tw, reduction=reduction), "prob"),
        (nn.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw),
         torch.nn.BCEWithLogitsLoss(tw, reduction=reduction, pos_weight=torch.tensor(pw)),
         "float"),
        (nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), "float"),
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_modules_match_torch_modules(reduction):
    rng = _rng("mod", reduction)
    for ours, theirs, kind in _module_pairs(rng, reduction):
        assert set(ours.state_dict()) == set(theirs.state_dict()), type(ours).__name__
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
        x = rng.standard_normal((6, 4))
        if kind == "class":
            t = rng.integers(0, 4, 6)
            check_op(lambda a, m=ours, t=t: m(a, t),
                     lambda a, m=theirs, t=t: m(a, torch.tensor(t)), [x])
        else:
            if kind == "prob":
                x = rng.uniform(0.05, 0.95, (6, 4))
            check_op(ours, theirs, [x, rng.uniform(0, 1, (6, 4))])


def test_loss_module_repr_and_buffers_follow_dtype():
    m = nn.CrossEntropyLoss([1.0, 2.0], ignore_index=3, label_smoothing=0.1)
    assert repr(m) == "CrossEntropyLoss(ignore_index=3, label_smoothing=0.1)"
    assert repr(nn.MultiMarginLoss(reduction="sum")) == \
        "MultiMarginLoss(p=1, margin=1.0, reduction='sum')"
    assert m.weight.dtype == np.float32
    z32 = cnnlab.Tensor(np.zeros((2, 2), dtype=np.float32))
    assert m(z32, np.array([0, 1])).dtype == np.float32
    m.double()
    assert m.weight.dtype == np.float64
    assert m(cnnlab.Tensor(np.zeros((2, 2))), np.array([0, 1])).dtype == np.float64


# ------------------------------------------------------------------ gradcheck
_G = np.random.default_rng(5)
_T = np.array([1, 0, 3, 2])
_W = _G.uniform(0.5, 1.5, 4)


@pytest.mark.parametrize("fn,make", [
    (lambda x: F.cross_entropy(x, _T, weight=_W, ignore_index=0, label_smoothing=0.2),
     lambda: [_G.standard_normal((4, 4))]),
    (lambda x: F.cross_entropy(x, np.array([[0, 1], [2, 2]]), reduction="none"),
     lambda: [_G.standard_normal((2, 3, 2))]),
    (lambda x: F.nll_loss(x, _T, weight=_W, ignore_index=3),
     lambda: [_G.standard_normal((4, 4))]),
    (lambda x, y: F.binary_cross_entropy(x, y, weight=_W),
     lambda: [_G.uniform(0.1, 0.9, (3, 4)), _G.uniform(0, 1, (3, 4))]),
    (lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=_W, pos_weight=_W[::-1].copy()),
     lambda: [_G.standard_normal((3, 4)) * 3, _G.uniform(0, 1, (3, 4))]),
    (lambda x: F.multi_margin_loss(x, _T, p=1, margin=0.8, weight=_W),
     lambda: [_G.standard_normal((4, 4))]),
    (lambda x: F.multi_margin_loss(x, _T, p=2, reduction="none"),
     lambda: [_G.standard_normal((4, 4))]),
    (lambda y, t: F.squared_error_loss(y, t),
     lambda: [_G.standard_normal((3, 4)), _G.standard_normal((3, 4))]),
    (lambda x, w: F.rbf_output(x, w),
     lambda: [_G.standard_normal((3, 5)), _G.choice([-1.0, 1.0], (4, 5))]),
])
def test_gradcheck_losses(fn, make):
    cnnlab.gradcheck(fn, leaves(*make()))


# ------------------------------------------------------------------ RBF output
def test_rbf_output_equals_expanded_squared_distance():
    rng = _rng("rbf")
    x, w = rng.standard_normal((6, 84)), rng.choice([-1.0, 1.0], (10, 84))
    y = F.rbf_output(cnnlab.Tensor(x), cnnlab.Tensor(w)).data
    expanded = (x * x).sum(1)[:, None] - 2 * x @ w.T + (w * w).sum(1)[None, :]
    np.testing.assert_allclose(y, expanded, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(y[2, 3], ((x[2] - w[3]) ** 2).sum())


def test_rbf_output_module_init_centres_and_errors():
    cnnlab.manual_seed(0)
    m = RBFOutput(84, 10)
    assert m.weight.shape == (10, 84) and m.weight.dtype == np.float32
    assert set(np.unique(m.weight.data)) == {-1.0, 1.0}
    assert repr(m) == "RBFOutput(in_features=84, num_classes=10)"
    centres = np.arange(6.0).reshape(2, 3)
    m2 = RBFOutput(3, 2, centres=centres, dtype=np.float64)
    np.testing.assert_array_equal(m2.weight.data, centres)
    y = m2(cnnlab.Tensor(centres[::-1].copy()))
    np.testing.assert_array_equal(y.data, [[27.0, 0.0], [0.0, 27.0]])   # argmin = own centre
    x32 = cnnlab.Tensor(np.ones((2, 84), dtype=np.float32))
    assert m(x32).dtype == np.float32
    with pytest.raises(ValueError, match=r"RBFOutput\(in_features=84.*expects input \(N, 84\), "
                                         r"got \(2, 83\)"):
        m(cnnlab.Tensor(np.ones((2, 83), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"centres must have shape \(2, 3\).*got \(3, 2\)"):
        RBFOutput(3, 2, centres=centres.T)
    with pytest.raises(ValueError, match="in_features and num_classes must be positive"):
        RBFOutput(0, 10)
    with pytest.raises(ValueError, match=r"rbf_output: expected input \(N, 3\)"):
        F.rbf_output(cnnlab.Tensor(np.ones((2, 4))), cnnlab.Tensor(centres))


def test_rbf_output_trains_with_cross_entropy_on_negative_penalty():
    """Documented usage: cross_entropy(-y, t) = y_t + log sum_i exp(-y_i) (LeCun's MAP
    criterion without the rubbish class); a few gradient steps on the centres lower it."""
    rng = _rng("rbf-train")
    x, t = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
    m = RBFOutput(3 * 2, 3, dtype=np.float64)
    y = m(cnnlab.Tensor(x))
    loss = F.cross_entropy(-y, t)
    yd = y.data
    lecun = np.mean(yd[np.arange(20), t] + np.log(np.exp(-yd).sum(1)))
    assert loss.item() == pytest.approx(lecun, rel=1e-12)
    first = loss.item()
    for _ in range(20):
        m.zero_grad()
        loss = F.cross_entropy(-m(cnnlab.Tensor(x)), t)
        loss.backward()
        m.weight.data -= 0.05 * m.weight.grad
    assert loss.item() < 0.5 * first


# ------------------------------------------------------------- dtype and errors
@pytest.mark.parametrize("fn", [
    lambda x: F.cross_entropy(x, np.array([0, 2]), weight=np.ones(3, np.float32),
                              label_smoothing=0.1),
    lambda x: F.nll_loss(x, np.array([0, 2]), reduction="none"),
    lambda x: F.binary_cross_entropy(F.sigmoid(x), cnnlab.Tensor(np.full((2, 3), 0.5, np.float32))),
    lambda x: F.binary_cross_entropy_with_logits(
        x, cnnlab.Tensor(np.ones((2, 3), np.float32)), pos_weight=np.ones(3, np.float32)),
    lambda x: F.multi_margin_loss(x, np.array([1, 2]), p=2),
    lambda x: F.squared_error_loss(x, cnnlab.Tensor(np.zeros((2, 3), np.float32))),
])
def test_float32_stays_float32(fn):
    x = cnnlab.Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32),
                      requires_grad=True)
    loss = fn(x)
    assert loss.dtype == np.float32
    loss.sum().backward()
    assert x.grad.dtype == np.float32


def test_loss_errors_name_the_op_and_the_values():
    z = cnnlab.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cross_entropy: expected target \(2, 4\) for input "
                                         r"\(2, 3, 4\), got \(2,\)"):
        F.cross_entropy(cnnlab.Tensor(np.zeros((2, 3, 4))), np.array([0, 1]))
    with pytest.raises(IndexError, match=r"nll_loss: target -1\.\.1 out of range for 3 classes"):
        F.nll_loss(z, np.array([-1, 1]))
    with pytest.raises(IndexError, match="out of range"):   # ignore_index does not hide others
        F.cross_entropy(z, np.array([3, 5]), ignore_index=5)
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(3,\).*\(2,\)"):
        F.cross_entropy(z, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(TypeError, match="cross_entropy: all inputs must share one dtype"):
        F.cross_entropy(z, np.array([0, 1]), weight=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(z, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="nll_loss: reduction must be one of .* got 'avg'"):
        F.nll_loss(z, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input should be "
                                         "between 0 and 1, got 0.0..1.5"):
        F.binary_cross_entropy(cnnlab.Tensor(np.array([0.0, 1.5])), cnnlab.Tensor(np.ones(2)))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: target \(2,\) must "
                                         r"have the same shape as input \(2, 3\)"):
        F.binary_cross_entropy_with_logits(z, cnnlab.Tensor(np.ones(2)))
    with pytest.raises(ValueError, match=r"pos_weight \(2,\) must broadcast to the input shape"):
        F.binary_cross_entropy_with_logits(z, z, pos_weight=np.ones(2))
    with pytest.raises(TypeError, match="binary_cross_entropy_with_logits: target must be a "
                                        "floating point"):
        F.binary_cross_entropy_with_logits(z, cnnlab.Tensor(np.ones((2, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match="multi_margin_loss: only p == 1 and p == 2 are "
                                         "supported, got p=3"):
        F.multi_margin_loss(z, np.array([0, 1]), p=3)
    with pytest.raises(ValueError, match=r"multi_margin_loss: expected input \(C,\) or \(N, C\)"):
        F.multi_margin_loss(cnnlab.Tensor(np.zeros((2, 3, 4))), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match=r"squared_error_loss: input \(2, 3\) and target \(3,\)"):
        F.squared_error_loss(z, cnnlab.Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be one of"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"NLLLoss: weight must be a 1-D .* got shape \(2, 2\)"):
        nn.NLLLoss(np.ones((2, 2)))
    with pytest.raises(ValueError, match="MultiMarginLoss: only p == 1 and p == 2.*p=0"):
        nn.MultiMarginLoss(p=0)
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing .* got -0.1"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)
