"""Reading and writing IDX files (the MNIST / Fashion-MNIST container format).

An IDX file is a 4-byte magic number, one big-endian ``uint32`` per dimension
and then the array payload in big-endian C order::

    byte 0, 1 : 0x00 0x00
    byte 2    : dtype code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int,
                0x0D float, 0x0E double)
    byte 3    : number of dimensions ``ndim``
    4 * ndim  : dimension sizes, big-endian uint32
    payload   : prod(dims) * itemsize bytes, big-endian

Files may be gzip-compressed; compression is detected from the gzip magic
bytes (``1f 8b``), not from the file name.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnlab._files import UnsafePathError, check_readable_file, write_bytes_atomic

StrPath = str | os.PathLike[str]

__all__ = ["IDX_DTYPES", "IDXFormatError", "read_idx", "write_idx"]

#: IDX dtype code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_PREFIX = 4


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file.

    Attributes
    ----------
    path : str
        The offending file.
    expected, actual : object
        What the reader expected and what it found (``None`` when not
        applicable, e.g. for a corrupt gzip stream).
    """

    def __init__(self, path: StrPath, problem: str, expected: object = None,
                 actual: object = None) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.expected = expected
        self.actual = actual
        msg = f"{self.path}: {problem}"
        if expected is not None or actual is not None:
            msg += f" (expected {expected}, got {actual})"
        super().__init__(msg)


MAX_IDX_BYTES = 1 << 30


def _read_bytes(path: StrPath) -> bytes:
    """Return the (decompressed) content of ``path``."""
    try:
        check_readable_file(path, "IDX file")
    except UnsafePathError as e:
        raise IDXFormatError(path, str(e)) from None
    raw = Path(path).read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        d = zlib.decompressobj(wbits=31)       # gzip, at most MAX_IDX_BYTES: a bomb stops here
        out = d.decompress(raw, MAX_IDX_BYTES)
        if d.unconsumed_tail:
            raise IDXFormatError(path, f"decompresses to more than {MAX_IDX_BYTES} bytes (the "
                                 "limit for an IDX file; MNIST's largest is 47 MB)")
        if not d.eof:
            raise EOFError("compressed file ended before the end-of-stream marker")
        return out
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise IDXFormatError(
            path, f"corrupt or truncated gzip stream ({type(exc).__name__}: {exc})"
        ) from exc


def read_idx(path: StrPath) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  Gzip compression is detected from the magic bytes.

    Returns
    -------
    np.ndarray
        A writable, native-endian array of shape ``dims`` and the dtype given
        by the header (uint8, int8, int16, int32, float32 or float64).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IDXFormatError
        (a ``ValueError``) if the gzip stream is corrupt, the magic number is
        wrong, the header is incomplete, or the payload is not exactly
        ``prod(dims) * itemsize`` bytes.
    """
    buf = _read_bytes(path)
    if len(buf) < _HEADER_PREFIX:
        raise IDXFormatError(path, "file too short for the IDX magic number (bytes)",
                             f">= {_HEADER_PREFIX}", len(buf))
    zero0, zero1, code, ndim = buf[0], buf[1], buf[2], buf[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(path, "bad IDX magic number: first two bytes must be zero",
                             "00 00", f"{zero0:02x} {zero1:02x}")
    if code not in IDX_DTYPES:
        valid = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXFormatError(path, "unknown IDX dtype code",
                             f"one of {valid}", f"0x{code:02X}")
    if ndim == 0:
        raise IDXFormatError(path, "IDX number of dimensions must be positive",
                             ">= 1", 0)
    header_len = _HEADER_PREFIX + 4 * ndim
    if len(buf) < header_len:
        raise IDXFormatError(path, f"incomplete IDX header for ndim={ndim} (bytes)",
                             f">= {header_len}", len(buf))
    dims = struct.unpack(f">{ndim}I", buf[_HEADER_PREFIX:header_len])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(buf) - header_len
    if actual != expected:
        kind = "truncated" if actual < expected else "trailing bytes after"
        raise IDXFormatError(
            path, f"{kind} IDX payload for shape {tuple(dims)} and dtype {dtype.name} (bytes)",
            expected, actual,
        )
    arr = np.frombuffer(buf, dtype=dtype, count=math.prod(dims), offset=header_len)
    # astype copies: the result is native-endian and writable.
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def write_idx(path: StrPath, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` in IDX format.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.  The file is gzip-compressed when the name ends in
        ``.gz`` (with ``mtime=0``, so the output is deterministic).
    array : np.ndarray
        At least 1-d, dtype uint8, int8, int16, int32, float32 or float64,
        every dimension < 2**32.

    Raises
    ------
    TypeError
        If the dtype has no IDX code.
    ValueError
        If ``array`` is 0-d, has more than 255 dimensions or a too-large
        dimension.
    """
    arr = np.asarray(array)
    native_to_code = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    code = native_to_code.get(arr.dtype.newbyteorder("="))
    if code is None:
        valid = ", ".join(dt.newbyteorder("=").name for dt in IDX_DTYPES.values())
        raise TypeError(f"write_idx({os.fspath(path)!r}): dtype {arr.dtype} has no IDX code; "
                        f"expected one of {valid}")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx({os.fspath(path)!r}): IDX needs 1..255 dimensions, "
                         f"got ndim={arr.ndim}")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"write_idx({os.fspath(path)!r}): dimensions must be < 2**32, "
                         f"got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    data = header + payload
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    write_bytes_atomic(path, data, follow_symlinks=True)
