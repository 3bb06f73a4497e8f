"""The model zoo: ``get_model(name, **kw)`` and ``list_models()``."""
from __future__ import annotations

from typing import Callable

from cnnlab.models.lenet import DigitsCNN, LeNet5, digits_cnn, lenet5
from cnnlab.nn.module import Module

_REGISTRY: dict[str, Callable[..., Module]] = {
    "digits_cnn": digits_cnn,
    "lenet5": lenet5,
}


def list_models() -> list[str]:
    """Names accepted by :func:`get_model`."""
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs) -> Module:
    """Build a model by name, e.g. ``get_model('lenet5', num_classes=10, input_size=28)``."""
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[key](**kwargs)


__all__ = ["DigitsCNN", "LeNet5", "digits_cnn", "get_model", "lenet5", "list_models"]
