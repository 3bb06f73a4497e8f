"""Reading an untrusted ONNX file safely.

* The file's size is checked before it is read (``max_bytes``), and it is parsed as a
  protobuf: ONNX holds no code, and nothing here unpickles or runs anything.
* Every tensor's declared size (dims x item size) is checked against the bytes it
  actually holds before any array is made, so a header declaring 10^12 elements is
  refused without allocating them.
* External data may only name a file inside the model's own folder: absolute paths,
  ``..`` and symbolic links leading out are refused; offset and length must lie
  inside that file.
* Any problem raises :class:`OnnxFileError` naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cnnlab._files import UnsafePathError, check_readable_file
from cnnlab.onnx.graph import onnx_module

MAX_FILE_BYTES = 2**31          # protobuf's own limit for one message
MAX_TENSOR_ELEMENTS = 2**31


class OnnxFileError(ValueError):
    """An ONNX file is missing, truncated, malformed, oversized or unsafe."""


def _dtypes() -> dict[int, np.dtype]:
    T = onnx_module().TensorProto
    return {T.FLOAT: np.dtype("<f4"), T.DOUBLE: np.dtype("<f8"), T.INT64: np.dtype("<i8"),
            T.INT32: np.dtype("<i4"), T.FLOAT16: np.dtype("<f2"), T.BOOL: np.dtype("bool"),
            T.UINT8: np.dtype("u1"), T.INT8: np.dtype("i1")}


def read_model(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES):
    """Parse ``path`` as an ONNX ModelProto without loading external data."""
    onnx = onnx_module()
    try:
        path = check_readable_file(path, "ONNX file")   # a FIFO or device would never end
    except UnsafePathError as e:
        raise OnnxFileError(str(e)) from None
    size = path.stat().st_size
    if size > max_bytes:
        raise OnnxFileError(f"{path}: {size:,} bytes is over the limit of {max_bytes:,}")
    data = path.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:   # google.protobuf.message.DecodeError and friends
        raise OnnxFileError(f"{path} is not a valid ONNX file (truncated or corrupt: {e})") from e
    if not model.HasField("graph") or not model.graph.node or not model.graph.output:
        raise OnnxFileError(f"{path} is not a complete ONNX model (no graph, nodes or outputs; "
                            "truncated?)")
    return model


def _typed_count(t) -> tuple[int, int]:
    """(elements held in the typed fields, bytes per element there)."""
    for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        n = len(getattr(t, field))
        if n:
            return n, 1
    return 0, 1


def tensor_to_array(t, path: Path, folder: Path) -> np.ndarray:
    """The array of initializer ``t``, after checking its declared size against the
    bytes present (in the file, or in an external file inside ``folder``)."""
    onnx = onnx_module()
    dtype = _dtypes().get(t.data_type)
    if dtype is None:
        raise OnnxFileError(f"{path}: tensor {t.name!r} has unsupported data type "
                            f"{onnx.TensorProto.DataType.Name(t.data_type)}")
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise OnnxFileError(f"{path}: tensor {t.name!r} has negative dims {dims}")
    count = int(np.prod(dims, dtype=object)) if dims else 1
    if count > MAX_TENSOR_ELEMENTS:
        raise OnnxFileError(f"{path}: tensor {t.name!r} declares {count:,} elements "
                            f"(dims {dims}), over the limit of {MAX_TENSOR_ELEMENTS:,}")
    need = count * dtype.itemsize
    if t.data_location == onnx.TensorProto.EXTERNAL:
        raw = _external_bytes(t, path, folder, need)
        return np.frombuffer(raw, dtype=dtype).reshape(dims).copy()
    if t.raw_data:
        if len(t.raw_data) != need:
            raise OnnxFileError(f"{path}: tensor {t.name!r} declares {count:,} elements "
                                f"({need:,} bytes) but holds {len(t.raw_data):,} bytes")
        return np.frombuffer(t.raw_data, dtype=dtype).reshape(dims).copy()
    held, _ = _typed_count(t)
    if held != count:
        raise OnnxFileError(f"{path}: tensor {t.name!r} declares {count:,} elements but holds "
                            f"{held:,}")
    return onnx.numpy_helper.to_array(t).astype(dtype, copy=False)


def _external_bytes(t, path: Path, folder: Path, need: int) -> bytes:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    rel = Path(location)
    if not location or rel.is_absolute() or ".." in rel.parts or location.startswith(("/", "\\")):
        raise OnnxFileError(f"{path}: tensor {t.name!r} refers to external data {location!r}, "
                            "outside the model's folder (absolute paths and '..' are refused)")
    root = folder.resolve()
    target = (root / rel).resolve()
    if root not in target.parents:
        raise OnnxFileError(f"{path}: tensor {t.name!r}: external data {location!r} resolves "
                            f"to {target}, outside the model's folder {root}")
    if not target.is_file():
        raise OnnxFileError(f"{path}: tensor {t.name!r}: external data file {target} is missing")
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", need))
    except ValueError as e:
        raise OnnxFileError(f"{path}: tensor {t.name!r}: bad external offset/length") from e
    size = target.stat().st_size
    if length != need or offset < 0 or offset + length > size:
        raise OnnxFileError(f"{path}: tensor {t.name!r} needs {need:,} bytes but its external "
                            f"data is {length:,} bytes at offset {offset:,} of a "
                            f"{size:,}-byte file")
    with open(target, "rb") as f:
        f.seek(offset)
        return f.read(length)
