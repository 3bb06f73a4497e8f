"""VGGNet (Simonyan & Zisserman): configurations A, B, D, E as torchvision's vgg11/13/16/19,
plus the paper's A-LRN (``vgg11_lrn``) and C (``vgg16_c``, with 1x1 convolutions).

The notes' sizing rules: 3x3 convs at stride 1 with 'same' padding, 2x2/2 max
pooling, three stacked 3x3 convs see as far as one 7x7 with fewer parameters.
Module names follow torchvision (``features``, ``avgpool``, ``classifier``), so
torchvision state dicts map one to one; vgg16 has 138,357,544 parameters.
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
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
from cnnlab.nn import init as nn_init

# "M" is a 2x2/2 max pool, "L" local response normalisation (configuration A-LRN),
# "1x1-N" a 1x1 convolution to N maps (configuration C).
CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "L", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, "1x1-256", "M", 512, 512, "1x1-512", "M",
          512, 512, "1x1-512", "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_features(cfg: list[int | str], in_channels: int = 3, batch_norm: bool = False) -> Sequential:
    layers: list[Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(MaxPool2d(2, 2))
        elif v == "L":   # the paper's LRN: size 5, alpha 1e-4, beta 0.75, k 2 (as AlexNet)
            layers.append(LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
        else:
            k = 1 if isinstance(v, str) else 3
            v = int(str(v).removeprefix("1x1-"))
            layers.append(Conv2d(c, v, k, padding=k // 2))
            if batch_norm:
                layers.append(BatchNorm2d(int(v)))
            layers.append(ReLU())
            c = int(v)
    return Sequential(*layers)


class VGG(Module):
    """features -> AdaptiveAvgPool2d(7x7) -> FC 4096 -> FC 4096 -> FC classes, with dropout."""

    def __init__(self, features: Sequential, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = AdaptiveAvgPool2d((7, 7))
        self.flatten = Flatten()
        self.classifier = Sequential(
            Linear(512 * 7 * 7, 4096), ReLU(), Dropout(dropout),
            Linear(4096, 4096), ReLU(), Dropout(dropout),
            Linear(4096, num_classes))
        for m in self.modules():   # torchvision's initialisation
            if isinstance(m, Conv2d):
                nn_init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn_init.zeros_(m.bias)
            elif isinstance(m, BatchNorm2d):
                nn_init.ones_(m.weight)
                nn_init.zeros_(m.bias)
            elif isinstance(m, Linear):
                nn_init.normal_(m.weight, 0.0, 0.01)
                nn_init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_channels: int) -> VGG:
    return VGG(make_features(CFGS[cfg], in_channels, batch_norm), num_classes)


def vgg11(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("A", False, num_classes, in_channels)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("A", True, num_classes, in_channels)


def vgg11_lrn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    """Configuration A-LRN: A with local response normalisation after the first conv."""
    return _vgg("A-LRN", False, num_classes, in_channels)


def vgg16_c(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    """Configuration C: 16 layers whose third conv in blocks 3-5 is 1x1."""
    return _vgg("C", False, num_classes, in_channels)


def vgg13(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("B", False, num_classes, in_channels)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("B", True, num_classes, in_channels)


def vgg16(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("D", False, num_classes, in_channels)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("D", True, num_classes, in_channels)


def vgg19(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("E", False, num_classes, in_channels)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VGG:
    return _vgg("E", True, num_classes, in_channels)
