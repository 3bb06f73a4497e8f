"""What a request may carry, checked before anything large is allocated.

Every refusal is an :class:`ApiError` with an HTTP status and a sentence that names the
problem; the server turns it into ``{"error": ...}`` with that status and keeps serving.

* a body is read in chunks and refused (413) as soon as it passes its limit
  (``MAX_JSON_BYTES`` for JSON, ``MAX_UPLOAD_BYTES`` for an image file), whatever
  Content-Length said;
* an uploaded PNG / JPEG / GIF / BMP / WebP has its width and height read from its header
  (Pillow's lazy open decodes no pixels) and is refused (413) above ``MAX_PIXELS``
  before it is decoded;
* a JSON image must be a rectangular 2-D (H x W) or 3-D (C x H x W, or H x W x C) list of
  finite numbers in [0, 1], at most ``MAX_PIXELS`` values.
"""
from __future__ import annotations

import io
import json
import warnings
from typing import Any

import numpy as np

__all__ = ["ApiError", "read_body", "parse_json", "image_from_json", "image_from_upload", "int_field",
           "MAX_JSON_BYTES", "MAX_UPLOAD_BYTES", "MAX_PIXELS", "IMAGE_TYPES"]

MAX_JSON_BYTES = 8 * 2**20
MAX_UPLOAD_BYTES = 16 * 2**20
MAX_PIXELS = 4096 * 4096
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")


class ApiError(ValueError):
    """A request the server refuses: ``status`` (4xx) and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > limit:
            raise ApiError(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"the body passed the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object, or 400 naming what is wrong with it."""
    if not body:
        raise ApiError(400, "the body is empty; send a JSON object such as {\"image\": [[0, 1], [1, 0]]}")
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"the body is not valid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(obj).__name__}")
    return obj


def _count(obj: Any, depth: int = 0) -> int:
    """The number of values a nested list would hold (first rows only), without building it."""
    n = 1
    while isinstance(obj, list) and depth < 4:
        if not obj:
            return 0
        n *= len(obj)
        obj, depth = obj[0], depth + 1
    return n


def image_from_json(obj: Any, field: str = "image") -> np.ndarray:
    """A JSON image (see the module docstring) as float64 (H, W) or (H, W, C)."""
    if not isinstance(obj, list):
        raise ApiError(400, f"{field!r} must be a 2-D (H x W) or 3-D (C x H x W) list of numbers in [0, 1], "
                            f"got {type(obj).__name__}")
    if _count(obj) > MAX_PIXELS:
        raise ApiError(413, f"{field!r} has more than {MAX_PIXELS:,} values")
    try:
        a = np.array(obj)
    except (ValueError, TypeError) as e:
        raise ApiError(400, f"{field!r} is not a rectangular list of numbers: rows of different "
                            f"lengths ({e})") from e
    if a.dtype.kind not in "iuf":
        raise ApiError(400, f"{field!r} must hold numbers only, found values of kind {a.dtype.name!r} "
                            "(strings, booleans or nulls)")
    if a.ndim not in (2, 3) or 0 in a.shape:
        raise ApiError(400, f"{field!r} must be 2-D (H x W) or 3-D (C x H x W), got shape {list(a.shape)}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ApiError(400, f"{field!r} holds NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise ApiError(400, f"{field!r} values must be raw pixels in [0, 1], got [{lo:g}, {hi:g}]")
    if a.ndim == 3:
        if a.shape[0] in (1, 3):
            a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
        elif a.shape[-1] not in (1, 3):
            raise ApiError(400, f"{field!r} has {a.shape[0]} channels; give 1 (grey) or 3 (RGB), "
                                f"shape {list(a.shape)}")
        elif a.shape[-1] == 1:
            a = a[..., 0]
    return a


def image_from_upload(body: bytes) -> np.ndarray:
    """An uploaded image file as float64 (H, W) or (H, W, 3) in [0, 1]; its size is
    read from the header and refused above ``MAX_PIXELS`` before any pixel is decoded."""
    try:
        from PIL import Image
    except ImportError as e:   # pragma: no cover - Pillow comes with matplotlib / scikit-image
        raise ApiError(415, "reading image files needs Pillow (pip install cnnlab[all])") from e
    try:
        with warnings.catch_warnings():   # the size is checked below, with our own limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(body))   # lazy: reads the header only
    except Image.DecompressionBombError as e:
        raise ApiError(413, f"the image has more than {MAX_PIXELS:,} pixels ({e})") from e
    except Exception as e:
        raise ApiError(400, f"the upload is not an image file Pillow can read ({type(e).__name__})") from e
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ApiError(413, f"the image is {w}x{h} = {w * h:,} pixels; the limit is {MAX_PIXELS:,}")
    try:
        im = im.convert("RGB") if im.mode not in ("L", "I;16", "I", "F") else im
        a = np.asarray(im, dtype=np.float64)
    except Exception as e:
        raise ApiError(400, f"the image could not be decoded: {e}") from e
    if im.mode in ("L", "RGB"):
        a = a / 255.0
    elif im.mode == "I;16":
        a = a / 65535.0
    elif a.size and a.max() > 1.0:
        a = a / a.max()
    return np.clip(a, 0.0, 1.0)


def int_field(obj: dict[str, Any], key: str, default: int | None = None, lo: int = 0,
              hi: int | None = None) -> int:
    """``obj[key]`` as an int in [lo, hi], or 400 naming the field."""
    v = obj.get(key, default)
    if v is None:
        raise ApiError(400, f"{key!r} is required")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ApiError(400, f"{key!r} must be an integer, got {json.dumps(v)[:40]}")
    if v < lo or (hi is not None and v > hi):
        raise ApiError(400, f"{key!r} must be in [{lo}, {hi if hi is not None else '...'}], got {v}")
    return v
