"""Warm-up: :class:`LinearLR` and :func:`warmup_scheduler` (a linear ramp, then another schedule)."""

from __future__ import annotations

from cnnlab.optim.lr_scheduler.base import LRScheduler, _check_int, _check_real
from cnnlab.optim.lr_scheduler.plateau import ReduceLROnPlateau
from cnnlab.optim.lr_scheduler.sequential import SequentialLR
from cnnlab.optim.optimizer import Optimizer

__all__ = ["LinearLR", "warmup_scheduler"]


class LinearLR(LRScheduler):
    """Linear warm-up: scale the learning rate from ``start_factor`` to ``end_factor``.

    Over ``total_iters`` epochs the factor moves linearly from
    ``start_factor`` to ``end_factor``; afterwards it stays at ``end_factor``:
    ``lr = initial_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)``.
    As in torch the value is computed recursively from the current lr.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    start_factor : float, default 1/3
        Factor at epoch 0, in (0, 1].
    end_factor : float, default 1.0
        Factor from epoch ``total_iters`` on, in [0, 1].
    total_iters : int, default 5
        Length of the ramp, in epochs (>= 1).
    last_epoch : int, default -1
        See :class:`LRScheduler`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        name = type(self).__name__
        _check_real(name, "start_factor", start_factor)
        _check_real(name, "end_factor", end_factor)
        if not 0 < start_factor <= 1:
            raise ValueError(f"{name}: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"{name}: end_factor must be in [0, 1], got {end_factor}")
        _check_int(name, "total_iters", total_iters, 1)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Torch's recursive update of the warm-up factor."""
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        ratio = 1.0 + (self.end_factor - self.start_factor) / (
            self.total_iters * self.start_factor
            + (self.last_epoch - 1) * (self.end_factor - self.start_factor)
        )
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        """``base_lr * (start + (end - start) * min(total_iters, last_epoch) / total_iters)``."""
        return [
            base_lr
            * (
                self.start_factor
                + (self.end_factor - self.start_factor)
                * min(self.total_iters, self.last_epoch)
                / self.total_iters
            )
            for base_lr in self.base_lrs
        ]


def warmup_scheduler(
    optimizer: Optimizer,
    warmup_epochs: int,
    after: LRScheduler | None = None,
    start_factor: float = 0.1,
) -> LRScheduler:
    """A linear learning-rate warm-up, optionally followed by another schedule.

    For epochs ``0 .. warmup_epochs - 1`` the learning rate rises linearly
    from ``start_factor * lr`` towards ``lr``:
    ``lr * (start_factor + (1 - start_factor) * epoch / warmup_epochs)``; from
    epoch ``warmup_epochs`` on, ``after`` runs from its own epoch 0.  Built
    from :class:`LinearLR` and :class:`SequentialLR`, so it equals::

        SequentialLR(optimizer, [LinearLR(optimizer, start_factor, 1.0, warmup_epochs), after],
                     milestones=[warmup_epochs])

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    warmup_epochs : int
        Length of the warm-up (>= 1; 0 returns ``after`` itself).
    after : LRScheduler, optional
        The schedule after the warm-up, already built on ``optimizer`` (its
        epochs count from the end of the warm-up: e.g.
        ``CosineAnnealingLR(opt, T_max=epochs - warmup_epochs)``).  ``None``
        keeps the full learning rate after the warm-up.
    start_factor : float, default 0.1
        Fraction of the learning rate at epoch 0, in (0, 1].

    Returns
    -------
    LRScheduler
        The :class:`SequentialLR` (the :class:`LinearLR` alone without ``after``).
    """
    name = "warmup_scheduler"
    _check_int(name, "warmup_epochs", warmup_epochs, 0)
    if after is not None and (not isinstance(after, LRScheduler) or isinstance(after, ReduceLROnPlateau)):
        raise TypeError(f"{name}: after must be an epoch scheduler (not ReduceLROnPlateau), "
                        f"got {type(after).__name__}")
    if warmup_epochs == 0:
        if after is None:
            raise ValueError(f"{name}: warmup_epochs=0 and no after scheduler: nothing to schedule")
        return after
    warm = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_epochs)
    if after is None:
        return warm
    return SequentialLR(optimizer, [warm, after], milestones=[warmup_epochs])
