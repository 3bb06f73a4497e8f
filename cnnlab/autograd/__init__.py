"""Reverse-mode automatic differentiation over NumPy arrays."""
from cnnlab.autograd.relu_modes import relu_backward_mode
from cnnlab.autograd.tensor import (
    DEFAULT_DTYPE,
    Function,
    Tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
    tensor,
)

__all__ = ["DEFAULT_DTYPE", "Function", "Tensor", "enable_grad", "is_grad_enabled", "no_grad",
           "relu_backward_mode", "tensor"]
