"""Weights from other frameworks: PyTorch state dicts, ``.safetensors`` and ``.pth`` files.

cnnlab's module names and parameter shapes follow torchvision, so a torchvision
state dict maps one to one onto the cnnlab model of the same architecture::

    from cnnlab.interop import load_weights
    model = cnnlab.models.resnet18()
    load_weights(model, "resnet18.safetensors")     # or .pth / .pt, or cnnlab's own .npz

* :func:`load_torch_state_dict` copies a mapping of torchvision-style names to
  arrays (NumPy arrays, cnnlab Tensors or torch tensors) into a model and
  reports missing and unexpected keys as ``torch.nn.Module.load_state_dict``
  does, but writes nothing at all unless every key is acceptable.
* :func:`load_safetensors` / :func:`save_safetensors` implement the
  safetensors format in plain Python and NumPy (the ``safetensors`` package is
  not needed), validating every field of a file before trusting it.
* :func:`load_pth` reads ``torch.save`` files with ``weights_only=True``, so no
  pickled code can run; it needs PyTorch, which this module only imports when
  such a file is actually read.
* :func:`load_weights` picks the reader from the file extension.

The safetensors format (https://github.com/huggingface/safetensors): an
unsigned 64-bit little-endian header length N; N bytes of UTF-8 JSON mapping
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus
an optional ``"__metadata__"`` object of strings), possibly padded with
spaces; then the byte buffer, in which the tensors, stored little-endian in C
order, tile ``[0, len(buffer))`` exactly, without gaps or overlaps.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module
from cnnlab.serialization import atomic_write, load_arrays

__all__ = [
    "IncompatibleKeys", "SafetensorsError", "StateDictError", "TorchCheckpointError",
    "load_pth", "load_safetensors", "load_torch_state_dict", "load_weights",
    "safetensors_metadata", "save_safetensors",
]

# Keys under which training scripts nest the model's weights in a checkpoint
# (timm and Lightning use "state_dict"; torchvision's reference scripts "model").
NESTED_KEYS = ("state_dict", "model")
# The prefix cnnlab's training checkpoints (cnnlab.training.checkpoint) put on model weights.
CNNLAB_MODEL_PREFIX = "model/"
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


class SafetensorsError(ValueError):
    """A ``.safetensors`` file is truncated, corrupt or not in the format
    (or a tensor cannot be written in it).  The message names the file."""


class TorchCheckpointError(ValueError):
    """A ``.pth`` / ``.pt`` file cannot be read safely: it is corrupt, holds
    something other than tensors in plain containers (refused by
    ``weights_only=True``), or is not a mapping of weights."""


# ======================================================================= state dicts
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


def _as_array(value: Any) -> np.ndarray:
    """An ndarray from an ndarray, a cnnlab Tensor, a torch tensor or a number."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return _torch_to_numpy(value)
    if isinstance(value, (np.generic, int, float, bool)):
        return np.asarray(value)
    raise TypeError(f"got {type(value).__name__}")


def _torch_to_numpy(t: Any) -> np.ndarray:
    """``t.detach().cpu().numpy()``, upcasting to float32 the dtypes NumPy lacks (bfloat16, float8)."""
    t = t.detach().cpu()
    try:
        return t.numpy()
    except TypeError:   # "Got unsupported ScalarType BFloat16"
        if not t.is_floating_point():
            raise
        return t.float().numpy()


# ======================================================================= safetensors
# safetensors dtype code -> (NumPy dtype as stored, little-endian)
_ST_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),   # read as raw 16-bit words, returned as float32
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# NumPy dtype (native kind + size) -> safetensors code, for writing
_NP_TO_ST: dict[tuple[str, int], str] = {
    ("f", 8): "F64", ("f", 4): "F32", ("f", 2): "F16",
    ("i", 8): "I64", ("i", 4): "I32", ("i", 2): "I16", ("i", 1): "I8",
    ("u", 8): "U64", ("u", 4): "U32", ("u", 2): "U16", ("u", 1): "U8",
    ("b", 1): "BOOL",
}
METADATA_KEY = "__metadata__"
MAX_HEADER_BYTES = 100_000_000   # the reference implementation's limit


class _Entry(NamedTuple):
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    dict[str, np.ndarray]
        Tensor name to array, in the file's data order, native byte order and
        C order.  BF16 tensors are upcast to float32 (exactly: every bfloat16
        is a float32); every other dtype is returned as stored.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    SafetensorsError
        For a file too short for its header, a header length past the end of
        the file, a header that is not a UTF-8 JSON object of well-formed
        entries, an unknown dtype, a byte range that does not hold
        ``prod(shape) * itemsize`` bytes, ranges that overlap, leave gaps or do
        not end at the end of the file, or BOOL bytes other than 0 and 1.
    """
    path = Path(path)
    with open(path, "rb") as f:
        entries, _, buffer_len = _read_header(f, path)
        buffer = bytearray(buffer_len)
        got = f.readinto(buffer)
    if got != buffer_len:   # the file shrank while being read
        raise SafetensorsError(f"{path}: truncated: expected {buffer_len} bytes of tensor data, read {got}")
    out: dict[str, np.ndarray] = {}
    for e in entries:
        stored = _ST_DTYPES[e.dtype]
        count = math.prod(e.shape)
        arr = np.frombuffer(buffer, dtype=stored, count=count, offset=e.begin).reshape(e.shape)
        if e.dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif e.dtype == "BOOL":
            raw = arr.view(np.uint8)
            if raw.size and raw.max() > 1:
                raise SafetensorsError(f"{path}: tensor {e.name!r} is BOOL but holds byte value "
                                       f"{int(raw.max())} (expected 0 or 1)")
        else:
            arr = arr.astype(stored.newbyteorder("="), copy=False)
        if not arr.flags.aligned:
            arr = arr.copy()
        out[e.name] = arr
    return out


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``"__metadata__"`` strings of a ``.safetensors`` file (``{}`` if it
    has none), after validating its whole header; the tensor data is not read.

    Raises
    ------
    FileNotFoundError, SafetensorsError
        As :func:`load_safetensors`.
    """
    path = Path(path)
    with open(path, "rb") as f:
        _, metadata, _ = _read_header(f, path)
    return metadata


def _read_header(f: Any, path: Path) -> tuple[list[_Entry], dict[str, str], int]:
    """Parse and validate the header of an open file positioned at 0; leaves it
    at the start of the byte buffer.  Returns (entries in data order, metadata,
    length of the byte buffer)."""
    size = os.fstat(f.fileno()).st_size
    if size < 8:
        raise SafetensorsError(f"{path}: not a safetensors file: {size} bytes is too short for the "
                               f"8-byte header length")
    n = int.from_bytes(f.read(8), "little")
    if n > size - 8:
        raise SafetensorsError(f"{path}: header length {n} runs past the end of the file "
                               f"({size - 8} bytes follow the length field; truncated or not safetensors)")
    if n > MAX_HEADER_BYTES:
        raise SafetensorsError(f"{path}: header length {n} exceeds the format's limit of "
                               f"{MAX_HEADER_BYTES} bytes")
    raw = f.read(n)
    if len(raw) != n:
        raise SafetensorsError(f"{path}: truncated header: expected {n} bytes, read {len(raw)}")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: header is not valid UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    buffer_len = size - 8 - n

    metadata = header.pop(METADATA_KEY, {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{path}: {METADATA_KEY!r} must be an object of strings, got {metadata!r}")

    entries: list[_Entry] = []
    for name, info in header.items():
        what = f"{path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise SafetensorsError(f"{what}: expected an object with dtype, shape and data_offsets, "
                                   f"got {info!r}")
        absent = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
        if absent:
            raise SafetensorsError(f"{what}: header entry lacks {absent}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES:
            raise SafetensorsError(f"{what}: unknown or unsupported dtype {dtype!r} "
                                   f"(expected one of {', '.join(_ST_DTYPES)})")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise SafetensorsError(f"{what}: shape must be a list of non-negative integers, got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets)
                or offsets[0] > offsets[1]):
            raise SafetensorsError(f"{what}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                                   f"got {offsets!r}")
        begin, end = offsets
        if end > buffer_len:
            raise SafetensorsError(f"{what}: data_offsets [{begin}, {end}] run past the end of the "
                                   f"{buffer_len}-byte data buffer (truncated file?)")
        expected = math.prod(shape) * _ST_DTYPES[dtype].itemsize
        if end - begin != expected:
            raise SafetensorsError(f"{what}: data_offsets [{begin}, {end}] hold {end - begin} bytes, but "
                                   f"{dtype} of shape {shape} needs {expected}")
        entries.append(_Entry(name, dtype, tuple(shape), begin, end))

    entries.sort(key=lambda e: (e.begin, e.end))
    position, previous = 0, None
    for e in entries:
        if e.begin < position:
            raise SafetensorsError(f"{path}: tensors {previous!r} and {e.name!r} overlap "
                                   f"(bytes from {e.begin} to {position})")
        if e.begin > position:
            raise SafetensorsError(f"{path}: gap in the data buffer: bytes {position} to {e.begin} "
                                   f"belong to no tensor (before {e.name!r})")
        position, previous = e.end, e.name
    if position != buffer_len:
        raise SafetensorsError(f"{path}: the tensors cover {position} bytes of the data buffer but "
                               f"it has {buffer_len} (trailing bytes belong to no tensor)")
    return entries, dict(metadata), buffer_len


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def save_safetensors(path: str | os.PathLike, tensors: Mapping[str, Any],
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` to ``path`` in the safetensors format, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; it is written under a temporary name in the same
        directory, flushed to disk and renamed over ``path``, so a failure
        never leaves a partial file and never destroys an existing one.
    tensors : Mapping[str, Any]
        Names to arrays: NumPy arrays (float64/32/16, int64/32/16/8,
        uint64/32/16/8, bool), cnnlab Tensors or torch tensors (a torch
        bfloat16 tensor is written as BF16).
    metadata : Mapping[str, str], optional
        Stored as the header's ``"__metadata__"``; keys and values must be strings.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    SafetensorsError
        For a name that is not a non-empty string or is ``"__metadata__"``, a
        dtype the format lacks, or metadata that is not strings.

    Notes
    -----
    As the reference implementation does, tensors are laid out by decreasing
    item size and then name, and the header is padded with spaces to a
    multiple of 8 bytes, so every tensor starts at an offset aligned for its dtype.
    """
    path = Path(path)
    if metadata is not None and not (isinstance(metadata, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise SafetensorsError(f"{path}: metadata must map strings to strings, got {metadata!r}")
    prepared: list[tuple[str, str, np.ndarray]] = []
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == METADATA_KEY:
            raise SafetensorsError(f"{path}: invalid tensor name {name!r}")
        code, arr = _for_safetensors(value, name, path)
        prepared.append((name, code, arr))
    prepared.sort(key=lambda t: (-t[2].dtype.itemsize, t[0]))

    header: dict[str, Any] = {}
    if metadata:
        header[METADATA_KEY] = dict(metadata)
    offset = 0
    for name, code, arr in prepared:
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with atomic_write(path) as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for _, _, arr in prepared:
            f.write(arr.reshape(-1).view(np.uint8).data)   # little-endian, C order
    return path


def _for_safetensors(value: Any, name: str, path: Path) -> tuple[str, np.ndarray]:
    """(safetensors dtype code, little-endian C-contiguous array) for one tensor."""
    if str(getattr(value, "dtype", "")) == "torch.bfloat16" and hasattr(value, "view"):
        torch = importlib.import_module("torch")   # already imported: value is a torch tensor
        bits = value.detach().cpu().contiguous().view(torch.int16).numpy()
        return "BF16", bits.view(np.uint16).astype("<u2", order="C", copy=False)
    try:
        arr = _as_array(value)
    except TypeError as e:
        raise SafetensorsError(f"{path}: tensor {name!r}: not an array ({e})") from None
    code = _NP_TO_ST.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise SafetensorsError(f"{path}: tensor {name!r} has dtype {arr.dtype}, which safetensors "
                               f"cannot store (supported: {', '.join(sorted(_ST_DTYPES))})")
    return code, arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)   # keeps 0-d shapes


# ======================================================================= .pth / .pt
def load_pth(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by ``torch.save``, safely, as NumPy arrays.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``: only
    tensors, numbers, strings and plain containers are unpickled, never
    arbitrary objects, so no code in the file can run.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pth`` / ``.pt`` file.

    Returns
    -------
    dict[str, Any]
        The saved mapping with every tensor replaced by a NumPy array (bfloat16
        upcast to float32) and nested dicts, lists and tuples converted the same
        way; other values (epochs, strings) are kept.

    Raises
    ------
    ImportError
        If PyTorch is not installed (it is needed to read the format).
    FileNotFoundError
        If ``path`` does not exist.
    TorchCheckpointError
        If the file holds objects ``weights_only=True`` refuses, is corrupt,
        or does not hold a mapping.
    """
    path = Path(path)
    try:
        torch = importlib.import_module("torch")
    except ImportError as e:
        raise ImportError(f"reading {path} needs PyTorch, which is not installed ({e}); "
                          f"install torch, or convert the file to .safetensors where torch is "
                          f"available and load that") from None
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise TorchCheckpointError(
            f"{path}: refused: the file holds pickled objects other than tensors and plain "
            f"containers, and it is only read with weights_only=True so that no code in it can run "
            f"(torch: {_unpickler_reason(e)}). If you trust its source, extract the state dict with "
            f"torch.load(..., weights_only=False) and save that") from e
    except Exception as e:  # noqa: BLE001 -- any damage (zip, storage, pickle stream) is one error
        raise TorchCheckpointError(f"{path}: not a readable PyTorch checkpoint "
                                   f"({type(e).__name__}: {e})") from e
    if not isinstance(obj, Mapping):
        raise TorchCheckpointError(f"{path}: holds a {type(obj).__name__}, not a mapping of weights")
    return _tree_to_numpy(obj, torch)


def _unpickler_reason(e: BaseException) -> str:
    """The line of torch's long weights_only message that names what it refused."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line or "GLOBAL" in line:
            return line[:300]
    return lines[0][:300] if lines else type(e).__name__


def _tree_to_numpy(obj: Any, torch: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return _torch_to_numpy(obj)
    if isinstance(obj, Mapping):
        return {k: _tree_to_numpy(v, torch) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tree_to_numpy(v, torch) for v in obj]
    return obj


# ======================================================================= dispatch
def load_weights(model: Module, path: str | os.PathLike, strict: bool = True) -> IncompatibleKeys:
    """Load the weights in ``path`` into ``model``, choosing the reader by extension.

    Parameters
    ----------
    model : Module
        The cnnlab model.
    path : str or os.PathLike
        ``.safetensors`` (:func:`load_safetensors`), ``.pth`` / ``.pt``
        (:func:`load_pth`; needs PyTorch), or cnnlab's own ``.npz``
        (``cnnlab.serialization.load_arrays``: a ``cnnlab.save`` state dict, or
        a training checkpoint / model file whose weights are under ``"model/"``).
    strict : bool
        As :func:`load_torch_state_dict`.

    Returns
    -------
    IncompatibleKeys

    Raises
    ------
    ValueError
        For an extension not listed above.
    FileNotFoundError, SafetensorsError, TorchCheckpointError, cnnlab.CheckpointError, ImportError
        From the reader.
    StateDictError
        From :func:`load_torch_state_dict`, naming the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        state: Mapping[str, Any] = load_safetensors(path)
    elif suffix in (".pth", ".pt"):
        state = load_pth(path)
    elif suffix == ".npz":
        arrays, _ = load_arrays(path)
        n = len(CNNLAB_MODEL_PREFIX)
        model_arrays = {k[n:]: v for k, v in arrays.items() if k.startswith(CNNLAB_MODEL_PREFIX)}
        state = model_arrays if model_arrays else arrays
    else:
        raise ValueError(f"load_weights: cannot tell the format of {path} from its extension "
                         f"{suffix or '(none)'!r}; expected .safetensors, .pth, .pt or .npz")
    return _load_state(model, state, strict, source=str(path))
