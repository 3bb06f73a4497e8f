"""ONNX converters for the convolution family: Conv1d/2d, ConvTranspose2d, Linear,
the connection table, and the layers ONNX has no operator for, written as small
subgraphs of standard ones (locally connected, learned combination, RBF).

Padding is always resolved to explicit per-side pads for the traced input size, so
strided 'same' and 'full' convolutions keep their exact (possibly asymmetric) pads.
"""
from __future__ import annotations

import numpy as np

from cnnlab.nn import modules as M
from cnnlab.nn.functional_conv import _resolve_padding
from cnnlab.onnx.graph import GraphBuilder, pads_nd
from cnnlab.onnx.trace import converts


def _w(a) -> np.ndarray:
    return np.asarray(a.data if hasattr(a, "data") else a)


def _pads(layer, x_shape, kernel, stride, dilation) -> list[int]:
    return pads_nd(_resolve_padding(layer.padding if isinstance(layer.padding, str)
                                    else tuple(np.atleast_1d(layer.padding)),
                                    kernel, stride, dilation, tuple(x_shape[2:])))


def conv(g: GraphBuilder, x: str, weight: np.ndarray, bias, stride, pads, dilation,
         group: int = 1) -> str:
    inputs = [x, g.const(_w(weight), f"{g.scope}.weight")]
    if bias is not None:
        inputs.append(g.const(_w(bias), f"{g.scope}.bias"))
    return g.op("Conv", inputs, name=g.scope, kernel_shape=list(weight.shape[2:]),
                strides=list(stride), pads=list(pads), dilations=list(dilation), group=group)


@converts(M.Conv2d, M.Conv1d)
def _conv(g, m, names, tensors, out):
    pads = _pads(m, tensors[0].shape, m.kernel_size, m.stride, m.dilation)
    return conv(g, names[0], m.weight, m.bias, m.stride, pads, m.dilation, m.groups)


@converts(M.ConnectionTable)
def _connection_table(g, m, names, tensors, out):
    """A full convolution whose unconnected kernels are zero: exactly the table's sums."""
    w = _w(m.weight) * m.mask()
    pads = _pads(m, tensors[0].shape, m.kernel_size, m.stride, (1, 1))
    return conv(g, names[0], w, m.bias, m.stride, pads, (1, 1))


@converts(M.ConvTranspose2d)
def _conv_transpose(g, m, names, tensors, out):
    inputs = [names[0], g.const(_w(m.weight), f"{g.scope}.weight")]
    if m.bias is not None:
        inputs.append(g.const(_w(m.bias), f"{g.scope}.bias"))
    # output_padding from the traced output: forward(x, output_size) may have chosen it
    H, W = tensors[0].shape[2:]
    op = []
    for a, size in enumerate((H, W)):
        k, s, p, d = m.kernel_size[a], m.stride[a], m.padding[a], m.dilation[a]
        op.append(out.shape[2 + a] - ((size - 1) * s - 2 * p + d * (k - 1) + 1))
    return g.op("ConvTranspose", inputs, name=g.scope, kernel_shape=list(m.kernel_size),
                strides=list(m.stride), pads=[*m.padding, *m.padding], dilations=list(m.dilation),
                group=m.groups, output_padding=op)


@converts(M.Linear)
def _linear(g, m, names, tensors, out):
    if tensors[0].ndim == 2:
        w = g.const(_w(m.weight), f"{g.scope}.weight")
        inputs = [names[0], w] + ([g.const(_w(m.bias), f"{g.scope}.bias")] if m.bias is not None
                                  else [])
        return g.op("Gemm", inputs, name=g.scope, transB=1)
    wt = g.const(np.ascontiguousarray(_w(m.weight).T), f"{g.scope}.weight_t")   # (in, out)
    y = g.op("MatMul", [names[0], wt], name=g.scope)
    return y if m.bias is None else g.op("Add", [y, g.const(_w(m.bias), f"{g.scope}.bias")])


def patches(g: GraphBuilder, x: str, C: int, kernel, stride, pads, dilation) -> str:
    """(N, C, *spatial) -> (N, C * prod(kernel), *out) by a convolution with one-hot
    kernels: every output is one input value times 1 plus zeros, so exact."""
    K = int(np.prod(kernel))
    eye = np.eye(C * K, dtype=np.float32).reshape(C * K, C, *kernel)
    return g.op("Conv", [x, g.const(eye, f"{g.scope}.patch_kernels")],
                kernel_shape=list(kernel), strides=list(stride), pads=list(pads),
                dilations=list(dilation))


@converts(M.LocallyConnected2d, M.LocallyConnected1d)
def _locally_connected(g, m, names, tensors, out):
    """Unshared convolution: patches (N, L, 1, C K) times one (C K, O) matrix per
    output position L (a broadcast MatMul), then the per-position bias."""
    one_d = isinstance(m, M.LocallyConnected1d)
    kernel = (m.kernel_size,) if one_d else m.kernel_size
    stride = (m.stride,) if one_d else m.stride
    dilation = (m.dilation,) if one_d else m.dilation
    pads = _pads(m, tensors[0].shape, kernel, stride, dilation)
    O, C = m.out_channels, m.in_channels
    out_sp = tuple(out.shape[2:])
    L, CK = int(np.prod(out_sp)), C * int(np.prod(kernel))
    w = _w(m.weight).reshape(L, O, CK).transpose(0, 2, 1)           # (L, CK, O)
    p = patches(g, names[0], C, kernel, stride, pads, dilation)     # (N, CK, *out)
    p = g.op("Transpose", [g.reshape(p, [0, CK, L])], perm=[0, 2, 1])   # (N, L, CK)
    y = g.op("MatMul", [g.unsqueeze(p, [2]), g.const(np.ascontiguousarray(w),
                                                      f"{g.scope}.weight")], name=g.scope)
    y = g.op("Transpose", [g.reshape(y, [0, L, O])], perm=[0, 2, 1])    # (N, O, L)
    y = g.reshape(y, [0, O, *out_sp])
    return y if m.bias is None else g.op("Add", [y, g.const(_w(m.bias), f"{g.scope}.bias")])


@converts(M.LearnedCombination)
def _learned_combination(g, m, names, tensors, out):
    """u = sum_i alpha_ij (x_i * k_i) + b_j: a depthwise convolution, then a 1x1
    convolution whose (O, C) kernel is softmax(c) over the inputs, computed in the graph."""
    C, O = m.in_channels, m.out_channels
    pads = _pads(m, tensors[0].shape, m.kernel_size, m.stride, m.dilation)
    d = conv(g, names[0], m.weight, None, m.stride, pads, m.dilation, group=C)
    alpha = g.op("Softmax", [g.const(_w(m.c), f"{g.scope}.c")], axis=0)       # (C, O)
    k = g.reshape(g.op("Transpose", [alpha], perm=[1, 0]), [O, C, 1, 1])
    inputs = [d, k] + ([g.const(_w(m.bias), f"{g.scope}.bias")] if m.bias is not None else [])
    return g.op("Conv", inputs, kernel_shape=[1, 1])


@converts(M.RBFOutput)
def _rbf(g, m, names, tensors, out):
    """y[n, i] = sum_j (x[n, j] - w[i, j])^2 as written: (N, 1, F) - (K, F), squared, summed."""
    diff = g.op("Sub", [g.unsqueeze(names[0], [1]), g.const(_w(m.weight), f"{g.scope}.weight")])
    return g.reduce("ReduceSum", g.op("Mul", [diff, diff]), [2], keepdims=False)
