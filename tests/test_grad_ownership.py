"""A leaf's .grad takes the gradient array without a copy only when nothing else refers
to it (as PyTorch steals a gradient buffer); it never shares memory with the caller's
``grad``, with another leaf's .grad, or with an array an op still holds."""
from __future__ import annotations

import weakref

import numpy as np
import pytest

import cnnlab
from cnnlab.kernels import _threads
from cnnlab.kernels import activation as act


def _leaf(shape, seed=0):
    return cnnlab.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (2, 3, 1 << 19)])   # the second: split over threads
def test_a_fresh_gradient_becomes_the_leafs_grad_without_a_copy(monkeypatch, shape):
    made = []                   # weak references: a strong one would itself force a copy
    plain = act.relu_backward

    def recording(dy, y):
        out = plain(dy, y)
        made.append(weakref.ref(out))
        return out

    monkeypatch.setattr(act, "relu_backward", recording)
    threads = _threads.get_num_threads()
    _threads.set_num_threads(2)         # an idle kernel thread must not keep the pieces alive
    try:
        x = _leaf(shape)
        up = np.ones(x.shape)
        cnnlab.nn.functional.relu(x).backward(up)
    finally:
        _threads.set_num_threads(threads)
    assert x.grad is made[0]()                          # adopted, not copied
    np.testing.assert_array_equal(x.grad, (np.asarray(x.data) > 0).astype(float))
    assert not np.shares_memory(x.grad, up)


def test_the_callers_grad_never_becomes_a_leafs_grad():
    x = _leaf((3, 4))
    g = np.full((3, 4), 2.0)
    x.backward(g)
    assert not np.shares_memory(x.grad, g)
    g[...] = 0                                          # the caller reuses its array
    np.testing.assert_array_equal(x.grad, 2.0)


def test_one_gradient_handed_to_two_leaves_is_copied_for_one_of_them():
    a, b = _leaf((3, 4)), _leaf((3, 4), 1)
    (a + b).backward(np.ones((3, 4)))                   # Add hands the same array to both
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 3                                         # in place, as gradient clipping does
    np.testing.assert_array_equal(b.grad, 1.0)


def test_a_gradient_and_a_view_of_it_never_end_up_in_two_grads():
    a, b = _leaf((2, 6)), _leaf((3, 4), 1)
    (a + b.reshape(2, 6)).backward(np.ones((2, 6)))     # b's gradient is a view of a's
    assert not np.shares_memory(a.grad, b.grad)
    b.grad[...] = 7
    np.testing.assert_array_equal(a.grad, 1.0)


def test_accumulation_over_two_backwards_adds_into_a_new_array():
    x = _leaf((5,))
    first = None
    for _ in range(2):
        (x * 3).sum().backward()
        first = x.grad if first is None else first
    np.testing.assert_array_equal(x.grad, 6.0)
    np.testing.assert_array_equal(first, 3.0)           # the first step's array is unchanged
