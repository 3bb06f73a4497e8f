"""A photo or a drawing brought to the form of the model's dataset.

The training images of each dataset were made in a particular way, and a network
reads a digit well only when it is presented the same way:

* scikit-learn's digits (UCI optdigits): the digit scaled to fill a 32x32 bitmap,
  the bitmap counted in non-overlapping 4x4 blocks, giving 8x8 values of 0..16,
  which cnnlab loads divided by 16 (:func:`digits_style`);
* MNIST: the digit scaled (aspect kept) to fit a 20x20 box, anti-aliased, then placed
  in a 28x28 field so that its centre of mass is the field's centre (:func:`mnist_style`);
* Fashion-MNIST: the article trimmed and scaled so its longer side is 28 pixels,
  centred in the 28x28 field (:func:`fashion_style`);
* anything else: the centre square, resized to the training images' side.

All three datasets are light ink on a black background; :func:`looks_inverted` tells
when an image is dark on light instead.  :func:`rasterize` is the one entry point,
used by ``cnnlab viz --image`` and by the explorer's ``/api/predict`` alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Raster", "rasterize", "dataset_style", "looks_inverted", "digits_style", "mnist_style",
           "fashion_style", "centre_square", "resize_hw", "STYLES"]

#: dataset name -> how its images were made (see the module docstring)
STYLES = {"digits": "digits", "mnist": "mnist", "fashion-mnist": "fashion"}
_STYLE_SIZE = {"digits": 8, "mnist": 28, "fashion": 28}


@dataclass
class Raster:
    """An image at the training images' size, and how it was made.

    Attributes
    ----------
    image : (C, S, S) float64 in [0, 1], raw pixels as the dataset stores them
    style : 'digits', 'mnist', 'fashion', 'crop' or 'as-is' (already the dataset's size)
    notes : warnings for the user (e.g. the image looks inverted)
    """

    image: np.ndarray
    style: str
    notes: list[str] = field(default_factory=list)


def resize_hw(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) or (C, H, W) -> the same with spatial ``shape``; bilinear, anti-aliased
    when shrinking (scikit-image), else cnnlab's own bilinear ``Resize``."""
    a = np.asarray(img, dtype=np.float64)
    chw = a[None] if a.ndim == 2 else a
    if chw.shape[1:] == tuple(shape):
        return a.copy()
    try:
        from skimage.transform import resize
    except ImportError:   # pragma: no cover - scikit-image comes with the viz extra
        from cnnlab.data import Resize

        if shape[0] != shape[1]:
            raise
        out = np.asarray(Resize(shape[0])(chw[None]), dtype=np.float64)[0]
    else:
        shrink = chw.shape[1] > shape[0] or chw.shape[2] > shape[1]
        out = resize(np.transpose(chw, (1, 2, 0)), tuple(shape), order=1, anti_aliasing=shrink,
                     mode="edge", preserve_range=True)
        out = np.transpose(np.asarray(out, dtype=np.float64).reshape(*shape, -1), (2, 0, 1))
    return out[0] if a.ndim == 2 else out


def centre_square(chw: np.ndarray) -> np.ndarray:
    """The centre square of a (C, H, W) image."""
    H, W = chw.shape[1:]
    s = min(H, W)
    return chw[:, (H - s) // 2:(H - s) // 2 + s, (W - s) // 2:(W - s) // 2 + s]


def _ink_box(g: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1), half-open, of the pixels above ``threshold``; None if there are none."""
    ys, xs = np.nonzero(g > threshold)
    if not len(ys):
        return None
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _square_around(g: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The square of side max(box height, box width) centred on ``box``, zero outside ``g``."""
    y0, x0, y1, x1 = box
    side = max(y1 - y0, x1 - x0)
    top, left = y0 - (side - (y1 - y0)) // 2, x0 - (side - (x1 - x0)) // 2
    out = np.zeros((side, side), dtype=np.float64)
    sy0, sx0 = max(top, 0), max(left, 0)
    sy1, sx1 = min(top + side, g.shape[0]), min(left + side, g.shape[1])
    out[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = g[sy0:sy1, sx0:sx1]
    return out


def _fit(g: np.ndarray, box: tuple[int, int, int, int], side: int) -> np.ndarray:
    """The ink in ``box`` scaled, aspect kept, so its longer side is ``side`` pixels,
    centred in a side x side square."""
    return np.clip(resize_hw(_square_around(g, box), (side, side)), 0.0, 1.0)


def digits_style(g: np.ndarray) -> np.ndarray:
    """(H, W) grey, light ink on dark -> (8, 8) as scikit-learn's digits: the digit
    scaled to fill a 32x32 bitmap (ink = above half the brightest pixel), on-pixels
    counted in 4x4 blocks (0..16), divided by 16."""
    box = _ink_box(g, 0.5 * g.max()) if g.max() > 0 else None
    if box is None:
        return np.zeros((8, 8))
    bitmap = _fit(g, box, 32) >= 0.5 * g.max()
    return bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)) / 16.0


def mnist_style(g: np.ndarray) -> np.ndarray:
    """(H, W) grey, light ink on dark -> (28, 28) as MNIST: fitted (aspect kept,
    anti-aliased) into a 20x20 box, then placed so the centre of mass of its grey
    levels is the centre of the 28x28 field."""
    box = _ink_box(g, 0.1 * g.max()) if g.max() > 0 else None
    if box is None:
        return np.zeros((28, 28))
    small = _fit(g, box, 20)
    total = small.sum()
    ys, xs = np.mgrid[0:20, 0:20]
    cy, cx = (ys * small).sum() / total + 4, (xs * small).sum() / total + 4
    dy, dx = (int(np.clip(round(13.5 - c), -4, 4)) for c in (cy, cx))
    out = np.zeros((28, 28))
    out[4 + dy:24 + dy, 4 + dx:24 + dx] = small
    return out


def fashion_style(g: np.ndarray) -> np.ndarray:
    """(H, W) grey, light on dark -> (28, 28) as Fashion-MNIST: the article trimmed to
    its bounding box and scaled so its longer side is 28 pixels, centred."""
    box = _ink_box(g, 0.05 * g.max()) if g.max() > 0 else None
    return np.zeros((28, 28)) if box is None else _fit(g, box, 28)


_STYLE_FUNCS = {"digits": digits_style, "mnist": mnist_style, "fashion": fashion_style}


def looks_inverted(img: np.ndarray) -> float | None:
    """The mean of the image's border pixels when it is above 0.5 (a light background,
    i.e. dark ink on light paper: the opposite of the datasets' light ink on black);
    None otherwise."""
    a = np.asarray(img, dtype=np.float64)
    g = a.mean(axis=-1) if a.ndim == 3 else a
    if min(g.shape) < 3:
        return None
    border = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])
    m = float(border.mean())
    return m if m > 0.5 else None


def dataset_style(meta: dict[str, Any]) -> str:
    """How the training images of the run described by ``meta`` were made:
    'digits', 'mnist', 'fashion', or 'crop' (centre square, resized)."""
    style = STYLES.get(str(meta.get("dataset") or ""), "crop")
    spec = meta["model_spec"]
    size = int((spec.get("input") or {}).get("from", spec["kwargs"]["input_size"]))
    if style != "crop" and (int(spec["kwargs"]["in_channels"]) != 1 or size != _STYLE_SIZE[style]):
        return "crop"
    return style


def rasterize(img: np.ndarray, meta: dict[str, Any], invert: bool = False,
              source: str = "the image") -> Raster:
    """Bring a photo or a drawing to the form of the training images of ``meta``'s run.

    Parameters
    ----------
    img : (H, W) grey or (H, W, 3) colour, float in [0, 1], any size
    meta : the checkpoint's metadata (``model_spec``, ``dataset``)
    invert : use ``1 - img`` (dark ink on white paper -> the datasets' light ink on black)
    source : how the warnings name the image (``--image PATH``, ``the drawing``)

    Returns
    -------
    :class:`Raster` whose ``image`` is (C, S, S), S the training images' side (before
    the run's own resizing or padding), C the model's channels.  An image that already
    has the training images' size is taken as it is; otherwise it is made as the
    dataset's images were (see :func:`dataset_style`).
    """
    spec = meta["model_spec"]
    C = int(spec["kwargs"]["in_channels"])
    size = int((spec.get("input") or {}).get("from", spec["kwargs"]["input_size"]))
    a = np.asarray(img, dtype=np.float64)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3) or min(a.shape[:2]) < 1:
        raise ValueError(f"{source}: expected an (H, W) grey or (H, W, 3) colour image, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{source}: has NaN or infinite values")
    a = np.clip(a, 0.0, 1.0)
    if C == 1 and a.ndim == 3:
        from cnnlab.viz.kernels import to_grey

        a = to_grey(a)
    elif C == 3 and a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif C not in (1, 3):
        raise ValueError(f"{source}: the model takes {C} channels; only 1 (grey) or 3 (RGB) images "
                         "are supported")
    if invert:
        a = 1.0 - a
    notes = []
    light = looks_inverted(a)
    if light is not None:
        notes.append(f"{source} looks inverted relative to the training images: its border is light "
                     f"(mean {light:.2f}) while they are light ink on a black background"
                     + ("" if invert else "; pass --invert (or invert it) if it is dark ink on white"))
    chw = a[None] if a.ndim == 2 else np.transpose(a, (2, 0, 1))
    if chw.shape[1:] == (size, size):
        return Raster(chw.copy(), "as-is", notes)
    style = dataset_style(meta)
    if style in _STYLE_FUNCS:
        return Raster(_STYLE_FUNCS[style](chw[0])[None], style, notes)
    return Raster(np.clip(resize_hw(centre_square(chw), (size, size)), 0.0, 1.0), "crop", notes)
