"""The parts of a run built from its config: data and input pipeline, model,
optimizer and scheduler; and a trained model rebuilt for evaluation.
"""
from __future__ import annotations

import os
from typing import Any

from cnnlab import optim
from cnnlab.data import Compose, DataLoader, Normalize, Pad, Resize, dataset_stats, get_dataset
from cnnlab.data.user_data import pixel_stats
from cnnlab.models import get_model, input_size_for
from cnnlab.nn.module import Module
from cnnlab.training.checkpoint import load_training_state
from cnnlab.training.config import USER_DATA, ConfigError, TrainConfig, dataset_kind, stored_spec
from cnnlab.training.folder import model_file
from cnnlab.training.splits import stratified_indices, stratified_split, subset
from cnnlab.training.transfer import parameter_groups


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
    lr = cfg.scaled_lr
    groups = parameter_groups(model, lr, cfg.lr_mult)
    if cfg.optimizer == "adam":
        return optim.Adam(groups, lr=lr, weight_decay=cfg.weight_decay)
    return optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                     weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer, epochs: int | None = None):
    """The scheduler ``cfg.scheduler`` over ``epochs`` (default ``cfg.epochs``; the
    length of one schedule segment of an extended run); None for 'none'."""
    sched = optim.lr_scheduler
    epochs = cfg.epochs if epochs is None else epochs
    if cfg.scheduler == "step":
        return sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs)
    if cfg.scheduler == "warmup-cosine":
        if epochs <= cfg.warmup_epochs:
            raise ConfigError(f"a warmup-cosine segment of {epochs} epochs is too short for "
                              f"{cfg.warmup_epochs} warm-up epochs", "extend", "warmup_epochs")
        after = sched.CosineAnnealingLR(optimizer, T_max=epochs - cfg.warmup_epochs)
        # Goyal et al.'s gradual warm-up rises from the unscaled lr to the scaled one
        start = cfg.lr / cfg.scaled_lr if cfg.scaled_lr > cfg.lr else 0.1
        return sched.warmup_scheduler(optimizer, cfg.warmup_epochs, after, start_factor=start)
    if cfg.scheduler == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode="min", factor=cfg.gamma,
                                       patience=cfg.plateau_patience)
    return None


def load_data(dataset: str, data_dir: str | None, size: int | None = None):
    """(train, test) of ``dataset``; ``size`` is the side a ``folder:PATH`` dataset's
    images are resized to."""
    train = get_dataset(dataset, "train", root=data_dir, size=size)
    test = get_dataset(dataset, "test", root=data_dir, size=size)
    return train, test


def normalisation(cfg: TrainConfig, train) -> dict[str, float] | None:
    """The mean and std the images are standardised with (None with ``normalize``
    off): the built-in datasets' constants, or the pixel statistics of a user
    dataset's training split."""
    if not cfg.normalize:
        return None
    stats = (pixel_stats(train.x) if dataset_kind(cfg.dataset) in USER_DATA
             else dataset_stats(cfg.dataset))
    return dict(zip(("mean", "std"), stats))


def split_training_data(cfg: TrainConfig, train):
    """(train, val or None): the ``train_size`` subset, then the ``val_split``
    held out of it; both stratified and seeded by ``cfg.seed``."""
    if cfg.train_size:
        if cfg.train_size > len(train):
            raise ConfigError(f"train_size {cfg.train_size} exceeds the {len(train)} training images",
                              "train_size")
        train = subset(train, stratified_indices(train.y, cfg.train_size, cfg.seed))
    if not cfg.val_split:
        return train, None
    kept, held = stratified_split(train.y, cfg.val_split, cfg.seed)
    return subset(train, kept), subset(train, held)


def load_for_evaluation(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint, a model file or a run folder
    (its ``model.npz``), or import a ``.onnx`` file (:mod:`cnnlab.onnx.meta`);
    returns (model, meta)."""
    path = model_file(path)
    if path.suffix.lower() == ".onnx":
        from cnnlab.onnx.meta import load_for_evaluation as load_onnx

        return load_onnx(path)
    state = load_training_state(path)
    model = build_model(stored_spec(state.meta, path))
    state.restore(model)
    model.eval()
    return model, state.meta


def evaluation_loader(meta: dict[str, Any], dataset: str | None, data_dir: str | None,
                      batch_size: int = 500, split: str = "test"):
    """(dataset, loader) of a split of ``dataset`` (default: the model's own), with
    the model's input pipeline (resize/pad, normalisation); no shuffling."""
    ds_name = dataset or meta.get("dataset")
    if not ds_name:
        raise ValueError(f"{meta['model_spec']['name']} names no dataset it was trained on (an "
                         "untrained export, or an ONNX file from elsewhere); pass --dataset")
    own = ds_name == meta["dataset"]
    if data_dir is None and own:
        data_dir = (meta.get("config") or {}).get("data_dir")
    spec = meta["model_spec"]
    data = get_dataset(ds_name, split, root=data_dir, size=spec["kwargs"]["input_size"])
    channels = spec["kwargs"]["in_channels"]
    if data.x.ndim != 4 or data.x.shape[1] != channels:
        raise ValueError(f"{ds_name} images have shape {tuple(data.x.shape[1:])}, but the model "
                         f"({spec['name']}) takes {channels}-channel images")
    transform = input_transform(spec, meta.get("normalize"), data.x.shape[1],
                                size=data.x.shape[-1])
    return data, DataLoader(data, batch_size, shuffle=False, transform=transform)


def dataset_mismatch(meta: dict[str, Any], data) -> list[str]:
    """Warnings for evaluating the model of ``meta`` on ``data``: images of another
    size than it trained on (they are resized) or another number of classes."""
    spec, notes = meta["model_spec"], []
    trained = (spec.get("input") or {}).get("from", spec["kwargs"]["input_size"])
    size = tuple(data.x.shape[-2:])
    if size != (trained, trained):
        notes.append(f"the images are {size[0]}x{size[1]} but the model was trained on "
                     f"{trained}x{trained} images; they are resized, so expect a lower accuracy")
    k = int(spec["kwargs"]["num_classes"])
    labels = int(data.y.max()) + 1 if len(data.y) else 0
    n = len(data.classes) if data.classes else labels
    if n != k or labels > k:
        notes.append(f"the dataset has {max(n, labels)} classes but the model predicts {k}; "
                     "its class indices may not mean the same classes, and labels beyond the "
                     "model's count are never predicted")
    return notes
