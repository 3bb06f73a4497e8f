"""AlexNet (Krizhevsky et al. 2012) and ZFNet (Zeiler & Fergus 2013).

``alexnet`` is torchvision's single-tower layout (64-192-384-256-256 maps,
adaptive 6x6 pooling), so torchvision state dicts map one to one (61,100,840
parameters).  ``alexnet_original`` is the paper's network as the notes describe
it: 227x227 input, 96 filters of 11x11 at stride 4, local response
normalisation, overlapping 3x3/2 max pooling, the two-GPU split kept as
two-group convolutions in conv2, conv4 and conv5, and dropout 0.5 in the FC
layers.  ``zfnet`` is AlexNet with ZF's smaller, denser first layer: 7x7 at
stride 2.
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import (
    AdaptiveAvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
)


class AlexNet(Module):
    def __init__(self, features: Sequential, num_classes: int, flat: int, pool: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = AdaptiveAvgPool2d((pool, pool))
        self.flatten = Flatten()
        self.classifier = Sequential(
            Dropout(dropout), Linear(flat * pool * pool, 4096), ReLU(),
            Dropout(dropout), Linear(4096, 4096), ReLU(),
            Linear(4096, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def alexnet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> AlexNet:
    """torchvision's AlexNet (works from 63x63 up; smaller inputs lose every pixel
    to the stride-4 stem and three 3x3/2 pools)."""
    features = Sequential(
        Conv2d(in_channels, 64, 11, stride=4, padding=2), ReLU(), MaxPool2d(3, 2),
        Conv2d(64, 192, 5, padding=2), ReLU(), MaxPool2d(3, 2),
        Conv2d(192, 384, 3, padding=1), ReLU(),
        Conv2d(384, 256, 3, padding=1), ReLU(),
        Conv2d(256, 256, 3, padding=1), ReLU(), MaxPool2d(3, 2))
    return AlexNet(features, num_classes, 256, 6)


def alexnet_original(num_classes: int = 1000, in_channels: int = 3,
                     input_size: int = 227) -> AlexNet:
    """The 2012 paper: 227x227 -> conv 96@11x11/4 -> LRN -> pool 3/2 -> conv 256@5x5 (2 groups)
    -> LRN -> pool 3/2 -> conv 384@3x3 -> conv 384@3x3 (2 groups) -> conv 256@3x3 (2 groups)
    -> pool 3/2 -> FC 4096 -> FC 4096 -> FC classes.  LRN: size 5, alpha 1e-4, beta 0.75, k 2."""
    features = Sequential(
        Conv2d(in_channels, 96, 11, stride=4), ReLU(),
        LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), MaxPool2d(3, 2),
        Conv2d(96, 256, 5, padding=2, groups=2), ReLU(),
        LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), MaxPool2d(3, 2),
        Conv2d(256, 384, 3, padding=1), ReLU(),
        Conv2d(384, 384, 3, padding=1, groups=2), ReLU(),
        Conv2d(384, 256, 3, padding=1, groups=2), ReLU(), MaxPool2d(3, 2))
    return AlexNet(features, num_classes, 256, 6)


def zfnet(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> AlexNet:
    """ZFNet: conv 96@7x7/2 -> pool 3/2 -> LRN -> conv 256@5x5/2 -> pool 3/2 -> LRN ->
    384, 384, 256 @3x3 -> pool 3/2 -> FC 4096 -> FC 4096 -> FC classes."""
    lrn = dict(alpha=1e-4, beta=0.75, k=2.0)
    features = Sequential(
        Conv2d(in_channels, 96, 7, stride=2, padding=1), ReLU(), MaxPool2d(3, 2, padding=1),
        LocalResponseNorm(5, **lrn),
        Conv2d(96, 256, 5, stride=2), ReLU(), MaxPool2d(3, 2, padding=1),
        LocalResponseNorm(5, **lrn),
        Conv2d(256, 384, 3, padding=1), ReLU(),
        Conv2d(384, 384, 3, padding=1), ReLU(),
        Conv2d(384, 256, 3, padding=1), ReLU(), MaxPool2d(3, 2))
    return AlexNet(features, num_classes, 256, 6)
