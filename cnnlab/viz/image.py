"""Small image utilities shared by the visualisation methods: scaling to 8 bits,
tiling maps into one grid, writing PNGs (Pillow-free: matplotlib's PNG writer)."""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab._files import atomic_write

__all__ = ["to_unit", "to_uint8", "tile", "tile_color", "save_png", "save_figure", "as_hwc", "display_image",
           "auto_scale", "save_titled_png"]


def to_unit(img: np.ndarray, robust: bool = False, symmetric: bool = False) -> np.ndarray:
    """Scale an array to [0, 1] (float64) for display.

    Parameters
    ----------
    img : ndarray, any shape
    robust : bool
        Clip to the 1st and 99th percentiles first, so a few extreme values do not
        wash the picture out.
    symmetric : bool
        Map 0 to 0.5 and ``max |img|`` to 0 / 1 (for signed maps: filters, gradients).
    A constant array maps to 0.5 everywhere.
    """
    a = np.asarray(img, dtype=np.float64)
    if robust and a.size:
        lo, hi = np.percentile(a, [1, 99])
        a = np.clip(a, lo, hi)
    if symmetric:
        m = float(np.max(np.abs(a))) if a.size else 0.0
        return np.full_like(a, 0.5) if m == 0 else 0.5 + 0.5 * a / m
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if hi == lo:
        return np.full_like(a, 0.5)
    return (a - lo) / (hi - lo)


def to_uint8(img: np.ndarray, **kwargs) -> np.ndarray:
    """:func:`to_unit` then round to 0..255 (uint8)."""
    return np.round(to_unit(img, **kwargs) * 255).astype(np.uint8)


def as_hwc(img: np.ndarray) -> np.ndarray:
    """(C, H, W) with C in (1, 3) -> (H, W) grey or (H, W, 3) colour; (H, W[, 3]) unchanged."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"as_hwc: expected an image (H, W), (H, W, 3) or (C, H, W), got shape {a.shape}")
    return a


def display_image(image: np.ndarray) -> np.ndarray:
    """(C, H, W) / (H, W) -> (H, W) or (H, W, 3) in [0, 1] for imshow."""
    return to_unit(as_hwc(np.asarray(image)))


def tile(images: Sequence[np.ndarray] | np.ndarray, ncols: int | None = None, pad: int = 1,
         pad_value: float = 1.0) -> np.ndarray:
    """Lay equally sized images out in a grid.

    Parameters
    ----------
    images : (K, H, W) or (K, H, W, 3), values already in [0, 1]
    ncols : int, optional
        Columns; default ``ceil(sqrt(K))``.
    pad : int
        Pixels of ``pad_value`` between tiles and around the border.

    Returns
    -------
    grid : (rows*(H+pad)+pad, ncols*(W+pad)+pad[, 3]) float64
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise ValueError(f"tile: expected a non-empty stack (K, H, W) or (K, H, W, 3), got shape {arr.shape}")
    K, H, W = arr.shape[:3]
    ncols = max(1, min(K, ncols or math.ceil(math.sqrt(K))))
    nrows = math.ceil(K / ncols)
    out = np.full((nrows * (H + pad) + pad, ncols * (W + pad) + pad, *arr.shape[3:]), pad_value)
    for k in range(K):
        r, c = divmod(k, ncols)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        out[y:y + H, x:x + W] = arr[k]
    return out


def save_png(img: np.ndarray, path: str | os.PathLike, scale: int = 1, cmap: str = "gray") -> Path:
    """Write an image in [0, 1] ((H, W) grey, or (H, W, 3)) as a PNG of exactly
    ``(H*scale, W*scale)`` pixels (nearest-neighbour enlargement); creates parent folders."""
    from matplotlib.image import imsave

    a = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    if scale > 1:
        a = np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)
    path = Path(path)
    with atomic_write(path) as f:
        if a.ndim == 2:
            imsave(f, a, cmap=cmap, vmin=0.0, vmax=1.0, format="png")
        else:
            imsave(f, a, format="png")
    return path


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure to ``path`` (parents created).  A figure of pyplot's
    (one a caller made with ``plt.subplots``) is closed, as pyplot would otherwise keep it."""
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, bbox_inches="tight", format=path.suffix[1:] or "png")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and pyplot.fignum_exists(fig.number if hasattr(fig, "number") else -1):
        pyplot.close(fig)
    return path


def tile_color(images: Sequence[np.ndarray] | np.ndarray, ncols: int | None = None, pad: int = 1,
               color: tuple[float, float, float] = (0.35, 0.55, 0.85)) -> np.ndarray:
    """:func:`tile` with the gaps painted ``color`` (RGB in [0, 1]), so tiles whose own
    values reach black or white stay distinct.  Grey tiles (K, H, W) become RGB.

    Returns
    -------
    grid : (rows*(H+pad)+pad, ncols*(W+pad)+pad, 3) float64
    """
    arr = np.asarray(images, dtype=np.float64)
    grid = tile(arr, ncols=ncols, pad=pad, pad_value=0.0)
    gap = tile(np.zeros(arr.shape[:3]), ncols=ncols, pad=pad, pad_value=1.0) > 0.5
    rgb = np.repeat(grid[..., None], 3, axis=-1) if grid.ndim == 2 else grid.copy()
    rgb[gap] = np.asarray(color, dtype=np.float64)
    return rgb


def auto_scale(shape: Sequence[int], target: int = 256, max_scale: int = 32, max_side: int | None = None,
               side: str = "long") -> int:
    """The integer enlargement that brings an image of ``shape`` ((H, W[, 3])) to at
    least ``target`` pixels on its longer side (``side='short'``: its shorter side), at
    most ``max_scale``, at least 1, and (if given) keeping the longer side within
    ``max_side`` pixels when that allows a scale of 1 or more."""
    h, w = max(int(shape[0]), 1), max(int(shape[1]), 1)
    ref = max(h, w) if side == "long" else min(h, w)
    s = max(1, min(max_scale, math.ceil(target / ref)))
    if max_side is not None:
        s = max(1, min(s, max_side // max(h, w)))
    return int(s)


def save_titled_png(img: np.ndarray, path: str | os.PathLike, title: str | None = None, scale: int = 1,
                    cmap: str = "gray", title_px: int = 24) -> Path:
    """:func:`save_png` with a band of ``title_px`` white pixels above the image holding
    ``title``.  The PNG is exactly ``(H*scale + title_px, W*scale)`` pixels
    (``(H*scale, W*scale)`` when ``title`` is None or empty)."""
    if not title:
        return save_png(img, path, scale=scale, cmap=cmap)
    import matplotlib
    from matplotlib.figure import Figure

    a = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    if scale > 1:
        a = np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)
    rgb = matplotlib.colormaps[cmap](a)[..., :3] if a.ndim == 2 else a[..., :3]
    H, W = rgb.shape[:2]
    dpi = 100
    fig = Figure(figsize=(W / dpi, (H + title_px) / dpi), dpi=dpi, facecolor="white")
    fig.figimage(rgb, xo=0, yo=0, origin="upper")
    fig.text(0.5, 1.0 - 0.5 * title_px / (H + title_px), title, ha="center", va="center",
             fontsize=max(6.0, 0.45 * title_px), clip_on=True)
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format=path.suffix[1:] or "png")
    return path
