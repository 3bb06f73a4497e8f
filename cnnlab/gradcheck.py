"""Numerical gradient checking with centred finite differences (the notes):

    dE/dw ~ (E(w + eps) - E(w - eps)) / (2 eps)

compared with what backpropagation computes, in float64.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numerical one."""


def _scalar_projection(out: Tensor, weights: np.ndarray) -> Tensor:
    return (out * Tensor(weights)).sum()


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
              seed: int = 0) -> float:
    """Check ``fn``'s backward against centred finite differences.

    ``fn(*inputs)`` may return any shape: it is reduced to a scalar with fixed
    random weights, so every output element's gradient is exercised.  Every
    input with ``requires_grad`` must be float64.

    Returns the worst relative error max |a - n| / max(|a|, |n|, 1e-12) over the
    elements that fail the ``atol + rtol * |n|`` test if any fail, else over all
    elements.  With ``raise_exception`` a failure raises
    :class:`GradcheckError` naming the input, the element and both values.
    """
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires a gradient")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 tensors")

    out0 = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out0.shape)
    for i in checked:
        inputs[i].grad = None
    _scalar_projection(out0, weights).backward()
    analytic = {i: (inputs[i].grad if inputs[i].grad is not None
                    else np.zeros(inputs[i].shape)) for i in checked}

    worst, worst_fail = 0.0, None
    with no_grad():
        for i in checked:
            x = inputs[i].data
            num = np.zeros_like(x)
            flat = x.reshape(-1)   # a view: writes go into the input
            for k in range(flat.size):
                orig = flat[k]
                flat[k] = orig + eps
                plus = float((fn(*inputs).data * weights).sum())
                flat[k] = orig - eps
                minus = float((fn(*inputs).data * weights).sum())
                flat[k] = orig
                num.reshape(-1)[k] = (plus - minus) / (2 * eps)
            a = analytic[i]
            err = np.abs(a - num)
            rel = err / np.maximum(np.maximum(np.abs(a), np.abs(num)), 1e-12)
            bad = err > atol + rtol * np.abs(num)
            worst = max(worst, float(rel.max()) if rel.size else 0.0)
            if bad.any():
                k = int(np.argmax(np.where(bad, err, -1)))
                idx = np.unravel_index(k, x.shape)
                msg = (f"gradcheck: input {i} {tuple(x.shape)} at {tuple(int(j) for j in idx)}: "
                       f"analytic {a.reshape(-1)[k]:.10g} vs numerical {num.reshape(-1)[k]:.10g} "
                       f"(relative error {rel.reshape(-1)[k]:.3g})")
                rel_fail = float(rel[bad].max())
                worst_fail = rel_fail if worst_fail is None else max(worst_fail, rel_fail)
                if raise_exception:
                    raise GradcheckError(msg)
    return worst if worst_fail is None else worst_fail
