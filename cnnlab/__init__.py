"""cnnlab: a convolutional-network framework written from scratch on NumPy.

Each layer depends only on the ones before it::

    kernels (pure NumPy) -> autograd (Tensor) -> nn -> models / optim -> training -> cli

PyTorch's names are here too (``cnnlab.flatten``, ``cnnlab.randperm``,
``cnnlab.float32``, ``cnnlab.device``, ``cnnlab.cuda.is_available()``...), so a
script written for torch runs after ``import cnnlab as torch``.

``import cnnlab`` also imports the subpackages ``cnnlab.nn``, ``cnnlab.optim``,
``cnnlab.data`` and ``cnnlab.models``, as ``import torch`` does.  It changes nothing
else in the process: numba loads at the first kernel that uses it, and the glibc
allocator tuning the ``cnnlab`` command applies is :func:`tune_memory`, for library
users to call if they want it.
"""
import numpy as np

from cnnlab import cuda, data, models, nn, optim, utils
from cnnlab.autograd.creation import (
    arange,
    as_tensor,
    empty,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from cnnlab.autograd.device import DeviceError, device
from cnnlab.autograd.functional import (
    abs,
    argmax,
    argmin,
    argsort,
    clamp,
    equal,
    exp,
    flatten,
    is_tensor,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    numel,
    permute,
    reshape,
    sort,
    sqrt,
    squeeze,
    std,
    sum,
    topk,
    transpose,
    unsqueeze,
    var,
    where,
)
from cnnlab.autograd.tensor import (
    DEFAULT_DTYPE,
    Size,
    Tensor,
    cat,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
    stack,
    tensor,
)
from cnnlab.gradcheck import GradcheckError, gradcheck
from cnnlab.kernels._memory import tune_memory
from cnnlab.kernels._threads import get_num_threads, set_num_threads
from cnnlab.kernels.conv import conv_output_size
from cnnlab.nn.functional import log_softmax, relu, sigmoid, softmax, tanh
from cnnlab.random import get_rng_state, manual_seed, set_rng_state
from cnnlab.serialization import CheckpointError, load, save
from cnnlab.summary import summary  # noqa: E402  (the function shadows the module name, as intended)

__version__ = "0.1.0"

# torch's dtype names are NumPy's types (``x.to(cnnlab.float64)``, ``dtype=cnnlab.long``)
float32 = float = np.float32
float64 = double = np.float64
float16 = half = np.float16
int64 = long = np.int64
int32 = np.int32
uint8 = np.uint8
bool = np.bool_

__all__ = [
    # cnnlab's own
    "DEFAULT_DTYPE", "CheckpointError", "GradcheckError", "Tensor", "__version__", "cat", "stack",
    "conv_output_size", "data", "enable_grad", "get_num_threads", "get_rng_state", "gradcheck",
    "is_grad_enabled", "load", "manual_seed", "models", "nn", "no_grad", "optim", "save",
    "set_num_threads", "set_rng_state", "summary", "tensor", "tune_memory",
    # PyTorch's module-level names
    "DeviceError", "Size", "abs", "arange", "argmax", "argmin", "as_tensor", "bool", "clamp",
    "inference_mode", "set_grad_enabled", "topk", "sort", "argsort",
    "cuda", "device", "double", "empty", "equal", "exp", "flatten", "float", "float16",
    "float32", "float64", "from_numpy", "full", "full_like", "half", "int32", "int64",
    "is_tensor", "linspace", "log", "log_softmax", "long", "matmul", "max", "maximum", "mean",
    "min", "minimum", "numel", "ones", "ones_like", "permute", "rand", "rand_like", "randint",
    "randn", "randn_like", "randperm", "relu", "reshape", "sigmoid", "softmax", "sqrt",
    "squeeze", "std", "sum", "tanh", "transpose", "uint8", "unsqueeze", "utils", "var", "where",
    "zeros", "zeros_like",
]
