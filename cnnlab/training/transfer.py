"""Transfer learning pieces of a run: start from another run's weights, freeze
some layers, and give layers their own learning rates.

The notes' recipe (001, 002): take a network trained on a large dataset and

* use it as a fixed feature extractor (freeze everything but a new head, or
  train a linear classifier on its codes: :mod:`cnnlab.training.features`,
  :mod:`cnnlab.training.linear`);
* or fine-tune it: all layers, or only the last ones with the early ones
  frozen, usually with a smaller learning rate for the pre-trained layers
  (``lr_mult``).

Which to pick depends on the new dataset: small and similar -> a linear
classifier on the codes; large and similar -> fine-tune all layers; small and
different -> a classifier on earlier (more generic) layers' codes; large and
different -> fine-tune everything (or train from scratch).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.models import get_model
from cnnlab.models.heads import replace_head
from cnnlab.nn.module import Module
from cnnlab.training.checkpoint import load_training_state
from cnnlab.training.config import stored_spec

__all__ = ["TransferReport", "batchnorms_under", "copy_matching", "initialise_from", "name_matches",
           "parameter_groups", "trained_batchnorms"]


def name_matches(name: str, prefix: str) -> bool:
    """Whether the dotted name ``name`` is ``prefix`` or lies under it
    (``features.0.weight`` is under ``features`` and ``features.0``, not ``feat``)."""
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


# ------------------------------------------------------------ param groups
def parameter_groups(model: Module, lr: float, lr_mult: Mapping[str, float] | None = None
                     ) -> list[dict[str, Any]]:
    """Optimizer parameter groups (PyTorch's list of dicts) with per-layer learning rates.

    Parameters
    ----------
    model : Module
    lr : float
        The base learning rate (of every parameter no prefix matches).
    lr_mult : mapping prefix -> factor, optional
        Parameters under ``prefix`` (see :func:`name_matches`) get ``lr * factor``;
        when several prefixes match, the longest wins.

    Returns
    -------
    list of dict
        ``{"params": [...], "lr": ..., "name": prefix}`` per group, the base group
        (name ``""``) first, then one per prefix in the given order; empty groups
        are left out.  Only parameters with ``requires_grad`` are included, so
        frozen ones never reach the optimizer.

    Raises
    ------
    ValueError
        If a factor is negative or not finite, a prefix matches no trainable
        parameter, or no parameter is trainable at all.
    """
    mult = dict(lr_mult or {})
    for prefix, factor in mult.items():
        if not np.isfinite(factor) or factor < 0:
            raise ValueError(f"lr_mult: factor for {prefix!r} must be finite and >= 0, got {factor}")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{type(model).__name__}: every parameter is frozen; nothing to train")
    groups: dict[str, list] = {"": [], **{prefix: [] for prefix in mult}}
    for name, p in trainable:
        hits = [prefix for prefix in mult if name_matches(name, prefix)]
        groups[max(hits, key=len) if hits else ""].append(p)
    for prefix in mult:
        if not groups[prefix]:
            names = sorted({n.rsplit(".", 1)[0] for n, _ in trainable})
            raise ValueError(f"lr_mult: no trainable parameter lies under {prefix!r} (frozen, or "
                             f"misspelt); trainable layers: {', '.join(names)}")
    return [{"params": ps, "lr": lr * mult.get(prefix, 1.0), "name": prefix}
            for prefix, ps in groups.items() if ps]


# ------------------------------------------------------------------ freezing
def batchnorms_under(model: Module, prefixes: Sequence[str]) -> list[Module]:
    """The modules with running statistics (BatchNorm) lying under any of ``prefixes``.

    A frozen layer should not drift: its weights are kept by ``freeze``, and
    these modules are put back in eval mode after every ``model.train()`` so
    their running mean and variance stay the pre-trained ones (and the batch
    statistics of a small new dataset are not used).  Dropout under a frozen
    prefix stays active, as in PyTorch.
    """
    return [m for name, m in model.named_modules()
            if name and any(name_matches(name, p) for p in prefixes)
            and m._buffers.get("running_mean") is not None]


def trained_batchnorms(model: Module, frozen: Sequence[Module]) -> list[Module]:
    """The modules with running statistics (BatchNorm) that train: all but ``frozen``
    (:func:`batchnorms_under` the frozen prefixes)."""
    return [m for m in model.modules()
            if m._buffers.get("running_mean") is not None and not any(m is f for f in frozen)]


# ------------------------------------------------------------------ init from
@dataclass
class TransferReport:
    """What :func:`initialise_from` did, name by name."""

    source: str
    copied: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (name, reason)
    head_replaced: str | None = None                               # why, or None

    def lines(self) -> list[str]:
        out = [f"init from {self.source}: copied {len(self.copied)} tensors, "
               f"skipped {len(self.skipped)}"]
        out += [f"  skipped {name}: {why}" for name, why in self.skipped]
        if self.head_replaced:
            out.append(f"  new head: {self.head_replaced}")
        return out


def copy_matching(model: Module, source: Mapping[str, np.ndarray]) -> TransferReport:
    """Copy every source tensor whose name and shape match one of ``model``'s
    parameters or buffers; the rest keep their values.  Returns the report
    (``source`` left empty)."""
    report = TransferReport(source="")
    target = model.state_dict()
    take = {}
    for name, value in target.items():
        if name not in source:
            report.skipped.append((name, "not in the source"))
        elif source[name].shape != value.shape:
            report.skipped.append((name, f"shape {tuple(source[name].shape)} in the source, "
                                         f"{tuple(value.shape)} here"))
        else:
            take[name] = source[name]
            report.copied.append(name)
    model.load_state_dict(take, strict=False)
    return report


def initialise_from(path: str | os.PathLike, spec: dict[str, Any], classes: Sequence[str]
                    ) -> tuple[Module, TransferReport]:
    """Build the model of ``spec`` starting from the weights in ``path``.

    Parameters
    ----------
    path : path of a ``model.npz`` or checkpoint written by ``cnnlab train``
        (possibly of another dataset, class count or input size).
    spec : dict
        The new run's model spec (``model_spec_for``): name and kwargs.
    classes : sequence of str
        The new run's class names.

    Returns
    -------
    (model, report)
        The model is built with the source's class count, every tensor whose
        name and shape match is copied, and when the classes differ (in number
        or names) the head is replaced by a freshly initialised one for
        ``len(classes)`` (:func:`cnnlab.models.heads.replace_head`): the old
        head's rows scored the old classes.
    """
    state = load_training_state(path)
    src_spec = stored_spec(state.meta, path)
    src_classes = list(state.meta.get("classes") or [])
    src_k = int(src_spec["kwargs"].get("num_classes", len(src_classes)))
    kwargs = {**spec["kwargs"], "num_classes": src_k}
    model = get_model(spec["name"], **kwargs)
    report = copy_matching(model, state.model_state)
    report.source = str(path)
    if src_spec.get("name") != spec["name"]:
        report.skipped.insert(0, ("(model)", f"source is {src_spec.get('name')}, "
                                             f"this run is {spec['name']}; matched by name"))
    if src_k != len(classes) or (src_classes and src_classes != list(classes)):
        head = replace_head(model, len(classes))
        why = (f"{src_k} source classes -> {len(classes)}" if src_k != len(classes)
               else f"{src_k} classes, but not the same ones")
        report.head_replaced = f"{head} freshly initialised ({why})"
        fresh = [n for n in report.copied if name_matches(n, head)]
        report.copied = [n for n in report.copied if n not in fresh]
        report.skipped += [(n, "new head") for n in fresh]
    return model, report
