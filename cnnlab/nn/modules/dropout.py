"""Dropout."""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module


class Dropout(Module):
    """Zero each value with probability p in training (scaling the rest by
    1/(1-p)); the identity in eval.  AlexNet used p = 0.5."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, got {p}")
        self.p = p
        self.inplace = bool(inplace)   # PyTorch's signature; the output is a new tensor

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Module):
    """Zero each whole channel of (N, C, H, W), or unbatched (C, H, W), with
    probability p in training, scaling the kept channels by 1/(1-p); the
    identity in eval."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: probability has to be between 0 and 1, got {p}")
        self.p = p
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"{self!r} expects input (N, C, H, W) or (C, H, W), got {x.shape}")
        return F.dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


__all__ = ["Dropout", "Dropout2d"]
