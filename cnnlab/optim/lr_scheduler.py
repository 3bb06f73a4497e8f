"""Learning-rate schedulers, mirroring ``torch.optim.lr_scheduler``.

A scheduler edits ``group['lr']`` of its optimizer's parameter groups.  Call
``scheduler.step()`` once per epoch (or iteration), *after*
``optimizer.step()``.  Constructing a scheduler performs an initial step that
sets epoch 0's learning rate and records each group's starting learning rate
as ``group['initial_lr']`` (the scheduler's ``base_lrs``).

The schedulers reproduce torch's numbers exactly, which means using torch's
*chainable* (recursive) formulas: each step derives the new learning rate from
the group's current one (``StepLR`` multiplies by ``gamma`` at each boundary,
``CosineAnnealingLR`` applies the ratio of successive cosine factors, ...),
rather than evaluating a closed form from ``base_lrs``.  The two agree in exact
arithmetic when nothing else edits ``group['lr']``.

``state_dict()`` holds only Python numbers, bools, strings, ``None`` and lists,
so it is JSON serialisable (``ReduceLROnPlateau``'s ``best`` may be ``inf``,
which Python's ``json`` writes as ``Infinity``).
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from cnnlab.optim.optimizer import Optimizer, _to_plain

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "warmup_scheduler",
]


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
            for sched, s in zip(self._schedulers, inner):
                sched.load_state_dict(s)


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
