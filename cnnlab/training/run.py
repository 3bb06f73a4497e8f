"""A whole training run: config in, run folder out.

:func:`fit` reads as its steps: start or resume, load the data, build the
model, optimizer and scheduler, open the run folder, then for every epoch
:func:`train_epoch` and :func:`save_epoch`, and at the end :func:`finish`
(early stopping's best weights, TTA, ``model.npz``, the curves).

The run folder gets

* ``config.json``           -- the resolved configuration;
* ``metrics.jsonl``         -- one JSON line per epoch (losses, accuracies, lr, time;
  ``val_loss``/``val_acc`` with a validation split);
* ``checkpoints/epoch-NNN.npz`` -- a resumable checkpoint after every epoch;
* ``best.npz``              -- with a validation split: the weights of the epoch
  with the best validation accuracy so far (loadable by ``cnnlab evaluate``);
* ``model.npz``             -- the final weights with what ``cnnlab evaluate`` needs
  (the best epoch's after early stopping);
* ``curves.png``            -- loss and accuracy per epoch (if matplotlib is installed).

The config is :mod:`cnnlab.training.config`; the parts built from it are in
:mod:`cnnlab.training.builders`; the folder's files in :mod:`cnnlab.training.folder`;
transfer learning in :mod:`cnnlab.training.transfer`; the validation and
small-training-set splits in :mod:`cnnlab.training.splits`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cnnlab
from cnnlab import optim
from cnnlab.data import DataLoader, build_augmentation
from cnnlab.nn import BatchNorm1d
from cnnlab.nn.module import Module
from cnnlab.serialization import CheckpointError
from cnnlab.training.builders import (
    build_model,
    build_optimizer,
    build_scheduler,
    evaluation_loader,
    input_transform,
    load_data,
    load_for_evaluation,
    model_spec_for,
    normalisation,
    split_training_data,
)
from cnnlab.training.checkpoint import (
    TrainingState,
    load_training_state,
    save_model,
    save_training_state,
)
from cnnlab.training.config import (
    DATASET_DEFAULTS,
    DEFAULT_MODEL,
    MODEL_LR,
    RUNTIME_FIELDS,
    SCHEDULERS,
    ConfigError,
    TrainConfig,
    source_spec,
)
from cnnlab.training.distributed import LocalWorld, join_world
from cnnlab.training.folder import (
    CHECKPOINT_RE,
    RunExistsError,
    abandon_new_run,
    append_metrics,
    checkpoint_path,
    default_out_dir,
    find_checkpoints,
    newest_checkpoint,
    open_run_folder,
    prune_checkpoints,
    run_folder_taken,
    run_lock,
    write_curves,
)
from cnnlab.training.loop import EpochResult, best_epoch, evaluate, should_stop, train_one_epoch
from cnnlab.training.transfer import batchnorms_under, initialise_from, trained_batchnorms
from cnnlab.training.tta import FLIP_SAFE, evaluate_tta, tta_options

# Names of the run's building blocks, importable from here as well as from their modules.
__all__ = ["CHECKPOINT_RE", "DATASET_DEFAULTS", "DEFAULT_MODEL", "FLIP_SAFE", "MODEL_LR", "SCHEDULERS",
           "Best", "ConfigError", "Monitor", "Reporter", "RunData", "RunResult", "TrainConfig", "build_model",
           "build_optimizer", "build_scheduler", "default_out_dir", "evaluate", "evaluation_loader",
           "find_checkpoints", "finish", "fit", "input_transform", "load_data", "load_for_evaluation",
           "load_run_data", "model_spec_for", "save_epoch", "source_spec", "split_training_data",
           "train_epoch", "tta_options", "write_curves"]

Reporter = Callable[[str], None]


class Monitor:
    """Watches a run from inside :func:`fit` (``cnnlab explore`` streams it to a page).

    ``step`` is called after every optimizer step with the batch size and the
    epoch's running mean loss and accuracy; it runs between steps, so it may
    pause (block) or change ``run.optimizer``'s learning rate.  ``epoch`` is
    called with each epoch's ``metrics.jsonl`` row once its checkpoint is written.
    Raising from either stops the run; the checkpoints written so far remain."""

    def step(self, run: Run, epoch: int, n: int, loss: float, acc: float) -> None:
        pass

    def epoch(self, run: Run, row: dict[str, Any]) -> None:
        pass


@dataclass
class RunResult:
    out: Path
    history: list[dict[str, Any]]
    test_accuracy: float
    model: Module


@dataclass
class RunData:
    """A run's datasets and loaders, and how its images reach the model."""

    train_set: Any
    val_set: Any | None
    test_set: Any
    full_train: int                   # training images before train_size and val_split
    sample_shape: tuple[int, ...]     # (C, H, W) of the raw images
    classes: list[str]
    normalize: dict[str, float] | None   # the dataset's mean and std, when standardising
    spec: dict[str, Any]              # the model spec (model_spec_for)
    train_loader: DataLoader
    val_loader: DataLoader | None
    test_loader: DataLoader


@dataclass
class Run:
    """What the epochs of a run work on."""

    cfg: TrainConfig
    out: Path
    data: RunData
    model: Module
    optimizer: Any
    scheduler: Any | None
    frozen_bn: list[Module]           # BatchNorm layers of frozen parts: kept in eval mode
    meta: dict[str, Any]              # stored in every file the run writes
    world: LocalWorld = field(default_factory=LocalWorld)   # its processes (one, or an MPI job)

    def save_model(self, name: str, **meta: Any) -> None:
        if self.world.is_writer:
            save_model(self.out / name, self.model, {**self.meta, **meta})


@dataclass
class Best:
    """The epoch with the best validation accuracy so far (strictly better wins)."""

    epoch: int
    val_acc: float
    weights: dict[str, Any] | None    # its state dict, when early stopping may restore it

    @classmethod
    def of_history(cls, out: Path, history: list[dict[str, Any]], need_weights: bool) -> Best | None:
        """The best epoch of a resumed run; its weights (needed by early stopping)
        are read from that epoch's checkpoint."""
        found = best_epoch(history)
        if found is None:
            return None
        if not need_weights:
            return cls(found[0], found[1], None)
        path = checkpoint_path(out, found[0])
        if not path.exists():
            raise FileNotFoundError(f"{path}: needed to resume early stopping (the best epoch's weights)")
        return cls(found[0], found[1], load_training_state(path).model_state)


# ----------------------------------------------------------------------- fit
def fit(cfg: TrainConfig, out: str | os.PathLike | None, resume: bool | str | os.PathLike = False,
        progress: bool | None = None, report: Reporter = print, extend: int | None = None,
        monitor: Monitor | None = None) -> RunResult:
    """Train ``cfg`` into the folder ``out``, holding its lock (:func:`run_lock`)
    for the whole run: a second process gets :class:`~cnnlab.training.folder.RunLockedError`
    naming this one's PID.

    ``resume=True`` continues from the newest checkpoint in ``out``; a path
    continues from that checkpoint.  The stored config is used, except that
    ``cfg.epochs`` (if given) may lengthen a run whose schedule is 'none',
    'step' or 'plateau' (a cosine schedule is tied to the planned length).
    ``extend=N`` ("train a bit more") resumes from that checkpoint for N more
    epochs on a new schedule segment: the learning rate goes back to the run's
    (or ``cfg.lr`` when given) and the schedule runs again over the N epochs
    (for 'cosine', a warm restart as in SGDR); the segment is recorded in the
    config (``segments``), so the extended run resumes like any other.
    ``progress`` shows a tqdm bar (default: when stderr is a terminal).
    ``out=None`` (a new run) writes to :func:`default_out_dir`.
    ``monitor`` (a :class:`Monitor`) is told of every step and epoch.

    Raises :class:`ConfigError` (a ValueError) for an option that cannot be
    used, :class:`RunExistsError` when a new run's ``out`` already holds one,
    and CheckpointError for a checkpoint that cannot be resumed from.
    A new run refuses a folder that holds model.npz, config.json,
    metrics.jsonl or checkpoints/ (:func:`run_folder_taken`).

    With ``cfg.distributed`` the run is one model trained data-parallel by
    every process of the MPI job (:mod:`cnnlab.training.distributed`).
    """
    if extend is not None and not resume:
        resume = True
    world = join_world(cfg.distributed, cfg.bucket_mb)
    report = world.reporter(report)
    with world.guard():
        return _fit(world, cfg, None if out is None else Path(out), resume, progress, report, extend, monitor)


def _fit(world: LocalWorld, cfg: TrainConfig, out: Path | None, resume: bool | str | os.PathLike,
         progress: bool | None, report: Reporter, extend: int | None,
         monitor: Monitor | None) -> RunResult:
    cfg, state = (resume_config(cfg, out, resume, report, extend) if resume
                  else (new_run_config(cfg, out), None))
    out = world.agree_path(default_out_dir(cfg) if out is None else out)
    with run_lock(out) if world.is_writer else contextlib.nullcontext():
        if state is None and world.is_writer and run_folder_taken(out):   # filled while setting up
            raise RunExistsError(out)
        return _train(world, cfg, state, out, progress, report, monitor)


def _train(world: LocalWorld, cfg: TrainConfig, state: TrainingState | None, out: Path,
           progress: bool | None, report: Reporter, monitor: Monitor | None) -> RunResult:
    """The run itself, in ``out`` (its lock held by the writing process)."""
    world.seed(cfg.seed)
    data = load_run_data(cfg)
    model, frozen_bn = make_model(cfg, data, state, report)
    optimizer = build_optimizer(cfg, model)
    start_epoch = state.epoch if state is not None else 0
    scheduler = build_scheduler(cfg, optimizer, segment_length(cfg, start_epoch))
    history, start_epoch = restore_state(state, model, optimizer, scheduler)
    data.train_loader.set_epoch(start_epoch)
    config = dataclasses.asdict(cfg)
    if world.is_writer:
        open_run_folder(out, config, history)
    try:
        world.setup_done()
        run = Run(cfg, out, data, model, optimizer, scheduler, frozen_bn,
                  meta={"config": config, "model_spec": data.spec, "classes": data.classes,
                        "normalize": data.normalize, "dataset": cfg.dataset}, world=world)
        report_setup(run, report)
        world.prepare(run, report)
        best = (Best.of_history(out, history, bool(cfg.early_stopping))
                if data.val_loader is not None else None)
        use_bar = (sys.stderr.isatty() if progress is None else progress) and world.is_writer
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            begun = segment_start(cfg, epoch)
            if begun == epoch - 1 and begun > 0:
                run.scheduler = start_segment(run, begun)
            recent = [h for h in history if h["epoch"] > begun]
            if cfg.early_stopping and recent and should_stop(recent, cfg.early_stopping):
                break   # a resumed run that had already stopped
            row, elapsed = train_epoch(run, epoch, use_bar, monitor)
            history.append(row)
            best = save_epoch(run, row, history, best)
            if monitor is not None:
                monitor.epoch(run, row)
            report(epoch_line(row, cfg.epochs, elapsed))
        return finish(run, history, best, report)
    except BaseException:
        if state is None and world.is_writer:
            abandon_new_run(out)   # stopped before its first checkpoint: the folder is free again
        raise


# -------------------------------------------------------------- the steps
def new_run_config(cfg: TrainConfig, out: Path | None) -> TrainConfig:
    """``cfg`` resolved, for a new run into ``out`` (which must hold no run yet)."""
    cfg = cfg.resolved()
    if out is not None and run_folder_taken(out):
        raise RunExistsError(out)
    return cfg


def resume_config(cfg: TrainConfig, out: Path, resume: bool | str | os.PathLike,
                  report: Reporter, extend: int | None = None) -> tuple[TrainConfig, TrainingState]:
    """The stored config and state of the checkpoint to resume from (``resume``,
    or the newest in ``out``), with ``cfg.epochs`` when it may lengthen the run,
    or with a new schedule segment of ``extend`` epochs."""
    ckpt = newest_checkpoint(out) if isinstance(resume, bool) else Path(resume)
    state = load_training_state(ckpt)
    if state.meta.get("kind") != "training-state":
        raise CheckpointError(f"{ckpt}: a final model file, not a resumable checkpoint")
    stored = TrainConfig.from_stored(state.meta.get("config"), ckpt)
    if extend is not None:
        extended = extended_config(cfg, stored, state, extend, ckpt, report)
        check_resumable(state, extended, ckpt)
        return extended, state
    if cfg.epochs and cfg.epochs != stored.epochs and stored.scheduler in ("cosine", "warmup-cosine"):
        raise ConfigError(
            f"this run's cosine schedule was planned for {stored.epochs} epochs and its "
            f"learning rate has decayed along it; it cannot be stretched to {cfg.epochs}. To train "
            f"{cfg.epochs - stored.epochs} more epochs on a new cosine segment, pass "
            f"--extend {cfg.epochs - stored.epochs} instead of --epochs (fit(..., extend=N)); "
            "or resume it with its planned length", "epochs")
    cfg = dataclasses.replace(stored, epochs=cfg.epochs or stored.epochs,
                              **{k: getattr(cfg, k) for k in RUNTIME_FIELDS}).resolved()
    check_resumable(state, cfg, ckpt)
    report(f"resuming from {ckpt} (epoch {state.epoch} of {cfg.epochs})")
    return cfg, state


def check_resumable(state: TrainingState, cfg: TrainConfig, ckpt: Path) -> None:
    """A checkpoint's epoch must lie within the run and match its history
    (rows for epochs 1..epoch), else resuming would write a model that was
    never trained: CheckpointError naming the file."""
    history = state.meta.get("history", [])
    if state.epoch > cfg.epochs:
        raise CheckpointError(f"{ckpt}: claims epoch {state.epoch}, past the run's {cfg.epochs} "
                              "epochs; nothing would be trained (pass a larger --epochs to extend it)")
    epochs = [row.get("epoch") for row in history]
    if epochs != list(range(1, len(epochs) + 1)) or len(epochs) != state.epoch:
        raise CheckpointError(f"{ckpt}: claims epoch {state.epoch} but its history has rows for "
                              f"epochs {epochs[:5]}{'...' if len(epochs) > 5 else ''}: corrupt")


def extended_config(cfg: TrainConfig, stored: TrainConfig, state: TrainingState, extend: int,
                    ckpt: Path, report: Reporter) -> TrainConfig:
    """The stored config lengthened by ``extend`` epochs after the checkpoint's
    epoch, with a schedule segment starting there (at ``cfg.lr`` if given)."""
    if isinstance(extend, bool) or extend < 1:
        raise ConfigError(f"extend must be >= 1 epoch, got {extend!r}", "extend")
    done = state.epoch
    lr = cfg.lr if cfg.lr is not None else stored.lr
    segments = [g for g in stored.segments if g["start"] < done] + [{"start": done, "lr": lr}]
    out = dataclasses.replace(stored, epochs=done + extend, segments=segments,
                              **{k: getattr(cfg, k) for k in RUNTIME_FIELDS}).resolved()
    report(f"extending from {ckpt}: epochs {done + 1}-{done + extend} on a new {out.scheduler} "
           f"schedule segment from lr {lr:.4g}")
    return out


def segment_start(cfg: TrainConfig, epoch: int) -> int:
    """Epochs done before the schedule segment that epoch ``epoch`` (1-based) is in."""
    return max([0] + [int(g["start"]) for g in cfg.segments if g["start"] < epoch])


def segment_length(cfg: TrainConfig, done: int) -> int:
    """The length in epochs of the segment holding the next epoch after ``done``,
    or of the one that ends at ``done`` (whose scheduler a checkpoint there holds)."""
    begun = segment_start(cfg, max(done, 1))
    later = [int(g["start"]) for g in cfg.segments if g["start"] > begun]
    return (min(later) if later else cfg.epochs) - begun


def start_segment(run: Run, begun: int):
    """Set every parameter group back to the segment's learning rate (times its
    ``lr_mult``) and return a fresh scheduler over the segment's epochs."""
    cfg = run.cfg
    # the segment's lr is given unscaled, like --lr; Goyal et al.'s rule scales it too
    lr = next(float(g["lr"]) for g in cfg.segments if g["start"] == begun) * cfg.scaled_lr / cfg.lr
    for group in run.optimizer.param_groups:
        group["lr"] = lr * cfg.lr_mult.get(group.get("name") or "", 1.0)
        group.pop("initial_lr", None)
    return build_scheduler(cfg, run.optimizer, segment_length(cfg, begun + 1))


def load_run_data(cfg: TrainConfig) -> RunData:
    """The datasets (after ``train_size`` and ``val_split``), the model spec and
    the loaders: the training one shuffled and augmented, the others in order."""
    train_set, test_set = load_data(cfg.dataset, cfg.data_dir, cfg.input_size)
    full_train = len(train_set)
    train_set, val_set = split_training_data(cfg, train_set)
    sample_shape = tuple(train_set.x.shape[1:])
    classes = list(train_set.classes or [str(i) for i in range(int(train_set.y.max()) + 1)])
    normalize = normalisation(cfg, train_set)
    spec = model_spec_for(cfg, sample_shape, len(classes))
    transform = input_transform(spec, normalize, sample_shape[0])
    augment = build_augmentation(cfg.augment, sample_shape[-1], sample_shape[0], images=train_set.x,
                                 seed=cfg.seed)
    train_transform = input_transform(spec, normalize, sample_shape[0], augment=augment)
    train_loader = DataLoader(train_set, cfg.batch_size, shuffle=True, seed=cfg.seed,
                              transform=train_transform)
    test_loader = DataLoader(test_set, 500, shuffle=False, transform=transform)
    val_loader = (DataLoader(val_set, 500, shuffle=False, transform=transform)
                  if val_set is not None else None)
    return RunData(train_set, val_set, test_set, full_train, sample_shape, classes, normalize, spec,
                   train_loader, val_loader, test_loader)


def make_model(cfg: TrainConfig, data: RunData, state: TrainingState | None,
               report: Reporter) -> tuple[Module, list[Module]]:
    """The model (from ``init_from`` for a new run that asks for it), with
    ``freeze`` applied; returns it and the BatchNorm layers kept in eval mode."""
    if state is None and cfg.init_from:
        model, transfer = initialise_from(cfg.init_from, data.spec, data.classes)
        for line in transfer.lines():
            report(line)
    else:
        model = build_model(data.spec)
    if cfg.freeze:
        model.freeze(*cfg.freeze)
    frozen_bn = batchnorms_under(model, cfg.freeze)
    fit_batches_to_batchnorm(cfg, model, frozen_bn, data)
    return model, frozen_bn


def fit_batches_to_batchnorm(cfg: TrainConfig, model: Module, frozen_bn: list[Module],
                             data: RunData) -> None:
    """BatchNorm in training mode needs more than one sample a batch: refuse
    batch size 1 for BatchNorm1d, and drop a last training batch of one sample."""
    trained_bn = trained_batchnorms(model, frozen_bn)
    if trained_bn and cfg.batch_size == 1 and any(isinstance(m, BatchNorm1d) for m in trained_bn):
        raise ConfigError(f"batch size 1 cannot train {cfg.model}: its BatchNorm1d layers need more "
                          "than one sample per batch in training mode; use batch_size 2 or more",
                          "batch_size")
    if trained_bn and cfg.batch_size > 1 and len(data.train_set) % cfg.batch_size == 1:
        data.train_loader.drop_last = True


def restore_state(state: TrainingState | None, model: Module, optimizer, scheduler
                  ) -> tuple[list[dict[str, Any]], int]:
    """Load a checkpoint's weights, optimizer, scheduler and random state;
    returns its metric history and the epochs it completed (nothing for a new run)."""
    if state is None:
        return [], 0
    state.restore(model, optimizer, scheduler)
    if state.rng_state is not None:
        try:
            cnnlab.set_rng_state(state.rng_state)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{state.path}: its rng_state cannot be restored: {e}") from e
    return list(state.meta.get("history", [])), state.epoch


def train_epoch(run: Run, epoch: int, use_bar: bool, monitor: Monitor | None = None
                ) -> tuple[dict[str, Any], float]:
    """Train one epoch, evaluate, step the schedule; returns the epoch's
    ``metrics.jsonl`` row and its wall time in seconds (unrounded)."""
    cfg, data, optimizer, world = run.cfg, run.data, run.optimizer, run.world
    lr = optimizer.param_groups[0]["lr"]
    t0 = time.perf_counter()
    bar = _progress_bar(len(data.train_set), f"epoch {epoch}/{cfg.epochs}") if use_bar else None
    world.begin_epoch(epoch)
    hooks = [_bar_updater(bar)] if bar is not None else []
    if monitor is not None:
        hooks.append(lambda n, loss, acc: monitor.step(run, epoch, n, loss, acc))
    tr = train_one_epoch(run.model, data.train_loader, optimizer,
                         on_batch=(lambda *a: [h(*a) for h in hooks]) if hooks else None,
                         clip_grad_norm=cfg.clip_grad_norm, eval_modules=run.frozen_bn,
                         reduce_gradients=world.gradient_hook())
    world.end_training(run)
    tr = world.reduce(tr)
    if bar is not None:
        bar.close()
    t_train = time.perf_counter() - t0
    va = evaluate_all(run, data.val_loader) if data.val_loader is not None else None
    te = evaluate_all(run, data.test_loader) if va is None else None   # else scored once, at the end
    elapsed = time.perf_counter() - t0
    if isinstance(run.scheduler, optim.lr_scheduler.ReduceLROnPlateau):
        run.scheduler.step(va.loss)
    elif run.scheduler is not None:
        run.scheduler.step()
    return epoch_row(epoch, tr, va, te, lr, optimizer, t_train, elapsed), elapsed


def evaluate_all(run: Run, loader) -> EpochResult:
    """The model's loss and accuracy over the whole of ``loader``'s set.  In a
    distributed run each rank evaluates its shares (none, when the set has
    fewer samples than ranks) and the counts are summed over the ranks."""
    mine = evaluate(run.model, loader) if getattr(loader, "samples", 1) else EpochResult(0.0, 0.0, 0)
    return run.world.reduce(mine)


def epoch_row(epoch: int, tr: EpochResult, va: EpochResult | None, te: EpochResult | None,
              lr: float, optimizer, t_train: float, elapsed: float) -> dict[str, Any]:
    """The ``metrics.jsonl`` row of an epoch: validation figures with a validation
    split, else test figures (``group_lrs`` with several parameter groups)."""
    row = {"epoch": epoch, "train_loss": tr.loss, "train_acc": tr.accuracy}
    if va is not None:
        row.update(val_loss=va.loss, val_acc=va.accuracy)
    if te is not None:
        row.update(test_loss=te.loss, test_acc=te.accuracy)
    row["lr"] = lr
    if len(optimizer.param_groups) > 1:
        row["group_lrs"] = {g.get("name", str(i)) or "base": g["lr"]
                            for i, g in enumerate(optimizer.param_groups)}
    row.update(train_time_s=round(t_train, 3), epoch_time_s=round(elapsed, 3))
    return row


def epoch_line(row: dict[str, Any], epochs: int, elapsed: float) -> str:
    """The line printed after an epoch: the validation figures, or the test
    figures of a run without a validation split."""
    held = "val" if "val_acc" in row else "test"
    return (f"epoch {row['epoch']:3d}/{epochs}  train loss {row['train_loss']:.4f}  train acc "
            f"{row['train_acc']:.4f}  {held} loss {row[held + '_loss']:.4f}  {held} acc "
            f"{row[held + '_acc']:.4f}  lr {row['lr']:.4g}  {elapsed:.1f}s")


def save_epoch(run: Run, row: dict[str, Any], history: list[dict[str, Any]],
               best: Best | None) -> Best | None:
    """After an epoch: ``best.npz`` when its validation accuracy is the best so
    far, its checkpoint, its ``metrics.jsonl`` row; returns the best epoch."""
    epoch = row["epoch"]
    if "val_acc" in row and (best is None or row["val_acc"] > best.val_acc):
        # its weights are kept only when early stopping may restore them (as in Best.of_history)
        best = Best(epoch, row["val_acc"], run.model.state_dict() if run.cfg.early_stopping else None)
        run.save_model("best.npz", epoch=epoch, val_accuracy=row["val_acc"])
    if run.world.is_writer:
        save_training_state(checkpoint_path(run.out, epoch), run.model, run.optimizer, run.scheduler,
                            epoch, cnnlab.get_rng_state(), {**run.meta, "history": history})
        append_metrics(run.out, row)
        prune_checkpoints(run.out, epoch, run.cfg.keep_checkpoints, best.epoch if best else None)
    return best


def finish(run: Run, history: list[dict[str, Any]], best: Best | None, report: Reporter) -> RunResult:
    """After the last epoch: with early stopping, restore the best epoch's weights;
    score the test set (once, here, when a validation split stood in for it during
    training); TTA if asked; write ``model.npz`` and the curves."""
    cfg, model, test_loader = run.cfg, run.model, run.data.test_loader
    scored = bool(history) and "test_acc" in history[-1]
    final_acc = history[-1]["test_acc"] if scored else float("nan")
    final_loss = history[-1]["test_loss"] if scored else float("nan")
    extra: dict[str, Any] = {}
    if cfg.early_stopping and best is not None:
        stopped = history[-1]["epoch"]
        extra.update(best_epoch=best.epoch, stopped_epoch=stopped)
        if stopped < cfg.epochs:
            report(f"early stopping after epoch {stopped}: validation accuracy has not improved "
                   f"for {cfg.early_stopping} epochs since epoch {best.epoch} ({best.val_acc:.4f})")
        if best.epoch != stopped:
            model.load_state_dict(best.weights)
            scored = False
            report(f"restored the weights of epoch {best.epoch} (best validation accuracy)")
    if not scored and history:
        te = evaluate_all(run, test_loader)
        final_acc, final_loss = te.accuracy, te.loss
    if cfg.tta and run.world.is_writer:   # over the whole test set, by the rank that reports it
        extra["test_accuracy_tta"] = evaluate_tta(model, getattr(test_loader, "whole", test_loader),
                                                  **tta_options(cfg, run.data.spec, run.data.normalize))
    run.save_model("model.npz", test_accuracy=final_acc, test_loss=final_loss, epochs=cfg.epochs,
                   history=history, **extra)
    plot = (write_curves(history, run.out / "curves.png", f"{cfg.model} on {cfg.dataset}", final_acc)
            if run.world.is_writer else None)
    tta_text = f"  with TTA {extra['test_accuracy_tta']:.4f}" if "test_accuracy_tta" in extra else ""
    report(f"test accuracy {final_acc:.4f}{tta_text}  (run folder: {run.out}"
           + (f", curves: {plot}" if plot else "") + ")")
    return RunResult(run.out, history, final_acc, model)


# ------------------------------------------------------------- reporting
def report_setup(run: Run, report: Reporter) -> None:
    """The model, its parameter count and the images, before the first epoch."""
    cfg, data = run.cfg, run.data
    n_params = sum(p.numel() for p in run.model.parameters())
    n_train = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    inp = data.spec["input"]
    sized = (f", {'padded' if inp['how'] == 'pad' else 'resized'} to {inp['to']}x{inp['to']}"
             if inp["how"] else "")
    params = (f"{n_params:,} parameters" if n_train == n_params
              else f"{n_params:,} parameters, {n_train:,} trainable")
    images = f"{len(data.train_set)} train"
    if data.val_set is not None:
        images += f" / {len(data.val_set)} val"
    if len(data.train_set) + (len(data.val_set) if data.val_set is not None else 0) != data.full_train:
        images += f" (of {data.full_train})"
    report(f"model {cfg.model} ({params}) on {cfg.dataset}: "
           f"{images} / {len(data.test_set)} test images of shape {data.sample_shape}{sized}")
    if cfg.lr_scale_batch:
        report(f"learning rate {cfg.lr:g} x {cfg.batch_size}/{cfg.lr_scale_batch} = {cfg.scaled_lr:g} "
               "(the linear scaling rule of Goyal et al. 2017)")
    groups = run.optimizer.param_groups
    if len(groups) > 1:
        report("parameter groups: " + ", ".join(
            f"{g.get('name') or 'rest'} lr {g['lr']:.4g} ({sum(p.numel() for p in g['params']):,})"
            for g in groups))


def _progress_bar(total: int, desc: str):
    """A tqdm bar on stderr, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", leave=False, file=sys.stderr)


def _bar_updater(bar) -> Callable[[int, float, float], None]:
    def on_batch(n: int, loss: float, acc: float) -> None:
        bar.update(n)
        bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)
    return on_batch
