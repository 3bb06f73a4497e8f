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

from cnnlab.optim.lr_scheduler.base import LRScheduler
from cnnlab.optim.lr_scheduler.cosine import CosineAnnealingLR
from cnnlab.optim.lr_scheduler.decay import ExponentialLR, LambdaLR, MultiStepLR, StepLR
from cnnlab.optim.lr_scheduler.plateau import ReduceLROnPlateau
from cnnlab.optim.lr_scheduler.sequential import SequentialLR
from cnnlab.optim.lr_scheduler.warmup import LinearLR, warmup_scheduler

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
