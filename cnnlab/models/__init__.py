"""The model zoo: ``get_model(name, **kw)`` and ``list_models()``.

Every builder takes ``num_classes``, ``in_channels`` and ``input_size``;
module names follow torchvision where torchvision has the model.
"""
from __future__ import annotations

from typing import Callable

from cnnlab.models.alexnet import AlexNet, alexnet, alexnet_original, zfnet
from cnnlab.models.densenet import DenseNet, densenet121, densenet169, densenet_bc_100_12
from cnnlab.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet, googlenet_loss
from cnnlab.models.lenet import DigitsCNN, LeNet5, digits_cnn, lenet5
from cnnlab.models.nin import NIN, AllConvNet, allconv, nin
from cnnlab.models.resnet import (
    CifarResNet,
    ResNet,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet44,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
)
from cnnlab.models.vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from cnnlab.nn.module import Module

_REGISTRY: dict[str, Callable[..., Module]] = {
    f.__name__: f for f in (
        alexnet, alexnet_original, allconv, densenet121, densenet169, densenet_bc_100_12,
        digits_cnn, googlenet, lenet5, nin, resnet18, resnet20, resnet32, resnet34, resnet44,
        resnet50, resnet56, resnet101, resnet110, resnet152, vgg11, vgg11_bn, vgg13, vgg13_bn,
        vgg16, vgg16_bn, vgg19, vgg19_bn, zfnet)
}


def list_models() -> list[str]:
    """Names accepted by :func:`get_model`."""
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs) -> Module:
    """Build a model by name, e.g. ``get_model('resnet20', num_classes=10)``."""
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[key](**kwargs)


__all__ = ["NIN", "VGG", "AllConvNet", "AlexNet", "CifarResNet", "DenseNet", "DigitsCNN",
           "GoogLeNet", "GoogLeNetOutputs", "LeNet5", "ResNet", "get_model", "googlenet_loss",
           "list_models", *_REGISTRY]
