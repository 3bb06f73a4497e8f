"""Images that maximally activate a unit, with the unit's receptive field.

The notes (001, after Girshick et al.): feed many images through the network, keep
the ones on which one unit fires most, and show each with the patch of input the
unit can see.  Here a *unit* is one channel of a layer's output; by default its
response to an image is its largest value over all positions of the map (and that
position is where the patch is taken), or the value at a fixed ``position=(r, c)``.

The patch is the unit's receptive field, from :func:`cnnlab.summary.summary`: a unit
at map position (r, c) sees input rows ``start_y + r*jump_y ... + size_y - 1`` and
columns ``start_x + c*jump_x ... + size_x - 1`` (``start`` is negative where the
first unit's field reaches into zero padding).  Boxes are half-open
``(y0, x0, y1, x1)``: rows ``y0 <= y < y1``, clipped to the image.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module
from cnnlab.plots import subplots
from cnnlab.summary import UNKNOWN, ReceptiveField, summary
from cnnlab.viz.attribution import model_dtype
from cnnlab.viz.image import as_hwc, save_figure, to_unit
from cnnlab.viz.maps import layer_outputs

__all__ = ["receptive_field", "field_box", "TopK", "top_k_activating", "crop_patches", "plot_top_k"]


def receptive_field(model: Module, layer: str, input_size: tuple[int, ...]) -> ReceptiveField:
    """The receptive field (size, jump, start per axis) of one unit of ``layer``'s output.

    Parameters
    ----------
    model : Module
    layer : str
        Dotted name of a layer :func:`cnnlab.summary.summary` lists (a module that does
        work of its own); a container (``"features"``) means its last listed layer.
        A module used more than once gives its last use.
    input_size : (C, H, W)
        One input's shape.

    Returns
    -------
    :class:`cnnlab.summary.ReceptiveField` with ``size``, ``jump``, ``start`` (y, x).
    """
    model.get_submodule(layer)                       # a clear error for a wrong name
    rows = summary(model, tuple(input_size), dtype=model_dtype(model), verbose=False).rows
    match = [r for r in rows if r.name == layer] or [r for r in rows if r.name.startswith(layer + ".")]
    if not match:
        raise ValueError(f"receptive_field: layer {layer!r} is not in the model's summary "
                         f"(layers: {', '.join(r.name for r in rows)})")
    rf = match[-1].rf
    if rf is None:
        raise ValueError(f"receptive_field: a unit of {layer!r} ({match[-1].type}) sees the whole input "
                         "(it comes after a flatten / fully connected layer)")
    if rf is UNKNOWN:
        raise ValueError(f"receptive_field: the field of {layer!r} ({match[-1].type}) is not modelled "
                         "by cnnlab.summary")
    return rf


def field_box(rf: ReceptiveField, position: tuple[int, int], image_hw: tuple[int, int] | None = None
              ) -> tuple[int, int, int, int]:
    """The input box ``(y0, x0, y1, x1)`` (half-open) a unit at map ``position`` (r, c) sees:
    ``y0 = start_y + r*jump_y``, ``y1 = y0 + size_y`` (same for x), clipped to
    ``[0, H] x [0, W]`` when ``image_hw`` is given."""
    r, c = position
    y0 = int(math.floor(rf.start[0])) + int(r) * int(rf.jump[0])
    x0 = int(math.floor(rf.start[1])) + int(c) * int(rf.jump[1])
    y1, x1 = y0 + int(rf.size[0]), x0 + int(rf.size[1])
    if image_hw is not None:
        H, W = image_hw
        y0, y1 = min(max(y0, 0), H), min(max(y1, 0), H)
        x0, x1 = min(max(x0, 0), W), min(max(x1, 0), W)
    return (y0, x0, y1, x1)


class TopK(NamedTuple):
    """The ``k`` inputs on which a unit responds most, best first.

    Attributes
    ----------
    indices : (k,) int64      -- positions in the ``images`` searched
    values : (k,) float64     -- the unit's response on each
    positions : (k, 2) int64  -- map position (row, col) of the unit
    boxes : (k, 4) int64      -- its receptive field in the input, (y0, x0, y1, x1)
                                 half-open and clipped to the image
    fields : (k, 4) int64     -- the same boxes unclipped (may extend past the image)
    layer : str
    channel : int
    rf : ReceptiveField
    """

    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    fields: np.ndarray
    layer: str
    channel: int
    rf: ReceptiveField


def top_k_activating(model: Module, layer: str, channel: int, images: Any, k: int = 9,
                     batch_size: int = 256, position: tuple[int, int] | None = None) -> TopK:
    """Search ``images`` for the ``k`` on which channel ``channel`` of ``layer`` fires most.

    Parameters
    ----------
    model : Module
    layer : str
        Dotted name of a layer with (N, C, H, W) output (see :func:`receptive_field`).
    channel : int
    images : (N, C, H, W) ndarray or Tensor
        Inputs as the model expects them.
    k : int
        How many to keep (fewer if there are fewer images).
    batch_size : int
    position : (r, c), optional
        Fix the unit at this map position; default: per image the position of the
        channel's maximum (the first in row-major order on ties).

    Returns
    -------
    :class:`TopK`, sorted by value, largest first; equal values keep input order.
    """
    x = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"top_k_activating: expected images (N, C, H, W), got shape {x.shape}")
    if k < 1:
        raise ValueError(f"top_k_activating: k must be >= 1, got {k}")
    rf = receptive_field(model, layer, x.shape[1:])
    values, positions = [], []
    for out in layer_outputs(model, x, layer, batch_size):
        if out.ndim != 4:
            raise ValueError(f"top_k_activating: layer {layer!r} must give maps (N, C, H, W), "
                             f"got shape {out.shape}")
        C, h, w = out.shape[1:]
        if not 0 <= channel < C:
            raise ValueError(f"top_k_activating: channel must be in [0, {C}) for {layer!r}, got {channel}")
        m = out[:, channel]                                          # (n, h, w)
        if position is None:
            flat = m.reshape(len(m), -1)
            arg = flat.argmax(axis=1)
            values.append(flat[np.arange(len(m)), arg])
            positions.append(np.stack(np.unravel_index(arg, (h, w)), axis=1))
        else:
            r, c = position
            if not (0 <= r < h and 0 <= c < w):
                raise ValueError(f"top_k_activating: position must be inside the {h}x{w} map of "
                                 f"{layer!r}, got {position}")
            values.append(m[:, r, c])
            positions.append(np.tile(np.array([[r, c]]), (len(m), 1)))
    vals = np.concatenate(values).astype(np.float64)
    pos = np.concatenate(positions).astype(np.int64)
    order = np.argsort(-vals, kind="stable")[:k]
    H, W = x.shape[2:]
    fields = np.array([field_box(rf, tuple(pos[i])) for i in order], dtype=np.int64).reshape(-1, 4)
    boxes = np.array([field_box(rf, tuple(pos[i]), (H, W)) for i in order], dtype=np.int64).reshape(-1, 4)
    return TopK(order.astype(np.int64), vals[order], pos[order], boxes, fields, layer, int(channel), rf)


def crop_patches(images: Any, topk: TopK, fill: float | None = None) -> list[np.ndarray]:
    """The receptive-field patch of each top-k image.

    Parameters
    ----------
    images : (N, C, H, W) or (N, H, W) ndarray / Tensor
        The searched images (or display versions of them of the same size).
    topk : TopK
    fill : float, optional
        If given, clipped patches are padded with this value back to the full field
        (``topk.fields``), so every patch is ``rf.size``; default: clipped to the image.

    Returns
    -------
    list of arrays (C, y1-y0, x1-x0) (or (y1-y0, x1-x0)), one per top-k entry.
    """
    a = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if a.ndim not in (3, 4):
        raise ValueError(f"crop_patches: expected images (N, C, H, W) or (N, H, W), got shape {a.shape}")
    patches = []
    for i, (y0, x0, y1, x1), (fy0, fx0, fy1, fx1) in zip(topk.indices, topk.boxes, topk.fields):
        p = a[i][..., y0:y1, x0:x1]
        if fill is not None:
            full = np.full((*p.shape[:-2], fy1 - fy0, fx1 - fx0), fill, dtype=np.result_type(p, fill))
            full[..., y0 - fy0:y1 - fy0, x0 - fx0:x1 - fx0] = p
            p = full
        patches.append(np.array(p, copy=True))
    return patches


def plot_top_k(images: Any, topk: TopK, path: str | os.PathLike, ncols: int | None = None,
               title: str | None = None) -> Path:
    """Draw each top-k image with its unit's receptive field as a rectangle, and the crop
    below it.

    Parameters
    ----------
    images : (N, C, H, W) or (N, H, W) with C in (1, 3)
        The searched images or display versions of them; each is min-max scaled.
    topk : TopK
    path : where the PNG goes
    ncols : int, optional
        Images per row (default ``min(k, 5)``).
    title : str, optional
        Default ``"<layer> channel <c>: top <k>, field <size>"``.

    Returns
    -------
    Path of the PNG.  The red rectangle is the clipped field; a dashed orange one shows
    the whole field where it reaches past the image (into the zero padding).  The crop
    below is the whole field, the part outside the image in beige.
    """
    import matplotlib
    from matplotlib.patches import Rectangle

    a = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    k = len(topk.indices)
    if k == 0:
        raise ValueError("plot_top_k: topk is empty")
    ncols = max(1, min(k, ncols or 5))
    nrows = math.ceil(k / ncols)
    fig, axes = subplots(2 * nrows, ncols, figsize=(2.0 * ncols, 4.0 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="#f3dfc1")   # outside the image
    crops = crop_patches(a, topk, fill=np.nan)
    for j in range(k):
        r, c = divmod(j, ncols)
        raw = np.asarray(a[topk.indices[j]], dtype=np.float64)
        img = to_unit(as_hwc(raw))
        H, W = img.shape[:2]
        lo, hi = float(np.min(raw)), float(np.max(raw))
        ax = axes[2 * r, c]
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        y0, x0, y1, x1 = topk.boxes[j]
        fy0, fx0, fy1, fx1 = topk.fields[j]
        if (fy0, fx0, fy1, fx1) != (y0, x0, y1, x1):
            ax.add_patch(Rectangle((fx0 - 0.5, fy0 - 0.5), fx1 - fx0, fy1 - fy0, fill=False,
                                   edgecolor="orange", linestyle="--", linewidth=1.0))
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="red",
                               linewidth=1.5))
        # show the whole field, including the part in the zero padding
        ax.set_xlim(min(fx0, 0) - 0.5, max(fx1, W) - 0.5)
        ax.set_ylim(max(fy1, H) - 0.5, min(fy0, 0) - 0.5)
        ax.set_title(f"#{topk.indices[j]}  {topk.values[j]:.3g}", fontsize=8)
        cax = axes[2 * r + 1, c]
        crop = as_hwc(crops[j])
        # the crop on the same intensity scale as its image; the part outside it is beige
        crop = np.clip((crop - lo) / (hi - lo), 0, 1) if hi > lo else np.where(np.isnan(crop), np.nan, 0.5)
        if crop.ndim == 3:   # colour: paint the outside
            crop = np.where(np.isnan(crop), np.array([0.953, 0.875, 0.757]), crop)
        cax.imshow(crop, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        cax.set_title(f"rows {y0}:{y1}, cols {x0}:{x1}", fontsize=7)
    sy, sx = topk.rf.size
    size = f"{sy}" if sy == sx else f"{sy}x{sx}"
    fig.suptitle(title or f"{topk.layer} channel {topk.channel}: top {k}, field {size}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
