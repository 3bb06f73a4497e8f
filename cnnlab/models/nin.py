"""Network in Network (Lin et al. 2013) and All-CNN-C ("Striving for Simplicity",
Springenberg et al. 2014): the notes' two ways of dropping parts of the classic
pattern -- NIN's mlpconv blocks (a conv followed by 1x1 convs, a small MLP per
position) with global average pooling instead of FC layers, and All-CNN's
strided convolutions instead of pooling.
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import AdaptiveAvgPool2d, Conv2d, Dropout, Flatten, MaxPool2d, Module, ReLU, Sequential


def mlpconv(in_channels: int, out_channels: int, kernel_size: int, padding: int,
            stride: int = 1) -> Sequential:
    """A conv and two 1x1 convs, each followed by ReLU: an MLP slid over the map."""
    return Sequential(Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
                      ReLU(), Conv2d(out_channels, out_channels, 1), ReLU(),
                      Conv2d(out_channels, out_channels, 1), ReLU())


class NIN(Module):
    """Three mlpconv blocks (192, 160/96, 192 maps, the CIFAR-10 configuration) with
    3x3/2 max pooling and dropout between them; the last block has one map per class,
    averaged globally into the class scores."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = Sequential(
            Conv2d(in_channels, 192, 5, padding=2), ReLU(), Conv2d(192, 160, 1), ReLU(),
            Conv2d(160, 96, 1), ReLU(), MaxPool2d(3, 2, padding=1), Dropout(0.5),
            mlpconv(96, 192, 5, 2), MaxPool2d(3, 2, padding=1), Dropout(0.5),
            Conv2d(192, 192, 3, padding=1), ReLU(), Conv2d(192, 192, 1), ReLU(),
            Conv2d(192, num_classes, 1), ReLU())
        self.avgpool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten()

    def forward(self, x: Tensor) -> Tensor:
        return self.flatten(self.avgpool(self.features(x)))


class AllConvNet(Module):
    """All-CNN-C: 3x3 convs only, downsampling by 3x3 convs of stride 2 where
    pooling used to be, then 1x1 convs to one map per class and global averaging."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.features = Sequential(
            Dropout(0.2),
            Conv2d(in_channels, 96, 3, padding=1), ReLU(), Conv2d(96, 96, 3, padding=1), ReLU(),
            Conv2d(96, 96, 3, stride=2, padding=1), ReLU(), Dropout(0.5),
            Conv2d(96, 192, 3, padding=1), ReLU(), Conv2d(192, 192, 3, padding=1), ReLU(),
            Conv2d(192, 192, 3, stride=2, padding=1), ReLU(), Dropout(0.5),
            Conv2d(192, 192, 3, padding=1), ReLU(), Conv2d(192, 192, 1), ReLU(),
            Conv2d(192, num_classes, 1), ReLU())
        self.avgpool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten()

    def forward(self, x: Tensor) -> Tensor:
        return self.flatten(self.avgpool(self.features(x)))


def nin(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> NIN:
    return NIN(num_classes, in_channels)


def allconv(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> AllConvNet:
    return AllConvNet(num_classes, in_channels)
