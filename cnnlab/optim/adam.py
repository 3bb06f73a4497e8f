"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

:func:`adam_update` is the pure update rule on ndarrays; :class:`Adam` and
:class:`AdamW` are the stateful optimizers that apply it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnnlab.optim.optimizer import Optimizer, ParamsT, check_non_negative

__all__ = ["Adam", "AdamW", "adam_update"]


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """``start + weight * (end - start)``, evaluated the way ``torch.lerp`` does."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    r"""One Adam/AdamW step for one parameter, exactly as ``torch.optim.Adam``.

    With :math:`g` the gradient (negated if ``maximize``) and :math:`t` the new
    step count::

        θ = θ · (1 − lr · weight_decay)         (AdamW: decoupled_weight_decay)
        g = g + weight_decay · θ                (Adam: L2 penalty)
        m = β1 · m + (1 − β1) · g               (torch: m.lerp_(g, 1 − β1))
        v = β2 · v + (1 − β2) · g²
        v̂ = max(v̂, v) if amsgrad else v
        denom = sqrt(v̂) / sqrt(1 − β2^t) + eps
        θ = θ − lr / (1 − β1^t) · m / denom

    Note that, as in torch, ``eps`` is added *after* the bias correction of the
    second moment: :math:`θ ← θ − η \hat m / (\sqrt{\hat v} + ε)` with
    :math:`\hat m = m/(1−β_1^t)`, :math:`\hat v = v/(1−β_2^t)`.

    Parameters
    ----------
    param : ndarray
        Current parameter values (not modified).
    grad : ndarray
        Gradient of the loss with respect to ``param`` (not modified).
    state : mapping
        Previous state of this parameter: empty on the first step, else
        ``{'step', 'exp_avg', 'exp_avg_sq'}`` (+ ``'max_exp_avg_sq'`` with
        amsgrad).
    lr, beta1, beta2, eps, weight_decay : float
        Hyperparameters, see :class:`Adam`.
    amsgrad, maximize, decoupled_weight_decay : bool
        See :class:`Adam`.

    Returns
    -------
    new_param : ndarray
        The updated parameter values (a new array).
    new_state : dict
        ``{'step': int, 'exp_avg': m, 'exp_avg_sq': v}`` plus
        ``'max_exp_avg_sq'`` when ``amsgrad``.
    """
    g = -grad if maximize else grad
    step = int(state.get("step", 0)) + 1
    new_param = param
    if weight_decay != 0:
        if decoupled_weight_decay:
            new_param = param * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * param

    exp_avg = state.get("exp_avg")
    exp_avg_sq = state.get("exp_avg_sq")
    if exp_avg is None:
        exp_avg = np.zeros_like(param)
    if exp_avg_sq is None:
        exp_avg_sq = np.zeros_like(param)
    exp_avg = _lerp(exp_avg, g, 1 - beta1)
    exp_avg_sq = exp_avg_sq * beta2 + ((1 - beta2) * g) * g
    new_state: dict[str, Any] = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}

    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5

    if amsgrad:
        max_exp_avg_sq = state.get("max_exp_avg_sq")
        if max_exp_avg_sq is None:
            max_exp_avg_sq = np.zeros_like(param)
        max_exp_avg_sq = np.maximum(max_exp_avg_sq, exp_avg_sq)
        new_state["max_exp_avg_sq"] = max_exp_avg_sq
        denom = np.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
    else:
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps

    new_param = new_param + (-step_size * exp_avg) / denom
    return new_param, new_state


class Adam(Optimizer):
    r"""The Adam optimizer (Kingma & Ba, 2015), like ``torch.optim.Adam``.

    Keeps running averages of the gradient (``exp_avg``, :math:`m`) and of its
    square (``exp_avg_sq``, :math:`v`), corrects their bias towards zero and
    steps by :math:`η \hat m / (\sqrt{\hat v} + ε)`; see :func:`adam_update`.
    The per-parameter step count is stored in ``state[p]['step']``.

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        Parameters to optimize, or parameter groups (see :class:`Optimizer`).
    lr : float, default 1e-3
        Learning rate :math:`η`.
    betas : tuple of two floats, default (0.9, 0.999)
        Decay rates :math:`(β_1, β_2)` of the two moment estimates, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default 0
        L2 penalty added to the gradient (or, with
        ``decoupled_weight_decay``, a direct shrink of the weights).
    amsgrad : bool, default False
        Use the AMSGrad variant (normalise by the running maximum of :math:`v`).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    decoupled_weight_decay : bool, default False
        Apply weight decay as in AdamW, :math:`θ ← θ(1 − η λ)`.

    Raises
    ------
    ValueError
        For a negative learning rate, eps or weight decay, or betas outside
        [0, 1).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _prepare_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyperparameters; store ``betas`` as a float tuple."""
        name = type(self).__name__
        check_non_negative(name, "learning rate", group["lr"])
        check_non_negative(name, "epsilon value", group["eps"])
        check_non_negative(name, "weight_decay value", group["weight_decay"])
        betas = group["betas"]
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
                raise TypeError(
                    f"{name}: beta parameter at index {i} must be a real number, got {beta!r}"
                )
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"{name}: invalid beta parameter at index {i}: {beta} (must be in [0, 1))"
                )
        group["betas"] = (float(betas[0]), float(betas[1]))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient and ``requires_grad``.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        Any
            The closure's loss, or ``None``.
        """
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            hyper = {k: group[k] for k in ("lr", "eps", "weight_decay", "amsgrad", "maximize",
                                           "decoupled_weight_decay")}
            self._update_group(group, adam_update, dict(hyper, beta1=beta1, beta2=beta2))
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), like ``torch.optim.AdamW``.

    Identical to :class:`Adam` except that weight decay shrinks the weights
    directly, :math:`θ ← θ (1 − η λ)`, before the Adam step, instead of being
    added to the gradient (where Adam's normalisation would rescale it).

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        Parameters to optimize, or parameter groups (see :class:`Optimizer`).
    lr : float, default 1e-3
        Learning rate :math:`η`.
    betas : tuple of two floats, default (0.9, 0.999)
        Decay rates of the moment estimates, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default 1e-2
        Decoupled weight decay coefficient :math:`λ`.
    amsgrad : bool, default False
        Use the AMSGrad variant.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def _prepare_group(self, group: dict[str, Any]) -> None:
        """Validate like :class:`Adam`; weight decay is always decoupled."""
        super()._prepare_group(group)
        group["decoupled_weight_decay"] = True
