"""``cnnlab.utils``: ``cnnlab.utils.data`` holds PyTorch's dataset and loader API."""
from cnnlab.utils import data

__all__ = ["data"]
