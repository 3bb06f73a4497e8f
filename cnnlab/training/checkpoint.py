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
MAX_INPUT_SIZE = 4096        # pixels per side: beyond this one image's activations fill the memory


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
    path: str = ""                   # the file it was read from (named in errors)

    def restore(self, model: Module, optimizer=None, scheduler=None) -> None:
        """Load the weights into ``model`` (and the optimizer's and scheduler's state
        when given); CheckpointError naming the file when they do not fit."""
        try:
            model.load_state_dict(self.model_state)
            if optimizer is not None and self.optimizer_state is not None:
                optimizer.load_state_dict(self.optimizer_state)
            if scheduler is not None and self.scheduler_state is not None:
                scheduler.load_state_dict(self.scheduler_state)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            why = e.args[0] if e.args else type(e).__name__
            raise ser.CheckpointError(f"{self.path}: does not fit the model it describes: {why}") from e


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
    if not isinstance(history, list):
        raise ser.CheckpointError(f"{path}: its metric history is not a list of rows")
    check_history(history, f"{path}: its metric history")
    check_meta(meta, path)
    return TrainingState(epoch, model_state, opt, sched, rng_state, meta, str(path))


# The numbers of a metrics row (``cnnlab.training.run.epoch_row``); a row may lack any of them.
METRIC_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
               "train_time_s", "epoch_time_s")


def check_history(rows: list[Any], where: str) -> None:
    """CheckpointError naming the row and key unless every row is an object with a
    whole ``epoch`` >= 1 and numbers under those of :data:`METRIC_KEYS` it has."""
    for k, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ser.CheckpointError(f"{where} row {k} is {type(row).__name__}, not an object")
        epoch = row.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ser.CheckpointError(f"{where} row {k} has epoch {str(epoch)[:40]}, not a whole "
                                      "number >= 1")
        for key in METRIC_KEYS:
            v = row.get(key, 0)
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ser.CheckpointError(f"{where} row {k}: {key} is {str(v)[:40]!r}, not a number")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def check_meta(meta: dict[str, Any], path: str | os.PathLike) -> None:
    """CheckpointError naming the key when a file's dataset, class names,
    normalisation statistics or model input sizes are not what cnnlab writes
    (the model_spec's name and kwargs are checked by ``stored_spec``)."""
    def bad(key: str, value: Any, expected: str) -> ser.CheckpointError:
        return ser.CheckpointError(f"{path}: its {key} is {str(value)[:80]}, not {expected}")

    if not isinstance(meta.get("dataset", ""), (str, type(None))):
        raise bad("dataset", meta["dataset"], "a dataset name")
    classes = meta.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise bad("classes", classes, "a list of class names")
    if meta.get("test_accuracy") is not None and not _number(meta["test_accuracy"]):
        raise bad("test_accuracy", meta["test_accuracy"], "a number")
    norm = meta.get("normalize")
    if norm is not None and not (isinstance(norm, dict) and set(norm) == {"mean", "std"}
                                 and _number(norm["mean"]) and _number(norm["std"]) and norm["std"] > 0):
        raise bad("normalize", norm, 'null or {"mean": number, "std": number > 0}')
    spec = meta.get("model_spec")
    inp = spec.get("input") if isinstance(spec, dict) else None
    if inp is not None and not (
            isinstance(inp, dict) and set(inp) <= {"from", "to", "how"}
            and all(isinstance(inp.get(k, 1), int) and not isinstance(inp.get(k, 1), bool)
                    and 1 <= inp.get(k, 1) <= MAX_INPUT_SIZE for k in ("from", "to"))
            and inp.get("how") in (None, "pad", "resize")):
        raise bad("model_spec input", inp, 'null or {"from": size, "to": size, "how": "pad" or "resize"}')


def save_model(path: str | os.PathLike, model: Module, meta: dict[str, Any] | None = None) -> Path:
    """Weights only (plus metadata such as the model's name and input spec);
    refused for non-finite weights (:func:`check_finite`)."""
    state = model.state_dict()
    check_finite(state, path)
    arrays = {MODEL_PREFIX + k: v for k, v in state.items()}
    return ser.save_arrays(path, arrays, {"kind": "model", **(meta or {})})
