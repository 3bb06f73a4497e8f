"""The run folder: where a run's files go, and finding them again to resume.

::

    RUN/config.json              the resolved configuration
    RUN/metrics.jsonl            one JSON line per epoch
    RUN/checkpoints/epoch-NNN.npz  a resumable checkpoint after every epoch (the last
                                 ``keep_checkpoints`` and the best validation epoch's are kept)
    RUN/best.npz                 the best validation epoch's weights (with a validation split)
    RUN/model.npz                the final weights
    RUN/curves.png               loss and accuracy per epoch (if matplotlib is installed)
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from cnnlab._files import LockHeldError, append_text, exclusive_lock, write_text_atomic
from cnnlab.plots import plot_history
from cnnlab.training.config import TrainConfig

CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.npz$")


class RunExistsError(FileExistsError):
    """The folder a new run would be written to already holds a run (``out``)."""

    def __init__(self, out: Path, advice: str = "resume it or choose another folder") -> None:
        super().__init__(f"{out} already holds a run; {advice}")
        self.out = out


class RunLockedError(ValueError):
    """Another process is running in the same run folder."""


RUN_FILES = ("model.npz", "config.json", "metrics.jsonl", "checkpoints")
LOCK_NAME = ".lock"


def run_folder_taken(out: Path) -> bool:
    """True when ``out`` holds a run: any of model.npz, config.json, metrics.jsonl, checkpoints/."""
    return any(os.path.lexists(out / name) for name in RUN_FILES)


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``out/.lock`` for the life of a run.

    A second process that tries to run in ``out`` meanwhile gets
    :class:`RunLockedError` naming the holder's PID at once (it does not wait).
    The lock dies with its process, so a killed run never leaves ``out``
    locked.  The folder is created; if it was created here and holds nothing
    but the lock when the run ends (a run refused before its first file),
    it is removed again."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(out / LOCK_NAME):
            yield
    except LockHeldError as e:
        raise RunLockedError(f"{out} is in use by another cnnlab run (PID {e.holder}); wait for it "
                             "to finish or choose another folder") from None
    finally:
        if created:
            for folder in (out / "checkpoints", out):
                with contextlib.suppress(OSError):
                    folder.rmdir()   # only when empty


def checkpoint_path(out: Path, epoch: int) -> Path:
    return out / "checkpoints" / f"epoch-{epoch:03d}.npz"


def find_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint in ``out``, oldest first."""
    folder = out / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def newest_checkpoint(out: Path) -> Path:
    """The checkpoint of the latest epoch in ``out``; FileNotFoundError when there is none."""
    found = find_checkpoints(out)
    if not found:
        raise FileNotFoundError(f"no checkpoint to resume from in {out / 'checkpoints'}")
    return found[-1][1]


def prune_checkpoints(out: Path, epoch: int, keep: int, best: int | None = None) -> list[Path]:
    """Delete the checkpoints of epochs up to ``epoch`` except the newest ``keep``
    of them and the ``best`` epoch's (0 keeps all); later epochs' files (left by
    a run resumed from an older checkpoint) are left alone.  Returns the deleted."""
    if keep <= 0:
        return []
    done = [(e, p) for e, p in find_checkpoints(out) if e <= epoch]
    removed = [p for e, p in done[:-keep] if e != best]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def model_file(path: str | os.PathLike) -> Path:
    """The file to load for ``path``: itself, or ``RUN/model.npz`` for a run folder."""
    p = Path(path)
    if not p.is_dir():
        return p
    if (p / "model.npz").is_file():
        return p / "model.npz"
    found = find_checkpoints(p)
    hint = (f"; training did not finish: pass its newest checkpoint {found[-1][1]}, or finish it "
            f"with cnnlab train --out {p} --resume" if found else
            "; it is not a run folder written by cnnlab train")
    raise FileNotFoundError(f"{p} holds no model.npz{hint}")


def default_out_dir(cfg: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<dataset>-<model>`` of a resolved config, or with ``-2``, ``-3``, ... if that is taken."""
    kind, _, where = cfg.dataset.partition(":")    # folder:/data/pets -> pets
    label = Path(where.rstrip("/\\")).name or kind if where else kind
    base = Path(root) / f"{label}-{cfg.model}"
    out, k = base, 1
    while out.exists() and any(out.iterdir()):
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def open_run_folder(out: Path, config: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Create ``out`` and its checkpoint folder; write ``config.json`` and the
    ``metrics.jsonl`` rows of the epochs done so far (none for a new run)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    write_text_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")
    write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))


def abandon_new_run(out: Path) -> None:
    """After a new run in ``out`` failed before its first checkpoint: remove the
    config.json and metrics.jsonl it wrote (the folder held no run when it began,
    and its lock kept others out), so that ``out`` is free for the next attempt.
    A run with a checkpoint is left as it is, for ``--resume``."""
    if find_checkpoints(out):
        return
    for name in ("config.json", "metrics.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()
    with contextlib.suppress(OSError):
        (out / "checkpoints").rmdir()   # only when empty


def append_metrics(out: Path, row: dict[str, Any]) -> None:
    append_text(out / "metrics.jsonl", json.dumps(row) + "\n")


def write_curves(history: list[dict[str, Any]], path: Path, title: str = "",
                 final_test: float | None = None) -> Path | None:
    """Loss and accuracy per epoch as a PNG (:func:`cnnlab.plots.plot_history`), the
    final test accuracy in its title; None, and no file, when there is no epoch or
    matplotlib is missing."""
    if not history:
        return None
    try:
        return plot_history(history, path, title, figsize=(10, 4), final_test=final_test)
    except ImportError:
        return None
