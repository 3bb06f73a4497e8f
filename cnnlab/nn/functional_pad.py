"""Functional padding, PyTorch's ``F.pad(input, pad, mode, value)``.

``pad`` lists (before, after) pairs from the last axis backwards, as in PyTorch:
``(left, right)`` pads the width, ``(left, right, top, bottom)`` the height too.
The modes are constant (fill with ``value``; negative widths crop), reflect
(mirror without repeating the edge), replicate (repeat the edge) and circular
(wrap around).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnlab.autograd import pad_ops as ops
from cnnlab.autograd.tensor import Tensor
from cnnlab.kernels.pad import MODES
from cnnlab.nn._args import as_tensor


def pad_widths(shape: Sequence[int], pad: Sequence[int], mode: str,
               op: str = "pad") -> tuple[tuple[int, int], ...]:
    """PyTorch's ``pad`` tuple checked against ``shape`` and ``mode``, as (before,
    after) per padded axis, in axis order."""
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {list(MODES)}, got {mode!r}")
    if isinstance(pad, (int, np.integer)) or len(pad) % 2:
        raise ValueError(f"{op}: pad must be a sequence of (before, after) pairs, got {pad!r}")
    if not all(isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"{op}: pad must hold ints, got {pad!r}")
    k = len(pad) // 2
    if mode == "constant" and k > len(shape):
        raise ValueError(f"{op}: pad {tuple(pad)} covers {k} axes; the input has only "
                         f"{len(shape)} (shape {tuple(shape)})")
    if mode != "constant" and (k > 3 or len(shape) not in (k + 1, k + 2)):
        raise ValueError(f"{op}: {mode} padding covers 1 to 3 trailing axes of an input with "
                         f"one or two more (unbatched or batched, as in PyTorch); pad "
                         f"{tuple(pad)} covers {k}, the input has shape {tuple(shape)}")
    widths = tuple((int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(k)))
    for (lo, hi), n in zip(widths, shape[len(shape) - k:]):
        if mode == "constant":
            if n + lo + hi < 0:
                raise ValueError(f"{op}: padding {(lo, hi)} crops an axis of length {n} "
                                 f"below zero (input shape {tuple(shape)})")
            continue
        limit = n - 1 if mode == "reflect" else (n if mode == "circular" else None)
        if lo < 0 or hi < 0 or n == 0 or (limit is not None and max(lo, hi) > limit):
            bound = {"reflect": f"< {n}, the axis length", "circular": f"<= {n}, the axis length",
                     "replicate": ">= 0"}[mode]
            raise ValueError(f"{op}: {mode} padding {(lo, hi)} of an axis of length {n} "
                             f"must be {bound} (input shape {tuple(shape)})")
    return widths


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad the trailing axes of ``input``; see the module docstring.

    Output: each padded axis grows by before + after.  The gradient sums over
    every output position that copied an input value.
    """
    x = as_tensor(input)
    widths = pad_widths(x.shape, pad, mode)
    if value is not None and mode != "constant":
        raise ValueError(f"pad: {mode} padding takes no value, got value={value!r}")
    return ops.Pad.apply(x, widths=widths, mode=mode, value=0.0 if value is None else value)


__all__ = ["pad"]
