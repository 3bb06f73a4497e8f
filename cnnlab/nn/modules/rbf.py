"""LeNet-5's Euclidean radial-basis-function output layer (the notes, 002).

LeCun et al. (1998), section II-B, eq. (7): one output unit per class, each
computing the squared Euclidean distance between its input vector (the 84
F6 activations) and its parameter vector:

    y_i = sum_j (x_j - w_ij)^2

The output is a penalty, not a score: the predicted class is
``argmin_i y_i``.  Train it with ``F.cross_entropy(-y, target)``, which is
y_t + log sum_i exp(-y_i): LeCun's MAP criterion (eq. 9) with the constant
"rubbish class" term dropped.  LeCun chose the centres by hand as +-1 bitmaps
of 7x12 stylised characters and kept them fixed; here they are random +-1 by
default (or given with ``centres=``), and trainable unless you call
``layer.weight.requires_grad_(False)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module
from cnnlab.nn.parameter import Parameter
from cnnlab.random import get_rng


class RBFOutput(Module):
    """Euclidean RBF units: input (N, in_features) -> penalties (N, num_classes).

    Parameters
    ----------
    in_features : int
        Size of each input vector (84 in LeNet-5).
    num_classes : int
        Number of RBF units, one per class.
    centres : array_like (num_classes, in_features), optional
        Initial centres (e.g. LeCun's +-1 character bitmaps).  Default: each
        entry +1 or -1 with probability 1/2 from :func:`cnnlab.random.get_rng`.
    dtype : numpy dtype
        Parameter dtype (float32 by default).

    Attributes
    ----------
    weight : Parameter (num_classes, in_features)
        The centres w_i; y_i = ||x - w_i||^2.
    """

    def __init__(self, in_features: int, num_classes: int, centres: Any = None,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        if int(in_features) <= 0 or int(num_classes) <= 0:
            raise ValueError(f"RBFOutput: in_features and num_classes must be positive, got "
                             f"in_features={in_features}, num_classes={num_classes}")
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        self.weight = Parameter(np.empty((self.num_classes, self.in_features), dtype=dtype))
        self.reset_parameters(centres)

    def reset_parameters(self, centres: Any = None) -> None:
        """Random +-1 centres, or a copy of ``centres``."""
        if centres is None:
            signs = get_rng().integers(0, 2, size=self.weight.shape) * 2 - 1
            self.weight.data[...] = signs
            return
        c = np.asarray(centres.data if isinstance(centres, Tensor) else centres)
        if c.shape != self.weight.shape:
            raise ValueError(f"RBFOutput: centres must have shape {self.weight.shape} "
                             f"(num_classes, in_features), got {c.shape}")
        self.weight.data[...] = c

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input (N, {self.in_features}), got {x.shape}")
        return F.rbf_output(x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


__all__ = ["RBFOutput"]
