"""The model zoo: ``get_model(name, **kw)`` and ``list_models()``.

Every builder takes ``num_classes``, ``in_channels`` and ``input_size``;
module names follow torchvision where torchvision has the model.
"""
from __future__ import annotations

from typing import Callable

from cnnlab.models.alexnet import AlexNet, alexnet, alexnet_original, zfnet
from cnnlab.models.bncnn import BNCNN, bn_cnn
from cnnlab.models.densenet import DenseNet, densenet121, densenet169, densenet_bc_100_12
from cnnlab.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet, googlenet_loss
from cnnlab.models.heads import find_head, replace_head
from cnnlab.models.lenet import DigitsCNN, LeNet5, LeNet5_1998, digits_cnn, lenet5, lenet5_1998
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
from cnnlab.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg11_lrn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg16_c,
    vgg19,
    vgg19_bn,
)
from cnnlab.nn.module import Module

_REGISTRY: dict[str, Callable[..., Module]] = {
    f.__name__: f for f in (
        alexnet, alexnet_original, allconv, bn_cnn, densenet121, densenet169, densenet_bc_100_12,
        digits_cnn, googlenet, lenet5, lenet5_1998, nin, resnet18, resnet20, resnet32, resnet34, resnet44,
        resnet50, resnet56, resnet101, resnet110, resnet152, vgg11, vgg11_bn, vgg11_lrn, vgg13,
        vgg13_bn, vgg16, vgg16_bn, vgg16_c, vgg19, vgg19_bn, zfnet)
}

# The smallest square input each model accepts, and whether smaller images are
# brought up to it by zero padding (LeNet-5 1998: MNIST's 28x28 padded to 32, as
# in the paper) or by bilinear resizing.  ``cnnlab train`` uses this.
MIN_INPUT_SIZE: dict[str, tuple[int, str]] = {
    "bn_cnn": (8, "resize"), "lenet5": (20, "resize"), "lenet5_1998": (32, "pad"),
    "digits_cnn": (8, "resize"),
    "alexnet": (64, "resize"), "alexnet_original": (99, "resize"), "zfnet": (64, "resize"),
    "googlenet": (64, "resize"), "nin": (28, "resize"), "allconv": (28, "resize"),
    **{f"vgg{v}": (32, "resize") for v in ("11", "11_bn", "11_lrn", "13", "13_bn", "16",
                                           "16_bn", "16_c", "19", "19_bn")},
    **{f"resnet{d}": (28, "resize") for d in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110)},
    "densenet121": (28, "resize"), "densenet169": (28, "resize"),
    "densenet_bc_100_12": (16, "resize"),
}


def default_input_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) a model is built for when not told otherwise: its builder's own
    ``in_channels`` and ``input_size`` defaults (3x227x227 for alexnet_original)."""
    import inspect

    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        get_model(name)    # the registry's error for an unknown name
    params = inspect.signature(_REGISTRY[key]).parameters
    side = int(params["input_size"].default) if "input_size" in params else 224
    channels = int(params["in_channels"].default) if "in_channels" in params else 3
    return channels, side, side


def input_size_for(name: str, size: int) -> tuple[int, str | None]:
    """(size the model gets, 'pad'/'resize'/None) for images of ``size`` pixels."""
    need, how = MIN_INPUT_SIZE.get(name.lower().replace("-", "_"), (size, "resize"))
    if size >= need:
        return size, None
    # padding suits a small shortfall (MNIST's 28 -> 32); a tiny image is resized instead
    return need, ("pad" if how == "pad" and need - size <= 4 else "resize")


def list_models() -> list[str]:
    """Names accepted by :func:`get_model`."""
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs) -> Module:
    """Build a model by name, e.g. ``get_model('resnet20', num_classes=10)``."""
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[key](**kwargs)


__all__ = ["MIN_INPUT_SIZE", "NIN", "VGG", "AllConvNet", "AlexNet", "BNCNN", "CifarResNet", "DenseNet",
           "DigitsCNN", "GoogLeNet", "GoogLeNetOutputs", "LeNet5", "LeNet5_1998", "ResNet",
           "default_input_shape", "find_head", "get_model", "googlenet_loss", "input_size_for",
           "list_models", "replace_head",
           *_REGISTRY]
