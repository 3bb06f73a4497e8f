"""Metric-driven schedule: :class:`ReduceLROnPlateau`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from cnnlab.optim.lr_scheduler.base import LRScheduler, _check_int, _check_optimizer, _check_real
from cnnlab.optim.optimizer import Optimizer

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    """Reduce the learning rate when a metric has stopped improving.

    Call ``scheduler.step(metric)`` after each validation.  When the metric
    has not improved (by more than ``threshold``) for more than ``patience``
    consecutive calls, every group's lr is multiplied by ``factor`` (but not
    below ``min_lr``), then ``cooldown`` calls are ignored.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    mode : {'min', 'max'}, default 'min'
        Whether the metric should decrease (a loss) or increase (an accuracy).
    factor : float, default 0.1
        Multiplicative reduction, in [0, 1).
    patience : int, default 10
        Number of non-improving calls tolerated before reducing.
    threshold : float, default 1e-4
        Minimum change that counts as an improvement.
    threshold_mode : {'rel', 'abs'}, default 'rel'
        ``'rel'``: better than ``best * (1 ∓ threshold)``; ``'abs'``: better
        than ``best ∓ threshold``.
    cooldown : int, default 0
        Calls to wait after a reduction before counting bad epochs again.
    min_lr : float or list of float, default 0
        Lower bound on the learning rate (one value per group, or shared).
    eps : float, default 1e-8
        Reductions smaller than ``eps`` are skipped.

    Notes
    -----
    Unlike the other schedulers it does not set ``'initial_lr'`` and does not
    change the learning rate on construction (as in torch).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0,
        eps: float = 1e-8,
    ) -> None:
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        _check_real(name, "factor", factor)
        if not 0 <= factor < 1.0:
            raise ValueError(f"{name}: factor must be in [0, 1), got {factor}")
        _check_int(name, "patience", patience, 0)
        _check_int(name, "cooldown", cooldown, 0)
        _check_real(name, "threshold", threshold)
        if threshold < 0:
            raise ValueError(f"{name}: threshold must be >= 0, got {threshold}")
        _check_real(name, "eps", eps)
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"{name}: expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            self.default_min_lr: float | None = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        for value in self.min_lrs:
            _check_real(name, "min_lr", value)
            if value < 0:
                raise ValueError(f"{name}: min_lr must be >= 0, got {value}")
        self.factor = factor
        self.patience = int(patience)
        self.cooldown = int(cooldown)
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._step_count = 0
        self._is_initial = False
        self._last_lr = self._current_lrs()
        self._reset()

    def _reset(self) -> None:
        """Reset the best value and the bad-epoch / cooldown counters."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        """True while the post-reduction cooldown is running."""
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        """Whether metric value ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: float) -> None:  # type: ignore[override]
        """Record one metric value and reduce the learning rates if it plateaued.

        Parameters
        ----------
        metrics : float
            The monitored quantity (a number, 0-d array or 1-element tensor).
        """
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self._step_count += 1
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1

        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count

        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        """Multiply every group's lr by ``factor``, clipped at its ``min_lr``."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"{type(self).__name__}: the optimizer has {len(groups)} param groups but "
                    f"{len(self.min_lrs)} min_lrs were given (a group was added after construction); "
                    "update the min_lrs attribute"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def get_lr(self) -> list[float]:
        """Not used: the learning rate depends on the metric passed to :meth:`step`."""
        raise NotImplementedError(f"{type(self).__name__} computes learning rates in step(metrics)")
