"""Layer activations: what each feature map holds for one input, and which filters
never fire.

The notes (001) suggest looking at a trained network's activations: they start
dense and blob-like and become sparse and localised with depth, and maps that are
zero for every input are "dead" filters, a sign of a learning rate set too high.

* :func:`activation_maps` -- the (C, H, W) output of each chosen layer for one image;
* :func:`plot_activation_grid` -- one layer's maps tiled into a PNG;
* :func:`dead_filters` -- per channel, the fraction of inputs on which its whole map is
  <= 0 (zero after a ReLU), and the channels for which that holds almost always.

Inputs are given as the model expects them (already normalised); every forward runs
in eval mode under ``no_grad``, and the model's training flag is restored afterwards.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn.capture import capture_outputs
from cnnlab.nn.module import Module
from cnnlab.viz.attribution import as_batch, inspecting
from cnnlab.viz.image import auto_scale, save_titled_png, tile_color, to_unit

__all__ = ["activation_maps", "default_map_layers", "plot_activation_grid", "DeadFilterReport",
           "dead_filters", "layer_outputs"]

_CONV_TYPES = ("Conv2d", "ConnectionTable", "LocallyConnected2d", "LearnedCombination")
_POOL_TYPES = ("Subsample2d",)
_ACTIVATION_MODULE = "cnnlab.nn.modules.activation"


def _kind(m: Module) -> str | None:
    """'conv', 'pool' or 'activation' for the module types whose maps are worth showing."""
    tname = type(m).__name__
    if tname in _CONV_TYPES:
        return "conv"
    if ("Pool" in tname and not tname.endswith("1d")) or tname in _POOL_TYPES:
        return "pool"
    if type(m).__module__ == _ACTIVATION_MODULE and tname not in ("Softmax", "LogSoftmax"):
        return "activation"
    return None


def default_map_layers(model: Module, x: Any) -> list[str]:
    """Names of every conv, pool and activation submodule whose output for ``x`` is 4-D
    (N, C, H, W), in the order they run; ``x`` is one image (C, H, W) or a batch.

    A module used more than once (a shared ReLU) counts by its last output, as in
    :func:`cnnlab.nn.capture.capture_outputs`."""
    return list(activation_maps(model, x).keys())


def activation_maps(model: Module, x: Any, layers: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The feature maps of each layer for one input image.

    Parameters
    ----------
    model : Module
    x : (C, H, W) or (1, C, H, W) ndarray or Tensor
        One image, preprocessed as the model expects (normalised, padded).
    layers : sequence of str, optional
        Dotted submodule names (``"features.3"``).  Default: every conv, pool and
        activation module whose output is 4-D, in the order the forward runs them.

    Returns
    -------
    dict name -> (C, H, W) ndarray, the layer's output for ``x`` (eval mode, no graph),
    in forward order for the default layers, in the given order otherwise.
    """
    a = as_batch(model, x, "activation_maps")
    if len(a) != 1:
        raise ValueError(f"activation_maps: expected one image, got a batch of {len(a)} (shape {a.shape})")
    explicit = layers is not None
    if explicit:
        names = list(layers)
        for n in names:
            model.get_submodule(n)          # a clear AttributeError for a wrong name
    else:
        names = [n for n, m in model.named_modules() if n and not any(True for _ in m.children())
                 and _kind(m) is not None]
        names = list(dict.fromkeys(names))
    order: list[str] = []
    handles = []
    if not explicit:   # remember the order in which the modules run
        for n in names:
            def hook(mod: Module, inputs: tuple, out: Any, _n: str = n) -> None:
                if _n in order:
                    order.remove(_n)
                order.append(_n)
            handles.append(model.get_submodule(n).register_forward_hook(hook))
    try:
        with inspecting(model), no_grad(), capture_outputs(model, names) as seen:
            model(Tensor(a))
    finally:
        for h in handles:
            h.remove()
    if explicit:
        missing = [n for n in names if n not in seen]
        if missing:
            raise ValueError(f"activation_maps: layers {missing} did not run in the forward")
        out = {n: seen[n] for n in names}
        bad = {n: v.shape for n, v in out.items() if v.ndim != 4}
        if bad:
            raise ValueError(f"activation_maps: layers must give 4-D maps (N, C, H, W), got {bad}")
    else:
        out = {n: seen[n] for n in order if n in seen and seen[n].ndim == 4}
    return {n: np.asarray(v[0]) for n, v in out.items()}


def plot_activation_grid(maps_for_layer: np.ndarray, path: str | os.PathLike, title: str | None = None,
                         scale: int | None = None, normalize: str = "layer", ncols: int | None = None
                         ) -> Path:
    """Tile one layer's maps into a grid PNG.

    Parameters
    ----------
    maps_for_layer : (C, H, W) ndarray
        One entry of :func:`activation_maps`.
    path : where the PNG goes
    title : str, optional
        Written in a 24-pixel band above the grid.
    scale : int, optional
        Pixels per map pixel; default: enough for the grid's longer side to reach
        256 pixels (:func:`cnnlab.viz.image.auto_scale`).
    normalize : {'layer', 'map'}
        'layer' (default) maps the layer's minimum to black and maximum to white for every
        map, so maps compare and a dead map (all zero after a ReLU) is black; 'map' scales
        each map on its own (shows the pattern of weak maps; a constant map is mid-grey).
    ncols : int, optional
        Maps per row (default ``ceil(sqrt(C))``).

    Returns
    -------
    Path of a PNG of exactly ``(G_h*scale [+ 24], G_w*scale)`` pixels, with the grid
    ``G = tile_color(maps, pad=1)`` of shape ``(rows*(H+1)+1, ncols*(W+1)+1)``: grey maps
    separated by 1-pixel blue lines.
    """
    m = np.asarray(maps_for_layer, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"plot_activation_grid: expected maps (C, H, W), got shape {m.shape}")
    if normalize == "layer":
        unit = to_unit(m)
    elif normalize == "map":
        unit = np.stack([to_unit(c) for c in m])
    else:
        raise ValueError(f"plot_activation_grid: normalize must be 'layer' or 'map', got {normalize!r}")
    grid = tile_color(unit, ncols=ncols, pad=1)
    scale = auto_scale(grid.shape) if scale is None else int(scale)
    if scale < 1:
        raise ValueError(f"plot_activation_grid: scale must be >= 1, got {scale}")
    return save_titled_png(grid, path, title=title, scale=scale, cmap="gray")


def _iter_batches(images_or_loader: Any, model: Module, batch_size: int, func: str
                  ) -> Iterator[np.ndarray]:
    """Batches (n, C, H, W) in the model's dtype from an array / Tensor of images or from
    an iterable of batches (a DataLoader's (x, y) pairs, or bare x)."""
    if isinstance(images_or_loader, (np.ndarray, Tensor)):
        a = as_batch(model, images_or_loader, func)
        if batch_size < 1:
            raise ValueError(f"{func}: batch_size must be >= 1, got {batch_size}")
        for i in range(0, len(a), batch_size):
            yield a[i:i + batch_size]
        return
    if not isinstance(images_or_loader, Iterable):
        raise TypeError(f"{func}: expected an array of images (N, C, H, W) or an iterable of batches, "
                        f"got {type(images_or_loader).__name__}")
    for batch in images_or_loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        yield as_batch(model, x, func)


def layer_outputs(model: Module, images_or_loader: Any, layer: str, batch_size: int = 256
                  ) -> Iterator[np.ndarray]:
    """Yield the output of ``layer`` for each batch of inputs (eval mode, no graph).

    ``images_or_loader`` is an (N, C, H, W) array / Tensor, cut into ``batch_size``
    pieces, or an iterable of batches (a :class:`cnnlab.data.DataLoader`: its (x, y)
    pairs; or bare x arrays).  Yields ndarrays (n, ...) in input order."""
    model.get_submodule(layer)
    with inspecting(model), no_grad():
        for xb in _iter_batches(images_or_loader, model, batch_size, "layer_outputs"):
            with capture_outputs(model, [layer]) as seen:
                model(Tensor(xb))
            if layer not in seen:
                raise ValueError(f"layer_outputs: layer {layer!r} did not run in the forward")
            yield seen[layer]


@dataclass
class DeadFilterReport:
    """Which channels of a layer never respond.

    Attributes
    ----------
    layer : str
    zero_fraction : (C,) float64
        Per channel, the fraction of inputs on which the channel is *dead*: its whole
        output map is <= 0 (after a ReLU: exactly zero everywhere; for a conv's output:
        a following ReLU would zero it all).
    dead : (C,) int64
        Indices of the channels whose ``zero_fraction >= threshold``.
    threshold : float
    n_inputs : int
    """

    layer: str
    zero_fraction: np.ndarray
    dead: np.ndarray
    threshold: float
    n_inputs: int

    @property
    def alive(self) -> np.ndarray:
        """Indices of the channels that are not dead."""
        return np.setdiff1d(np.arange(len(self.zero_fraction)), self.dead)

    def __str__(self) -> str:
        C = len(self.zero_fraction)
        lines = [f"dead filters in {self.layer}: {len(self.dead)} of {C} channels are <= 0 everywhere "
                 f"on >= {self.threshold:.0%} of {self.n_inputs} inputs"]
        if len(self.dead):
            lines.append("  dead: " + ", ".join(map(str, self.dead.tolist())))
        mostly = [c for c in np.argsort(-self.zero_fraction, kind="stable")
                  if c not in set(self.dead.tolist()) and self.zero_fraction[c] >= 0.5]
        if mostly:
            lines.append("  mostly silent: "
                         + ", ".join(f"{c} ({self.zero_fraction[c]:.0%})" for c in mostly))
        if len(self.dead) and len(self.dead) >= C / 4:
            lines.append("  many dead filters often mean the learning rate was too high")
        return "\n".join(lines)


def dead_filters(model: Module, images_or_loader: Any, layer: str, threshold: float = 0.99,
                 batch_size: int = 256) -> DeadFilterReport:
    """Find the channels of ``layer`` that are zero (<= 0) for (almost) every input.

    Parameters
    ----------
    model : Module
    images_or_loader : (N, C, H, W) ndarray / Tensor, or an iterable of batches
        Inputs as the model expects them (see :func:`layer_outputs`).
    layer : str
        Dotted submodule name; its output is (N, C, H, W) (or (N, C): units of an FC layer).
    threshold : float in (0, 1]
        A channel is dead overall when it is dead on at least this fraction of inputs.
    batch_size : int
        Inputs per forward when an array is given.

    Returns
    -------
    :class:`DeadFilterReport`; ``str()`` of it is a short text report.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"dead_filters: threshold must be in (0, 1], got {threshold}")
    counts: np.ndarray | None = None
    n = 0
    for out in layer_outputs(model, images_or_loader, layer, batch_size):
        if out.ndim < 2:
            raise ValueError(f"dead_filters: layer {layer!r} output must be (N, C, ...), "
                             f"got shape {out.shape}")
        dead_here = np.all(out.reshape(out.shape[0], out.shape[1], -1) <= 0, axis=2)   # (n, C)
        counts = dead_here.sum(axis=0) if counts is None else counts + dead_here.sum(axis=0)
        n += out.shape[0]
    if counts is None or n == 0:
        raise ValueError("dead_filters: no inputs given")
    frac = counts.astype(np.float64) / n
    dead = np.flatnonzero(frac >= threshold - 1e-12).astype(np.int64)
    return DeadFilterReport(layer, frac, dead, float(threshold), n)
