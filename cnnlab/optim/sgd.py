"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

:func:`sgd_update` is the pure update rule on ndarrays; :class:`SGD` is the
stateful optimizer that applies it to every parameter with a gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnnlab.optim.optimizer import Optimizer, ParamsT, check_non_negative

__all__ = ["SGD", "sgd_update"]


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    state: Mapping[str, Any],
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    r"""One SGD step for one parameter, exactly as ``torch.optim.SGD``.

    With :math:`g` the gradient (negated if ``maximize``) and :math:`b` the
    momentum buffer::

        g = g + weight_decay * θ                 (if weight_decay != 0)
        b = g                                     (first step)
        b = momentum * b + (1 - dampening) * g    (later steps)
        g = g + momentum * b  if nesterov  else  b   (if momentum != 0)
        θ = θ - lr * g

    Parameters
    ----------
    param : ndarray
        Current parameter values :math:`θ` (not modified).
    grad : ndarray
        Gradient of the loss with respect to ``param`` (not modified).
    state : mapping
        Previous state of this parameter: empty, or ``{'momentum_buffer': b}``.
    lr, momentum, dampening, weight_decay : float
        Hyperparameters, see :class:`SGD`.
    nesterov, maximize : bool
        See :class:`SGD`.

    Returns
    -------
    new_param : ndarray
        The updated parameter values (a new array).
    new_state : dict
        ``{'momentum_buffer': b}`` when ``momentum != 0``, else ``{}``.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param
    new_state: dict[str, Any] = {}
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = np.array(g, copy=True)
        else:
            buf = buf * momentum + (1 - dampening) * g
        new_state["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return param - lr * g, new_state


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), like ``torch.optim.SGD``.

    The update for each parameter :math:`θ` with gradient :math:`g` is
    (see :func:`sgd_update`)::

        b ← momentum · b + (1 − dampening) · g     (b = g on the first step)
        θ ← θ − lr · b                            (θ ← θ − lr · (g + momentum · b) if nesterov)

    This is the momentum method of the notes, :math:`v ← γ v + η ∇L,\ θ ← θ − v`,
    written with the learning rate factored out: with ``momentum = γ``,
    ``dampening = 0`` and a constant ``lr = η``, the notes' velocity is
    :math:`v = η b`.  Torch's form differs only when ``lr`` changes during
    training (a scheduler): here a new learning rate applies to the whole
    buffer immediately instead of only to new gradients.

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        Parameters to optimize, or parameter groups (see :class:`Optimizer`).
    lr : float, default 1e-3
        Learning rate :math:`η`.
    momentum : float, default 0
        Momentum factor :math:`γ`.
    dampening : float, default 0
        Dampening for momentum: new gradients enter the buffer scaled by
        ``1 - dampening``.
    weight_decay : float, default 0
        L2 penalty: ``weight_decay * θ`` is added to the gradient.
    nesterov : bool, default False
        Use Nesterov momentum (requires ``momentum > 0`` and ``dampening == 0``).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.

    Raises
    ------
    ValueError
        For a negative learning rate, momentum or weight decay, or Nesterov
        without momentum / with dampening.

    Examples
    --------
    >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9)   # doctest: +SKIP
    >>> opt.zero_grad(); loss.backward(); opt.step()           # doctest: +SKIP
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _prepare_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyperparameters (see :class:`SGD`)."""
        name = type(self).__name__
        check_non_negative(name, "learning rate", group["lr"])
        check_non_negative(name, "momentum value", group["momentum"])
        check_non_negative(name, "weight_decay value", group["weight_decay"])
        check_non_negative(name, "dampening value", group["dampening"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"{name}: Nesterov momentum requires a momentum > 0 and zero dampening, "
                f"got momentum={group['momentum']}, dampening={group['dampening']}"
            )

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
            hyper = {k: group[k] for k in ("lr", "momentum", "dampening", "weight_decay",
                                           "nesterov", "maximize")}
            self._update_group(group, sgd_update, hyper)
        return loss
