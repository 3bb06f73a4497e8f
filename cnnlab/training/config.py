"""What defines a training run: :class:`TrainConfig`, its per-dataset defaults and checks.

Each field carries its command-line help in ``metadata`` (``help``, and
``choices``, ``metavar``, ``group`` where they apply), so ``cnnlab train``
builds its options from this class instead of declaring them again.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from cnnlab.data import AUGMENTATION_NAMES, DATASET_NAMES
from cnnlab.serialization import CheckpointError
from cnnlab.training.checkpoint import MAX_INPUT_SIZE, load_training_state

DEFAULT_MODEL = {"digits": "digits_cnn", "fashion-mnist": "lenet5", "mnist": "lenet5",
                 "folder": "lenet5", "cifar10": "lenet5"}
# Per-dataset defaults for options the user leaves unset.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 30, "batch_size": 32, "lr": 0.02, "scheduler": "cosine"},
    "fashion-mnist": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
    "mnist": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
    "folder": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
    "cifar10": {"epochs": 10, "batch_size": 64, "lr": 0.02, "scheduler": "cosine"},
}
USER_DATA = ("folder", "cifar10")      # datasets named KIND:PATH
# Models whose default learning rate differs from the dataset's: LeNet-5 (1998)'s
# RBF output gives penalties of order 100, so SGD at 0.02 overshoots.
MODEL_LR = {"lenet5_1998": 0.003}
ADAM_LR = 1e-3     # Kingma & Ba's default, and torch.optim.Adam's
OPTIMIZERS = ("sgd", "adam")
# What a stored model_spec may ask get_model for, checked before the model is built
# (num_classes=2e6 would allocate a 30 GiB classifier before any weight is read).
SPEC_LIMITS = {"num_classes": 100_000, "in_channels": 4096, "input_size": MAX_INPUT_SIZE}
SCHEDULERS = ("none", "step", "cosine", "warmup-cosine", "plateau")
OPTIMISATION = "optimisation"          # the argument groups of `cnnlab train --help`
TRANSFER = "transfer learning"
DISTRIBUTED = "distributed training (mpiexec -n N cnnlab train --distributed ...)"
DEFAULT_BUCKET_MB = 16.0   # measured: see cnnlab/training/distributed/buckets.py
# How a run is carried out rather than what it computes: on --resume these come
# from the command line, the rest from the checkpoint's config.
RUNTIME_FIELDS = ("distributed", "bucket_mb")


class ConfigError(ValueError):
    """A run option that cannot be used.

    The message names options as Python spells them (``val_split``); ``options``
    lists those names, so a command line can put its own flags in their place.
    """

    def __init__(self, message: str, *options: str) -> None:
        super().__init__(message)
        self.options = options


def _opt(default: Any = None, help: str = "", **cli: Any) -> Any:
    """A config field with its command-line help (``choices``, ``metavar``, ``group``)."""
    meta = {"help": help, **cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that defines a run.  ``None`` means "the dataset's default".

    The transfer-learning and regularisation options (all off by default):

    * ``augment``: a :func:`cnnlab.data.build_augmentation` preset applied to
      the training batches only, on raw pixels before resizing and Normalize;
    * ``tta``: also report the final test accuracy with test-time augmentation
      (the views of the training augmentation, see :func:`cnnlab.training.tta.tta_options`);
    * ``scheduler``: 'none', 'step', 'cosine', 'warmup-cosine' (a linear warm-up
      over ``warmup_epochs``, then cosine) or 'plateau' (``ReduceLROnPlateau`` on
      the validation loss, factor ``gamma``, patience ``plateau_patience``);
    * ``clip_grad_norm``: the largest joint 2-norm of the gradients per step;
    * ``val_split``: a fraction of the training set held out (stratified,
      seeded; 0.1 by default) and evaluated every epoch; the test set is then
      scored once, after training (with 0 it is scored every epoch instead);
      needed by 'plateau' and ``early_stopping``;
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
      (the "small new dataset" case; the validation split comes out of it);
    * ``keep_checkpoints``: how many of the newest epoch checkpoints stay on
      disk (plus the best validation epoch's); 0 keeps them all;
    * ``segments``: written by ``fit(..., extend=N)``: where the schedule started
      again, and at which learning rate (see :func:`cnnlab.training.run.fit`).
    """

    model: str | None = _opt(help="model name (see `cnnlab models`); default: digits_cnn for digits, "
                                  "lenet5 otherwise")
    dataset: str = _opt("digits", metavar="|".join(DATASET_NAMES) + "|folder:PATH|cifar10:PATH",
                        help="digits ships with scikit-learn; fashion-mnist is read from "
                             "/usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist); "
                             "folder:PATH is your own images, one subfolder per class (PNG/JPEG, "
                             "resized to --input-size, default 32; PATH/train and PATH/test if "
                             "present, else an 80/20 split); cifar10:PATH reads CIFAR-10's binary "
                             "batches (data_batch_*.bin, test_batch.bin)")
    data_dir: str | None = _opt(help="folder holding the four IDX files (fashion-mnist, mnist)")
    epochs: int | None = _opt(help="number of epochs (default: the dataset's)")
    batch_size: int | None = _opt(help="1 is online (stochastic) learning: lower --lr with it, "
                                       "e.g. 0.002")
    lr: float | None = _opt(help="learning rate", group=OPTIMISATION)
    momentum: float = _opt(0.9, help="SGD momentum", group=OPTIMISATION)
    nesterov: bool = _opt(False, help="Nesterov momentum", group=OPTIMISATION)
    weight_decay: float = _opt(0.0, help="L2 penalty added to the gradients", group=OPTIMISATION)
    optimizer: str = _opt("sgd", choices=OPTIMIZERS, group=OPTIMISATION)
    scheduler: str | None = _opt(
        choices=SCHEDULERS, group=OPTIMISATION,
        help="learning-rate schedule over the epochs (default: cosine); warmup-cosine rises "
             "linearly over --warmup-epochs first; plateau divides the lr by 1/--gamma when the "
             "validation loss stalls (needs --val-split)")
    step_size: int = _opt(5, help="StepLR period in epochs", group=OPTIMISATION)
    gamma: float = _opt(0.1, help="StepLR / plateau factor", group=OPTIMISATION)
    seed: int = _opt(0, help="seeds the weights, the data order, the splits and the augmentation")
    normalize: bool = _opt(True, help="feed raw [0, 1] pixels instead of standardising with the "
                                      "dataset's mean and std")
    augment: str = _opt("none", choices=AUGMENTATION_NAMES,
                        help="random training-time distortions (training batches only, on raw "
                             "pixels); flips suit fashion-mnist, not digits (use crop)")
    tta: bool = _opt(False, help="also report the final test accuracy with test-time augmentation: "
                                 "the views --augment trained on (shifts; mirrors too for flipping "
                                 "presets on fashion-mnist); with --augment none it equals the plain "
                                 "accuracy")
    warmup_epochs: int | None = _opt(help="linear warm-up length for warmup-cosine (default 1)",
                                     group=OPTIMISATION)
    plateau_patience: int = _opt(2, group=OPTIMISATION,
                                 help="epochs without a better validation loss before plateau "
                                      "lowers the lr")
    clip_grad_norm: float | None = _opt(metavar="X", group=OPTIMISATION,
                                        help="rescale each step's gradients to a joint 2-norm of "
                                             "at most X")
    val_split: float = _opt(0.1, metavar="FRACTION",
                            help="hold out this fraction of the training set (stratified, seeded) "
                                 "for the per-epoch figures, the curves, early stopping and plateau; "
                                 "the test set is then scored once, after training; 0 scores the "
                                 "test set every epoch instead")
    early_stopping: int | None = _opt(metavar="PATIENCE",
                                      help="stop when the validation accuracy has not improved for "
                                           "PATIENCE epochs and restore the best epoch's weights "
                                           "(needs --val-split; also best.npz)")
    lr_mult: dict[str, float] = _opt({}, metavar="PREFIX=FACTOR", group=TRANSFER,
                                     help="learning rate x FACTOR for the parameters under PREFIX "
                                          "(repeatable, e.g. --lr-mult features=0.1)")
    init_from: str | None = _opt(metavar="CKPT", group=TRANSFER,
                                 help="start from the weights of a model.npz/checkpoint (any "
                                      "dataset): every tensor whose name and shape match is copied, "
                                      "and the head is replaced when the classes differ; --model "
                                      "and --input-size default to its")
    freeze: list[str] = _opt([], metavar="PREFIX", group=TRANSFER,
                             help="keep the parameters under PREFIX fixed (repeatable, e.g. --freeze "
                                  "features); BatchNorm layers under it stay in eval mode")
    input_size: int | None = _opt(metavar="S", group=TRANSFER,
                                  help="resize the images to SxS for the model (default: the model's "
                                       "minimum size, or the --init-from model's input size)")
    train_size: int | None = _opt(metavar="N", help="train on a stratified, seeded subset of N "
                                                    "training images")
    keep_checkpoints: int = _opt(3, metavar="K",
                                 help="keep the checkpoints of the last K epochs, plus the best "
                                      "validation epoch's; 0 keeps every epoch's")
    # Set by `cnnlab train --extend` (not an option of its own): the schedule segments
    # after the first, each {"start": epochs done before it, "lr": its learning rate}.
    segments: list[dict[str, float]] = _opt([], cli=False)
    lr_scale_batch: int | None = _opt(
        metavar="B", group=OPTIMISATION,
        help="the linear scaling rule of Goyal et al. 2017 ('Accurate, large minibatch SGD: training "
             "ImageNet in 1 hour', sec. 2.1): train with lr x batch-size / B, --lr being the rate "
             "tuned for batch B; with warmup-cosine the warm-up then starts from --lr (their "
             "gradual warm-up, sec. 2.2, by epoch here). Off by default")
    distributed: bool = _opt(False, group=DISTRIBUTED,
                             help="train one model data-parallel on the processes mpiexec started: "
                                  "--batch-size stays the global batch, each rank takes a contiguous "
                                  "share of it, gradients are averaged over the global batch; only "
                                  "rank 0 prints and writes (needs the distributed extra: mpi4py)")
    sync_bn: bool = _opt(False, group=DISTRIBUTED,
                         help="BatchNorm statistics over the whole global batch (all ranks), so N "
                              "ranks equal one process; without it each rank normalises by its own "
                              "share and the running statistics are averaged over the ranks every "
                              "epoch")
    bucket_mb: float = _opt(DEFAULT_BUCKET_MB, metavar="MIB", group=DISTRIBUTED,
                            help="largest fused gradient buffer per Allreduce, in MiB")

    def resolved(self) -> TrainConfig:
        """A copy with dataset defaults filled in and names normalised.

        Raises :class:`ConfigError` for a value that cannot be used."""
        ds = dataset_name(self.dataset)
        kind = dataset_kind(ds)
        d = DATASET_DEFAULTS[kind]
        if kind in USER_DATA and self.data_dir is not None:
            raise ConfigError(f"data_dir does not apply to {ds}, which names its own folder",
                              "data_dir")
        if ds == "digits" and self.data_dir is not None:
            raise ConfigError(f"data_dir {self.data_dir!r} does not apply to the digits, which ship "
                              "inside scikit-learn; it names the folder of the fashion-mnist or "
                              "mnist IDX files", "data_dir")
        model, input_size = self.model, self.input_size
        if self.init_from and (model is None or input_size is None):
            src = source_spec(self.init_from)
            model = model or src["name"]
            if input_size is None and model.lower().replace("-", "_") == src["name"]:
                input_size = int(src["kwargs"]["input_size"])
        model = (model or DEFAULT_MODEL[kind]).lower().replace("-", "_")
        scheduler = d["scheduler"] if self.scheduler is None else self.scheduler
        warmup = (1 if scheduler == "warmup-cosine" else 0) if self.warmup_epochs is None \
            else self.warmup_epochs
        cfg = dataclasses.replace(
            self, dataset=ds, model=model, input_size=input_size,
            epochs=d["epochs"] if self.epochs is None else self.epochs,
            batch_size=d["batch_size"] if self.batch_size is None else self.batch_size,
            lr=self.default_lr(model, d["lr"]) if self.lr is None else self.lr,
            scheduler=scheduler, warmup_epochs=warmup,
            lr_mult={str(k): float(v) for k, v in dict(self.lr_mult).items()},
            segments=[{"start": int(g["start"]), "lr": float(g["lr"])} for g in self.segments],
            freeze=[str(f) for f in self.freeze])
        cfg._validate()
        return cfg

    @classmethod
    def from_stored(cls, stored: Any, path: str | os.PathLike) -> TrainConfig:
        """The config a checkpoint's metadata holds, checked against the fields'
        types: :class:`CheckpointError` naming ``path`` and the key for an
        unknown, missing-type or mistyped entry (the file's checksums only prove
        it is what was written, not that it was written by cnnlab)."""
        if not isinstance(stored, dict):
            raise CheckpointError(f"{path}: its config is {type(stored).__name__}, not an object")
        types = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in stored.items():
            if key not in names:
                raise CheckpointError(f"{path}: its config has an unknown key {key!r} (not a "
                                      "TrainConfig field; written by another version?)")
            if not _fits(value, types[key]):
                shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
                raise CheckpointError(f"{path}: its config key {key!r} is {shown}, not of type "
                                      f"{types[key]}")
        return cls(**stored)

    def default_lr(self, model: str, dataset_lr: float) -> float:
        """The learning rate when none is given: Adam's customary 1e-3, else the
        model's (``MODEL_LR``) or the dataset's SGD rate."""
        if self.optimizer == "adam":
            return ADAM_LR
        return MODEL_LR.get(model, dataset_lr)

    def _validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}", f.name)
        for name, factor in self.lr_mult.items():
            if not (math.isfinite(factor) and factor >= 0):
                raise ConfigError(f"lr_mult {name}={factor}: the factor must be a finite number >= 0",
                                  "lr_mult")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}", "epochs")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}", "batch_size")
        if self.lr <= 0:
            raise ConfigError(f"learning rate lr must be > 0, got {self.lr}", "lr")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}", "optimizer")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}",
                              "scheduler")
        if self.scheduler == "warmup-cosine" and not 1 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs must be in [1, epochs - 1] = [1, {self.epochs - 1}] "
                              f"for warmup-cosine, got {self.warmup_epochs}", "warmup_epochs")
        if self.scheduler != "warmup-cosine" and self.warmup_epochs:
            raise ConfigError(f"warmup_epochs applies to scheduler 'warmup-cosine' only, not "
                              f"{self.scheduler!r}", "warmup_epochs", "scheduler")
        if self.augment not in AUGMENTATION_NAMES:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTATION_NAMES)}, got {self.augment!r}",
                              "augment")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ConfigError(f"clip_grad_norm must be > 0, got {self.clip_grad_norm}", "clip_grad_norm")
        if not 0.0 <= self.val_split < 1.0:
            raise ConfigError(f"val_split must be a fraction in [0, 1), got {self.val_split}", "val_split")
        needs_val = [what for what, on in (("scheduler 'plateau'", self.scheduler == "plateau"),
                                           ("early_stopping", self.early_stopping is not None)) if on]
        if needs_val and not self.val_split:
            verb, they = ("need", "they watch") if len(needs_val) > 1 else ("needs", "it watches")
            raise ConfigError(f"{' and '.join(needs_val)} {verb} a val_split FRACTION: {they} a "
                              "validation set held out of the training data (never the test set)",
                              "scheduler", "early_stopping", "val_split")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ConfigError(f"early_stopping patience must be >= 1 epoch, got {self.early_stopping}",
                              "early_stopping")
        if self.plateau_patience < 0:
            raise ConfigError(f"plateau_patience must be >= 0, got {self.plateau_patience}",
                              "plateau_patience")
        if self.input_size is not None and not 1 <= self.input_size <= MAX_INPUT_SIZE:
            raise ConfigError(f"input_size must be in [1, {MAX_INPUT_SIZE}], got {self.input_size}",
                              "input_size")
        if self.keep_checkpoints < 0:
            raise ConfigError(f"keep_checkpoints must be >= 0 (0 keeps all), got {self.keep_checkpoints}",
                              "keep_checkpoints")
        if self.train_size is not None and self.train_size < 2:
            raise ConfigError(f"train_size must be >= 2, got {self.train_size}", "train_size")
        if self.lr_scale_batch is not None and self.lr_scale_batch < 1:
            raise ConfigError(f"lr_scale_batch must be >= 1, got {self.lr_scale_batch}", "lr_scale_batch")
        if not self.bucket_mb > 0:
            raise ConfigError(f"bucket_mb must be > 0, got {self.bucket_mb}", "bucket_mb")

    @property
    def scaled_lr(self) -> float:
        """The learning rate trained with: ``lr``, times ``batch_size / lr_scale_batch``
        under Goyal et al.'s linear scaling rule."""
        return self.lr * self.batch_size / self.lr_scale_batch if self.lr_scale_batch else self.lr


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type a TrainConfig field declares."""
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if origin is dict:
        k, v = typing.get_args(hint)
        return isinstance(value, dict) and all(_fits(a, k) and _fits(b, v) for a, b in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def dataset_kind(name: str) -> str:
    """'folder' for 'folder:PATH', else the (canonical) name itself."""
    return name.partition(":")[0]


def dataset_name(name: str) -> str:
    """The canonical spelling of a dataset option: 'fashion-mnist', or
    'folder:PATH' with the kind lower-cased and the path as given; ConfigError
    for an unknown one."""
    kind, sep, where = str(name).partition(":")
    kind = kind.strip().lower().replace("_", "-")
    if sep:
        if kind not in USER_DATA:
            raise ConfigError(f"unknown dataset kind {kind!r} in {name!r}; a path goes with "
                              "folder:PATH or cifar10:PATH", "dataset")
        if not where:
            raise ConfigError(f"dataset {name!r} needs a path: {kind}:PATH", "dataset")
        return f"{kind}:{where}"
    if kind not in DATASET_NAMES:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}, "
                          "folder:PATH or cifar10:PATH", "dataset")
    return kind


def source_spec(path: str | os.PathLike) -> dict[str, Any]:
    """The model spec stored in a ``model.npz``/checkpoint (for ``init_from``)."""
    return stored_spec(load_training_state(path).meta, path)


def stored_spec(meta: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """The ``model_spec`` of a file's metadata; CheckpointError when the file has none."""
    spec = meta.get("model_spec")
    if not spec:
        raise CheckpointError(f"{path}: has no model_spec (how to rebuild the model); only files "
                              "written by cnnlab train have one")
    kwargs = spec.get("kwargs") if isinstance(spec, dict) else None
    if not isinstance(spec.get("name") if isinstance(spec, dict) else None, str) \
            or not isinstance(kwargs, dict):
        raise CheckpointError(f"{path}: its model_spec is not a name with kwargs: {str(spec)[:200]}")
    for key, value in kwargs.items():
        limit = SPEC_LIMITS.get(key)
        if limit is None:
            raise CheckpointError(f"{path}: its model_spec has an unknown argument {key!r}")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise CheckpointError(f"{path}: its model_spec {key}={value!r} is not a whole number "
                                  f"in [1, {limit}] (refused before building the model)")
    return spec
