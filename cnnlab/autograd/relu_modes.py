"""Backward modes of ReLU: the ordinary gradient, DeconvNet and guided backpropagation.

Zeiler and Fergus's DeconvNet and Springenberg et al.'s guided backpropagation
differ from the true gradient only in how a gradient ``g`` passes back through
each ReLU whose forward input was ``x`` (Springenberg et al. 2015, fig. 1):

=============  ==============================  ==================================
mode           backward rule                   meaning
=============  ==============================  ==================================
``normal``     ``g * (x > 0)``                 the true (sub)gradient, 0 at x = 0
``deconvnet``  ``g * (g > 0)``                 pass only positive signal, ignore x
``guided``     ``g * (x > 0) * (g > 0)``       both masks
=============  ==============================  ==================================

The mode is one switch of the engine, not a modified copy of each model::

    with cnnlab.autograd.relu_backward_mode("guided"):
        score = model(x)[:, target].sum()
        score.backward()

Every ReLU in cnnlab (``nn.ReLU``, ``F.relu``, ``Tensor.relu``, and the fused nodes
that take a ReLU inside a convolution, FC layer, batch norm or residual sum) reads
the mode **when the backward runs**, through :func:`relu_grad` or :func:`mode_rule`.
In normal mode that is one comparison of a module-level string.  The switch is
process-wide (not per thread).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import numpy as np

from cnnlab.kernels import activation as act

__all__ = ["RELU_BACKWARD_MODES", "get_relu_backward_mode", "relu_backward_mode",
           "relu_backward_by_mode"]

RELU_BACKWARD_MODES = ("normal", "guided", "deconvnet")

# Read by every ReLU backward (relu_grad, mode_rule); change it only through relu_backward_mode().
MODE = "normal"


def get_relu_backward_mode() -> str:
    """The mode ReLU backwards use now: 'normal', 'guided' or 'deconvnet'."""
    return MODE


@contextmanager
def relu_backward_mode(mode: str) -> Iterator[None]:
    """Make every ReLU backward run inside the block use ``mode``.

    Parameters
    ----------
    mode : {'normal', 'guided', 'deconvnet'}
        See the module docstring for the rules.  Blocks nest; the previous mode
        is restored on exit, also when the block raises.
    """
    global MODE
    if mode not in RELU_BACKWARD_MODES:
        raise ValueError(f"relu_backward_mode: mode must be one of {RELU_BACKWARD_MODES}, got {mode!r}")
    previous = MODE
    MODE = mode
    try:
        yield
    finally:
        MODE = previous


def relu_backward_by_mode(g: np.ndarray, y: np.ndarray, mode: str) -> np.ndarray:
    """Gradient through a ReLU under ``mode``.

    Parameters
    ----------
    g : ndarray, any shape
        Upstream gradient dL/dy.
    y : ndarray, same shape
        The ReLU's forward output max(x, 0); ``y > 0`` exactly where ``x > 0``.
    mode : {'normal', 'guided', 'deconvnet'}

    Returns
    -------
    ndarray, same shape and dtype as ``g``
    """
    if mode == "normal":
        return g * (y > 0)
    if mode == "deconvnet":
        return g * (g > 0)
    if mode == "guided":
        return g * ((y > 0) & (g > 0))
    raise ValueError(f"relu_backward_by_mode: mode must be one of {RELU_BACKWARD_MODES}, got {mode!r}")


def mode_rule() -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The current mode's rule ``(g, y) -> gradient``, or None in normal mode, where a
    fused kernel takes the plain ReLU gradient itself."""
    return None if MODE == "normal" else partial(relu_backward_by_mode, mode=MODE)


def relu_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The gradient through a ReLU whose output was ``y``, under the current mode
    (the compiled one-pass kernel in normal mode)."""
    rule = mode_rule()
    return act.relu_backward(g, y) if rule is None else rule(g, y)
