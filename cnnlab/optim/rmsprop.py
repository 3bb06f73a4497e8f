"""RMSprop (Hinton's lecture 6e): steps divided by a running root mean square
of the gradients, optionally centred and with momentum.

:func:`rmsprop_update` is the pure update rule on ndarrays; :class:`RMSprop`
is the stateful optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnnlab.optim.adam import _lerp
from cnnlab.optim.optimizer import Optimizer, ParamsT, check_cpu_only_options, check_non_negative

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    r"""One RMSprop step for one parameter, exactly as ``torch.optim.RMSprop``.

    With :math:`g` the gradient (negated if ``maximize``)::

        g = g + weight_decay · θ                    (if weight_decay != 0)
        v = α · v + (1 − α) · g²
        m̄ = m̄ + (1 − α) · (g − m̄)                  (centered: running mean of g)
        d = sqrt(v − m̄²) + eps  if centered  else  sqrt(v) + eps
        b = momentum · b + g / d;  θ = θ − lr · b    (momentum > 0)
        θ = θ − lr · g / d                          (momentum = 0)

    Parameters
    ----------
    param, grad : ndarray
        Current values and gradient, same shape (neither is modified).
    state : mapping
        Empty on the first step, else ``{'step', 'square_avg'}`` plus
        ``'momentum_buffer'`` (momentum > 0) and ``'grad_avg'`` (centered).
    lr, alpha, eps, weight_decay, momentum : float
    centered, maximize : bool
        See :class:`RMSprop`.

    Returns
    -------
    new_param : ndarray
    new_state : dict
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg = state.get("square_avg")
    if square_avg is None:
        square_avg = np.zeros_like(param)
    square_avg = square_avg * alpha + (1 - alpha) * (g * g)
    new_state: dict[str, Any] = {"step": int(state.get("step", 0)) + 1, "square_avg": square_avg}
    if centered:
        grad_avg = state.get("grad_avg")
        grad_avg = _lerp(np.zeros_like(param) if grad_avg is None else grad_avg, g, 1 - alpha)
        new_state["grad_avg"] = grad_avg
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg = avg + eps
    if momentum > 0:
        buf = state.get("momentum_buffer")
        buf = (np.zeros_like(param) if buf is None else buf) * momentum + g / avg
        new_state["momentum_buffer"] = buf
        return param + (-lr) * buf, new_state
    return param + (-lr) * (g / avg), new_state


class RMSprop(Optimizer):
    """RMSprop, like ``torch.optim.RMSprop`` (same arguments, order and defaults).

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        Parameters to optimize, or parameter groups (see :class:`Optimizer`).
    lr : float, default 1e-2
        Learning rate.
    alpha : float, default 0.99
        Decay of the running average of squared gradients.
    eps : float, default 1e-8
        Added to the root in the denominator.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    momentum : float, default 0
        Momentum of the normalised step.
    centered : bool, default False
        Divide by an estimate of the gradient's variance instead of its raw second moment.
    capturable, foreach, maximize, differentiable :
        As in torch; ``foreach`` is ignored, ``capturable`` and ``differentiable`` must stay off.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "capturable": capturable,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _prepare_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_non_negative(name, "learning rate", group["lr"])
        check_non_negative(name, "epsilon value", group["eps"])
        check_non_negative(name, "momentum value", group["momentum"])
        check_non_negative(name, "weight_decay value", group["weight_decay"])
        check_non_negative(name, "alpha value", group["alpha"])
        check_cpu_only_options(name, group)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            hyper = {k: group[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum",
                                           "centered", "maximize")}
            self._update_group(group, rmsprop_update, hyper)
        return loss
