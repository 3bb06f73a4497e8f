"""The parts of a run built from its config: data and input pipeline, model,
optimizer and scheduler; and a trained model rebuilt for evaluation.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cnnlab import optim
from cnnlab.data import Compose, DataLoader, Normalize, Pad, Resize, get_dataset
from cnnlab.models import get_model, input_size_for
from cnnlab.nn.module import Module
from cnnlab.training.checkpoint import load_training_state
from cnnlab.training.config import ConfigError, TrainConfig, stored_spec
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
            raise ConfigError(f"train_size {cfg.train_size} exceeds the {len(train)} training images",
                              "train_size")
        train = subset(train, stratified_indices(train.y, cfg.train_size, cfg.seed))
    if not cfg.val_split:
        return train, None
    kept, held = stratified_split(train.y, cfg.val_split, cfg.seed)
    return subset(train, kept), subset(train, held)


def load_for_evaluation(path: str | os.PathLike) -> tuple[Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint or model file, or import a ``.onnx``
    file (:mod:`cnnlab.onnx.meta`); returns (model, meta)."""
    if Path(path).suffix.lower() == ".onnx":
        from cnnlab.onnx.meta import load_for_evaluation as load_onnx

        return load_onnx(path)
    state = load_training_state(path)
    model = build_model(stored_spec(state.meta, path))
    model.load_state_dict(state.model_state)
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
    data_dir = data_dir if data_dir is not None else (meta.get("config") or {}).get("data_dir")
    data = get_dataset(ds_name, split, root=data_dir)
    transform = input_transform(meta["model_spec"], meta.get("normalize"), data.x.shape[1],
                                size=data.x.shape[-1])
    return data, DataLoader(data, batch_size, shuffle=False, transform=transform)
