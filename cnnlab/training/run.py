"""A whole training run: config in, run folder out.

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

Transfer learning (``init_from``, ``freeze``, ``lr_mult``) is assembled in
:mod:`cnnlab.training.transfer`; the validation and small-training-set splits
in :mod:`cnnlab.training.splits`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cnnlab
from cnnlab import optim
from cnnlab.data import (
    AUGMENTATION_NAMES,
    Compose,
    DataLoader,
    Normalize,
    Pad,
    Resize,
    build_augmentation,
    dataset_stats,
    get_dataset,
)
from cnnlab.data.augment import crop_padding
from cnnlab.models import get_model, input_size_for
from cnnlab.nn import BatchNorm1d
from cnnlab.nn.module import Module
from cnnlab.serialization import CheckpointError, atomic_write
from cnnlab.training.checkpoint import load_training_state, save_model, save_training_state
from cnnlab.training.loop import best_epoch, evaluate, should_stop, train_one_epoch
from cnnlab.training.splits import stratified_indices, stratified_split, subset
from cnnlab.training.transfer import batchnorms_under, initialise_from, parameter_groups

DEFAULT_MODEL = {"digits": "digits_cnn", "fashion-mnist": "lenet5", "mnist": "lenet5"}
# Per-dataset defaults for options the user leaves unset.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 30, "batch_size": 32, "lr": 0.02, "scheduler": "cosine"},
    "fashion-mnist": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
    "mnist": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
}
# Models whose default learning rate differs from the dataset's: LeNet-5 (1998)'s
# RBF output gives penalties of order 100, so SGD at 0.02 overshoots.
MODEL_LR = {"lenet5_1998": 0.003}
SCHEDULERS = ("none", "step", "cosine", "warmup-cosine", "plateau")
# Datasets whose labels survive a horizontal mirror (used by --tta): clothes do, digits do not.
FLIP_SAFE = {"fashion-mnist"}
CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.npz$")


@dataclass
class TrainConfig:
    """Everything that defines a run.  ``None`` means "the dataset's default".

    The transfer-learning and regularisation options (all off by default):

    * ``augment``: a :func:`cnnlab.data.build_augmentation` preset applied to
      the training batches only, on raw pixels before resizing and Normalize;
    * ``tta``: also report the final test accuracy with test-time augmentation
      (the views of the training augmentation, see :func:`tta_options`);
    * ``scheduler``: 'none', 'step', 'cosine', 'warmup-cosine' (a linear warm-up
      over ``warmup_epochs``, then cosine) or 'plateau' (``ReduceLROnPlateau`` on
      the validation loss, factor ``gamma``, patience ``plateau_patience``);
    * ``clip_grad_norm``: the largest joint 2-norm of the gradients per step;
    * ``val_split``: a fraction of the training set held out (stratified,
      seeded) and evaluated every epoch; needed by 'plateau' and ``early_stopping``;
    * ``early_stopping``: patience in epochs without a better validation accuracy;
      the best epoch's weights are restored before the final test evaluation;
    * ``lr_mult``: ``{prefix: factor}``, per-layer learning rates as optimizer
      parameter groups (``{"features": 0.1}``);
    * ``init_from``: a ``model.npz``/checkpoint to start from (tensors copied by
      name and shape, a new head when the classes differ); the model and input
      size default to that file's;
    * ``freeze``: submodule/parameter names kept fixed (left out of the optimizer;
      their BatchNorm layers stay in eval mode);
    * ``input_size``: the side the images are resized to (default: the model's
      minimum, or the ``init_from`` model's);
    * ``train_size``: train on a stratified, seeded subset of this many images
      (the "small new dataset" case; the validation split comes out of it).
    """

    model: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    optimizer: str = "sgd"          # 'sgd' or 'adam'
    scheduler: str | None = None    # one of SCHEDULERS
    step_size: int = 5
    gamma: float = 0.1
    seed: int = 0
    normalize: bool = True
    augment: str = "none"
    tta: bool = False
    warmup_epochs: int | None = None
    plateau_patience: int = 2
    clip_grad_norm: float | None = None
    val_split: float = 0.0
    early_stopping: int | None = None
    lr_mult: dict[str, float] = field(default_factory=dict)
    init_from: str | None = None
    freeze: list[str] = field(default_factory=list)
    input_size: int | None = None
    train_size: int | None = None

    def resolved(self) -> TrainConfig:
        """A copy with dataset defaults filled in and names normalised."""
        ds = self.dataset.lower().replace("_", "-")
        if ds not in DEFAULT_MODEL:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {sorted(DEFAULT_MODEL)}")
        d = DATASET_DEFAULTS[ds]
        model, input_size = self.model, self.input_size
        if self.init_from and (model is None or input_size is None):
            src = source_spec(self.init_from)
            model = model or src["name"]
            if input_size is None and model.lower().replace("-", "_") == src["name"]:
                input_size = int(src["kwargs"]["input_size"])
        model = (model or DEFAULT_MODEL[ds]).lower().replace("-", "_")
        scheduler = d["scheduler"] if self.scheduler is None else self.scheduler
        warmup = (1 if scheduler == "warmup-cosine" else 0) if self.warmup_epochs is None \
            else self.warmup_epochs
        cfg = dataclasses.replace(
            self, dataset=ds, model=model, input_size=input_size,
            epochs=d["epochs"] if self.epochs is None else self.epochs,
            batch_size=d["batch_size"] if self.batch_size is None else self.batch_size,
            lr=MODEL_LR.get(model, d["lr"]) if self.lr is None else self.lr,
            scheduler=scheduler, warmup_epochs=warmup,
            lr_mult={str(k): float(v) for k, v in dict(self.lr_mult).items()},
            freeze=[str(f) for f in self.freeze])
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        if self.scheduler == "warmup-cosine" and not 1 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"--warmup-epochs must be in [1, epochs - 1] = [1, {self.epochs - 1}] "
                             f"for warmup-cosine, got {self.warmup_epochs}")
        if self.scheduler != "warmup-cosine" and self.warmup_epochs:
            raise ValueError("--warmup-epochs applies to --scheduler warmup-cosine only, "
                             f"not {self.scheduler!r}")
        if self.augment not in AUGMENTATION_NAMES:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATION_NAMES)}, got {self.augment!r}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip-grad-norm must be > 0, got {self.clip_grad_norm}")
        if not 0.0 <= self.val_split < 1.0:
            raise ValueError(f"val-split must be a fraction in [0, 1), got {self.val_split}")
        needs_val = [what for what, on in (("--scheduler plateau", self.scheduler == "plateau"),
                                           ("--early-stopping", self.early_stopping is not None)) if on]
        if needs_val and not self.val_split:
            raise ValueError(f"{' and '.join(needs_val)} need(s) --val-split FRACTION: they watch a "
                             "validation set held out of the training data (never the test set)")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ValueError(f"early-stopping patience must be >= 1 epoch, got {self.early_stopping}")
        if self.plateau_patience < 0:
            raise ValueError(f"plateau patience must be >= 0, got {self.plateau_patience}")
        if self.input_size is not None and self.input_size < 1:
            raise ValueError(f"input-size must be >= 1, got {self.input_size}")
        if self.train_size is not None and self.train_size < 2:
            raise ValueError(f"train-size must be >= 2, got {self.train_size}")


def source_spec(path: str | os.PathLike) -> dict[str, Any]:
    """The model spec stored in a ``model.npz``/checkpoint (for ``init_from``)."""
    spec = load_training_state(path).meta.get("model_spec")
    if not spec:
        raise CheckpointError(f"{path}: has no model_spec; --init-from needs a file written by "
                              "cnnlab train")
    return spec


# ------------------------------------------------------------------ building
def model_spec_for(cfg: TrainConfig, sample_shape: tuple[int, ...], num_classes: int) -> dict:
    """How to rebuild the model, and how images are brought to the size it needs
    (``cfg.input_size`` when set, else the model's minimum)."""
    C, H, W = sample_shape
    if cfg.input_size:
        size = cfg.input_size
        how = None if size == H else ("pad" if input_size_for(cfg.model, H) == (size, "pad")
                                      else "resize")
    else:
        size, how = input_size_for(cfg.model, H)
    return {"name": cfg.model, "kwargs": {"num_classes": num_classes, "in_channels": C,
                                          "input_size": size},
            "input": {"from": H, "to": size, "how": how}}


def input_transform(spec: dict, normalize: dict | None, channels: int, size: int | None = None,
                    augment: list | None = None):
    """Pad or resize images of ``size`` pixels (default: the training images')
    to the model's input size, in raw pixels so padding is background, then
    standardise; None when nothing is to be done.  ``augment`` (a list of
    random transforms on raw pixels) goes first."""
    steps = list(augment or [])
    inp = spec.get("input") or {}
    target = inp.get("to", spec["kwargs"]["input_size"])
    size = inp.get("from", target) if size is None else size
    if size < target and inp.get("how") == "pad" and target - size <= 4:
        total = target - size
        steps.append(Pad((total // 2, total // 2, total - total // 2, total - total // 2)))
    elif size != target:
        steps.append(Resize(target))
    if normalize:
        steps.append(Normalize([normalize["mean"]] * channels, [normalize["std"]] * channels))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else Compose(steps)


def build_model(spec: dict) -> Module:
    return get_model(spec["name"], **spec["kwargs"])


def build_optimizer(cfg: TrainConfig, model: Module):
    """SGD or Adam over the trainable parameters, one parameter group per
    ``lr_mult`` prefix (frozen parameters are left out)."""
    groups = parameter_groups(model, cfg.lr, cfg.lr_mult)
    if cfg.optimizer == "adam":
        return optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                     weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer):
    sched = optim.lr_scheduler
    if cfg.scheduler == "step":
        return sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.scheduler == "warmup-cosine":
        after = sched.CosineAnnealingLR(optimizer, T_max=cfg.epochs - cfg.warmup_epochs)
        return sched.warmup_scheduler(optimizer, cfg.warmup_epochs, after)
    if cfg.scheduler == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode="min", factor=cfg.gamma,
                                       patience=cfg.plateau_patience)
    return None


def load_data(dataset: str, data_dir: str | None):
    train = get_dataset(dataset, "train", root=data_dir)
    test = get_dataset(dataset, "test", root=data_dir)
    return train, test


def split_training_data(cfg: TrainConfig, train):
    """(train, val or None): the ``train_size`` subset, then the ``val_split``
    held out of it; both stratified and seeded by ``cfg.seed``."""
    if cfg.train_size:
        if cfg.train_size > len(train):
            raise ValueError(f"train-size {cfg.train_size} exceeds the {len(train)} training images")
        train = subset(train, stratified_indices(train.y, cfg.train_size, cfg.seed))
    if not cfg.val_split:
        return train, None
    kept, held = stratified_split(train.y, cfg.val_split, cfg.seed)
    return subset(train, kept), subset(train, held)


# ------------------------------------------------------------------- folders
def find_checkpoints(out: Path) -> list[tuple[int, Path]]:
    folder = out / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def default_out_dir(cfg: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<dataset>-<model>``, or with ``-2``, ``-3``, ... if that is taken."""
    base = Path(root) / f"{cfg.dataset}-{cfg.model}"
    out, k = base, 1
    while out.exists() and any(out.iterdir()):
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


# ----------------------------------------------------------------------- fit
@dataclass
class RunResult:
    out: Path
    history: list[dict[str, Any]]
    test_accuracy: float
    model: Module


Reporter = Callable[[str], None]


def fit(cfg: TrainConfig, out: str | os.PathLike, resume: bool | str | os.PathLike = False,
        progress: bool | None = None, report: Reporter = print) -> RunResult:
    """Train ``cfg`` into the folder ``out``.

    ``resume=True`` continues from the newest checkpoint in ``out``; a path
    continues from that checkpoint.  The stored config is used, except that
    ``cfg.epochs`` (if given) may extend a run whose schedule is 'none',
    'step' or 'plateau' (a cosine schedule is tied to the planned length).
    ``progress`` shows a tqdm bar (default: when stderr is a terminal).
    """
    out = Path(out)
    state = None
    if resume:
        ckpt = Path(resume) if not isinstance(resume, bool) else None
        if ckpt is None:
            found = find_checkpoints(out)
            if not found:
                raise FileNotFoundError(f"--resume: no checkpoints in {out / 'checkpoints'}")
            ckpt = found[-1][1]
        state = load_training_state(ckpt)
        if state.meta.get("kind") != "training-state":
            raise CheckpointError(f"{ckpt}: a final model file, not a resumable checkpoint")
        stored = TrainConfig(**state.meta["config"])
        if cfg.epochs and cfg.epochs != stored.epochs and stored.scheduler in ("cosine", "warmup-cosine"):
            raise ValueError(
                f"this run's cosine schedule was planned for {stored.epochs} epochs and its "
                f"learning rate has decayed along it; it cannot be stretched to {cfg.epochs} "
                "(resume without --epochs, or start a new run with more epochs)")
        cfg = dataclasses.replace(stored, epochs=cfg.epochs or stored.epochs).resolved()
        report(f"resuming from {ckpt} (epoch {state.epoch} of {cfg.epochs})")
    else:
        cfg = cfg.resolved()
        if out.exists() and find_checkpoints(out):
            raise FileExistsError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out")

    cnnlab.manual_seed(cfg.seed)
    train_set, test_set = load_data(cfg.dataset, cfg.data_dir)
    full_train = len(train_set)
    train_set, val_set = split_training_data(cfg, train_set)
    sample_shape = tuple(train_set.x.shape[1:])
    classes = list(train_set.classes or [str(i) for i in range(int(train_set.y.max()) + 1)])
    normalize = dict(zip(("mean", "std"), dataset_stats(cfg.dataset))) if cfg.normalize else None
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

    if state is None and cfg.init_from:
        model, transfer = initialise_from(cfg.init_from, spec, classes)
        for line in transfer.lines():
            report(line)
    else:
        model = build_model(spec)
    if cfg.freeze:
        model.freeze(*cfg.freeze)
    frozen_bn = batchnorms_under(model, cfg.freeze)
    trained_bn = [m for m in model.modules()
                  if m._buffers.get("running_mean") is not None and m not in frozen_bn]
    if trained_bn and cfg.batch_size == 1 and any(isinstance(m, BatchNorm1d) for m in trained_bn):
        raise ValueError(f"batch size 1 cannot train {cfg.model}: its BatchNorm1d layers need more "
                         "than one sample per batch in training mode; use --batch-size 2 or more")
    if trained_bn and cfg.batch_size > 1 and len(train_set) % cfg.batch_size == 1:
        train_loader.drop_last = True   # a last batch of one sample would break BatchNorm
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        model.load_state_dict(state.model_state)
        if state.optimizer_state is not None:
            optimizer.load_state_dict(state.optimizer_state)
        if scheduler is not None and state.scheduler_state is not None:
            scheduler.load_state_dict(state.scheduler_state)
        if state.rng_state is not None:
            cnnlab.set_rng_state(state.rng_state)
        history = list(state.meta.get("history", []))
        start_epoch = state.epoch
    train_loader.set_epoch(start_epoch)

    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    _write_text_atomic(out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    _write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
    meta_common = {"config": dataclasses.asdict(cfg), "model_spec": spec, "classes": classes,
                   "normalize": normalize,
                   "dataset": cfg.dataset}
    _report_setup(report, cfg, model, spec, sample_shape, full_train, train_set, val_set, test_set,
                  optimizer)
    best = _best_state(out, history, bool(cfg.early_stopping)) if val_loader is not None else None

    use_bar = sys.stderr.isatty() if progress is None else progress
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if cfg.early_stopping and history and should_stop(history, cfg.early_stopping):
            break   # a resumed run that had already stopped
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        bar = _progress_bar(len(train_set), f"epoch {epoch}/{cfg.epochs}") if use_bar else None
        tr = train_one_epoch(model, train_loader, optimizer,
                             on_batch=_bar_updater(bar) if bar is not None else None,
                             clip_grad_norm=cfg.clip_grad_norm, eval_modules=frozen_bn)
        if bar is not None:
            bar.close()
        t_train = time.perf_counter() - t0
        va = evaluate(model, val_loader) if val_loader is not None else None
        te = evaluate(model, test_loader)
        elapsed = time.perf_counter() - t0
        if isinstance(scheduler, optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(va.loss)
        elif scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch, "train_loss": tr.loss, "train_acc": tr.accuracy}
        if va is not None:
            row.update(val_loss=va.loss, val_acc=va.accuracy)
        row.update(test_loss=te.loss, test_acc=te.accuracy, lr=lr)
        if len(optimizer.param_groups) > 1:
            row["group_lrs"] = {g.get("name", str(i)) or "base": g["lr"]
                                for i, g in enumerate(optimizer.param_groups)}
        row.update(train_time_s=round(t_train, 3), epoch_time_s=round(elapsed, 3))
        history.append(row)
        if va is not None and (best is None or va.accuracy > best[1]):
            best = (epoch, va.accuracy, model.state_dict())
            save_model(out / "best.npz", model, {**meta_common, "epoch": epoch,
                                                 "val_accuracy": va.accuracy})
        save_training_state(out / "checkpoints" / f"epoch-{epoch:03d}.npz", model, optimizer,
                            scheduler, epoch, cnnlab.get_rng_state(),
                            {**meta_common, "history": history})
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        val_text = f"  val acc {va.accuracy:.4f}" if va is not None else ""
        report(f"epoch {epoch:3d}/{cfg.epochs}  train loss {tr.loss:.4f}  train acc {tr.accuracy:.4f}"
               f"{val_text}  test loss {te.loss:.4f}  test acc {te.accuracy:.4f}  lr {lr:.4g}  "
               f"{elapsed:.1f}s")

    final_acc = history[-1]["test_acc"] if history else float("nan")
    extra: dict[str, Any] = {}
    if cfg.early_stopping and best is not None:
        stopped = history[-1]["epoch"]
        extra.update(best_epoch=best[0], stopped_epoch=stopped)
        if stopped < cfg.epochs:
            report(f"early stopping after epoch {stopped}: validation accuracy has not improved "
                   f"for {cfg.early_stopping} epochs since epoch {best[0]} ({best[1]:.4f})")
        if best[0] != stopped:
            model.load_state_dict(best[2])
            final_acc = evaluate(model, test_loader).accuracy
            report(f"restored the weights of epoch {best[0]} (best validation accuracy)")
    if cfg.tta:
        from cnnlab.training.tta import evaluate_tta

        extra["test_accuracy_tta"] = evaluate_tta(model, test_loader, **tta_options(cfg, spec, normalize))
    save_model(out / "model.npz", model, {**meta_common, "test_accuracy": final_acc,
                                          "epochs": cfg.epochs, "history": history, **extra})
    plot = write_curves(history, out / "curves.png", f"{cfg.model} on {cfg.dataset}")
    tta_text = f"  with TTA {extra['test_accuracy_tta']:.4f}" if cfg.tta else ""
    report(f"test accuracy {final_acc:.4f}{tta_text}  (run folder: {out}"
           + (f", curves: {plot}" if plot else "") + ")")
    return RunResult(out, history, final_acc, model)


def tta_options(cfg: TrainConfig, spec: dict, normalize: dict | None) -> dict[str, Any]:
    """The test-time views matching the run's training augmentation (``evaluate_tta`` keywords).

    Shifted views only when the training batches were randomly shifted (any
    ``augment`` preset): by the training crop's padding, scaled to the model's
    input size, with the raw background 0 (normalised) shifted in, as in
    training.  Mirrors only when training flipped too and the dataset's labels
    survive a mirror (:data:`FLIP_SAFE`).  With ``augment='none'`` there is
    no view but the identity, so the TTA accuracy equals the plain one (views
    a model never saw in training lower its accuracy: a 1-pixel shift of an
    8x8 digit is 12% of its width)."""
    if cfg.augment == "none":
        return {"flips": False, "crops": None}
    inp = spec["input"]
    padding = max(1, int(round(crop_padding(inp["from"]) * inp["to"] / inp["from"])))
    fill = -normalize["mean"] / normalize["std"] if normalize else 0.0
    return {"flips": cfg.dataset in FLIP_SAFE and cfg.augment != "crop", "crops": "five",
            "padding": padding, "padding_mode": "constant", "fill": fill}


def _report_setup(report: Reporter, cfg: TrainConfig, model: Module, spec: dict, sample_shape,
                  full_train: int, train_set, val_set, test_set, optimizer) -> None:
    n_params = sum(p.size for p in model.parameters())
    n_train = sum(p.size for p in model.parameters() if p.requires_grad)
    inp = spec["input"]
    sized = (f", {'padded' if inp['how'] == 'pad' else 'resized'} to {inp['to']}x{inp['to']}"
             if inp["how"] else "")
    params = (f"{n_params:,} parameters" if n_train == n_params
              else f"{n_params:,} parameters, {n_train:,} trainable")
    images = f"{len(train_set)} train"
    if val_set is not None:
        images += f" / {len(val_set)} val"
    if len(train_set) + (len(val_set) if val_set is not None else 0) != full_train:
        images += f" (of {full_train})"
    report(f"model {cfg.model} ({params}) on {cfg.dataset}: "
           f"{images} / {len(test_set)} test images of shape {sample_shape}{sized}")
    if len(optimizer.param_groups) > 1:
        report("parameter groups: " + ", ".join(
            f"{g.get('name') or 'rest'} lr {g['lr']:.4g} ({sum(p.size for p in g['params']):,})"
            for g in optimizer.param_groups))


def _best_state(out: Path, history: list[dict[str, Any]], need_weights: bool):
    """(epoch, val_acc, state dict or None) of a resumed run's best epoch; the
    weights (needed by early stopping) are read from that epoch's checkpoint."""
    found = best_epoch(history)
    if found is None:
        return None
    if not need_weights:
        return (found[0], found[1], None)
    path = out / "checkpoints" / f"epoch-{found[0]:03d}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: needed to resume early stopping (the best epoch's weights)")
    return (found[0], found[1], load_training_state(path).model_state)


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


def write_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> Path | None:
    """Loss and accuracy per epoch as a PNG; skipped if matplotlib is missing."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    if "val_loss" in history[0]:
        a1.plot(ep, [h["val_loss"] for h in history], "^-", label="validation")
    a1.plot(ep, [h["test_loss"] for h in history], "s-", label="test")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a1.set_title("loss")
    a1.legend()
    a2.plot(ep, [h["train_acc"] for h in history], "o-", label="train")
    if "val_acc" in history[0]:
        a2.plot(ep, [h["val_acc"] for h in history], "^-", label="validation")
    a2.plot(ep, [h["test_acc"] for h in history], "s-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_title(f"accuracy (final test {history[-1]['test_acc']:.4f})")
    a2.legend()
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def load_for_evaluation(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint or model file; returns (model, meta)."""
    state = load_training_state(path)
    spec = state.meta.get("model_spec")
    if not spec:
        raise CheckpointError(f"{path}: has no model_spec; was it written by cnnlab train?")
    model = build_model(spec)
    model.load_state_dict(state.model_state)
    model.eval()
    return model, state.meta


def evaluation_loader(meta: dict[str, Any], dataset: str | None, data_dir: str | None,
                      batch_size: int = 500, split: str = "test"):
    """(dataset, loader) of a split of ``dataset`` (default: the model's own), with
    the model's input pipeline (resize/pad, normalisation); no shuffling."""
    ds_name = dataset or meta["dataset"]
    data_dir = data_dir if data_dir is not None else (meta.get("config") or {}).get("data_dir")
    data = get_dataset(ds_name, split, root=data_dir)
    transform = input_transform(meta["model_spec"], meta.get("normalize"), data.x.shape[1],
                                size=data.x.shape[-1])
    return data, DataLoader(data, batch_size, shuffle=False, transform=transform)

