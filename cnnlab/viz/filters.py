"""The learned filters themselves: first-layer weights as images, and how smooth they are.

The notes (001): well-trained first-layer filters are smooth, noisy patterns point to
a network trained too briefly or with too little regularisation.  Only the first
layer looks at pixels, so only its filters read directly as pictures (RGB when the
input is colour); deeper filters are shown one input channel at a time.

* :func:`filter_images` -- weights -> displayable arrays, normalised per filter;
* :func:`plot_filters` -- a layer's filters tiled into a PNG;
* :func:`filter_smoothness` -- a scale-free total-variation score per filter (0 = flat).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module
from cnnlab.viz.image import auto_scale, save_titled_png, tile_color

__all__ = ["filter_images", "first_conv_name", "plot_filters", "filter_smoothness"]


def _weight_array(weight: Any, func: str) -> np.ndarray:
    w = weight.numpy() if isinstance(weight, Tensor) else np.asarray(weight)
    if w.ndim != 4:
        raise ValueError(f"{func}: expected a conv weight (O, I, kh, kw), got shape {w.shape}")
    return w.astype(np.float64)


def _unit_per_filter(w: np.ndarray) -> np.ndarray:
    """Min-max scale each w[o] (all its input channels together) to [0, 1]; a constant
    filter becomes 0.5."""
    O = w.shape[0]
    flat = w.reshape(O, -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    out = (flat - lo[:, None]) / safe[:, None]
    out[span == 0] = 0.5
    return out.reshape(w.shape)


def filter_images(weight: Any, rgb: bool | None = None) -> np.ndarray:
    """Conv weights as images in [0, 1], each filter min-max scaled on its own.

    Parameters
    ----------
    weight : (O, I, kh, kw) ndarray, Tensor or Parameter
    rgb : bool, optional
        Show a 3-input-channel filter as one colour image (default: when ``I == 3``,
        i.e. a first layer on RGB input).

    Returns
    -------
    * ``I == 3`` (and ``rgb``): (O, kh, kw, 3), channel i of the input as colour i;
    * ``I == 1``: (O, kh, kw);
    * otherwise: (O*I, kh, kw), entry ``o*I + i`` the slice w[o, i], so a grid with
      ``I`` columns has one filter per row.

    Each filter w[o] is scaled with its own minimum -> 0 and maximum -> 1 over all its
    input channels (so within a filter the channels compare; a constant filter is 0.5).
    """
    w = _weight_array(weight, "filter_images")
    O, I, kh, kw = w.shape
    u = _unit_per_filter(w)
    rgb = (I == 3) if rgb is None else rgb
    if rgb:
        if I != 3:
            raise ValueError(f"filter_images: rgb=True needs 3 input channels, got weight {w.shape}")
        return np.transpose(u, (0, 2, 3, 1))
    if I == 1:
        return u[:, 0]
    return u.reshape(O * I, kh, kw)


def first_conv_name(model: Module) -> str:
    """Name of the first submodule (registration order) with a 4-D ``weight``."""
    for name, m in model.named_modules():
        w = getattr(m, "weight", None) if name else None
        if w is not None and getattr(w, "ndim", 0) == 4:
            return name
    raise ValueError(f"{type(model).__name__} has no submodule with a 4-D conv weight")


def plot_filters(model_or_weight: Module | Any, path: str | os.PathLike, layer: str | None = None,
                 scale: int | None = None, title: str | None = None) -> Path:
    """Tile a conv layer's filters into a PNG (see :func:`filter_images`).

    Parameters
    ----------
    model_or_weight : Module, or a weight (O, I, kh, kw)
    path : where the PNG goes
    layer : str, optional
        With a model: the dotted name of the conv (default :func:`first_conv_name`).
    scale : int, optional
        Pixels per weight; default: the grid's shorter side reaches 256 pixels (the
        longer kept within 2048).
    title : str, optional
        Default ``"<layer> (O, I, kh, kw)"`` for a model, none for a bare weight.

    Returns
    -------
    Path of the PNG (filters separated by 1-pixel lines: blue, white for colour filters).  First-layer filters
    (I = 1 or 3) are tiled ``ceil(sqrt(O))`` across; deeper ones one filter per row, one
    input channel per column (up to 64 channels; beyond that ``ceil(sqrt(O*I))`` across).
    """
    if isinstance(model_or_weight, Module):
        layer = first_conv_name(model_or_weight) if layer is None else layer
        w = _weight_array(getattr(model_or_weight.get_submodule(layer), "weight", None), "plot_filters")
        title = f"{layer} {tuple(w.shape)}" if title is None else title
    else:
        if layer is not None:
            raise ValueError("plot_filters: layer is only meaningful with a model")
        w = _weight_array(model_or_weight, "plot_filters")
    O, I = w.shape[:2]
    imgs = filter_images(w)
    if I in (1, 3):
        ncols = math.ceil(math.sqrt(O))
    else:
        ncols = I if I <= 64 else math.ceil(math.sqrt(O * I))
    # grey filters: blue gaps (black and white are filter values); colour ones: white gaps
    gap = (1.0, 1.0, 1.0) if imgs.ndim == 4 else (0.35, 0.55, 0.85)
    grid = tile_color(imgs, ncols=ncols, pad=1, color=gap)
    scale = auto_scale(grid.shape, side="short", max_side=2048) if scale is None else int(scale)
    if scale < 1:
        raise ValueError(f"plot_filters: scale must be >= 1, got {scale}")
    return save_titled_png(grid, path, title=title, scale=scale, cmap="gray")


def filter_smoothness(weight: Any) -> np.ndarray:
    """Scale-free total variation of each filter: 0 for a flat filter, about 2 for the
    roughest (a checkerboard); smooth filters score low, noise high.

    For filter ``w = weight[o]`` of shape (I, kh, kw)::

        TV(o) = [ 1/I sum_i ( sum_{r,c} |w[i,r,c+1] - w[i,r,c]| + sum_{r,c} |w[i,r+1,c] - w[i,r,c]| ) / D ]
                / std(w)

    with ``D = kh (kw - 1) + (kh - 1) kw`` the number of horizontal plus vertical
    neighbour differences in one channel, and ``std(w)`` the population standard
    deviation of all ``I*kh*kw`` entries of the filter (0/0 := 0 for a constant filter).
    So TV is the mean absolute difference between neighbouring weights, in units of the
    filter's own spread: unchanged by ``w -> a*w + b`` (a != 0), so a filter's size and
    offset do not matter.  A +-1 checkerboard of even size scores exactly 2; by
    Cauchy-Schwarz no filter exceeds ``sqrt(8 kh kw / D)`` (2.45 for 3x3, -> 2 for large
    kernels).  i.i.d. Gaussian noise scores about 2/sqrt(pi) = 1.13 (the mean |difference|
    of two independent N(0, 1) values), a little more on small kernels (1.16 for 5x5,
    1.23 for 3x3, whose few values have a smaller sample std); the 5x5 binomial blur
    scores 0.84.

    Parameters
    ----------
    weight : (O, I, kh, kw) ndarray, Tensor or Parameter, with kh * kw > 1

    Returns
    -------
    (O,) float64
    """
    w = _weight_array(weight, "filter_smoothness")
    O, I, kh, kw = w.shape
    D = kh * (kw - 1) + (kh - 1) * kw
    if D == 0:
        raise ValueError(f"filter_smoothness: 1x1 filters have no neighbours, got weight {w.shape}")
    tv = (np.abs(np.diff(w, axis=3)).sum(axis=(2, 3)) + np.abs(np.diff(w, axis=2)).sum(axis=(2, 3)))  # (O, I)
    mean_diff = tv.mean(axis=1) / D
    std = w.reshape(O, -1).std(axis=1)
    return np.where(std > 0, mean_diff / np.where(std > 0, std, 1.0), 0.0)
