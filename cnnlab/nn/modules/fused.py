"""A layer and the ReLU after it as one autograd node, when nothing a user can see changes.

``Sequential`` asks :func:`relu_fusion` about each layer followed by a ``ReLU``;
models that call their layers one by one (ResNet's blocks, GoogLeNet's, DenseNet's)
use :func:`relu_after`, :func:`conv_bn_relu` and :func:`relu_of_sum`.  The fused
nodes (``Conv2dReLU``, ``LinearReLU``, ``BatchNormReLU``, ``AddReLU``) give exactly
the two layers' values and gradients: ``tests/test_fused_relu.py``.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from cnnlab.autograd.activation_ops import AddReLU
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module
from cnnlab.nn.modules.activation import ReLU
from cnnlab.nn.modules.linear import Identity


def relu_fusion(m: Module, nxt: Module) -> Callable[[Any], Any] | None:
    """``m`` and the ``ReLU`` after it as one call, when that changes nothing a user can see.

    A layer whose class defines ``forward_relu`` (Conv1d, Conv2d, Linear, BatchNorm1d,
    BatchNorm2d) computes
    relu(layer(x)) as one autograd node: the ReLU taken in the layer's output pass
    and its gradient in the layer's backward, one pass over memory and one node
    fewer.  Its values and gradients are exactly the two layers' (tested), and the
    ReLU backward modes of guided backprop and DeconvNet apply to it.  Only with no
    forward hook on either module, so summaries, feature capture, ONNX export and
    BN folding see both layers; and only for the exact classes (a subclass may
    change ``forward``) and a plain ``ReLU``.
    """
    if type(nxt) is not ReLU or nxt._forward_hooks or m._forward_hooks:
        return None
    fused = type(m).__dict__.get("forward_relu")
    return None if fused is None else partial(fused, m)


def relu_after(m: Module, relu: Module, x: Any) -> Any:
    """``relu(m(x))``, computed as one node where ``Sequential`` would fuse the pair
    (see :func:`relu_fusion`); for models that call their layers one by one."""
    fused = relu_fusion(m, relu)
    return fused(x) if fused is not None else relu(m(x))


def conv_bn_relu(conv: Module, bn: Module, relu: Module, x: Any) -> Any:
    """``relu(bn(conv(x)))`` with the ReLU fused into the batch norm, or into the
    convolution once ``fold_batchnorm`` has replaced the batch norm by an ``Identity``."""
    if type(bn) is Identity and not bn._forward_hooks:
        return relu_after(conv, relu, x)
    return relu_after(bn, relu, conv(x))


def relu_of_sum(relu: Module, a: Any, b: Any) -> Any:
    """``relu(a + b)``, as one node (:class:`~cnnlab.autograd.activation_ops.AddReLU`)
    when ``relu`` is a plain hook-free ``ReLU`` and a, b are tensors of one shape
    and dtype: a residual block's sum and the ReLU after it."""
    if (type(relu) is ReLU and not relu._forward_hooks and isinstance(a, Tensor)
            and isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype):
        return AddReLU.apply(a, b)
    return relu(a + b)
