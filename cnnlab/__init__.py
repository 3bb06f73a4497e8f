"""cnnlab: a convolutional-network framework written from scratch on NumPy.

Each layer depends only on the ones before it::

    kernels (pure NumPy) -> autograd (Tensor) -> nn -> models / optim -> training -> cli

``import cnnlab`` also imports the subpackages ``cnnlab.nn``, ``cnnlab.optim``,
``cnnlab.data`` and ``cnnlab.models``, as ``import torch`` does.  It changes nothing
else in the process: numba loads at the first kernel that uses it, and the glibc
allocator tuning the ``cnnlab`` command applies is :func:`tune_memory`, for library
users to call if they want it.
"""
from cnnlab import data, models, nn, optim
from cnnlab.autograd.tensor import (
    DEFAULT_DTYPE,
    Tensor,
    cat,
    enable_grad,
    is_grad_enabled,
    no_grad,
    stack,
    tensor,
)
from cnnlab.gradcheck import GradcheckError, gradcheck
from cnnlab.kernels._memory import tune_memory
from cnnlab.kernels._threads import get_num_threads, set_num_threads
from cnnlab.kernels.conv import conv_output_size
from cnnlab.random import get_rng_state, manual_seed, set_rng_state
from cnnlab.serialization import CheckpointError, load, save
from cnnlab.summary import summary  # noqa: E402  (the function shadows the module name, as intended)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DTYPE", "CheckpointError", "GradcheckError", "Tensor", "__version__", "cat", "stack",
    "conv_output_size", "data", "enable_grad", "get_num_threads", "get_rng_state", "gradcheck",
    "is_grad_enabled", "load", "manual_seed", "models", "nn", "no_grad", "optim", "save",
    "set_num_threads", "set_rng_state", "summary", "tensor", "tune_memory",
]
