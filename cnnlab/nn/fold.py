"""Batch norm folded into the layer before it, for inference.

The notes (003) count among batch norm's advantages "zero cost at test time: it can
be fused with the conv layer".  In eval mode a BN layer is a fixed affine map per
channel c, with its running statistics::

    BN(z)_c = gamma_c (z_c - mean_c) / sqrt(var_c + eps) + beta_c = s_c z_c + t_c
    s_c = gamma_c / sqrt(var_c + eps),   t_c = beta_c - s_c mean_c

and when z = W * x + b is the output of a convolution (or a fully connected layer),
output channel c is linear in the weights of filter c, so::

    BN(W * x + b)_c = (s_c W_c) * x + (s_c b_c + t_c)

one convolution with weight ``W'_c = s_c W_c`` and bias ``b'_c = s_c b_c + t_c`` (a
convolution without bias gains one).  The padding needs no care: the BN acts after
the convolution has padded and summed.  :func:`fold_batchnorm` does this for a whole
model; :func:`fuse_conv_bn_eval` and :func:`fuse_linear_bn_eval` (``torch.nn.utils.
fusion``'s names) for one pair.
"""
from __future__ import annotations

import copy
import types
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor, enable_grad, no_grad
from cnnlab.nn.capture import forward_hooks, leaf_modules
from cnnlab.nn.module import Module
from cnnlab.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from cnnlab.nn.modules.conv import _ConvNd
from cnnlab.nn.modules.linear import Identity, Linear
from cnnlab.nn.parameter import Parameter

__all__ = ["FoldError", "FoldReport", "fold_batchnorm", "fuse_conv_bn_eval", "fuse_linear_bn_eval",
           "has_batchnorm"]

#: the normalisation layers that can be folded (InstanceNorm2d, though a _BatchNorm
#: subclass, normalises each sample by its own statistics and is not one of them)
BATCHNORM_TYPES = (BatchNorm1d, BatchNorm2d)

#: the short reasons a BN layer is kept, as the one-line summary counts them
NO_RUNNING_STATS = "no running statistics"
NOT_RUN = "not run in eval mode"
NOT_AFTER_CONV = "input not from a conv or linear layer"
OUTPUT_SHARED = "conv output also used elsewhere"
SHARED_MODULE = "shared or hooked layer"
LAYOUT = "channels not on axis 1"


class FoldError(RuntimeError):
    """The folded copy does not reproduce the original on the example input."""


@dataclass
class FoldReport:
    """What :func:`fold_batchnorm` did.

    Attributes
    ----------
    folded : list of (str, str)
        ``(layer, bn)`` dotted names: the BN now folded into that conv or linear
        layer (and replaced by ``Identity``).
    kept : list of (str, str, str)
        ``(bn, reason, detail)`` for each BN left as it is: ``reason`` one of the
        short reasons of this module, ``detail`` a sentence about this layer.
    """

    folded: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many BN layers were folded, and why the others were kept."""
        total = len(self.folded) + len(self.kept)
        if total == 0:
            return "batch norm: the model has no batch norm layer to fold"
        line = (f"batch norm: folded {len(self.folded)} of {total} layers into the conv or "
                f"linear layer before them")
        if self.kept:
            why = Counter(reason for _, reason, _ in self.kept)
            line += f"; kept {len(self.kept)} (" + ", ".join(
                f"{n} {reason}" for reason, n in why.most_common()) + ")"
        return line

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  folded {bn} into {layer}" for layer, bn in self.folded]
        lines += [f"  kept {bn}: {detail}" for bn, _, detail in self.kept]
        return "\n".join(lines)


def has_batchnorm(model: Module) -> bool:
    """True if ``model`` contains a BatchNorm1d or BatchNorm2d layer."""
    return any(isinstance(m, BATCHNORM_TYPES) for m in model.modules())


# ----------------------------------------------------------------- one pair
def _scale_shift(bn: Module) -> tuple[np.ndarray, np.ndarray]:
    """(s, t), float64 (C,), with BN(z) = s z + t per channel in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{bn!r} has no running statistics (track_running_stats=False): it "
                         f"normalises every batch by its own statistics, so it has no fixed "
                         f"scale and shift to fold")
    mean = bn.running_mean.astype(np.float64)
    s = 1.0 / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.data.astype(np.float64)
    t = -s * mean
    if bn.bias is not None:
        t = t + bn.bias.data.astype(np.float64)
    return s, t


def _fold_into(layer: Module, bn: Module) -> None:
    """Replace ``layer``'s weight and bias by the folded ones, in place."""
    if not isinstance(layer, (_ConvNd, Linear)):
        raise TypeError(f"cannot fold batch norm into a {type(layer).__name__}; only into a "
                        f"convolution (Conv1d, Conv2d, ConvTranspose2d) or a Linear layer")
    out = layer.out_features if isinstance(layer, Linear) else layer.out_channels
    if out != bn.num_features:
        raise ValueError(f"cannot fold {bn!r} into {layer!r}: {out} output channels but "
                         f"{bn.num_features} normalised features")
    s, t = _scale_shift(bn)
    w = layer.weight.data
    w64 = w.astype(np.float64)
    if getattr(layer, "transposed", False):
        # (in, out // groups, *k): output channel g * (out // groups) + j sits at [g's rows, j]
        g = layer.groups
        grouped = w64.reshape(g, w.shape[0] // g, *w.shape[1:])
        new_w = (grouped * s.reshape(g, 1, -1, *[1] * (w.ndim - 2))).reshape(w.shape)
    else:   # (out, in // groups, *k) or Linear's (out, in): one row per output channel
        new_w = w64 * s.reshape(-1, *[1] * (w.ndim - 1))
    b = np.zeros(out) if layer.bias is None else layer.bias.data.astype(np.float64)
    requires_grad = layer.weight.requires_grad
    layer.weight = Parameter(new_w.astype(w.dtype), requires_grad=requires_grad)
    layer.bias = Parameter((s * b + t).astype(w.dtype), requires_grad=requires_grad)


def _fused_copy(fn: str, layer: Module, bn: Module, kind: type | tuple[type, ...],
                what: str) -> Module:
    """A copy of ``layer`` (checked to be ``kind``) with ``bn`` folded in, both in eval mode."""
    for m in (layer, bn):
        if m.training:
            raise ValueError(f"{fn}: {m!r} is in training mode; folding is for eval mode "
                             f"only (call .eval() first)")
    if not isinstance(layer, kind):
        raise TypeError(f"{fn}: expected {what}, got {type(layer).__name__}")
    fused = copy.deepcopy(layer)
    _fold_into(fused, bn)
    return fused


def fuse_conv_bn_eval(conv: Module, bn: Module) -> Module:
    """A copy of ``conv`` that computes ``bn(conv(x))`` of the two in eval mode.

    Parameters
    ----------
    conv : Conv1d, Conv2d or ConvTranspose2d, in eval mode
        Its output channels (out_channels) are BN's features; grouped and
        depthwise convolutions fold like any other (one scale per output channel).
    bn : BatchNorm1d or BatchNorm2d, in eval mode, with running statistics
        ``affine=False`` folds too (gamma = 1, beta = 0).

    Returns
    -------
    Module
        A new layer of ``conv``'s type with weight s W and bias s b + t (a bias
        even if ``conv`` had none); ``conv`` and ``bn`` are unchanged.
    """
    return _fused_copy("fuse_conv_bn_eval", conv, bn, _ConvNd, "a convolution")


def fuse_linear_bn_eval(linear: Module, bn: Module) -> Module:
    """A copy of ``linear`` (N, in) -> (N, out) that computes ``bn(linear(x))`` in eval
    mode, ``bn`` a BatchNorm1d of ``out`` features with running statistics; see
    :func:`fuse_conv_bn_eval`."""
    return _fused_copy("fuse_linear_bn_eval", linear, bn, Linear, "a Linear")


# -------------------------------------------------------------- whole model
@dataclass
class _Trace:
    """One traced forward: every leaf layer's calls (inputs, output), who produced
    each recorded output, and how many graph nodes (or model outputs) read each tensor."""

    calls: dict[int, list[tuple[tuple, Any]]]
    producer: dict[int, int]          # id(output tensor) -> id(leaf module that returned it)
    readers: Counter                  # id(tensor) -> number of operations reading it
    output: Any


def _tensors_in(obj: Any) -> list[Tensor]:
    """The Tensors in a (possibly nested) model output: a Tensor, tuple, list or dict."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors_in(item)]
    return []


def _trace(net: Module, x: Tensor) -> _Trace:
    calls: dict[int, list[tuple[tuple, Any]]] = {}
    producer: dict[int, int] = {}

    def hook(module: Module, args: tuple, out: Any) -> None:
        calls.setdefault(id(module), []).append((args, out))
        if isinstance(out, Tensor):
            producer.setdefault(id(out), id(module))   # the first layer to return it made it

    leaves = {id(m): m for m in leaf_modules(net)}
    with forward_hooks(leaves.values(), hook), enable_grad():
        output = net(x)
    readers: Counter = Counter()
    outputs = _tensors_in(output)
    for t in outputs:
        readers[id(t)] += 1
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        ctx = stack.pop()._ctx
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        for t in ctx.inputs:
            if t is not None:
                readers[id(t)] += 1
                stack.append(t)
    return _Trace(calls, producer, readers, output)


def _describe_source(t: Tensor, x: Tensor, trace: _Trace, names: dict[int, list[str]],
                     modules: dict[int, Module]) -> str:
    if t is x:
        return "the model's input"
    if id(t) in trace.producer:
        m = modules[trace.producer[id(t)]]
        return f"{names[id(m)][0]} ({type(m).__name__})"
    if t._ctx is not None:
        return f"a {type(t._ctx).__name__} operation"
    return "a tensor made outside the graph"


def _pair_for(bn_id: int, x: Tensor, trace: _Trace, names: dict[int, list[str]],
              modules: dict[int, Module]) -> tuple[int | None, str, str]:
    """(id of the layer to fold ``bn`` into, '', '') or (None, reason, detail)."""
    bn = modules[bn_id]
    name = names[bn_id][0]
    if not bn.track_running_stats or bn.running_mean is None:
        return None, NO_RUNNING_STATS, ("track_running_stats=False: it normalises each batch "
                                        "by its own statistics even in eval mode, so it has no "
                                        "fixed scale and shift to fold")
    bn_calls = trace.calls.get(bn_id, [])
    if not bn_calls:
        return None, NOT_RUN, "the eval-mode forward does not run it (a training-only branch)"
    if len(bn_calls) > 1 or len(names[bn_id]) > 1 or bn._forward_hooks:
        return None, SHARED_MODULE, (f"it runs {len(bn_calls)} times per forward, is registered "
                                     f"as {', '.join(names[bn_id])}, or has forward hooks")
    z = bn_calls[0][0][0]
    layer_id = trace.producer.get(id(z)) if isinstance(z, Tensor) else None
    layer = modules.get(layer_id)
    if not isinstance(layer, (_ConvNd, Linear)):
        return None, NOT_AFTER_CONV, (
            f"its input comes from {_describe_source(z, x, trace, names, modules)}, not from "
            f"a convolution or linear layer")
    lname = names[layer_id][0]
    if len(trace.calls[layer_id]) > 1 or len(names[layer_id]) > 1 or layer._forward_hooks:
        return None, SHARED_MODULE, (f"{lname} runs {len(trace.calls[layer_id])} times per "
                                     f"forward, is registered under several names, or has "
                                     f"forward hooks")
    if trace.readers[id(z)] > 1:      # 0: nothing the outputs depend on reads the BN's output
        return None, OUTPUT_SHARED, (f"the output of {lname} is also read by "
                                     f"{trace.readers[id(z)] - 1} other operation(s), which "
                                     f"need it before normalisation")
    channel_axis_ok = (z.ndim == 2 if isinstance(layer, Linear)
                       else z.ndim == len(layer.kernel_size) + 2)
    if not channel_axis_ok:
        return None, LAYOUT, (f"{lname}'s output {z.shape} does not carry its output channels "
                              f"on axis 1, where {name} normalises")
    return layer_id, "", ""


def _replace(net: Module, dotted: str, new: Module) -> None:
    """Put ``new`` in the place of the submodule ``dotted``, keeping its position."""
    parent_name, _, leaf = dotted.rpartition(".")
    parent = net.get_submodule(parent_name)
    parent._modules[leaf] = new


def _eval_only(self: Module, mode: bool = True) -> Module:
    if mode:
        raise RuntimeError(f"this {type(self).__name__} has its batch norm folded into its "
                           f"convolutions (cnnlab.nn.utils.fold_batchnorm) and is for inference "
                           f"only; train the original model instead")
    return type(self).train(self, False)


def fold_batchnorm(model: Module, example_input: Any, check: bool = True) -> Module:
    """An eval-only copy of ``model`` whose convolutions absorb the batch norm after them.

    Every BatchNorm1d / BatchNorm2d whose input is the output of a convolution
    (Conv1d, Conv2d, ConvTranspose2d, any groups) or of a Linear layer, and is read
    by nothing else, is folded into that layer (see the module docstring for the
    formula; a layer without bias gains one) and replaced by ``Identity``.  In eval
    mode the copy computes what ``model`` computes, up to rounding, with one pass
    over memory less per folded layer.

    How the pairs are found: the copy runs one forward pass on ``example_input``
    in eval mode, with a forward hook on every leaf layer recording the Tensors it
    receives and returns, and a graph recorded from an input that requires a
    gradient.  A BN is folded into layer L only if the Tensor the BN received *is*
    the Tensor L returned (the same object, so nothing ran between them: not a
    ReLU, not a shortcut addition, not a concatenation), and if walking the graph
    back from the model's outputs finds no other operation reading that Tensor (a
    shortcut that also takes the conv's output keeps its BN).  Names and the
    order of registration play no part.  BN layers are kept, and reported, when:

    * they have no running statistics (``track_running_stats=False``): they
      normalise by each batch's own statistics even in eval mode;
    * their input comes from anything but a conv or linear layer: a ReLU (the
      pre-activation order BN -> ReLU -> conv of DenseNet could only fold into
      the *following* conv if nothing non-linear sat between them, and zero
      padding would then pad with 0 where the BN would have given t), a
      concatenation, the model input...;
    * the conv's output is read elsewhere too, the layer or the BN runs more than
      once per forward or is registered under two names, or either has forward
      hooks (they would see different values);
    * the forward does not run them in eval mode (GoogLeNet's auxiliary heads).

    The pairing holds for every input as long as the forward's path through the
    layers does not depend on the data, as in every model of the zoo.

    Parameters
    ----------
    model : Module
        Left unchanged (its mode too).
    example_input : Tensor or ndarray
        One input the model accepts, e.g. a batch of one image (N, C, H, W); only
        its path through the layers matters.
    check : bool, default True
        Run the folded copy on ``example_input`` and require the original's output,
        within 1e-3 of its largest value in float32 (1e-8 in float64), else
        :class:`FoldError` (a RuntimeError); this catches a dependency the graph
        does not show (an op reading ``.data``), at the cost of one more forward.

    Returns
    -------
    Module
        A deep copy in eval mode; calling ``.train()`` on it raises RuntimeError.
        Its ``fold_report`` attribute is a :class:`FoldReport`: the ``(layer, bn)``
        names folded, and each BN kept with the reason.

    Examples
    --------
    >>> fast = fold_batchnorm(model, x[:1])          # doctest: +SKIP
    >>> print(fast.fold_report.summary())            # doctest: +SKIP
    batch norm: folded 6 of 6 layers into the conv or linear layer before them
    """
    if not isinstance(model, Module):
        raise TypeError(f"fold_batchnorm expects a cnnlab Module, got {type(model).__name__}")
    net = copy.deepcopy(model).eval()
    object.__setattr__(net, "train", types.MethodType(_eval_only, net))
    report = FoldReport()
    object.__setattr__(net, "fold_report", report)
    names: dict[int, list[str]] = {}
    modules: dict[int, Module] = {}
    for name, m in net.named_modules():
        names.setdefault(id(m), []).append(name)
        modules[id(m)] = m
    bns = [i for i, m in modules.items() if isinstance(m, BATCHNORM_TYPES)]
    if not bns:
        return net
    x = Tensor(example_input.data if isinstance(example_input, Tensor) else example_input,
               requires_grad=True)
    trace = _trace(net, x)
    reference = [t.data.copy() for t in _tensors_in(trace.output)]
    plan = []
    for bn_id in bns:
        layer_id, reason, detail = _pair_for(bn_id, x, trace, names, modules)
        if layer_id is None:
            report.kept.append((names[bn_id][0], reason, detail))
        else:
            plan.append((layer_id, bn_id))
    del trace
    for layer_id, bn_id in plan:
        _fold_into(modules[layer_id], modules[bn_id])
        _replace(net, names[bn_id][0], Identity())
        report.folded.append((names[layer_id][0], names[bn_id][0]))
    if check and plan:
        _check_same(net, x, reference)
    return net


def _check_same(net: Module, x: Tensor, reference: list[np.ndarray]) -> None:
    with no_grad():
        got = [t.data for t in _tensors_in(net(Tensor(x.data)))]
    same = len(got) == len(reference) and all(
        out.shape == ref.shape and np.array_equal(np.isnan(out), np.isnan(ref))
        for out, ref in zip(got, reference))
    if same:
        for out, ref in zip(got, reference):
            tol = 1e-8 if ref.dtype == np.float64 else 1e-3
            scale = max(float(np.nanmax(np.abs(ref), initial=0.0)), np.finfo(ref.dtype).tiny)
            diff = float(np.nanmax(np.abs(out - ref), initial=0.0))
            same = same and diff <= tol * scale
    if not same:
        raise FoldError(
            f"fold_batchnorm: the folded {type(net).__name__} does not reproduce the original "
            f"on the example input (outputs {[o.shape for o in got]} against "
            f"{[r.shape for r in reference]}); its forward probably reads a layer's output "
            f"outside the graph (through .data): evaluate it unfolded")
