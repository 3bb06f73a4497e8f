"""Data pipeline: IDX files, in-memory datasets, batch transforms and ``DataLoader``.

Everything is NumPy, NCHW, and reproducible; nothing is downloaded.
"""
from cnnlab.data.datasets import (
    DATASET_NAMES,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    ArrayDataset,
    dataset_stats,
    get_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
)
from cnnlab.data.idx import IDX_DTYPES, IDXFormatError, read_idx, write_idx
from cnnlab.data.loader import DataLoader
from cnnlab.data.transforms import Compose, Normalize, Pad, Resize, Transform

__all__ = [
    "DATASET_NAMES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IDX_DTYPES",
    "ArrayDataset",
    "Compose",
    "DataLoader",
    "IDXFormatError",
    "Normalize",
    "Pad",
    "Resize",
    "Transform",
    "dataset_stats",
    "get_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "write_idx",
]
