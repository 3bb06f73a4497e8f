"""One-line parity checks against PyTorch in float64."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import cnnlab

torch = None


def _torch():
    global torch
    if torch is None:
        import torch as _t

        _t.set_default_dtype(_t.float64)
        torch = _t
    return torch


def check_op(cnn_fn: Callable, torch_fn: Callable, arrays: Sequence[np.ndarray],
             grad_mask: Sequence[bool] | None = None, atol: float = 1e-9,
             seed: int = 0) -> None:
    """Run both functions on the same float64 arrays and compare the output and
    every input gradient, with a random upstream gradient.  The largest
    absolute difference must be at most ``atol``."""
    t = _torch()
    grad_mask = [True] * len(arrays) if grad_mask is None else list(grad_mask)
    ours = [cnnlab.Tensor(a.copy(), requires_grad=g and np.issubdtype(a.dtype, np.floating))
            for a, g in zip(arrays, grad_mask)]
    theirs = [t.tensor(a.copy(), requires_grad=g and np.issubdtype(a.dtype, np.floating))
              for a, g in zip(arrays, grad_mask)]
    y = cnn_fn(*ours)
    yt = torch_fn(*theirs)
    assert y.shape == tuple(yt.shape), f"shape {y.shape} != torch {tuple(yt.shape)}"
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=0, atol=atol, err_msg="forward")
    if not any(o.requires_grad for o in ours):
        return
    up = np.random.default_rng(seed).standard_normal(y.shape)
    (y * cnnlab.Tensor(up)).sum().backward()
    (yt * t.tensor(up)).sum().backward()
    for i, (o, th) in enumerate(zip(ours, theirs)):
        if not o.requires_grad:
            continue
        assert o.grad is not None, f"input {i}: no gradient"
        assert th.grad is not None, f"input {i}: torch computed no gradient"
        np.testing.assert_allclose(o.grad, th.grad.numpy(), rtol=0, atol=atol,
                                   err_msg=f"gradient of input {i}")


def module_parity(ours: cnnlab.nn.Module, theirs: Any, x: np.ndarray, upstream_seed: int = 0,
                  call: Callable | None = None, tcall: Callable | None = None) -> None:
    """Copy torch's parameters into ours, run both on x (float64), and compare the
    output, the input gradient and every parameter gradient."""
    t = _torch()
    ours.double()
    ours.zero_grad()
    theirs.zero_grad()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    xo = cnnlab.Tensor(x.copy(), requires_grad=True)
    xt = t.tensor(x.copy(), requires_grad=True)
    y = (call or ours)(xo)
    yt = (tcall or theirs)(xt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=0, atol=1e-9, err_msg="forward")
    up = np.random.default_rng(upstream_seed).standard_normal(y.shape)
    (y * cnnlab.Tensor(up)).sum().backward()
    (yt * t.tensor(up)).sum().backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=0, atol=1e-9, err_msg="input grad")
    tparams = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert sorted(names) == sorted(tparams)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=0, atol=1e-9,
                                   err_msg=f"gradient of {name}")


def leaves(*arrays: np.ndarray) -> list[cnnlab.Tensor]:
    return [cnnlab.Tensor(a.copy(), requires_grad=True) for a in arrays]
