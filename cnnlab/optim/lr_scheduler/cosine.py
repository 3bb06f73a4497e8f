"""Cosine annealing: :class:`CosineAnnealingLR`."""

from __future__ import annotations

import math

from cnnlab.optim.lr_scheduler.base import LRScheduler, _check_int, _check_real
from cnnlab.optim.optimizer import Optimizer

__all__ = ["CosineAnnealingLR"]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from ``initial_lr`` down to ``eta_min`` over ``T_max`` epochs.

    In closed form :math:`η_t = η_{min} + (η_0 − η_{min})(1 + \cos(π t / T_{max}))/2`,
    continuing as a cosine wave (back up to :math:`η_0` at :math:`2T_{max}`)
    after ``T_max``.  Like torch, the value is computed recursively from the
    current lr (ratio of successive cosine factors), so results match torch's
    bit for bit rather than the closed form.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    T_max : int
        Half period, in epochs (>= 1).
    eta_min : float, default 0
        Minimum learning rate.
    last_epoch : int, default -1
        See :class:`LRScheduler`.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        name = type(self).__name__
        _check_int(name, "T_max", T_max, 1)
        _check_real(name, "eta_min", eta_min)
        self.T_max = int(T_max)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Torch's recursive cosine update."""
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:
            return [
                eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / t_max)) / 2
                for base_lr in self.base_lrs
            ]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            return [
                lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                for base_lr, lr in zip(self.base_lrs, self._current_lrs())
            ]
        return [
            (1 + math.cos(math.pi * t / t_max))
            / (1 + math.cos(math.pi * (t - 1) / t_max))
            * (lr - eta_min)
            + eta_min
            for lr in self._current_lrs()
        ]

    def _get_closed_form_lr(self) -> list[float]:
        """``eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2``."""
        return [
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]
