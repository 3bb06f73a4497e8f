"""The safetensors format in plain Python and NumPy: :func:`load_safetensors`, :func:`save_safetensors`.

The format (https://github.com/huggingface/safetensors): an unsigned 64-bit
little-endian header length N; N bytes of UTF-8 JSON mapping each tensor name
to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional
``"__metadata__"`` object of strings), possibly padded with spaces; then the
byte buffer, in which the tensors, stored little-endian in C order, tile
``[0, len(buffer))`` exactly, without gaps or overlaps.  Every field of a file
is validated before it is trusted.
"""
from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnlab._files import UnsafePathError, atomic_write, check_readable_file
from cnnlab.interop.arrays import _as_array

__all__ = ["SafetensorsError", "load_safetensors", "safetensors_metadata", "save_safetensors"]


class SafetensorsError(ValueError):
    """A ``.safetensors`` file is truncated, corrupt or not in the format
    (or a tensor cannot be written in it).  The message names the file."""


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
MAX_DIMS = 64                    # NumPy's limit on an array's dimensions


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
    path = _regular_file(path)
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
    path = _regular_file(path)
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
        raise SafetensorsError(f"{path}: header is not valid UTF-8 JSON ({e})") from e
    except RecursionError as e:
        raise SafetensorsError(f"{path}: header is nested too deeply to be a safetensors header") from e
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
        if len(shape) > MAX_DIMS or any(d >= 2**63 for d in shape):
            raise SafetensorsError(f"{what}: shape of {len(shape)} dimensions up to {max(shape)} cannot be "
                                   f"an array (at most {MAX_DIMS} dimensions, each < 2**63)")
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


def _regular_file(path: str | os.PathLike) -> Path:
    try:
        return check_readable_file(path, "safetensors file")
    except UnsafePathError as e:
        raise SafetensorsError(str(e)) from None


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
    with atomic_write(path, follow_symlinks=True) as f:   # the caller named the path
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
        raise SafetensorsError(f"{path}: tensor {name!r}: not an array ({e})") from e
    code = _NP_TO_ST.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise SafetensorsError(f"{path}: tensor {name!r} has dtype {arr.dtype}, which safetensors "
                               f"cannot store (supported: {', '.join(sorted(_ST_DTYPES))})")
    return code, arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)   # keeps 0-d shapes
