"""Neural-network layers with PyTorch's names: ``cnnlab.nn.Conv2d`` etc."""
from cnnlab.nn import functional, init, utils
from cnnlab.nn.module import Module
from cnnlab.nn.modules import *  # noqa: F401,F403
from cnnlab.nn.modules import __all__ as _modules_all
from cnnlab.nn.parameter import Parameter

__all__ = ["Module", "Parameter", "functional", "init", "utils", *_modules_all]
