"""Saving and loading arrays without pickle: one ``.npz`` file per checkpoint.

A checkpoint file is a zip (NumPy's ``.npz``) holding

* one ``.npy`` member per array, under its dotted name (``model/conv1.weight``);
* a member ``__meta__`` with UTF-8 JSON: format version, the caller's
  metadata, and the SHA-256 of every array's bytes.

Writing is atomic: the file is written under a temporary name in the same
directory, flushed to disk, and renamed over the target, so a crash never
leaves a half-written checkpoint under the real name and never destroys the
previous one.  Loading uses ``allow_pickle=False`` (no code can run), checks
the zip's CRCs, every array's checksum and the metadata, and raises
:class:`CheckpointError` naming the file for anything truncated or corrupt.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cnnlab._files import UnsafePathError, atomic_write, check_readable_file

FORMAT = "cnnlab-checkpoint"
VERSION = 1
META_KEY = "__meta__"
# Limits a file is checked against, from its zip directory and .npy headers, before
# anything large is allocated.  The total can be raised for a larger model with the
# environment variable CNNLAB_MAX_LOAD_BYTES (bytes) or load_arrays(max_bytes=...).
MAX_TOTAL_BYTES = 4 << 30          # 4 GiB of arrays: VGG-16 with its optimizer state is 1.1 GiB
MAX_META_BYTES = 64 << 20          # __meta__.json: the config and metric history, a few KB in practice


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or of the wrong kind."""


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                meta: Mapping[str, Any] | None = None, follow_symlinks: bool = False) -> Path:
    """Atomically write ``arrays`` and JSON-serialisable ``meta`` to ``path``
    (:func:`cnnlab._files.atomic_write`: a symlink at ``path`` is refused unless
    ``follow_symlinks``, for a path the user named)."""
    path = Path(path)
    clean: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        if name == META_KEY or "\x00" in name:
            raise ValueError(f"invalid array name {name!r}")
        arr = np.asarray(a)
        if arr.dtype.hasobject:
            raise TypeError(f"array {name!r} has dtype object, which cannot be saved without pickle")
        clean[name] = arr
    header = {
        "format": FORMAT,
        "version": VERSION,
        "meta": dict(meta or {}),
        "arrays": {k: {"sha256": _digest(v), "dtype": v.dtype.str, "shape": list(v.shape)}
                   for k, v in clean.items()},
    }
    blob = json.dumps(header, sort_keys=True).encode("utf-8")
    with atomic_write(path, follow_symlinks) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(META_KEY + ".json", blob)
            for name, arr in clean.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                zf.writestr(name + ".npy", buf.getvalue())
    return path


def _max_bytes(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get("CNNLAB_MAX_LOAD_BYTES", "")
    return int(env) if env.isdigit() else MAX_TOTAL_BYTES


def _check_sizes(zf: zipfile.ZipFile, path: Path, limit: int) -> None:
    """Refuse, from the zip directory alone, a file whose declared sizes exceed the
    limits (a deflate bomb declares its real size, or fails its CRC when it lies)."""
    infos = zf.infolist()
    meta = next((i for i in infos if i.filename == META_KEY + ".json"), None)
    if meta is not None and meta.file_size > MAX_META_BYTES:
        raise CheckpointError(f"{path}: {META_KEY}.json declares {meta.file_size} bytes, over the "
                              f"{MAX_META_BYTES}-byte limit for metadata")
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise CheckpointError(f"{path}: its arrays declare {total} bytes uncompressed, over the "
                              f"{limit}-byte limit (raise it with CNNLAB_MAX_LOAD_BYTES if the "
                              "file is yours)")


def _read_npy(zf: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    """One array, its .npy header checked against the member's size in the zip
    directory before the data is allocated."""
    size = zf.getinfo(member).file_size
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise CheckpointError(f"{path}: array {member!r} has .npy version {version}")
        shape, fortran, dtype = read_header(f, max_header_size=10_000)
        if dtype.hasobject:
            raise CheckpointError(f"{path}: array {member!r} holds Python objects (refused: no pickle)")
        count = math.prod(shape)
        if count * dtype.itemsize != size - f.tell():
            raise CheckpointError(f"{path}: array {member!r} declares {dtype.str}{list(shape)} = "
                                  f"{count * dtype.itemsize} bytes, but the member holds {size - f.tell()}")
        flat = np.empty(count, dtype=dtype)
        view, got = memoryview(flat.view(np.uint8)), 0
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                raise CheckpointError(f"{path}: array {member!r} is truncated")
            got += n
        if f.read(1):   # reading to the end makes zipfile verify the CRC
            raise CheckpointError(f"{path}: array {member!r} is longer than its header says")
    return flat.reshape(shape, order="F" if fortran else "C")


def load_arrays(path: str | os.PathLike, max_bytes: int | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_arrays`; returns ``(arrays, meta)``.

    Only a regular file is read (a FIFO or a device is refused before it is
    opened), and its declared sizes are checked before anything large is
    allocated: at most ``max_bytes`` of arrays (default :data:`MAX_TOTAL_BYTES`,
    4 GiB, or the environment's ``CNNLAB_MAX_LOAD_BYTES``) and
    :data:`MAX_META_BYTES` of metadata; each array's .npy header must match the
    size of its zip member.

    Raises :class:`CheckpointError` for anything that is not an intact
    checkpoint, and ``FileNotFoundError`` if the file does not exist.
    """
    path = Path(path)
    try:
        check_readable_file(path, "checkpoint")
    except UnsafePathError as e:
        raise CheckpointError(str(e)) from None
    _refuse_torch_pickle(path)
    try:
        with zipfile.ZipFile(path, "r") as zf:
            names = zf.namelist()
            if META_KEY + ".json" not in names:
                raise CheckpointError(f"{path}: not a cnnlab checkpoint (no {META_KEY}.json entry)")
            _check_sizes(zf, path, _max_bytes(max_bytes))
            header = json.loads(zf.read(META_KEY + ".json").decode("utf-8"))
            if not isinstance(header, dict):
                raise CheckpointError(f"{path}: not a cnnlab checkpoint (header is not an object)")
            if header.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a cnnlab checkpoint (format {header.get('format')!r})")
            if header.get("version") != VERSION:
                raise CheckpointError(f"{path}: checkpoint version {header.get('version')} is not "
                                      f"supported (expected {VERSION})")
            expected = header["arrays"]
            arrays: dict[str, np.ndarray] = {}
            for name, info in expected.items():
                member = name + ".npy"
                if member not in names:
                    raise CheckpointError(f"{path}: array {name!r} is listed but missing")
                if not isinstance(info, dict):
                    raise CheckpointError(f"{path}: array {name!r}: corrupt entry in the header")
                arr = _read_npy(zf, member, path)
                if list(arr.shape) != info["shape"] or arr.dtype.str != info["dtype"]:
                    raise CheckpointError(
                        f"{path}: array {name!r} is {arr.dtype.str}{list(arr.shape)}, "
                        f"expected {info['dtype']}{info['shape']}")
                if _digest(arr) != info["sha256"]:
                    raise CheckpointError(f"{path}: array {name!r} fails its SHA-256 check (corrupt)")
                arrays[name] = arr
            extra = set(names) - {n + ".npy" for n in expected} - {META_KEY + ".json"}
            if extra:
                raise CheckpointError(f"{path}: unexpected entries {sorted(extra)}")
            meta = header["meta"]
            if not isinstance(meta, dict):
                raise CheckpointError(f"{path}: corrupt checkpoint (metadata is not an object)")
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 -- any damage (zip, CRC, npy header, JSON) is one error
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(e).__name__}: {e})") from e
    return arrays, meta


def _refuse_torch_pickle(path: Path) -> None:
    """Name a file ``torch.save`` wrote (a zip holding ``data.pkl``, or a bare
    pickle) for what it is, and point at the loader that reads it safely."""
    with open(path, "rb") as f:
        head = f.read(2)
    torch_zip = False
    if head == b"PK":
        with contextlib.suppress(zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            with zipfile.ZipFile(path, "r") as zf:
                torch_zip = any(n.endswith("data.pkl") for n in zf.namelist())
    if torch_zip or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path}: this is a PyTorch pickle (written by torch.save), which cnnlab.load never "
            "unpickles; load its weights into a model with "
            "cnnlab.interop.load_weights(model, path) (torch's weights_only loading), or save "
            "them from cnnlab with cnnlab.save(model.state_dict(), path)")


TREE_KEY = "saved_object"      # meta entry of a file holding more than a flat state dict


def _array_leaf(v: Any) -> np.ndarray | None:
    """``v`` as an ndarray if it is one or a Tensor (duck-typed: an ndarray ``data``)."""
    if isinstance(v, np.ndarray):
        return v
    data = getattr(v, "data", None)
    return data if isinstance(data, np.ndarray) else None


def save(obj: Any, path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """Save a model's ``state_dict()`` to ``path`` (``cnnlab.save(model.state_dict(),
    'm.pt')``).  Any suffix works (``.pt``, ``.pth``, ``.npz``); the file is always
    cnnlab's pickle-free checkpoint format, which :func:`load` reads back.

    ``obj`` may also be a nested structure of dicts, lists, tuples, arrays, Tensors,
    numbers, strings and None, as in PyTorch's general checkpoint
    (``{'epoch': 5, 'model_state_dict': ..., 'optimizer_state_dict': ...}``): the
    arrays go into the file as arrays and the rest as JSON, never pickled.
    """
    if isinstance(obj, Mapping) and all(isinstance(k, str) for k in obj):
        leaves = {k: _array_leaf(v) for k, v in obj.items()}
        if all(a is not None for a in leaves.values()):
            return save_arrays(path, leaves, meta, follow_symlinks=True)   # the caller named the path
    arrays: dict[str, np.ndarray] = {}
    tree = pack_tree(obj, arrays, "obj")
    return save_arrays(path, arrays, {**dict(meta or {}), TREE_KEY: tree}, follow_symlinks=True)


def load(path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
         ) -> Any:
    """Load what :func:`save` wrote, whatever its suffix: a state dict of ndarrays, or
    the nested structure that was saved (arrays and Tensors come back as ndarrays).
    ``map_location`` and ``weights_only`` are PyTorch's arguments, accepted for
    portable code (everything is on the CPU and nothing is unpickled).  A file
    written by ``torch.save`` is refused with a :class:`CheckpointError` that names
    ``cnnlab.interop.load_weights``.

    A run's ``model.npz`` or checkpoint (``cnnlab train``'s, which keeps the
    weights under ``model/`` beside the optimizer's state) gives its model's
    state dict, ready for ``load_state_dict``; to rebuild the model itself use
    :func:`cnnlab.training.load_for_evaluation`."""
    arrays, meta = load_arrays(path)
    if TREE_KEY in meta:
        return unpack_tree(meta[TREE_KEY], arrays)
    if meta.get("kind") in ("model", "training-state"):
        return {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    return arrays


# ----------------------------------------------------------- nested state
def pack_tree(obj: Any, arrays: dict[str, np.ndarray], prefix: str) -> Any:
    """Split a nested structure (an optimizer's ``state_dict()``, say) into
    JSON and arrays: every ndarray leaf moves into ``arrays`` under a path
    name and is replaced by ``{"__array__": name}``.  Dicts with non-string
    keys (the optimizer's integer parameter indices) are stored as item
    lists so the keys come back with their type."""
    leaf = _array_leaf(obj)
    if leaf is not None:
        arrays[prefix] = leaf
        return {"__array__": prefix}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: pack_tree(v, arrays, f"{prefix}/{k}") for k, v in obj.items()}
        return {"__items__": [[k, pack_tree(v, arrays, f"{prefix}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [pack_tree(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} without pickle")


def unpack_tree(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`pack_tree`."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        if set(obj) == {"__items__"}:
            return {k: unpack_tree(v, arrays) for k, v in obj["__items__"]}
        return {k: unpack_tree(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack_tree(v, arrays) for v in obj]
    return obj
