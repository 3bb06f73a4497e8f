"""Multiplicative decay: :class:`LambdaLR`, :class:`StepLR`, :class:`MultiStepLR`, :class:`ExponentialLR`.

Each multiplies the learning rate by a factor that depends only on the epoch:
a user function of it, ``gamma`` at every ``step_size``-th epoch, ``gamma`` at
listed milestones, or ``gamma`` every epoch.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cnnlab.optim.lr_scheduler.base import LRScheduler, _check_int, _check_optimizer, _check_real
from cnnlab.optim.optimizer import Optimizer

__all__ = ["ExponentialLR", "LambdaLR", "MultiStepLR", "StepLR"]


class LambdaLR(LRScheduler):
    """Set each group's learning rate to ``initial_lr * lr_lambda(epoch)``.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    lr_lambda : callable or list of callables
        ``epoch -> factor``; one per group, or one shared by all groups.
    last_epoch : int, default -1
        See :class:`LRScheduler`.

    Notes
    -----
    The functions are not part of :meth:`state_dict` (stored as ``None``):
    pass the same functions when re-creating the scheduler before loading.
    """

    _not_serialised = ("optimizer", "_is_initial", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(
                    f"{name}: expected {len(optimizer.param_groups)} lr_lambdas, got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"{name}: lr_lambda should be a function, got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """``base_lr * lr_lambda(last_epoch)`` for each group."""
        return [
            base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)
        ]

    def state_dict(self) -> dict[str, Any]:
        """Scheduler state; ``'lr_lambdas'`` is a list of ``None`` placeholders."""
        state = super().state_dict()
        state["lr_lambdas"] = [None] * len(self.lr_lambdas)
        return state


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr = initial_lr * gamma ** (epoch // step_size)``, computed as torch does
    by multiplying the current learning rate at each boundary.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    step_size : int
        Period of the decay, in epochs (>= 1).
    gamma : float, default 0.1
        Multiplicative factor.
    last_epoch : int, default -1
        See :class:`LRScheduler`.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        name = type(self).__name__
        _check_int(name, "step_size", step_size, 1)
        _check_real(name, "gamma", gamma)
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Current lr, times ``gamma`` when ``last_epoch`` is a positive multiple of ``step_size``."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        """``base_lr * gamma ** (last_epoch // step_size)`` (used by :class:`SequentialLR`)."""
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone epoch.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    milestones : iterable of int
        Epoch indices; a milestone listed ``k`` times multiplies by ``gamma**k``.
    gamma : float, default 0.1
        Multiplicative factor.
    last_epoch : int, default -1
        See :class:`LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        name = type(self).__name__
        milestones = list(milestones)
        for m in milestones:
            _check_int(name, "each milestone", m, 0)
        _check_real(name, "gamma", gamma)
        self.milestones: list[int] = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Current lr, times ``gamma ** count`` if ``last_epoch`` is a milestone."""
        count = self.milestones.count(self.last_epoch)
        if count == 0:
            return self._current_lrs()
        return [lr * self.gamma**count for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        """``base_lr * gamma ** (number of milestones <= last_epoch)``."""
        passed = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base_lr * self.gamma**passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    gamma : float
        Multiplicative factor.
    last_epoch : int, default -1
        See :class:`LRScheduler`.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_real(type(self).__name__, "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Current lr times ``gamma`` (unchanged on the construction step)."""
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        """``base_lr * gamma ** last_epoch``."""
        return [base_lr * self.gamma**self.last_epoch for base_lr in self.base_lrs]
