"""Composition of schedules: :class:`SequentialLR` runs several one after another."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from cnnlab.optim.lr_scheduler.base import LRScheduler, _check_int, _check_optimizer
from cnnlab.optim.lr_scheduler.plateau import ReduceLROnPlateau
from cnnlab.optim.optimizer import Optimizer

__all__ = ["SequentialLR"]


class SequentialLR(LRScheduler):
    """Run several schedulers one after another, switching at milestone epochs.

    Scheduler ``i`` sets the learning rate for epochs ``milestones[i - 1]`` up
    to ``milestones[i] - 1``.  At each milestone the next scheduler starts
    from its own epoch 0 (computed from ``initial_lr`` in closed form), so it
    does not inherit the previous one's last value: a warm-up followed by a
    decay is ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
    CosineAnnealingLR(opt, T_max=45)], milestones=[5])`` (see
    :func:`warmup_scheduler`).  Same semantics and numbers as torch's.

    Parameters
    ----------
    optimizer : Optimizer
        The scheduled optimizer; every scheduler must belong to it.
    schedulers : list of LRScheduler
        The schedulers, in order (not ``ReduceLROnPlateau``, whose ``step``
        needs a metric).  Build them before this, as in torch.
    milestones : list of int
        ``len(schedulers) - 1`` non-decreasing epochs at which to switch.
    last_epoch : int, default -1
        As in :class:`LRScheduler`.

    Notes
    -----
    Construction resets every group's lr to its ``initial_lr``, undoes the
    construction step of every scheduler, and takes the initial step of the
    scheduler for epoch 0 only.
    """

    _not_serialised = ("optimizer", "_is_initial", "_schedulers")

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError(f"{name} expects at least one scheduler, but got no scheduler")
        for i, sched in enumerate(schedulers):
            if isinstance(sched, ReduceLROnPlateau):
                raise ValueError(
                    f"{name} does not support ReduceLROnPlateau (its step() needs a metric), "
                    f"got one at index {i}"
                )
            if not isinstance(sched, LRScheduler):
                raise TypeError(f"{name}: schedulers[{i}] is {type(sched).__name__}, not an LRScheduler")
            if sched.optimizer is not optimizer:
                raise ValueError(
                    f"{name} expects all schedulers to belong to the same optimizer, but "
                    f"schedulers[{i}] ({type(sched).__name__}) has a different one"
                )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"{name} expects one milestone fewer than schedulers, got {len(schedulers)} "
                f"schedulers and {len(milestones)} milestones"
            )
        for m in milestones:
            _check_int(name, "each milestone", m, 0)
        if any(a > b for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"{name}: milestones must be non-decreasing, got {milestones}")
        _check_int(name, "last_epoch", last_epoch, -1)
        self._schedulers = schedulers
        self._milestones = [int(m) for m in milestones]
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        self._is_initial = False
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for sched in schedulers:        # undo their construction steps
            sched.last_epoch -= 1
        first = self._schedulers[bisect.bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        """Advance one epoch with the scheduler whose turn it is."""
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            self._restart(sched)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def _restart(self, sched: LRScheduler) -> None:
        """Put ``sched`` at its epoch 0, from ``initial_lr`` (torch's ``_update_lr(0)``)."""
        sched.last_epoch = 0
        closed_form = getattr(sched, "_get_closed_form_lr", None)
        values = closed_form() if closed_form is not None else sched.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        sched._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        """Not used: each step delegates to one of the schedulers."""
        raise NotImplementedError(f"{type(self).__name__} delegates to its schedulers")

    def state_dict(self) -> dict[str, Any]:
        """This scheduler's state, with every inner scheduler's under ``'_schedulers'``."""
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`, inner schedulers included."""
        state = dict(state_dict)
        inner = state.pop("_schedulers", None)
        super().load_state_dict(state)
        if inner is not None:
            if len(inner) != len(self._schedulers):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {len(inner)} scheduler states for "
                    f"{len(self._schedulers)} schedulers"
                )
            for sched, saved in zip(self._schedulers, inner):
                sched.load_state_dict(saved)
