"""Harley's infobox: what one unit computed, with the real numbers.

:func:`unit_info` runs one forward, reads the unit's layer input and output, and
writes out the arithmetic: for a convolution, the input patch, the filter (all input
channels of its group), every product (or the largest ones and the rest's sum), the
bias and the value before and after the following non-linearity; for pooling, the
window and which element won; for a fully connected unit, its strongest weights and
the largest terms of its dot product.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["unit_info", "ALL_TERMS", "TOP_TERMS"]

#: a dot product of at most this many terms is written out whole
ALL_TERMS = 75
#: otherwise its largest terms (by magnitude) and the sum of the rest
TOP_TERMS = 12


def _layer_io(explorer, x: np.ndarray, name: str, after: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer input, layer output, output of ``after``) for the batch ``x``; kept in
    ``explorer.unit_io`` while ``x`` and the weights stay the same."""
    from cnnlab.autograd.tensor import Tensor, no_grad

    seen: dict[str, np.ndarray] = {}

    def keep(key):
        def hook(mod, inputs, out):
            seen.setdefault(key + ".in", np.array(inputs[0].data, copy=True))
            seen[key] = np.array(out.data, copy=True)
        return hook

    model = explorer.model
    with explorer.lock:
        cached = explorer.unit_io
        if cached is None or cached[0].shape != x.shape or not np.array_equal(cached[0], x):
            cached = explorer.unit_io = (np.array(x, copy=True), {})
        if (name, after) in cached[1]:
            return cached[1][name, after]
        handles = [model.get_submodule(name).register_forward_hook(keep("layer"))]
        if after != name:
            handles.append(model.get_submodule(after).register_forward_hook(keep("after")))
        try:
            with no_grad():
                model(Tensor(x))
        finally:
            for h in handles:
                h.remove()
        io = seen["layer.in"][0], seen["layer"][0], seen.get("after", seen["layer"])[0]
        cached[1][name, after] = io
        return io


def _terms(products: np.ndarray, inputs: np.ndarray, weights: np.ndarray, labels: list[str]
           ) -> dict[str, Any]:
    """The terms w * x of a dot product: all of them, or the largest and the rest's sum."""
    n = products.size
    order = np.arange(n) if n <= ALL_TERMS else np.argsort(-np.abs(products), kind="stable")[:TOP_TERMS]
    shown = [{"at": labels[i], "x": float(inputs[i]), "w": float(weights[i]), "wx": float(products[i])}
             for i in order]
    rest = float(products.sum() - products[order].sum()) if n > ALL_TERMS else 0.0
    return {"count": int(n), "terms": shown, "rest": rest, "rest_count": int(n - len(order)),
            "sum": float(products.sum())}


def _conv(m, inp: np.ndarray, out: np.ndarray, c: int, y: int, x: int) -> dict[str, Any]:
    from cnnlab.nn.functional_conv import _resolve_padding

    KH, KW = m.kernel_size
    (sh, sw), (dh, dw) = m.stride, m.dilation
    top, bottom, left, right = _resolve_padding(m.padding, m.kernel_size, m.stride, m.dilation, inp.shape[1:])
    padded = np.pad(inp, ((0, 0), (top, bottom), (left, right)))
    per_group = inp.shape[0] // m.groups
    g = c // (m.out_channels // m.groups)
    ch = slice(g * per_group, (g + 1) * per_group)
    ys = y * sh + dh * np.arange(KH)
    xs = x * sw + dw * np.arange(KW)
    patch = padded[ch][:, ys][:, :, xs].astype(np.float64)
    w = np.asarray(m.weight.data[c], dtype=np.float64)
    labels = [f"c{g * per_group + i} ({ky},{kx})"
              for i in range(per_group) for ky in range(KH) for kx in range(KW)]
    prod = (patch * w).ravel()
    bias = float(m.bias.data[c]) if m.bias is not None else 0.0
    return {"patch": patch.tolist(), "filter": w.tolist(), "input_channels": [ch.start, ch.stop],
            "input_origin": [int(ys[0]) - top, int(xs[0]) - left],
            "dot": _terms(prod, patch.ravel(), w.ravel(), labels), "bias": bias,
            "pre": float(prod.sum() + bias)}


def _pool(m, inp: np.ndarray, c: int, y: int, x: int) -> dict[str, Any]:
    KH, KW = m.kernel_size
    sh, sw = m.stride
    ph, pw = m.padding
    dh, dw = getattr(m, "dilation", (1, 1))
    is_max = type(m).__name__.startswith("Max")
    padded = np.pad(inp[c].astype(np.float64), ((ph, ph), (pw, pw)),
                    constant_values=-np.inf if is_max else 0.0)
    ys = y * sh + dh * np.arange(KH)
    xs = x * sw + dw * np.arange(KW)
    ys, xs = ys[ys < padded.shape[0]], xs[xs < padded.shape[1]]   # ceil_mode windows run off the edge
    window = padded[ys][:, xs]
    d: dict[str, Any] = {"window": np.where(np.isfinite(window), window, None).tolist(),
                         "window_origin": [int(ys[0]) - ph, int(xs[0]) - pw]}
    if is_max:
        k = int(np.argmax(window))    # the first maximum wins, as the kernel's tie rule
        d["winner"] = [k // window.shape[1], k % window.shape[1]]
    return d


def _linear(m, inp: np.ndarray, j: int) -> dict[str, Any]:
    xin = inp.astype(np.float64).ravel()
    w = np.asarray(m.weight.data[j], dtype=np.float64)
    prod = w * xin
    bias = float(m.bias.data[j]) if m.bias is not None else 0.0
    strongest = np.argsort(-np.abs(w), kind="stable")[:TOP_TERMS]
    return {"dot": _terms(prod, xin, w, [f"in {i}" for i in range(len(w))]), "bias": bias,
            "pre": float(prod.sum() + bias),
            "strongest_weights": [{"input": int(i), "w": float(w[i])} for i in strongest]}


def unit_info(explorer, x: np.ndarray, layer: str, channel: int, y: int = 0, xpos: int = 0) -> dict[str, Any]:
    """The infobox of unit ``(channel, y, xpos)`` of ``layer`` (``channel`` alone for a
    vector layer) for the model input ``x`` (1, C, S, S)."""
    from cnnlab.viz.commands.context import activation_after
    from cnnlab.viz.topk import field_box

    info = explorer.layer(layer)
    shape = info.shape
    if not 0 <= channel < shape[0]:
        raise ValueError(f"unit channel must be in [0, {shape[0] - 1}] for {layer}, got {channel}")
    if len(shape) == 3 and not (0 <= y < shape[1] and 0 <= xpos < shape[2]):
        raise ValueError(f"unit position must be within {shape[1]}x{shape[2]} for {layer}, got ({y}, {xpos})")
    m = explorer.model.get_submodule(layer)
    kind = type(m).__name__
    after = activation_after(explorer.model, layer) if kind in ("Conv2d", "Linear") else layer
    inp, out, post = _layer_io(explorer, x, layer, after)
    at = (channel,) if len(shape) == 1 else (channel, y, xpos)
    d: dict[str, Any] = {"layer": layer, "type": kind, "unit": list(at), "value": float(out[at])}
    if after != layer:
        d["activation"] = {"layer": after, "type": type(explorer.model.get_submodule(after)).__name__,
                           "value": float(post[at])}
    if info.rf is not None and len(shape) == 3:
        d["field"] = list(field_box(info.rf, (y, xpos), (explorer.input_size, explorer.input_size)))
    if kind == "Conv2d" and inp.ndim == 3:
        d.update(_conv(m, inp, out, channel, y, xpos))
    elif kind in ("MaxPool2d", "AvgPool2d") and inp.ndim == 3:
        d.update(_pool(m, inp, channel, y, xpos))
    elif kind == "Linear" and inp.ndim == 1:
        d.update(_linear(m, inp, channel))
    elif inp.shape == out.shape:
        d["input_value"] = float(inp[at])
    return d
