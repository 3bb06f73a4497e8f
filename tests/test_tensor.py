"""Tensor arithmetic and the autograd engine: parity with torch and gradcheck."""
import numpy as np
import pytest
from helpers import _torch, check_op, leaves

import cnnlab

torch = _torch()
rng = np.random.default_rng(0)

BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / (b * b + 1)),
}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("sa,sb", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)),
                                   ((2, 1, 4), (3, 1))])
def test_binary_broadcasting(name, sa, sb):
    fn = BINARY[name]
    check_op(fn, fn, [rng.standard_normal(sa), rng.standard_normal(sb)])


def test_scalar_operands_and_reflected_ops():
    a = rng.standard_normal((3, 4))
    fn = lambda x: 2.0 - x * 3 + 1 / (x * x + 1) - (-x) / 4 + 5 * x  # noqa: E731
    check_op(fn, fn, [a])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (4, 3)),
                                   ((3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul(sa, sb):
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal(sa), rng.standard_normal(sb)])


def test_pow_exp_log_abs():
    a = rng.uniform(0.5, 2.0, (3, 4))
    check_op(lambda x: x ** 3 + x ** 0.5 + x.exp() + x.log() + (x - 1).abs(),
             lambda x: x ** 3 + x ** 0.5 + x.exp() + x.log() + (x - 1).abs(), [a])


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False),
                                           (-1, True)])
def test_reductions(axis, keepdims):
    a = rng.standard_normal((3, 4, 5))
    dim = axis
    check_op(lambda x: x.sum(axis, keepdims), lambda x: x.sum(dim=dim, keepdim=keepdims)
             if dim is not None else x.sum(), [a])
    check_op(lambda x: x.mean(axis, keepdims), lambda x: x.mean(dim=dim, keepdim=keepdims)
             if dim is not None else x.mean(), [a])
    check_op(lambda x: x.max(axis=axis, keepdims=keepdims), lambda x: x.amax(dim=dim, keepdim=keepdims)
             if dim is not None else x.amax(), [a])


def test_max_splits_gradient_on_ties_like_torch_amax():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_op(lambda x: x.max(axis=1), lambda x: x.amax(1), [a])
    check_op(lambda x: x.amax(1), lambda x: x.amax(1), [a])
    check_op(lambda x: x.max(), lambda x: x.amax(), [a])


def test_shape_ops():
    a = rng.standard_normal((2, 3, 4))
    check_op(lambda x: x.reshape(6, 4) * 2, lambda x: x.reshape(6, 4) * 2, [a])
    check_op(lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2), [a])
    check_op(lambda x: x.transpose(2, 0, 1), lambda x: x.permute(2, 0, 1), [a])
    check_op(lambda x: x.flatten(1), lambda x: x.flatten(1), [a])
    check_op(lambda x: x.flatten(), lambda x: x.flatten(), [a])
    b = rng.standard_normal((3, 5))
    check_op(lambda x: x.T, lambda x: x.T, [b])


def test_indexing_including_repeated_indices():
    a = rng.standard_normal((4, 5))
    check_op(lambda x: x[1:3, ::2], lambda x: x[1:3, ::2], [a])
    idx = np.array([0, 2, 2, 3])
    check_op(lambda x: x[idx], lambda x: x[torch.tensor(idx)], [a])
    check_op(lambda x: x[idx, idx], lambda x: x[torch.tensor(idx), torch.tensor(idx)], [a])


def test_gradients_accumulate_when_a_tensor_is_used_twice():
    x = cnnlab.Tensor(np.array([2.0, -1.0]), requires_grad=True)
    y = x * x + x          # dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, -1.0])
    # and across two backward calls on fresh graphs
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [8.0, 2.0])


def test_diamond_graph():
    x = cnnlab.Tensor(np.array([1.5]), requires_grad=True)
    a = x * 2
    b = a * a + a.exp()
    c = (b + a).sum()
    c.backward()
    xt = torch.tensor([1.5], requires_grad=True)
    at = xt * 2
    ((at * at + at.exp()) + at).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), atol=1e-12, rtol=0)


def test_backward_twice_through_freed_graph_raises():
    x = cnnlab.Tensor(np.ones(3), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * 2).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_array_equal(x.grad, 2 * np.ones(3) + 4)


def test_no_grad_records_nothing():
    x = cnnlab.Tensor(np.ones(2), requires_grad=True)
    with cnnlab.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert cnnlab.is_grad_enabled()


def test_backward_needs_grad_for_non_scalar_and_checks_its_shape():
    x = cnnlab.Tensor(np.ones((2, 2)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    with pytest.raises(ValueError, match="grad shape must match"):
        y.backward(np.ones(3))


def test_default_dtype_is_float32_and_float64_is_kept():
    assert cnnlab.Tensor([1.0, 2.0]).dtype == np.float32
    assert cnnlab.Tensor(np.zeros(2)).dtype == np.float64
    assert cnnlab.Tensor([1, 2]).dtype.kind == "i"
    x = cnnlab.Tensor(np.ones(2, dtype=np.float32))
    assert (x * 2.5 + 1).dtype == np.float32
    assert x.double().dtype == np.float64


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point"):
        cnnlab.Tensor([1, 2], requires_grad=True)


def test_gradcheck_passes_and_catches_a_wrong_backward():
    a, b = leaves(rng.standard_normal((3, 4)), rng.standard_normal((4, 2)))
    err = cnnlab.gradcheck(lambda a, b: (a @ b).exp() / (a.sum() ** 2 + 1), [a, b])
    assert err < 1e-5

    class BadSquare(cnnlab.autograd.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return (g * self.x,)  # missing factor 2

    (x,) = leaves(rng.standard_normal(5))
    with pytest.raises(cnnlab.GradcheckError, match="analytic"):
        cnnlab.gradcheck(lambda x: BadSquare.apply(x), [x])
    worst = cnnlab.gradcheck(lambda x: BadSquare.apply(x), [x], raise_exception=False)
    assert worst > 0.3


def test_gradcheck_requires_float64():
    x = cnnlab.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        cnnlab.gradcheck(lambda x: x * 2, [x])


def test_numpy_shape_item_repr():
    t = cnnlab.Tensor(np.arange(6.0).reshape(2, 3))
    assert t.numpy() is t.data and t.shape == (2, 3) and t.sum().item() == 15.0
    assert "Tensor(" in repr(t)


def test_cat_and_stack_match_torch():
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    check_op(lambda x, y: cnnlab.cat([x, y * 2], 1), lambda x, y: torch.cat([x, y * 2], 1), [a, b])
    c = rng.standard_normal((2, 3, 4))
    check_op(lambda x, y: cnnlab.stack([x, y], -1), lambda x, y: torch.stack([x, y], -1), [a, c])
    with pytest.raises(ValueError, match="at least one"):
        cnnlab.cat([])
