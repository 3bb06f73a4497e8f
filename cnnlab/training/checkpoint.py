"""Training checkpoints: the whole state needed to resume, in one ``.npz``.

A checkpoint holds the model's state dict (``model/<name>``), the optimizer
and scheduler state, the random generator's state, the epoch and the run's
config and metric history.  Resuming from it reproduces an uninterrupted run
bit for bit: the data order depends only on (seed, epoch), and every other
source of randomness is in the checkpoint.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import serialization as ser
from cnnlab.nn.module import Module

MODEL_PREFIX = "model/"


class TrainingDivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or weights (a FloatingPointError, and a
    ValueError so the command line reports it as a message)."""


def check_finite(state: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Refuse to write ``path`` when a parameter or buffer of ``state`` holds NaN or
    infinity: :class:`TrainingDivergedError` naming the first such tensor.  The
    file already at ``path`` (the last good one) is left as it is."""
    for name, a in state.items():
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = a[~np.isfinite(a)].flat[0]
            raise TrainingDivergedError(
                f"training diverged: {name} holds {bad} ({int((~np.isfinite(a)).sum())} of {a.size} "
                f"values not finite); {path} is not written and the last good checkpoint is kept; "
                "lower the learning rate")


@dataclass
class TrainingState:
    epoch: int                       # epochs completed
    model_state: dict[str, np.ndarray]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    rng_state: dict[str, Any] | None
    meta: dict[str, Any]             # config, metric history, model spec, ...


def save_training_state(path: str | os.PathLike, model: Module, optimizer=None, scheduler=None,
                        epoch: int = 0, rng_state: dict | None = None,
                        meta: dict[str, Any] | None = None) -> Path:
    """Atomically write a resumable checkpoint (refused for non-finite weights: :func:`check_finite`)."""
    state = model.state_dict()
    check_finite(state, path)
    arrays: dict[str, np.ndarray] = {MODEL_PREFIX + k: v for k, v in state.items()}
    opt = ser.pack_tree(optimizer.state_dict(), arrays, "optim") if optimizer is not None else None
    sched = scheduler.state_dict() if scheduler is not None else None
    full_meta = {
        "kind": "training-state",
        "epoch": int(epoch),
        "optimizer": opt,
        "scheduler": ser.pack_tree(sched, arrays, "sched") if sched is not None else None,
        "rng_state": rng_state,
        **(meta or {}),
    }
    return ser.save_arrays(path, arrays, full_meta)


def load_training_state(path: str | os.PathLike) -> TrainingState:
    """Read a checkpoint written by :func:`save_training_state` (or a final
    model file, which has no optimizer state)."""
    arrays, meta = ser.load_arrays(path)
    model_state = {k[len(MODEL_PREFIX):]: v for k, v in arrays.items() if k.startswith(MODEL_PREFIX)}
    if not model_state:
        raise ser.CheckpointError(f"{path}: holds no model weights")
    try:
        opt = ser.unpack_tree(meta.pop("optimizer", None), arrays)
        sched = ser.unpack_tree(meta.pop("scheduler", None), arrays)
    except (KeyError, TypeError, ValueError, RecursionError) as e:
        raise ser.CheckpointError(f"{path}: corrupt optimizer or scheduler state "
                                  f"({type(e).__name__}: {e})") from e
    rng_state = meta.pop("rng_state", None)
    epoch = meta.pop("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ser.CheckpointError(f"{path}: its epoch is {epoch!r}, not a whole number >= 0")
    if not (rng_state is None or isinstance(rng_state, dict)):
        raise ser.CheckpointError(f"{path}: its rng_state is {type(rng_state).__name__}, not an object")
    history = meta.get("history", [])
    if not (isinstance(history, list) and all(isinstance(r, dict) for r in history)):
        raise ser.CheckpointError(f"{path}: its metric history is not a list of rows")
    return TrainingState(epoch, model_state, opt, sched, rng_state, meta)


def save_model(path: str | os.PathLike, model: Module, meta: dict[str, Any] | None = None) -> Path:
    """Weights only (plus metadata such as the model's name and input spec);
    refused for non-finite weights (:func:`check_finite`)."""
    state = model.state_dict()
    check_finite(state, path)
    arrays = {MODEL_PREFIX + k: v for k, v in state.items()}
    return ser.save_arrays(path, arrays, {"kind": "model", **(meta or {})})
