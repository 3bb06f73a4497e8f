"""DenseNet (Huang et al. 2017): every layer sees the concatenated maps of all
layers before it in its block.  torchvision's names and structure for
densenet121/169 (7,978,856 parameters for densenet121), and the CIFAR
DenseNet-BC-100 (growth 12) of the paper.
"""
from __future__ import annotations

from collections import OrderedDict

from cnnlab.autograd.tensor import Tensor, cat
from cnnlab.nn import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Sequential,
)
from cnnlab.nn import init as nn_init
from cnnlab.nn.modules.fused import relu_after


class DenseLayer(Module):
    """BN -> ReLU -> 1x1 conv (bn_size * growth) -> BN -> ReLU -> 3x3 conv (growth)."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = BatchNorm2d(num_input_features)
        self.relu1 = ReLU()
        self.conv1 = Conv2d(num_input_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = BatchNorm2d(bn_size * growth_rate)
        self.relu2 = ReLU()
        self.conv2 = Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = cat(features, 1)
        return self.conv2(relu_after(self.norm2, self.relu2,
                                      self.conv1(relu_after(self.norm1, self.relu1, x))))


class DenseBlock(Module):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int,
                 growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return cat(features, 1)


class Transition(Sequential):
    """BN -> ReLU -> 1x1 conv (compression) -> 2x2 average pool."""

    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__(OrderedDict([
            ("norm", BatchNorm2d(num_input_features)), ("relu", ReLU()),
            ("conv", Conv2d(num_input_features, num_output_features, 1, bias=False)),
            ("pool", AvgPool2d(2, stride=2))]))


class DenseNet(Module):
    def __init__(self, growth_rate: int, block_config: tuple[int, ...], num_init_features: int,
                 bn_size: int = 4, compression: float = 0.5, num_classes: int = 1000,
                 in_channels: int = 3, small_input: bool = False) -> None:
        super().__init__()
        if small_input:   # CIFAR: one 3x3 conv, no pooling, before the first block
            stem = [("conv0", Conv2d(in_channels, num_init_features, 3, padding=1, bias=False))]
        else:
            stem = [("conv0", Conv2d(in_channels, num_init_features, 7, stride=2, padding=3,
                                     bias=False)),
                    ("norm0", BatchNorm2d(num_init_features)), ("relu0", ReLU()),
                    ("pool0", MaxPool2d(3, stride=2, padding=1))]
        self.features = Sequential(OrderedDict(stem))
        n = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(num_layers, n, bn_size, growth_rate))
            n += num_layers * growth_rate
            if i != len(block_config) - 1:
                out = int(n * compression)
                self.features.add_module(f"transition{i + 1}", Transition(n, out))
                n = out
        self.features.add_module("norm5", BatchNorm2d(n))
        self.relu = ReLU()
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.flatten = Flatten()
        self.classifier = Linear(n, num_classes)
        for m in self.modules():   # torchvision's initialisation
            if isinstance(m, Conv2d):
                nn_init.kaiming_normal_(m.weight)
            elif isinstance(m, BatchNorm2d):
                nn_init.ones_(m.weight)
                nn_init.zeros_(m.bias)
            elif isinstance(m, Linear):
                nn_init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.features(x))
        return self.classifier(self.flatten(self.avgpool(x)))


def densenet121(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> DenseNet:
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels,
                    small_input=input_size < 64)


def densenet169(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> DenseNet:
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, in_channels=in_channels,
                    small_input=input_size < 64)


def densenet_bc_100_12(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> DenseNet:
    """DenseNet-BC, depth 100, growth 12: three blocks of 16 bottleneck layers, compression 0.5."""
    return DenseNet(12, (16, 16, 16), 24, num_classes=num_classes, in_channels=in_channels,
                    small_input=True)
