"""``summary``: a per-layer account of a model's shapes, memory, parameters, work and
receptive fields, in the spirit of the notes' VGGNet table (001).

    >>> s = cnnlab.summary(model, input_size=(3, 224, 224))   # prints the table
    >>> s.total_params, s.forward_bytes

One forward pass of zeros (eval mode, no graph) is run with a hook on every
module that does work of its own, so any architecture is covered, branches
included.  Per row:

* output shape, and the activations it holds: values and bytes;
* parameters, split into weights and biases (a parameter named ``bias``);
* multiply-accumulates (MACs) of convolutions and fully connected layers;
* receptive field of one output unit in input pixels: its size, its jump
  (the product of the strides so far) and where the first unit's field starts
  (its top-left edge; negative where it reaches into zero padding).

What the totals count, and why (the notes' figures use the same rules):

* activations are each layer's output, once; layers that frameworks run in
  place or as views (ReLU, dropout, flatten, identity, an adaptive pool that
  keeps its input's size) produce no new memory and are shown but not added,
  which is how the notes' table counts a "CONV3-64" (conv + ReLU) as one row;
* the input image is added, as the notes' ``INPUT`` row is;
* training keeps roughly twice the forward activations (the gradients), as
  the notes say; parameter memory is counted separately.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn._args import pair
from cnnlab.nn.capture import forward_hooks
from cnnlab.nn.module import Module

INPLACE_TYPES = ("ReLU", "LeakyReLU", "ELU", "Dropout", "Dropout2d", "Flatten", "Identity")


@dataclass
class ReceptiveField:
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]


UNKNOWN = ReceptiveField((-1, -1), (-1, -1), (0.0, 0.0))   # a field the tool does not model


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: tuple[int, ...]
    activations: int              # values per image
    activation_bytes: int         # per image
    weights: int
    biases: int
    macs: int                     # per image
    counted: bool                 # whether the activations enter the totals
    rf: ReceptiveField | None     # None: the unit sees the whole input (after flatten / FC)


@dataclass
class ModelSummary:
    rows: list[LayerRow]
    input_size: tuple[int, ...]
    batch_size: int
    itemsize: int
    total_params: int
    trainable_params: int
    param_bytes: int
    input_values: int
    forward_activations: int      # values per image, input included
    warnings: list[str] = field(default_factory=list)
    masked_params: int = 0        # connection-table weights held at zero, not counted
    idle_params: dict[str, int] = field(default_factory=dict)   # modules the forward did not run

    @property
    def frozen_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def forward_bytes(self) -> int:
        """Forward activation memory per image."""
        return self.forward_activations * self.itemsize

    @property
    def training_bytes(self) -> int:
        """About twice the forward memory: activations plus their gradients."""
        return 2 * self.forward_bytes

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def __str__(self) -> str:
        return format_summary(self)


def _spatial_params(m: Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
    """(kernel_eff, stride, pad_before, pad_total) per axis for layers that slide a
    window, or None.  Adaptive pools are described by their equivalent window when
    the input divides evenly."""
    tname = type(m).__name__
    if len(in_shape) != 4 or len(out_shape) != 4:
        return None
    H, W = in_shape[2:]
    if tname.startswith("AdaptiveAvgPool2d") or tname.startswith("AdaptiveMaxPool2d"):
        OH, OW = out_shape[2:]
        ks = (math.ceil(H / OH), math.ceil(W / OW))
        ss = (max(H // OH, 1), max(W // OW, 1))
        return [(ks[0], ss[0], 0, 0), (ks[1], ss[1], 0, 0)]
    if not hasattr(m, "kernel_size") or "Transpose" in tname:
        return None
    k = pair(m.kernel_size, "kernel_size")
    s = pair(getattr(m, "stride", None) or k, "stride")   # no stride (Subsample2d): they tile
    d = pair(getattr(m, "dilation", 1), "dilation")
    pad = getattr(m, "padding", 0)
    if isinstance(pad, str):
        from cnnlab.nn.functional_conv import conv_padding

        pt, pb, pl, pr = conv_padding(pad, k, s, d, (H, W))
    else:
        p = pair(pad, "padding")
        pt, pb, pl, pr = p[0], p[0], p[1], p[1]
    return [(d[0] * (k[0] - 1) + 1, s[0], pt, pt + pb), (d[1] * (k[1] - 1) + 1, s[1], pl, pl + pr)]


def _macs(m: Module, inp: Tensor | None, out: Tensor) -> int:
    """Multiply-accumulates per image of the layers that have weights to multiply."""
    tname = type(m).__name__
    out_units = int(np.prod(out.shape[1:]))
    if tname in ("Conv2d", "Conv1d"):
        return out_units * int(np.prod(m.weight.shape[1:]))         # C/groups * KH * KW each
    if tname == "ConvTranspose2d" and inp is not None:               # every input scatters a kernel
        return int(np.prod(inp.shape[1:])) * int(np.prod(m.weight.shape[1:]))
    if tname in ("LocallyConnected1d", "LocallyConnected2d"):
        return m.weight.numel()                                     # one filter per output unit
    if tname == "ConnectionTable":                                   # only the connected maps
        per_map = int(np.prod(m.weight.shape[2:]))
        return int(np.prod(out.shape[2:])) * int(m.mask().sum()) * per_map
    if tname == "LearnedCombination":   # a KxK filter per input map, then a weighted sum
        spatial = int(np.prod(out.shape[2:]))
        return spatial * (m.weight.numel() + m.c.numel())
    if tname == "Linear":
        return int(np.prod(out.shape[1:-1], dtype=np.int64)) * m.in_features * m.out_features
    if tname == "RBFOutput":                                         # ||x - w_i||^2 per class
        return m.weight.numel()
    return 0


def summary(model: Module, input_size: tuple[int, ...], batch_size: int = 1,
            dtype: Any = None, verbose: bool = True) -> ModelSummary:
    """Account for every layer of ``model`` on an input of ``(batch_size, *input_size)``.

    Prints the table (unless ``verbose=False``) and returns a :class:`ModelSummary`
    whose fields hold the same numbers; ``str()`` of it is the table.  ``dtype``
    (default: the model's parameter dtype, float32 for a model without parameters)
    sizes the activations.
    """
    if dtype is None:
        dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    x = Tensor(np.zeros((batch_size, *input_size), dtype=dtype))
    itemsize = np.dtype(dtype).itemsize
    names = {id(m): n for n, m in model.named_modules()}
    rf_of: dict[int, ReceptiveField | None] = {
        id(x): ReceptiveField((1, 1), (1, 1), (0.0, 0.0))}
    last_rf: list[ReceptiveField | None] = [rf_of[id(x)]]
    rows: list[LayerRow] = []
    warnings: list[str] = []
    masked: dict[int, int] = {}       # a connection table's weight -> its weights outside the table
    ran: set[int] = set()             # parameters of the modules the forward ran
    keep: list[Tensor] = [x]          # keep tensors alive so their ids stay unique

    def hook(m: Module, inputs: tuple, out: Any) -> None:
        if not isinstance(out, Tensor):
            return
        own = list(m.named_parameters(recurse=False))
        is_leaf = not any(True for _ in m.children())
        if not (is_leaf or own):
            return
        inp = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
        # the input's field; for a tensor made outside any module (a residual sum,
        # a concatenation) take the latest one, which is the longest branch's
        rf_in = rf_of.get(id(inp), last_rf[0]) if inp is not None else last_rf[0]
        tname = type(m).__name__
        geo = _spatial_params(m, inp.shape, out.shape) if inp is not None else None
        if rf_in is None or tname in ("Linear", "Flatten") or out.ndim < 3:
            rf = None
        elif rf_in is UNKNOWN or (geo is None and hasattr(m, "kernel_size")):
            rf = UNKNOWN   # 1-D and transposed convolutions: not modelled, shown as "?"
        elif geo is not None:
            size = tuple(rf_in.size[a] + (geo[a][0] - 1) * rf_in.jump[a] for a in range(2))
            jump = tuple(rf_in.jump[a] * geo[a][1] for a in range(2))
            start = tuple(rf_in.start[a] - geo[a][2] * rf_in.jump[a] for a in range(2))
            rf = ReceptiveField(size, jump, start)
            for a, axis in enumerate(("height", "width")):
                k_eff, s, before, ptot = geo[a]
                size = inp.shape[2 + a]
                span = size + ptot - k_eff
                # the last span % s positions of the padded extent are never in a window;
                # those that are padding (the far side's) do not matter
                unseen = span % s - (ptot - before)
                if unseen > 0 and not tname.startswith("Adaptive") and not getattr(m, "ceil_mode", False):
                    what = "row" if axis == "height" else "column"
                    which = (f"{what} {size - 1}" if unseen == 1
                             else f"{what}s {size - unseen}-{size - 1}")
                    warnings.append(
                        f"{names.get(id(m), tname)} ({tname}): stride {s} does not tile the padded "
                        f"{axis} {size + ptot}: (W - F + 2P)/S + 1 = {span / s + 1:g}, so input "
                        f"{which} of {size} (0-based) are never seen")
        else:
            rf = rf_in
        rf_of[id(out)] = rf
        last_rf[0] = rf
        keep.append(out)
        weights = sum(p.numel() for n, p in own if n != "bias")
        if tname == "ConnectionTable":   # only the connected weights, as the model counts them
            connected = int(m.table.sum()) * int(np.prod(m.weight.shape[2:]))
            masked[id(m.weight)] = weights - connected
            weights = connected
        ran.update(id(p) for _, p in own)
        biases = sum(p.numel() for n, p in own if n == "bias")
        values = int(np.prod(out.shape[1:]))
        # an adaptive pool whose output size is its input size is the identity (torchvision's
        # VGG at 224x224): shown, not added, like the in-place layers
        identity = tname.startswith("Adaptive") and inp is not None and inp.shape == out.shape
        rows.append(LayerRow(names.get(id(m), tname), tname, tuple(out.shape[1:]), values,
                             values * itemsize, weights, biases, _macs(m, inp, out),
                             tname not in INPLACE_TYPES and not identity, rf))

    was_training = model.training
    model.eval()
    try:
        with forward_hooks(model.modules(), hook), no_grad():
            model(x)
    finally:
        model.train(was_training)

    params = list(model.parameters())
    total = sum(p.numel() for p in params) - sum(masked.values())
    trainable = sum(p.numel() - masked.get(id(p), 0) for p in params if p.requires_grad)
    # parameters of modules the forward did not run (GoogLeNet's auxiliary heads in eval
    # mode), by top-level module
    idle: dict[str, int] = {}
    for name, p in model.named_parameters():
        if id(p) not in ran:
            top = name.split(".")[0]
            idle[top] = idle.get(top, 0) + p.numel()
    param_bytes = sum(p.data.nbytes for p in params)
    input_values = int(np.prod(input_size))
    forward = input_values + sum(r.activations for r in rows if r.counted)
    result = ModelSummary(rows, tuple(input_size), batch_size, itemsize, total, trainable,
                          param_bytes, input_values, forward, warnings,
                          sum(masked.values()), idle)
    if verbose:
        print(result)
    return result


def _human(n: float, unit: str = "") -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _bytes(n: float) -> str:
    """Bytes in binary units, as the totals are: 784 B, 3.1 KiB, 12.3 MiB."""
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= div:
            return f"{n / div:.1f} {suffix}"
    return f"{n:.0f} B"


def grouped_warnings(warnings: list[str]) -> list[str]:
    """One line per kind of warning: the layers a kind applies to listed after
    its first message (the kind is what follows the layer name)."""
    kinds: dict[str, list[str]] = {}
    for w in warnings:
        layer, _, rest = w.partition(": ")
        kind = "stride does not tile" if "does not tile" in rest else rest
        if kind not in kinds:
            kinds[kind] = [w, layer]
        elif layer not in kinds[kind]:
            kinds[kind].append(layer)
    kinds = {k: [items[0], *items[2:]] for k, items in kinds.items()}
    return [items[0] + (f" (also: {', '.join(items[1:])})" if len(items) > 1 else "")
            for items in kinds.values()]


def _parameter_lines(s: ModelSummary) -> list[str]:
    """How the parameter total splits: the rows' weights and biases, plus the modules
    the forward did not run; and the masked weights left out of both."""
    weights, biases = sum(r.weights for r in s.rows), sum(r.biases for r in s.rows)
    rows = f"weights {weights:,} + biases {biases:,}"
    if not s.idle_params:
        lines = [rows]
    else:
        idle = sum(s.idle_params.values())
        names = ", ".join(s.idle_params)
        lines = [f"{rows} = {weights + biases:,} in the layers above (without {names})",
                 f"{names}: {idle:,} more, in modules the forward in eval mode does not run "
                 f"(training-only heads); {weights + biases + idle:,} with them"]
    if s.masked_params:
        lines.append(f"{s.masked_params:,} connection-table weights outside the table are stored "
                     "as zeros and not counted")
    return lines


def format_summary(s: ModelSummary, warnings: bool = True) -> str:
    """The table as text: one row per layer, then the totals, then (with
    ``warnings``) one line per kind of warning."""
    head = ["layer", "type", "output", "activations", "act. bytes", "weights", "biases", "MACs",
            "RF size", "jump", "start"]
    body = [["input", "", "x".join(map(str, s.input_size)), f"{s.input_values:,}",
             _bytes(s.input_values * s.itemsize), "0", "0", "0", "1", "1", "0"]]
    def both(v: tuple, sep: str) -> str:   # "5" for a square field, "5x3" otherwise
        return f"{v[0]:g}" if v[0] == v[1] else f"{v[0]:g}{sep}{v[1]:g}"

    for r in s.rows:
        rf = r.rf
        body.append([
            r.name, r.type, "x".join(map(str, r.output_shape)),
            f"{r.activations:,}" + ("" if r.counted else "*"), _bytes(r.activation_bytes),
            f"{r.weights:,}", f"{r.biases:,}", _human(r.macs),
            "all" if rf is None else "?" if rf is UNKNOWN else both(rf.size, "x"),
            "-" if rf is None else "?" if rf is UNKNOWN else both(rf.jump, "x"),
            "-" if rf is None else "?" if rf is UNKNOWN else both(rf.start, ","),
        ])
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    right = {3, 4, 5, 6, 7, 8, 9, 10}

    def fmt(row: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths), *map(fmt, body)]
    lines += [
        "",
        f"parameters: {s.total_params:,} ({s.trainable_params:,} trainable, "
        f"{s.frozen_params:,} frozen), {_mib(s.param_bytes)}",
        *_parameter_lines(s),
        f"multiply-accumulates per image: {s.total_macs:,} ({_human(s.total_macs)})",
        f"forward activations per image: {s.forward_activations:,} values = "
        f"{_mib(s.forward_bytes)} (input included; * = in place or a view, not added)",
        f"training (activations and their gradients, ~x2): {_mib(s.training_bytes)} per image, "
        f"{_mib(s.training_bytes * s.batch_size)} for a batch of {s.batch_size}",
    ]
    if warnings:
        lines += [f"warning: {w}" for w in grouped_warnings(s.warnings)]
    return "\n".join(lines)
