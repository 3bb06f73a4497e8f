"""cnnlab: a convolutional-network framework written from scratch on NumPy.

The layers below depend only on those above them::

    kernels (pure NumPy)  ->  autograd (Tensor)  ->  nn  ->  models / optim
                          ->  training  ->  cli
"""
from cnnlab.autograd.tensor import (
    DEFAULT_DTYPE,
    Tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
    tensor,
)
from cnnlab.gradcheck import GradcheckError, gradcheck
from cnnlab.kernels.conv import conv_output_size
from cnnlab.random import get_rng_state, manual_seed, set_rng_state
from cnnlab.serialization import CheckpointError, load, save

# Subpackages, so ``import cnnlab`` gives ``cnnlab.nn``, ``cnnlab.optim``, ...
from cnnlab import data, models, nn, optim  # noqa: E402

__version__ = "0.1.0"

__all__ = ["CheckpointError", "DEFAULT_DTYPE", "GradcheckError", "load", "save", "Tensor", "conv_output_size", "enable_grad",
           "get_rng_state", "gradcheck", "is_grad_enabled", "manual_seed", "no_grad",
           "set_rng_state", "tensor", "__version__", "data", "models", "nn", "optim"]
