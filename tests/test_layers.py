"""Activations, linear, batch norm, dropout and losses: torch parity and gradcheck."""
import numpy as np
import pytest
from helpers import _torch, check_op, leaves

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F

torch = _torch()
TF = torch.nn.functional
rng = np.random.default_rng(0)


def with_zeros(shape):
    """Random values with some exact zeros (ReLU's kink)."""
    a = rng.standard_normal(shape)
    a.reshape(-1)[::3] = 0.0
    return a


@pytest.mark.parametrize("ours,theirs", [(F.relu, TF.relu), (F.sigmoid, torch.sigmoid),
                                         (F.tanh, torch.tanh)])
def test_activations_match_torch_including_zero(ours, theirs):
    check_op(ours, theirs, [with_zeros((4, 7))])


def test_relu_gradient_at_exactly_zero_is_zero():
    x = cnnlab.Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_relu_keeps_float16_on_numpy():
    from cnnlab.kernels import activation as act_k
    x = np.array([[-1.5, 0.0, 2.0, np.nan]], dtype=np.float16)
    y = act_k.relu_forward(x)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    dx = act_k.relu_backward(np.ones_like(x), y)
    np.testing.assert_array_equal(dx, np.array([[0, 0, 1, 0]], dtype=np.float16))


def test_sigmoid_is_stable_for_large_inputs():
    y = F.sigmoid(cnnlab.Tensor(np.array([-1000.0, 1000.0])))
    assert np.all(np.isfinite(y.data)) and y.data.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim):
    a = rng.standard_normal((3, 5)) * 5
    check_op(lambda x: F.softmax(x, dim), lambda x: TF.softmax(x, dim), [a])
    check_op(lambda x: F.log_softmax(x, dim), lambda x: TF.log_softmax(x, dim), [a])


def test_linear_matches_torch():
    x, w, b = rng.standard_normal((5, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3)
    check_op(F.linear, TF.linear, [x, w, b])
    check_op(lambda x, w: F.linear(x, w), lambda x, w: TF.linear(x, w), [x, w])
    x3 = rng.standard_normal((2, 4, 7))
    check_op(F.linear, TF.linear, [x3, w, b])


@pytest.mark.parametrize("shape", [(6, 4), (5, 3, 7), (4, 3, 5, 6), (1, 2, 3, 3)])
def test_batch_norm_training_matches_torch(shape):
    C = shape[1]
    x = rng.standard_normal(shape) * 3 + 1
    g, b = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    rm_c, rv_c = rm.copy(), rv.copy()
    check_op(lambda x, g, b: F.batch_norm(x, rm_c, rv_c, g, b, training=True, momentum=0.3),
             lambda x, g, b: TF.batch_norm(x, rm_t, rv_t, g, b, training=True, momentum=0.3),
             [x, g, b])
    np.testing.assert_allclose(rm_c, rm_t.numpy(), atol=1e-12, rtol=0)
    np.testing.assert_allclose(rv_c, rv_t.numpy(), atol=1e-12, rtol=0)


def test_batch_norm_eval_matches_torch():
    x = rng.standard_normal((4, 3, 5, 5))
    g, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    check_op(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False),
             lambda x, g, b: TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), g, b,
                                           training=False), [x, g, b])


def test_batch_norm_gradcheck():
    x, g, b = leaves(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(2), rng.standard_normal(2))
    cnnlab.gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), [x, g, b])


def test_batchnorm_module_matches_torch_over_steps():
    ours, theirs = nn.BatchNorm2d(3).double(), torch.nn.BatchNorm2d(3)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5))
        y = ours(cnnlab.Tensor(x))
        yt = theirs(torch.tensor(x))
        np.testing.assert_allclose(y.data, yt.detach().numpy(), atol=1e-9, rtol=0)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), atol=1e-12, rtol=0, err_msg=k)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(ours(cnnlab.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                               atol=1e-9, rtol=0)


def test_batchnorm_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*expects input \(N, 3, H, W\), got \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(cnnlab.Tensor(np.zeros((2, 4, 5, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(cnnlab.Tensor(np.zeros((1, 3), dtype=np.float32)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction):
    z = rng.standard_normal((6, 5)) * 4
    t = rng.integers(0, 5, 6)
    check_op(lambda z: F.cross_entropy(z, t, reduction=reduction),
             lambda z: TF.cross_entropy(z, torch.tensor(t), reduction=reduction), [z])
    check_op(lambda z: F.nll_loss(F.log_softmax(z, 1), t, reduction=reduction),
             lambda z: TF.nll_loss(TF.log_softmax(z, 1), torch.tensor(t), reduction=reduction), [z])


def test_cross_entropy_is_stable_for_huge_logits():
    z = cnnlab.Tensor(np.array([[1000.0, -1000.0], [0.0, 1e4]]), requires_grad=True)
    loss = F.cross_entropy(z, np.array([0, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(z.grad))


def test_cross_entropy_checks_targets():
    z = cnnlab.Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="out of range"):
        F.cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"expected target \(2,\)"):
        F.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(z, np.array([0.0, 1.0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(reduction):
    check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction),
             [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))])


@pytest.mark.parametrize("fn", [
    lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, 0), lambda x: F.sigmoid(x),
    lambda x: F.tanh(x), lambda x: F.relu(x + 0.05),
    lambda x: F.cross_entropy(x, np.array([1, 0, 3])),
    lambda x: F.mse_loss(x, cnnlab.Tensor(np.ones((3, 4)))),
])
def test_gradcheck_elementwise_and_losses(fn):
    (x,) = leaves(rng.standard_normal((3, 4)))
    cnnlab.gradcheck(fn, [x])


def test_linear_gradcheck():
    x, w, b = leaves(rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3))
    cnnlab.gradcheck(F.linear, [x, w, b])


def test_linear_with_zero_features_matches_torch():
    from cnnlab.kernels import linear as linear_k
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for n_in, n_out in ((0, 3), (4, 0), (0, 0)):
        x, w, b = rng.random((5, n_in)), rng.random((n_out, n_in)), rng.random(n_out)
        y = linear_k.linear_forward(x, w, b)
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        yt = torch.nn.functional.linear(xt, wt, bt)
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
        dy = rng.random(y.shape)
        yt.backward(torch.tensor(dy))
        dx, dw, db = linear_k.linear_backward(dy, x, w)
        for ours, theirs in ((dx, xt), (dw, wt), (db, bt)):
            assert ours.shape == tuple(theirs.shape)
            np.testing.assert_allclose(ours, theirs.grad.numpy(), atol=1e-12)


def test_dropout_train_and_eval():
    cnnlab.manual_seed(0)
    x = cnnlab.Tensor(np.ones((200, 100)), requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    kept = y.data != 0
    assert 0.45 < kept.mean() < 0.55
    assert set(np.unique(y.data)) == {0.0, 2.0}          # inverted scaling 1 / (1 - p)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)        # gradient uses the same mask
    assert F.dropout(x, 0.5, training=False) is x
    m = nn.Dropout(0.3).eval()
    assert m(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout_is_reproducible_with_manual_seed():
    x = cnnlab.Tensor(np.ones((10, 10)))
    cnnlab.manual_seed(3)
    a = F.dropout(x, 0.5).data
    cnnlab.manual_seed(3)
    b = F.dropout(x, 0.5).data
    np.testing.assert_array_equal(a, b)
    assert (a == 0).any() and (a == 2).any()      # it really dropped and rescaled
