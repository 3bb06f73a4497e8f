"""Turn a trained classifier into a fully convolutional network (the notes, 000/001,
"Converting FC layers to CONV layers").

An FC layer that looks at a whole C x H x W volume is a convolution whose kernel
is exactly H x W: its weight row for output k, reshaped to (C, H, W), is the
filter.  On AlexNet at 224 x 224 the first FC layer sees 6 x 6 x 256 (VGG:
7 x 7 x 512) and becomes a 6 x 6 (7 x 7) convolution; every later FC layer sees
a 1 x 1 x F "volume" and becomes a 1 x 1 convolution.  The converted network
gives the same scores at the training size, as an (N, K, 1, 1) map, and on a
larger image it returns an (N, K, h, w) map of class scores: one evaluation of
the original network per position of a window slid with the network's total
stride, computed in a single forward pass that shares all the work the
overlapping windows have in common.

    conv = fc_to_conv(model, (1, 28, 28))     # a deep copy; ``model`` is untouched
    scores = conv(big_images)                 # (N, K, h, w)
    sh, sw = total_stride(model, (1, 28, 28))  # cell (i, j) <-> crop at (i*sh, j*sw)
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn import (
    ELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LocallyConnected2d,
    MaxPool2d,
    Module,
    ReLU,
    ScaledTanh,
    Sequential,
    Sigmoid,
    Softmax,
    Subsample2d,
    Tanh,
)
from cnnlab.nn._args import pair
from cnnlab.nn.capture import forward_hooks, leaf_modules
from cnnlab.random import get_rng_state, set_rng_state

# Layers that act on each feature independently: after a Flatten they are kept
# unchanged, since a feature of the flat vector is a channel of the score map.
_ELEMENTWISE = (ReLU, LeakyReLU, ELU, Sigmoid, Tanh, ScaledTanh, Dropout, Identity)


@dataclass
class _Call:
    name: str
    module: Module
    input: Any
    output: Any


def _check_input_size(input_size: Sequence[int]) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in input_size)
    except (TypeError, ValueError) as e:
        raise ValueError(f"input_size must be (C, H, W), the size the model was trained on, "
                         f"got {input_size!r}") from e
    if min(c, h, w) < 1:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    return c, h, w


def _model_dtype(model: Module) -> np.dtype:
    for p in model.parameters():
        if np.issubdtype(p.data.dtype, np.floating):
            return p.data.dtype
    return np.dtype(np.float32)


def _trace_chain(model: Module, input_size: tuple[int, int, int]
                 ) -> tuple[list[_Call], Tensor, Any]:
    """Run ``model`` (which must be in eval mode) once on a random input of
    ``input_size`` and return its leaf-module calls in order, the input and the
    output.  Raises ValueError unless the calls form a chain: each leaf's input is
    the previous leaf's output (the first one's is the model input) and the
    model's output is the last leaf's output."""
    names = {id(m): n for n, m in model.named_modules()}
    calls: list[_Call] = []

    def hook(module: Module, args: tuple, out: Any) -> None:
        if len(args) != 1:
            raise ValueError(f"fc_to_conv: layer {names[id(module)]!r} "
                             f"({type(module).__name__}) takes {len(args)} inputs; only chains "
                             f"of one-input layers can be converted")
        calls.append(_Call(names[id(module)], module, args[0], out))

    x = Tensor(np.random.default_rng(0).standard_normal((1, *input_size))
               .astype(_model_dtype(model)))
    with forward_hooks(leaf_modules(model), hook), no_grad():
        out = model(x)

    what = (f"{type(model).__name__} is not a plain chain of layers, so it cannot be "
            f"converted layer by layer")
    if not calls:
        raise ValueError(f"fc_to_conv: {what}: its forward calls no layer")
    prev_name, prev_out = "the model input", x
    for c in calls:
        if c.input is not prev_out:
            raise ValueError(
                f"fc_to_conv: {what}: the input of {c.name!r} ({type(c.module).__name__}) is "
                f"not the output of {prev_name} -- its forward computes something outside "
                f"its layers (a residual addition, a concatenation, a branch or a functional "
                f"op); convert such a model by hand")
        prev_name, prev_out = f"{c.name!r} ({type(c.module).__name__})", c.output
    if out is not prev_out:
        raise ValueError(f"fc_to_conv: {what}: its output is not the output of its last layer "
                         f"{prev_name} -- the forward transforms it outside any layer")
    return calls, x, out


def _linear_as_conv(lin: Linear, channels: int, kernel: tuple[int, int],
                    weight: np.ndarray | None = None) -> Conv2d:
    """A Conv2d computing ``lin`` on a (channels, *kernel) volume; ``weight``
    overrides lin.weight reshaped (used when an average pool is folded in)."""
    w = lin.weight.data if weight is None else weight
    conv = Conv2d(channels, lin.out_features, kernel, bias=lin.bias is not None,
                  dtype=w.dtype)
    conv.weight.data = np.array(w, copy=True).reshape(lin.out_features, channels, *kernel)
    conv.weight.requires_grad = lin.weight.requires_grad
    if lin.bias is not None:
        conv.bias.data = lin.bias.data.copy()
        conv.bias.requires_grad = lin.bias.requires_grad
    return conv


def _fold_avg_pool(pool: Module, in_hw: tuple[int, int], out_hw: tuple[int, int],
                   weight: np.ndarray, channels: int) -> np.ndarray:
    """Weight of the Linear after ``pool`` (an adaptive average pool from in_hw to
    out_hw, then Flatten) expressed on the un-pooled map: the pool is linear, so
    Linear(pool(x)) = x . W' with W'[o, c, u, v] = sum_ij W[o, c, i, j] A[(u, v), (i, j)],
    A being the pool's matrix, read off by pooling the one-hot images."""
    (h, w), (p, q) = in_hw, out_hw
    basis = Tensor(np.eye(h * w, dtype=weight.dtype).reshape(h * w, 1, h, w))
    with no_grad():
        a = pool(basis).data.reshape(h * w, p * q)                  # A[(u, v), (i, j)]
    wt = weight.reshape(weight.shape[0], channels, p * q)
    return (wt @ a.T).reshape(weight.shape[0], channels, h, w)


def fc_to_conv(model: Module, input_size: Sequence[int]) -> Sequential:
    """A fully convolutional deep copy of ``model``, a chain of layers trained on
    ``input_size`` = (C, H, W) images.  ``model`` itself is not modified and the
    copy shares no arrays with it.

    The model is traced by one forward pass on ``input_size`` (forward hooks on
    its leaf modules), which must show a chain: each layer's input is the
    previous layer's output.  ``Sequential`` models and the zoo's
    ``classifier(flatten(avgpool(features(x))))`` models (LeNet5, DigitsCNN, VGG,
    AlexNet, NIN) are chains; ResNet, DenseNet and GoogLeNet are not (residual
    additions, concatenations) and get a ValueError saying so.  The result is a
    ``Sequential`` of the traced layers in call order (named after them, '.'
    replaced by '_'), with these substitutions:

    * ``Linear`` fed through a ``Flatten`` by a C x H x W volume -> an H x W
      ``Conv2d`` (C -> out), weight reshaped to (out, C, H, W), same bias;
      every later ``Linear`` (fed by 1 x 1 maps) -> a 1 x 1 ``Conv2d``.
    * ``Flatten`` -> ``Identity``.
    * ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d`` -- the one layer whose
      behaviour depends on the input size, which on a larger image would squash
      the map back to its fixed size and so cancel the sliding -- by this rule:
      (a) the identity at the training size (input map already of the output
      size, e.g. VGG's 7 x 7 pool at 224, AlexNet's 6 x 6 at 224) -> ``Identity``;
      (b) a global pool (output 1 x 1, e.g. NIN) -> an ``AvgPool2d`` /
      ``MaxPool2d`` with the training-size map as kernel and stride 1;
      (c) any other average pool followed (through ``Flatten`` and ``Dropout``
      only) by a ``Linear`` -> folded into that Linear's weight, which becomes a
      convolution over the *un-pooled* map (the pool is linear: W' = W A), e.g.
      AlexNet at 64 x 64, whose 1 x 1 map the pool copies to 6 x 6: the first FC
      becomes a 1 x 1 conv whose weight sums the 36 copies.  Anything else
      (an adaptive max pool that is none of these) raises ValueError.
    * After the ``Flatten``, layers acting feature by feature (ReLU, Dropout, ...)
      are kept; ``Softmax`` / ``LogSoftmax`` get ``dim=1`` (the channel axis);
      ``BatchNorm1d`` becomes a ``BatchNorm2d`` with the same parameters and
      statistics; any other layer there raises NotImplementedError.  Before it,
      layers are kept as they are (``LocallyConnected2d``, whose weights are tied
      to positions, cannot slide and raises).

    Parameters are copies, with their ``requires_grad``; each layer keeps its
    train/eval mode (``Dropout`` stays, and is the identity in eval).  The
    conversion checks itself: the copy's output on the tracing input must equal
    the original's, or RuntimeError.

    The sliding-window equality, with s = :func:`total_stride`, (H, W) the
    training size and ``out = fc_to_conv(model, (C, H, W))(x)`` for a larger x:

    * No layer pads (e.g. LeNet5 at 32 x 32): for every cell,
      ``out[:, :, i, j] == model(x[:, :, i*s:i*s+H, j*s:j*s+W])`` (equal up to
      the order of floating-point sums).  The crop offsets being multiples of s
      keeps every pooling grid aligned; cells exist for i = 0 .. (H' - H) // s
      (trailing rows that fit no whole window are dropped, as by the pools).
    * Only the first layer pads, by P (LeNet5 at 28 x 28 pads conv1 by 2): the
      converted net zero-pads the border of the whole image, not of each crop.
      With xp = x zero-padded by P and ``unpadded`` the model with that padding
      set to 0: ``out[:, :, i, j] == unpadded(xp[:, :, i*s:i*s+H+2P,
      j*s:j*s+W+2P])`` for every cell, which equals ``model(x[:, :, i*s:i*s+H,
      j*s:j*s+W])`` exactly when the P-pixel ring around that crop in xp is zero
      (e.g. digits on a black background with a margin of P).
    * Inner layers pad (VGG, AlexNet): in the converted net, inner zero padding
      happens only at the border of the whole image's maps, so a cell differs
      from the model on its crop wherever the crop model would have seen
      padding zeros and the converted net sees the neighbouring image.  That
      is the method (OverFeat, FCN): one forward pass, not a loop over crops.
    """
    size = _check_input_size(input_size)
    if not isinstance(model, Module):
        raise TypeError(f"fc_to_conv expects a cnnlab Module, got {type(model).__name__}")
    net = copy.deepcopy(model)
    modes = {id(m): m.training for m in net.modules()}
    net.eval()
    calls, x, ref = _trace_chain(net, size)
    rng_state = get_rng_state()   # new Conv2d layers draw an init we overwrite
    try:
        layers = _convert_calls(calls)
    finally:
        set_rng_state(rng_state)

    out = Sequential(OrderedDict((name, m) for name, m, _ in layers)).eval()
    with no_grad():
        got = out(x)
    if got.data.size != ref.data.size or not np.allclose(
            got.data.reshape(ref.data.shape), ref.data,
            rtol=1e-9 if ref.data.dtype == np.float64 else 1e-4,
            atol=1e-9 if ref.data.dtype == np.float64 else 1e-4):
        raise RuntimeError(f"fc_to_conv: the converted {type(model).__name__} does not "
                           f"reproduce the original on a {size} input (output {got.shape} "
                           f"vs {ref.shape}); please report this model")
    for _, m, source in layers:                   # each layer gets its source's train/eval mode
        m.train(modes[id(source)])
    object.__setattr__(out, "training", model.training)
    return out


def _convert_calls(calls: list[_Call]) -> list[tuple[str, Module, Module]]:
    """(name, new layer, traced layer it comes from) for each traced call."""
    layers: list[tuple[str, Module, Module]] = []
    used: dict[str, int] = {}
    flat: tuple[int, int, int] | None = None      # (C, H, W) volume a Flatten just flattened
    vector = False                                # past a Flatten: features = channels
    fold: tuple[_Call, tuple[int, int], tuple[int, int]] | None = None

    def add(call: _Call, module: Module) -> None:
        key = call.name.replace(".", "_") or "layer"
        used[key] = used.get(key, 0) + 1
        if used[key] > 1:
            key = f"{key}_{used[key] - 1}"
        layers.append((key, module, call.module))

    for c in calls:
        m, tin, tout = c.module, c.input, c.output
        label = f"{c.name!r} ({type(m).__name__})"
        if fold is not None and not isinstance(m, (Flatten, Dropout, Identity, Linear)):
            raise ValueError(f"fc_to_conv: the adaptive average pool {fold[0].name!r} is not "
                             f"the identity at the training size and is followed by {label}, "
                             f"not by a Linear it could be folded into")
        if isinstance(m, Flatten):
            if tin.ndim == 4:
                if vector or (m.start_dim % 4, m.end_dim % 4) != (1, 3):
                    raise ValueError(f"fc_to_conv: {label} flattens {tin.shape} other than "
                                     f"into (N, C*H*W)")
                flat, vector = tuple(tin.shape[1:]), True
            elif tin.ndim != 2:
                raise ValueError(f"fc_to_conv: {label} gets a {tin.ndim}-D input {tin.shape}")
            add(c, Identity())
        elif isinstance(m, Linear):
            if not vector or tin.ndim != 2:
                raise ValueError(f"fc_to_conv: {label} is applied to a {tin.shape} input; only "
                                 f"Linear layers fed by a flattened volume can be converted")
            if fold is not None:
                pool_call, in_hw, out_hw = fold
                weight = _fold_avg_pool(pool_call.module, in_hw, out_hw, m.weight.data, flat[0])
                add(c, _linear_as_conv(m, flat[0], in_hw, weight))
                fold = None
            elif flat is not None:
                add(c, _linear_as_conv(m, flat[0], flat[1:]))
            else:
                add(c, _linear_as_conv(m, m.in_features, (1, 1)))
            flat = None
        elif isinstance(m, (AdaptiveAvgPool2d, AdaptiveMaxPool2d)):
            if vector or tin.ndim != 4:
                raise ValueError(f"fc_to_conv: {label} gets input {tin.shape}, not a map")
            in_hw, out_hw = tuple(tin.shape[2:]), tuple(tout.shape[2:])
            if in_hw == out_hw and np.array_equal(tin.data, tout.data):
                add(c, Identity())                          # rule (a)
            elif out_hw == (1, 1):                               # rule (b)
                cls = AvgPool2d if isinstance(m, AdaptiveAvgPool2d) else MaxPool2d
                add(c, cls(in_hw, stride=1))
            elif isinstance(m, AdaptiveAvgPool2d):               # rule (c), at the next Linear
                fold = (c, in_hw, out_hw)
            else:
                raise ValueError(f"fc_to_conv: {label} maps {in_hw} to {out_hw} at the training "
                                 f"size; a max pool that is neither the identity nor global "
                                 f"cannot be made to slide")
        elif isinstance(m, (LocallyConnected2d, ConvTranspose2d)) and not vector:
            raise ValueError(f"fc_to_conv: {label} cannot slide over larger inputs "
                             f"(position-dependent weights or upsampling)")
        elif not vector:
            if getattr(m, "ceil_mode", False) and tin.ndim == 4 and _partial_window(m, tin.shape):
                raise ValueError(
                    f"fc_to_conv: {label} uses ceil_mode and its last window at the training size "
                    f"{tuple(tin.shape[2:])} is partial; on a larger input that window would be "
                    f"full, so the score map would not equal the model on each crop")
            add(c, m)
        elif isinstance(m, _ELEMENTWISE):
            add(c, m)
        elif isinstance(m, Softmax):                              # and LogSoftmax
            if tin.ndim != 2 or m.dim not in (1, -1):
                raise NotImplementedError(f"fc_to_conv: {label} with dim={m.dim} on {tin.shape}")
            new = copy.deepcopy(m)
            new.dim = 1
            add(c, new)
        elif isinstance(m, BatchNorm1d) and tin.ndim == 2:
            bn = BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats,
                             dtype=tin.dtype, bias=m.bias is not None)
            bn.load_state_dict(m.state_dict())
            add(c, bn)
        else:
            raise NotImplementedError(f"fc_to_conv: {label} after the Flatten has no "
                                      f"convolutional equivalent here (supported there: Linear, "
                                      f"element-wise activations, Dropout, Softmax, BatchNorm1d)")
    if fold is not None:
        raise ValueError(f"fc_to_conv: the adaptive average pool {fold[0].name!r} is not the "
                         f"identity at the training size and no Linear follows it")
    return layers


def total_stride(model: Module, input_size: Sequence[int]) -> tuple[int, int]:
    """(sh, sw): the network's downsampling factor, the product of the strides of
    its layers (convolutions, pools, ``Subsample2d``; the converted FC layers and
    the replaced adaptive pools have stride 1).  Cell (i, j) of the score map of
    ``fc_to_conv(model, input_size)`` is the window whose top-left corner is at
    (i*sh, j*sw) in the (first-layer padded) input; see :func:`fc_to_conv` for
    the exact rule.  ``model`` may be the original or the converted network; it
    is traced on a copy, so it is not modified.  LeNet5: (4, 4); AlexNet: (32, 32).
    """
    net = fc_to_conv(model, input_size)
    sh = sw = 1
    for name, m in net.named_children():
        if isinstance(m, ConvTranspose2d):
            raise ValueError(f"total_stride: {name!r} upsamples")
        stride = pair(m.kernel_size if isinstance(m, Subsample2d) else getattr(m, "stride", 1),
                      "stride")
        sh, sw = sh * stride[0], sw * stride[1]
    return sh, sw


__all__ = ["fc_to_conv", "total_stride"]


def _partial_window(m, in_shape: tuple[int, ...]) -> bool:
    """Whether a ceil-mode pool's last window runs past the padded input."""
    k = pair(m.kernel_size, "kernel_size")
    st = pair(m.stride or k, "stride")
    p = pair(getattr(m, "padding", 0), "padding")     # LPPool2d has no padding
    return any((in_shape[2 + a] + 2 * p[a] - k[a]) % st[a] != 0 for a in range(2))
