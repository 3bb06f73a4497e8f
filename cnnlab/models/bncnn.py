"""A small VGG-style CNN with batch normalisation, for 28x28 images.

The notes' recipe (003): conv -> BN -> ReLU, pooling between stages, BN before
the non-linearity, dropout only in the classifier.  It is the "5 Conv+BN+pooling"
kind of network in Fashion-MNIST's benchmark table, sized to train in minutes on
two CPU cores::

    28x28xC  -> [conv3 w, BN, ReLU] x2 -> pool 2 -> 14x14xw
             -> [conv3 2w, BN, ReLU] x2 -> pool 2 -> 7x7x2w
             -> conv3 4w, BN, ReLU      -> pool 2 -> 3x3x4w
             -> FC 256, BN, ReLU, dropout 0.3 -> FC classes
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import (
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from cnnlab.nn.module import Module

__all__ = ["BNCNN", "bn_cnn"]


def _conv_bn_relu(cin: int, cout: int) -> list[Module]:
    # no conv bias: the BN's beta that follows takes its place
    return [Conv2d(cin, cout, 3, padding=1, bias=False), BatchNorm2d(cout), ReLU()]


class BNCNN(Module):
    """Five 3x3 conv+BN+ReLU layers in three pooled stages, then a BN'd FC classifier.

    Parameters
    ----------
    num_classes, in_channels : int
    input_size : int
        Square input side, >= 8; the classifier sees ``input_size // 8`` squared positions.
    width : int
        Channels of the first stage (then 2x and 4x).
    dropout : float
        Dropout before the last FC layer.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
                 width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        if input_size < 8:
            raise ValueError(f"BNCNN needs an input of at least 8x8, got {input_size}")
        w = width
        self.features = Sequential(
            *_conv_bn_relu(in_channels, w), *_conv_bn_relu(w, w), MaxPool2d(2),
            *_conv_bn_relu(w, 2 * w), *_conv_bn_relu(2 * w, 2 * w), MaxPool2d(2),
            *_conv_bn_relu(2 * w, 4 * w), MaxPool2d(2),
        )
        side = input_size // 2 // 2 // 2
        self.flatten = Flatten()
        self.classifier = Sequential(
            Linear(4 * w * side * side, 256, bias=False), BatchNorm1d(256), ReLU(), Dropout(dropout),
            Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.features(x)))


def bn_cnn(num_classes: int = 10, in_channels: int = 1, input_size: int = 28, width: int = 32) -> BNCNN:
    return BNCNN(num_classes, in_channels, input_size, width)
