"""Padding of the trailing axes, PyTorch's ``F.pad`` modes: constant, reflect,
replicate and circular.  Forward and backward side by side.

Each padded axis gets an index map: for every output position, the input position
it copies.  ``np.pad(np.arange(n), (lo, hi), mode)`` builds it for reflect
(``abc`` -> ``cb|abc|ba``), replicate (NumPy's ``edge``: ``aa|abc|cc``) and circular
(NumPy's ``wrap``: ``bc|abc|ab``).  For constant padding the map is
``arange(-lo, n + hi)``; positions outside ``[0, n)`` take the fill value, and a
negative ``lo`` or ``hi`` crops, as in PyTorch.  The forward gathers along each
axis in turn; the backward scatters the gradient back along the same maps, adding
where one input value was copied several times (a border pixel under reflect
padding is seen twice), and dropping it at fill positions.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

MODES = ("constant", "reflect", "replicate", "circular")
_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class PadCache(NamedTuple):
    shape: tuple[int, ...]                                 # the input's
    maps: tuple[tuple[int, np.ndarray, np.ndarray], ...]   # (axis, index map, valid mask)


def index_map(n: int, lo: int, hi: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """For an axis of length ``n`` padded by ``lo`` before and ``hi`` after: the
    input index of every output position, and where that index is a real input
    value (False at constant fill positions)."""
    if mode == "constant":
        idx = np.arange(-lo, n + hi)
        return np.clip(idx, 0, max(n - 1, 0)), (idx >= 0) & (idx < n)
    idx = np.pad(np.arange(n), (lo, hi), mode=_NUMPY_MODE[mode])
    return idx, np.ones(len(idx), dtype=bool)


def pad_forward(x: np.ndarray, widths: tuple[tuple[int, int], ...], mode: str = "constant",
                value: float = 0.0) -> tuple[np.ndarray, PadCache]:
    """Pad ``x``; ``widths[i]`` is (before, after) for axis ``x.ndim - len(widths) + i``.

    The caller has checked the widths (non-negative and small enough for the mode,
    except that constant padding may crop).  Returns the padded array and the cache.
    """
    first = x.ndim - len(widths)
    maps = []
    out = x
    for i, (lo, hi) in enumerate(widths):
        if lo == 0 and hi == 0:
            continue
        axis = first + i
        idx, valid = index_map(x.shape[axis], lo, hi, mode)
        out = np.take(out, idx, axis=axis)
        if not valid.all():
            shape = [1] * out.ndim
            shape[axis] = len(valid)
            out = np.where(valid.reshape(shape), out, np.asarray(value, dtype=out.dtype))
        maps.append((axis, idx, valid))
    return np.ascontiguousarray(out), PadCache(x.shape, tuple(maps))


def pad_backward(dout: np.ndarray, cache: PadCache) -> np.ndarray:
    """The gradient with respect to the input: each output position's gradient added
    to the input position it copied; fill positions contribute nothing."""
    g = dout
    for axis, idx, valid in reversed(cache.maps):
        moved = np.moveaxis(g, axis, 0)
        back = np.zeros((cache.shape[axis], *moved.shape[1:]), dtype=dout.dtype)
        np.add.at(back, idx[valid], moved[valid])
        g = np.moveaxis(back, 0, axis)
    return np.ascontiguousarray(g)


__all__ = ["MODES", "PadCache", "index_map", "pad_backward", "pad_forward"]
