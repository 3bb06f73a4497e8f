"""Adadelta (Zeiler, 2012): per-parameter step sizes from running averages of
squared gradients and squared updates.

:func:`adadelta_update` is the pure update rule on ndarrays; :class:`Adadelta`
is the stateful optimizer (the one PyTorch's MNIST example trains with).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnnlab.optim.optimizer import Optimizer, ParamsT, check_cpu_only_options, check_non_negative

__all__ = ["Adadelta", "adadelta_update"]


def adadelta_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    r"""One Adadelta step for one parameter, exactly as ``torch.optim.Adadelta``.

    With :math:`g` the gradient (negated if ``maximize``), :math:`v` the running
    average of squared gradients and :math:`u` that of squared updates::

        g = g + weight_decay · θ                  (if weight_decay != 0)
        v = ρ · v + (1 − ρ) · g²
        Δ = sqrt(u + eps) / sqrt(v + eps) · g
        u = ρ · u + (1 − ρ) · Δ²
        θ = θ − lr · Δ

    Parameters
    ----------
    param, grad : ndarray
        Current values and gradient, same shape (neither is modified).
    state : mapping
        Empty on the first step, else ``{'step', 'square_avg', 'acc_delta'}``.
    lr, rho, eps, weight_decay : float
        See :class:`Adadelta`.
    maximize : bool
        Ascend instead of descend.

    Returns
    -------
    new_param : ndarray
    new_state : dict
        ``{'step': int, 'square_avg': v, 'acc_delta': u}``.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    square_avg = state.get("square_avg")
    acc_delta = state.get("acc_delta")
    if square_avg is None:
        square_avg = np.zeros_like(param)
    if acc_delta is None:
        acc_delta = np.zeros_like(param)
    square_avg = square_avg * rho + (1 - rho) * (g * g)
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(acc_delta + eps) / std * g
    acc_delta = acc_delta * rho + (1 - rho) * (delta * delta)
    new_state = {"step": int(state.get("step", 0)) + 1, "square_avg": square_avg,
                 "acc_delta": acc_delta}
    return param + (-lr) * delta, new_state


class Adadelta(Optimizer):
    """Adadelta, like ``torch.optim.Adadelta`` (same arguments and defaults).

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        Parameters to optimize, or parameter groups (see :class:`Optimizer`).
    lr : float, default 1.0
        Scales the update Δ (Zeiler's method has none; 1.0 is his).
    rho : float, default 0.9
        Decay of both running averages, in [0, 1].
    eps : float, default 1e-6
        Added inside both square roots.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    foreach, capturable, differentiable : ignored or refused
        PyTorch's implementation switches: ``foreach`` is accepted and ignored (one
        implementation here); ``capturable`` (CUDA graphs) and ``differentiable``
        must stay False.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.

    The state per parameter is ``{'step', 'square_avg', 'acc_delta'}``, torch's names.
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _prepare_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_non_negative(name, "learning rate", group["lr"])
        check_non_negative(name, "rho value", group["rho"])
        if group["rho"] > 1:
            raise ValueError(f"{name}: invalid rho value {group['rho']} (must be in [0, 1])")
        check_non_negative(name, "epsilon value", group["eps"])
        check_non_negative(name, "weight_decay value", group["weight_decay"])
        check_cpu_only_options(name, group)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            hyper = {k: group[k] for k in ("lr", "rho", "eps", "weight_decay", "maximize")}
            self._update_group(group, adadelta_update, hyper)
        return loss
