"""Swap a model's classifier for a new one: the first step of transfer learning.

The notes (001, 002): take a network trained on one dataset, replace its last
layer by a freshly initialised one with as many outputs as the new dataset has
classes, then either train only that layer (the CNN as a fixed feature
extractor: ``model.freeze(); model.unfreeze(path)``) or fine-tune everything.

The head is the last *classifier layer* in the model's registration order: a
:class:`~cnnlab.nn.Linear`, a 1x1 :class:`~cnnlab.nn.Conv2d` (NIN and All-CNN
end in one 1x1 map per class before global averaging) or LeNet-5's
:class:`~cnnlab.nn.RBFOutput`.  In every zoo model that is the layer that
produces the class scores.
"""
from __future__ import annotations

from cnnlab.nn.module import Module
from cnnlab.nn.modules.conv import Conv2d
from cnnlab.nn.modules.linear import Linear
from cnnlab.nn.modules.rbf import RBFOutput

__all__ = ["find_head", "replace_head"]


def _is_head(m: Module) -> bool:
    if isinstance(m, (Linear, RBFOutput)):
        return True
    return type(m) is Conv2d and tuple(m.kernel_size) == (1, 1) and m.groups == 1


def find_head(model: Module) -> str:
    """Dotted path of ``model``'s final classifier layer (``"classifier.6"``, ``"fc"``).

    Auxiliary classifiers (GoogLeNet's ``aux1``/``aux2``) are not the head;
    :func:`replace_head` replaces them as well.

    Raises
    ------
    ValueError
        If the model has no Linear, 1x1 Conv2d or RBFOutput layer.
    """
    found = [name for name, m in model.named_modules() if name and _is_head(m)
             and not name.split(".")[0].startswith("aux")]
    if not found:
        raise ValueError(f"find_head: {type(model).__name__} has no Linear, 1x1 Conv2d or RBFOutput "
                         "layer to use as its classifier")
    return found[-1]


def _fresh_like(old: Module, num_classes: int) -> Module:
    """A new layer of ``old``'s type and inputs with ``num_classes`` outputs, default init."""
    dtype = old.weight.dtype
    if isinstance(old, RBFOutput):
        return RBFOutput(old.in_features, num_classes, dtype=dtype)
    if isinstance(old, Linear):
        return Linear(old.in_features, num_classes, bias=old.bias is not None, dtype=dtype)
    return Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None, dtype=dtype)


def _put(model: Module, path: str, new: Module) -> None:
    """Replace the submodule at ``path`` keeping its place in the parent's order
    (a Sequential runs its children in that order)."""
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path)
    parent._modules[name] = new


def replace_head(model: Module, num_classes: int) -> str:
    """Replace ``model``'s classifier by a new, randomly initialised one with
    ``num_classes`` outputs, in place.

    The new layer has the old one's type, inputs (``in_features`` /
    ``in_channels``), bias setting and dtype, and its layer's default
    initialisation (``reset_parameters``, drawn from :func:`cnnlab.manual_seed`'s
    generator).  GoogLeNet's auxiliary classifiers, when present, get new final
    layers (``aux1.fc2``, ``aux2.fc2``) too, so training-mode outputs agree.

    Parameters
    ----------
    model : Module
        Any zoo model (or a model ending in a Linear / 1x1 Conv2d / RBFOutput).
    num_classes : int
        Number of classes of the new task (>= 1).

    Returns
    -------
    str
        Dotted path of the new head, e.g. ``"classifier.6"`` or ``"fc"``; train
        only it with ``model.freeze(); model.unfreeze(path)``.

    Examples
    --------
    >>> model = get_model("digits_cnn", num_classes=10)     # doctest: +SKIP
    >>> path = replace_head(model, 3)                         # doctest: +SKIP
    >>> model.freeze().unfreeze(path)                         # doctest: +SKIP
    """
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive integer, got {num_classes!r}")
    path = find_head(model)
    paths = [path] + [name for name, m in model.named_modules()
                      if name.split(".")[0].startswith("aux") and name.endswith(".fc2")
                      and isinstance(m, Linear)]
    for p in paths:
        _put(model, p, _fresh_like(model.get_submodule(p), int(num_classes)))
    return path
