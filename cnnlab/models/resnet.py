"""ResNets: torchvision's ImageNet family and He et al.'s CIFAR family.

Module names and structure follow torchvision (``conv1``, ``bn1``, ``layer1``..``layer4``,
each block ``conv1``/``bn1``/``conv2``/``bn2`` and a ``downsample`` Sequential of a 1x1
conv and BN), so torchvision state dicts map one to one.  The notes: shortcuts, heavy
batch normalisation, and no FC layers at the end but one classifier after global
average pooling.
"""
from __future__ import annotations

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn import (
    AdaptiveAvgPool2d,
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
from cnnlab.nn.modules.fused import conv_bn_relu, relu_of_sum


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> Conv2d:
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> Conv2d:
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(Module):
    """Two 3x3 convs with BN; y = relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = BatchNorm2d(planes)
        self.relu = ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = BatchNorm2d(planes)
        self.add_module("downsample", downsample)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = conv_bn_relu(self.conv1, self.bn1, self.relu, x)
        out = self.bn2(self.conv2(out))
        return relu_of_sum(self.relu, out, identity)


class Bottleneck(Module):
    """1x1 reduce, 3x3 (stride here, as torchvision's v1.5), 1x1 expand by 4, with BN."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = BatchNorm2d(planes * self.expansion)
        self.relu = ReLU()
        self.add_module("downsample", downsample)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = conv_bn_relu(self.conv1, self.bn1, self.relu, x)
        out = conv_bn_relu(self.conv2, self.bn2, self.relu, out)
        out = self.bn3(self.conv3(out))
        return relu_of_sum(self.relu, out, identity)


def _init_resnet(model: Module) -> None:
    """torchvision's initialisation: He-normal (fan_out) convs, BN weight 1 bias 0."""
    for m in model.modules():
        if isinstance(m, Conv2d):
            nn_init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, BatchNorm2d):
            nn_init.ones_(m.weight)
            nn_init.zeros_(m.bias)


class ResNet(Module):
    """torchvision's ResNet: 7x7/2 stem, 3x3/2 max-pool, four stages, global average pool, FC.

    ``small_input=True`` (used automatically for inputs under 64 pixels) swaps the
    stem for a 3x3/1 conv without max-pool, so 28x28 or 32x32 images keep enough
    resolution; the parameter names stay torchvision's.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000, in_channels: int = 3, small_input: bool = False) -> None:
        super().__init__()
        self.inplanes = 64
        if small_input:
            self.conv1 = Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = BatchNorm2d(64)
        self.relu = ReLU()
        if small_input:
            self.add_module("maxpool", None)
        else:
            self.maxpool = MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.flatten = Flatten()
        self.fc = Linear(512 * block.expansion, num_classes)
        _init_resnet(self)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                    BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = conv_bn_relu(self.conv1, self.bn1, self.relu, x)
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


class CifarResNet(Module):
    """He et al.'s CIFAR ResNets (6n + 2 layers): a 3x3 conv to 16 maps, three stages of
    n basic blocks with 16, 32 and 64 maps (stride 2 between stages, 1x1 projection
    shortcuts), global average pooling and one FC layer."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CifarResNet depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = BatchNorm2d(16)
        self.relu = ReLU()
        self.layer1 = self._make_layer(16, n, 1)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.flatten = Flatten()
        self.fc = Linear(64, num_classes)
        _init_resnet(self)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = Sequential(conv1x1(self.inplanes, planes, stride), BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = conv_bn_relu(self.conv1, self.bn1, self.relu, x)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


def _resnet(block, layers, num_classes: int, in_channels: int, input_size: int) -> ResNet:
    return ResNet(block, layers, num_classes, in_channels, small_input=input_size < 64)


def resnet18(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> ResNet:
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, input_size)


def resnet34(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> ResNet:
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, input_size)


def resnet50(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, input_size)


def resnet101(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> ResNet:
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, input_size)


def resnet152(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> ResNet:
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, input_size)


def _cifar(depth: int):
    def build(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> CifarResNet:
        return CifarResNet(depth, num_classes, in_channels)
    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"CIFAR ResNet-{depth} ({(depth - 2) // 6} basic blocks per stage)."
    return build


resnet20, resnet32, resnet44, resnet56, resnet110 = (_cifar(d) for d in (20, 32, 44, 56, 110))
