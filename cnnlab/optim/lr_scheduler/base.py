"""The :class:`LRScheduler` base class and the argument checks every scheduler shares.

A scheduler edits ``group['lr']`` of its optimizer's parameter groups.  The
base class records each group's starting learning rate as
``group['initial_lr']`` (``base_lrs``), takes the construction-time step that
sets epoch 0's learning rate, and saves / restores every attribute but the
optimizer through :meth:`LRScheduler.state_dict`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from cnnlab.optim.optimizer import Optimizer, _to_plain

__all__ = ["LRScheduler"]


def _check_optimizer(owner: str, optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"{owner}: expected a cnnlab.optim.Optimizer, got {type(optimizer).__name__}"
        )


def _check_real(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite real number, got {value!r}")


def _check_int(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")


class LRScheduler:
    """Base class for learning-rate schedulers.

    Subclasses implement :meth:`get_lr`, which returns the learning rate of
    every parameter group for the (already incremented) ``last_epoch``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``group['lr']`` values are scheduled.
    last_epoch : int, default -1
        Index of the last epoch seen.  ``-1`` starts a fresh schedule; a value
        ``>= 0`` resumes one and requires ``'initial_lr'`` in every group.

    Attributes
    ----------
    optimizer : Optimizer
        The scheduled optimizer.
    base_lrs : list of float
        ``group['initial_lr']`` of every group.
    last_epoch : int
        Epoch index of the current learning rates (0 right after construction).
    """

    # Attributes left out of state_dict(): the optimizer, and transient flags.
    _not_serialised: tuple[str, ...] = ("optimizer", "_is_initial")

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        _check_int(name, "last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming a scheduler with last_epoch >= 0 (load the optimizer's state first)"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = False
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the construction-time step."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """Compute the learning rate of each group for ``last_epoch`` (subclasses).

        Returns
        -------
        list of float
            One learning rate per parameter group.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr()")

    def get_last_lr(self) -> list[float]:
        """Return the learning rates set by the most recent :meth:`step`.

        Returns
        -------
        list of float
            A copy, one value per parameter group.
        """
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch and write the new learning rates into the optimizer."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        if len(values) != len(self.optimizer.param_groups):
            raise RuntimeError(
                f"{type(self).__name__}: computed {len(values)} learning rates for "
                f"{len(self.optimizer.param_groups)} parameter groups"
            )
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self) -> list[float]:
        """The groups' current learning rates (what a chainable step starts from)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Return the scheduler state (every attribute except the optimizer).

        Returns
        -------
        dict
            Plain Python values only (numbers, bools, strings, ``None``, lists).
        """
        return {
            key: _to_plain(value, f"{type(self).__name__}.{key}")
            for key, value in self.__dict__.items()
            if key not in self._not_serialised
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`.

        Parameters
        ----------
        state_dict : mapping
            The saved attributes.
        """
        for key, value in state_dict.items():
            if key in self._not_serialised:
                continue
            setattr(self, key, _to_plain(value, f"{type(self).__name__}.{key}"))
