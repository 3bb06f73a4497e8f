"""Adagrad (Duchi et al., 2011): steps scaled by the root of the sum of all
past squared gradients.

:func:`adagrad_update` is the pure update rule on ndarrays; :class:`Adagrad`
is the stateful optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnnlab.optim.optimizer import Optimizer, ParamsT, check_cpu_only_options, check_non_negative

__all__ = ["Adagrad", "adagrad_update"]


def adagrad_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    r"""One Adagrad step for one parameter, exactly as ``torch.optim.Adagrad``.

    With :math:`g` the gradient (negated if ``maximize``), :math:`t` the new step
    count and :math:`s` the running sum (starting at ``initial_accumulator_value``)::

        g = g + weight_decay · θ             (if weight_decay != 0)
        clr = lr / (1 + (t − 1) · lr_decay)
        s = s + g²
        θ = θ − clr · g / (sqrt(s) + eps)

    Parameters
    ----------
    param, grad : ndarray
        Current values and gradient, same shape (neither is modified).
    state : mapping
        Empty on the first step, else ``{'step', 'sum'}``.
    lr, lr_decay, weight_decay, eps, initial_accumulator_value : float
        See :class:`Adagrad`.
    maximize : bool
        Ascend instead of descend.

    Returns
    -------
    new_param : ndarray
    new_state : dict
        ``{'step': int, 'sum': s}``.
    """
    g = -grad if maximize else grad
    step = int(state.get("step", 0)) + 1
    if weight_decay != 0:
        g = g + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    total = state.get("sum")
    if total is None:
        total = np.full_like(param, initial_accumulator_value)
    total = total + g * g
    std = np.sqrt(total) + eps
    return param + (-clr) * (g / std), {"step": step, "sum": total}


class Adagrad(Optimizer):
    """Adagrad, like ``torch.optim.Adagrad`` (same arguments and defaults).

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        Parameters to optimize, or parameter groups (see :class:`Optimizer`).
    lr : float, default 1e-2
        Learning rate.
    lr_decay : float, default 0
        The step size at step t is lr / (1 + (t − 1) · lr_decay).
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    initial_accumulator_value : float, default 0
        Starting value of the sum of squared gradients.  As in torch, the
        optimizer-wide value is used for every group (a group's own entry is
        kept in ``param_groups`` but does not change the start).
    eps : float, default 1e-10
        Added to the root of the sum.
    foreach, maximize, differentiable, fused :
        As in torch; ``foreach`` is ignored, ``differentiable`` and ``fused`` must stay off.

    The state per parameter is ``{'step', 'sum'}``, torch's names.  As in torch it
    is created for every parameter when the optimizer is built.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {"step": 0,
                                 "sum": np.full_like(p.data, initial_accumulator_value)}

    def _prepare_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_non_negative(name, "learning rate", group["lr"])
        check_non_negative(name, "lr_decay value", group["lr_decay"])
        check_non_negative(name, "weight_decay value", group["weight_decay"])
        check_non_negative(name, "initial_accumulator_value value",
                           group["initial_accumulator_value"])
        check_non_negative(name, "epsilon value", group["eps"])
        check_cpu_only_options(name, group)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate_closure(closure)
        start = self.defaults["initial_accumulator_value"]
        for group in self.param_groups:
            hyper = {k: group[k] for k in ("lr", "lr_decay", "weight_decay", "eps", "maximize")}
            self._update_group(group, adagrad_update, dict(hyper, initial_accumulator_value=start))
        return loss
