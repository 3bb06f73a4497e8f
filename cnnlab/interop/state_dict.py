"""Copying a torchvision-style state dict into a cnnlab model: :func:`load_torch_state_dict`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from cnnlab.interop.arrays import _as_array
from cnnlab.nn.module import Module

__all__ = ["IncompatibleKeys", "StateDictError", "load_torch_state_dict"]

# Keys under which training scripts nest the model's weights in a checkpoint
# (timm and Lightning use "state_dict"; torchvision's reference scripts "model").
NESTED_KEYS = ("state_dict", "model")
# The prefix torch.nn.DataParallel / DistributedDataParallel put on every key.
DATA_PARALLEL_PREFIX = "module."


class IncompatibleKeys(NamedTuple):
    """What :func:`load_torch_state_dict` returns, as PyTorch's ``_IncompatibleKeys``.

    Attributes
    ----------
    missing_keys : list of str
        Parameters and buffers of the model the state dict has no value for,
        in the model's order.
    unexpected_keys : list of str
        Keys of the state dict that name nothing in the model, in the state
        dict's order.
    """

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(RuntimeError):
    """A state dict does not fit the model (missing or unexpected keys under
    ``strict``, a shape mismatch, or a value that is not an array).

    A ``RuntimeError``, as PyTorch raises for the same problems.  The
    attributes ``missing_keys``, ``unexpected_keys`` and ``mismatched``
    (a list of ``(key, shape in the state dict, shape in the model)``) hold the
    details the message lists.  The model is never modified when this is raised.
    """

    def __init__(self, message: str, missing_keys: list[str] | None = None,
                 unexpected_keys: list[str] | None = None,
                 mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None) -> None:
        super().__init__(message)
        self.missing_keys = list(missing_keys or [])
        self.unexpected_keys = list(unexpected_keys or [])
        self.mismatched = list(mismatched or [])


def load_torch_state_dict(model: Module, state_dict: Mapping[str, Any],
                          strict: bool = True) -> IncompatibleKeys:
    """Copy a PyTorch-style state dict into ``model``.

    Parameters
    ----------
    model : Module
        The cnnlab model; its parameter and buffer names (``features.0.weight``,
        ``layer1.0.bn1.running_mean``, ...) are matched to the keys as they are,
        since cnnlab's models use torchvision's names.
    state_dict : Mapping[str, Any]
        Names to values: NumPy arrays, cnnlab Tensors, or torch tensors (read
        through ``.detach().cpu().numpy()``; bfloat16 and other types NumPy
        lacks are upcast to float32).  A checkpoint that nests the weights
        under ``"state_dict"`` or ``"model"`` is unwrapped, and a ``"module."``
        prefix on *every* key (``DataParallel``) is removed.
    strict : bool
        If True (the default), any missing or unexpected key is an error.

    Returns
    -------
    IncompatibleKeys
        ``(missing_keys, unexpected_keys)``, as ``torch.nn.Module.load_state_dict``.

    Raises
    ------
    StateDictError
        With ``strict`` and missing or unexpected keys; and, whatever
        ``strict`` says, for a shape mismatch (naming the key and both shapes)
        or a value that is not a real-valued array.  Every problem is listed
        and the model is left untouched: values are checked before any is written.

    Notes
    -----
    Values are cast to the dtype of the parameter or buffer they replace (the
    model's dtype; ``num_batches_tracked`` stays int64).  As in PyTorch, a
    BatchNorm's missing ``num_batches_tracked`` is not reported when the state
    dict carries no version metadata saying it should be there (state dicts
    converted to NumPy, or saved before torch 0.4.1); the buffer then keeps
    its value.  A torch ``OrderedDict`` passed as it is keeps its
    ``_metadata`` and is judged by it, exactly as torch does.
    """
    return _load_state(model, state_dict, strict, source="the state dict")


def _load_state(model: Module, state_dict: Mapping[str, Any], strict: bool,
                source: str) -> IncompatibleKeys:
    if not isinstance(model, Module):
        raise TypeError(f"load_torch_state_dict: model must be a cnnlab Module, "
                        f"got {type(model).__name__}")
    state, metadata = _unwrap(state_dict, source, model)

    # name -> (prefix of the owning module, current value), as Module.load_state_dict sees them
    targets: dict[str, tuple[str, np.ndarray]] = {}
    for prefix, m in model.named_modules():
        for name, p in m._parameters.items():
            if p is not None:
                targets[_join(prefix, name)] = (prefix, p.data)
        for name, b in m._buffers.items():
            if b is not None:
                targets[_join(prefix, name)] = (prefix, b)

    missing: list[str] = []
    for key, (prefix, _) in targets.items():
        if key in state:
            continue
        if key.rsplit(".", 1)[-1] == "num_batches_tracked" and _lacks_bn_version(metadata, prefix):
            continue   # torch fills it in (``_NormBase._load_from_state_dict``): keeps its value
        missing.append(key)
    unexpected = [k for k in state if k not in targets]

    errors: list[str] = []
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    staged: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key not in targets:
            continue
        current = targets[key][1]
        try:
            array = _as_array(value)
        except (TypeError, ValueError) as e:
            errors.append(f"value for {key} is not an array: {e}")
            continue
        if array.dtype.kind not in "biuf":
            errors.append(f"value for {key} has dtype {array.dtype}; expected a real number "
                          f"type to cast to the model's {current.dtype}")
            continue
        if array.shape != current.shape:
            mismatched.append((key, tuple(array.shape), tuple(current.shape)))
            errors.append(f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} "
                          f"from {source}, the shape in the model is {tuple(current.shape)}")
            continue
        staged[key] = array
    if strict:
        head = []
        if missing:
            head.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if unexpected:
            head.append("Unexpected key(s) in state_dict: "
                        + ", ".join(f'"{k}"' for k in unexpected) + ".")
        errors = head + errors
    if errors:
        raise StateDictError(
            f"Error(s) in loading {source} into {type(model).__name__} (nothing was loaded):\n\t"
            + "\n\t".join(errors),
            missing, unexpected, mismatched)
    # Every value is known to fit; Module.load_state_dict stages the casts to the
    # model's dtypes and then writes them all.
    model.load_state_dict(staged, strict=False)
    return IncompatibleKeys(missing, unexpected)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _unwrap(state_dict: Mapping[str, Any], source: str, model: Module
            ) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """The flat ``{name: value}`` inside ``state_dict`` and torch's version
    metadata (``state_dict._metadata``) if it has any."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{source}: expected a mapping of names to arrays, "
                        f"got {type(state_dict).__name__}")
    inner: Mapping[str, Any] = state_dict
    for _ in range(4):   # {"model": {"state_dict": ...}} at the deepest seen in practice
        nested = next((k for k in NESTED_KEYS if isinstance(inner.get(k), Mapping)), None)
        if nested is None:
            break
        inner = inner[nested]
    bad = [k for k in inner if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{source}: state dict keys must be strings, got {bad[:5]!r}")
    metadata = getattr(inner, "_metadata", None)
    metadata = metadata if isinstance(metadata, Mapping) else None
    flat = dict(inner)
    if (flat and all(k.startswith(DATA_PARALLEL_PREFIX) for k in flat)
            and "module" not in model._modules):
        n = len(DATA_PARALLEL_PREFIX)
        flat = {k[n:]: v for k, v in flat.items()}
        if metadata is not None:
            metadata = {("" if k == "module" else k[n:]): v for k, v in metadata.items()
                        if k == "module" or k.startswith(DATA_PARALLEL_PREFIX)}
    return flat, metadata


def _lacks_bn_version(metadata: Mapping[str, Any] | None, module_prefix: str) -> bool:
    """True when torch's ``_NormBase`` would fill in a missing ``num_batches_tracked``:
    the module's version metadata is absent or older than 2."""
    if metadata is None:
        return True
    local = metadata.get(module_prefix)
    version = local.get("version") if isinstance(local, Mapping) else None
    return version is None or version < 2
