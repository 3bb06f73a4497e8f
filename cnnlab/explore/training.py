"""Training live: a run started from the page, or a run folder ``cnnlab train`` is writing.

Both feed an :class:`EventLog` that ``GET /api/train/events`` streams as server-sent
events (each with an ``id``; a reconnecting page resumes after the last one it saw):

* ``status``   -- ``{"state": idle | running | paused | stopped | done | failed | following,
  "message", "out", "lr"}``;
* ``step``     -- after every optimizer step: ``{"step", "epoch", "loss", "acc", "lr"}``
  (this batch's loss and accuracy, not the epoch's running mean);
* ``epoch``    -- the epoch's ``metrics.jsonl`` row (``val_acc``, ``train_loss``, ...);
* ``snapshot`` -- a few times a second: the first-layer filters and a weight and gradient
  histogram per layer, after the weights were copied into the model the page shows.

A run started from the page (:class:`LiveTraining`) is an ordinary :func:`cnnlab.training.run.fit`
in a thread, in a new folder under the runs root: atomic checkpoints every epoch, a clear stop
on divergence, resumable with ``cnnlab train --resume --out RUN``.  Its monitor pauses,
resumes, stops and changes the learning rate between steps.  :class:`RunFollower` reads a
run another process is writing: each new ``metrics.jsonl`` row and checkpoint.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.training.run import Monitor

__all__ = ["EventLog", "LiveTraining", "RunFollower", "histogram", "MAX_EPOCHS", "MAX_BATCH"]

#: the page may ask for at most this many epochs and this batch size
MAX_EPOCHS = 200
MAX_BATCH = 4096
#: seconds between two snapshots (weights copied to the page's model, filters, histograms)
SNAPSHOT_EVERY = 0.3
_BINS = 24


class EventLog:
    """Numbered events, the newest ``keep`` of them; readers ask for those after an id."""

    def __init__(self, keep: int = 20000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._next = 1
        self._lock = threading.Lock()

    def add(self, kind: str, **data: Any) -> None:
        with self._lock:
            self._events.append({"id": self._next, "type": kind, **data})
            self._next += 1

    def after(self, last_id: int) -> list[dict[str, Any]]:
        """The events after ``last_id``; all of them for an id this log never gave
        (a page reconnecting to a restarted server)."""
        with self._lock:
            if last_id >= self._next:
                last_id = 0
            return [e for e in self._events if e["id"] > last_id]

    def last(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            return next((e for e in reversed(self._events) if e["type"] == kind), None)


def histogram(a: np.ndarray) -> dict[str, Any]:
    """``{"lo", "hi", "counts"}``: ``_BINS`` equal bins over the finite values of ``a``."""
    a = np.asarray(a, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"lo": 0.0, "hi": 0.0, "counts": []}
    lo, hi = float(a.min()), float(a.max())
    counts, _ = np.histogram(a, bins=_BINS, range=(lo, hi if hi > lo else lo + 1e-12))
    return {"lo": lo, "hi": hi, "counts": counts.tolist()}


def snapshot(model, with_grads: bool) -> dict[str, Any]:
    """The first-layer filters and per-layer weight (and gradient) histograms of ``model``."""
    from cnnlab.explore.session import encode_array

    filters, layers = None, []
    for name, p in model.named_parameters():
        if not name.endswith("weight") or p.data.ndim < 2:
            continue                       # biases and norm scales: not worth a histogram
        if filters is None and p.data.ndim == 4:
            filters = {"name": name, "data": encode_array(p.data[:64])}
        row = {"name": name[: -len(".weight")], "weights": histogram(p.data)}
        if with_grads and p.grad is not None:
            row["grads"] = histogram(p.grad)
        layers.append(row)
    return {"filters": filters, "layers": layers}


class LiveTraining(Monitor):
    """One training run at a time, started from the page (``POST /api/train``).

    ``holder.explorer`` is the model the page shows: when the run starts it becomes an
    eval-mode copy of the model being trained, refreshed at every snapshot."""

    def __init__(self, holder, root: Path, events: EventLog) -> None:
        self.holder, self.root, self.events = holder, Path(root), events
        self.state, self.out, self.thread = "idle", None, None
        self._go = threading.Event()
        self._go.set()
        self._stop = False
        self._new_lr: float | None = None
        self._live = None                   # the page's copy of the model being trained
        self._step = self._seen = 0
        self._total = self._correct = 0.0
        self._epoch = 0
        self._last_snap = 0.0

    # ------------------------------------------------------------------ the page's requests
    def start(self, fields: dict[str, Any]) -> dict[str, Any]:
        from cnnlab.explore.api import ApiError, int_field
        from cnnlab.training.run import TrainConfig

        if self.thread is not None and self.thread.is_alive():
            raise ApiError(409, f"a run is already training into {self.out}; stop it first")
        known = {"model", "dataset", "lr", "batch_size", "epochs"}
        unknown = set(fields) - known
        if unknown:
            raise ApiError(400, f"unknown training field(s) {sorted(unknown)}; known: {sorted(known)}")
        if fields.get("lr") is not None:
            _rate(fields["lr"])
        for key, hi in (("batch_size", MAX_BATCH), ("epochs", MAX_EPOCHS)):
            if fields.get(key) is not None:
                int_field(fields, key, lo=1, hi=hi)
        for key in ("model", "dataset"):
            if fields.get(key) is not None and not isinstance(fields[key], str):
                raise ApiError(400, f"{key!r} must be a name, got {json.dumps(fields[key])[:40]}")
        from cnnlab.models import list_models

        name = fields.get("model")
        if name is not None and name.lower().replace("-", "_") not in list_models():
            raise ApiError(400, f"no model {name!r}; models: {', '.join(list_models())}")
        cfg = TrainConfig(**{k: v for k, v in fields.items() if v is not None})
        cfg.resolved()                      # a ConfigError (400) names a bad model or dataset now
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = self.root / f"explore-{cfg.dataset}-{stamp}"
        k = 1
        while out.exists():
            k += 1
            out = self.root / f"explore-{cfg.dataset}-{stamp}-{k}"
        self.out, self._stop, self._new_lr, self._live = out, False, None, None
        self._step = self._epoch = 0
        self._go.set()
        self._set_state("running", f"training {cfg.model or 'the default model'} on {cfg.dataset}")
        self.thread = threading.Thread(target=self._run, args=(cfg,), name="cnnlab-explore-train",
                                       daemon=True)
        self.thread.start()
        return self.status()

    def control(self, fields: dict[str, Any]) -> dict[str, Any]:
        from cnnlab.explore.api import ApiError

        action = fields.get("action")
        running = self.thread is not None and self.thread.is_alive()
        if action not in ("pause", "resume", "stop", "lr"):
            raise ApiError(400, f"'action' must be pause, resume, stop or lr, got {json.dumps(action)[:40]}")
        if not running:
            raise ApiError(409, f"no run is training (the state is {self.state})")
        if action == "pause":
            self._go.clear()
            self._set_state("paused", "paused between two steps")
        elif action == "resume":
            self._set_state("running", "resumed")
            self._go.set()
        elif action == "stop":
            self._stop = True
            self._go.set()
        else:
            self._new_lr = _rate(fields.get("lr"))
        return self.status()

    def status(self) -> dict[str, Any]:
        last = self.events.last("status")
        return {"state": self.state, "out": str(self.out) if self.out else None,
                "message": last["message"] if last else "", "step": self._step}

    def _set_state(self, state: str, message: str, **extra: Any) -> None:
        self.state = state
        self.events.add("status", state=state, message=message, out=str(self.out) if self.out else None,
                        **extra)

    # ------------------------------------------------------------------ the training thread
    def _run(self, cfg) -> None:
        from cnnlab.training.run import fit

        try:
            result = fit(cfg, self.out, progress=False, report=lambda line: None, monitor=self)
        except _Stopped:
            done = self._epoch_done()
            self._set_state("stopped", f"stopped after epoch {done}; continue it with "
                                       f"`cnnlab train --resume --out {self.out}`" if done else
                            "stopped before the first epoch ended: no checkpoint to resume from")
            return
        except Exception as e:              # divergence, a missing dataset: said on the page
            self._set_state("failed", f"{type(e).__name__}: {e}")
            return
        self._snapshot(force=True)
        if self._live is not None:
            self._live[1].source = str(self.out / "model.npz")
            self.events.add("model", source=self._live[1].source)
        self._set_state("done", f"test accuracy {result.test_accuracy:.4f} (run folder {self.out})",
                        test_acc=result.test_accuracy)

    def _epoch_done(self) -> int:
        from cnnlab.training.folder import find_checkpoints

        found = find_checkpoints(self.out)
        return found[-1][0] if found else 0

    def step(self, run, epoch: int, n: int, loss: float, acc: float) -> None:
        if epoch != self._epoch:
            self._epoch, self._seen, self._total, self._correct = epoch, 0, 0.0, 0.0
        seen = self._seen + n
        step_loss = (loss * seen - self._total) / n
        step_acc = (acc * seen - self._correct) / n
        self._seen, self._total, self._correct = seen, loss * seen, acc * seen
        self._step += 1
        groups = run.optimizer.param_groups
        if self._new_lr is not None:
            self._set_lr(run, self._new_lr)
            self._new_lr = None
        self.events.add("step", step=self._step, epoch=epoch, loss=step_loss,
                        acc=min(1.0, max(0.0, step_acc)), lr=groups[0]["lr"])
        if self._live is None:
            self._adopt(run)
        self._snapshot()
        if not self._go.is_set():
            self._snapshot(force=True)
            self._go.wait()
        if self._stop:
            raise _Stopped

    def epoch(self, run, row: dict[str, Any]) -> None:
        self.events.add("epoch", **row)
        self._snapshot(force=True)

    def _set_lr(self, run, lr: float) -> None:
        """Scale every group's rate (and the schedule's base rates) so the first group's is ``lr``."""
        groups = run.optimizer.param_groups
        factor = lr / groups[0]["lr"] if groups[0]["lr"] > 0 else 1.0
        for g in groups:
            g["lr"] = lr if factor == 1.0 else g["lr"] * factor
            if "initial_lr" in g:
                g["initial_lr"] *= factor
        if run.scheduler is not None and hasattr(run.scheduler, "base_lrs"):
            run.scheduler.base_lrs = [b * factor for b in run.scheduler.base_lrs]
        self._set_state(self.state, f"learning rate set to {lr:g}", lr=lr)

    def _adopt(self, run) -> None:
        """Show an eval-mode copy of the model being trained (the page reloads /api/model)."""
        from cnnlab.explore.session import Explorer
        from cnnlab.training.run import build_model

        ex = Explorer(build_model(run.meta["model_spec"]), dict(run.meta), f"{self.out} (training)", self.out)
        ex.copy_weights(run.model)
        self._live = (run, ex)
        self.holder.explorer = self._live[1]
        self.events.add("model", source=self._live[1].source)

    def _snapshot(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._live is None or (not force and now - self._last_snap < SNAPSHOT_EVERY):
            return
        self._last_snap = now
        run, ex = self._live
        ex.copy_weights(run.model)
        self.events.add("snapshot", step=self._step, **snapshot(run.model, with_grads=True))


def _rate(lr: Any) -> float:
    from cnnlab.explore.api import ApiError

    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr <= 10:
        raise ApiError(400, f"'lr' must be a number in (0, 10], got {json.dumps(lr)[:40]}")
    return float(lr)


class _Stopped(Exception):
    """Raised between two steps when the page asked to stop."""


class RunFollower:
    """Follows a run folder another process (``cnnlab train``) is writing: each new
    ``metrics.jsonl`` row becomes an ``epoch`` event, each new checkpoint is loaded into
    the model the page shows; it ends when ``model.npz`` appears."""

    def __init__(self, holder, run_dir: Path, events: EventLog, poll: float = 0.5) -> None:
        self.holder, self.run_dir, self.events, self.poll = holder, Path(run_dir), events, poll
        self.state, self.rows = "following", 0
        #: the checkpoint shown: the one the explorer was opened from is not loaded again
        self.checkpoint = Path(holder.explorer.source) if holder.explorer.in_progress else None
        self.thread = threading.Thread(target=self._loop, name="cnnlab-explore-follow", daemon=True)

    def start(self) -> RunFollower:
        self.events.add("status", state="following", message=f"following {self.run_dir} as it trains",
                        out=str(self.run_dir))
        if self.checkpoint is not None:
            self.events.add("snapshot", step=None, **snapshot(self.holder.explorer.model, with_grads=False))
        self.thread.start()
        return self

    def check(self) -> bool:
        """Read what is new; False once the run has finished (its model.npz exists)."""
        from cnnlab.explore.session import Explorer
        from cnnlab.training.folder import find_checkpoints

        done = (self.run_dir / "model.npz").is_file()
        path = self.run_dir / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        for line in lines[self.rows:]:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break                       # a line being written: read it next time
            self.events.add("epoch", **row)
            self.rows += 1
        found = find_checkpoints(self.run_dir)
        newest = self.run_dir / "model.npz" if done else (found[-1][1] if found else None)
        if newest is not None and newest != self.checkpoint:
            try:
                ex = Explorer.open(str(newest))
            except Exception:               # a file being replaced: try again next time
                return True
            self.checkpoint, self.holder.explorer = newest, ex
            self.events.add("model", source=ex.source)
            self.events.add("snapshot", step=None, **snapshot(ex.model, with_grads=False))
        if done:
            self.state = "done"
            self.events.add("status", state="done", message=f"{self.run_dir} finished", out=str(self.run_dir))
        return not done

    def _loop(self) -> None:
        while self.check():
            time.sleep(self.poll)
