"""Data pipeline: IDX files, in-memory datasets, batch transforms, augmentation and ``DataLoader``.

Everything is NumPy, NCHW, and reproducible; nothing is downloaded.
"""
from cnnlab.data.augment import (
    AUGMENTATION_NAMES,
    IMAGENET_EIGVAL,
    IMAGENET_EIGVEC,
    CenterCrop,
    ColorJitter,
    Lighting,
    PCALighting,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    build_augmentation,
    pca_lighting_basis,
)
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
    "AUGMENTATION_NAMES",
    "DATASET_NAMES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IDX_DTYPES",
    "IMAGENET_EIGVAL",
    "IMAGENET_EIGVEC",
    "ArrayDataset",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "DataLoader",
    "IDXFormatError",
    "Lighting",
    "Normalize",
    "PCALighting",
    "Pad",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "Resize",
    "Transform",
    "build_augmentation",
    "dataset_stats",
    "get_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "pca_lighting_basis",
    "read_idx",
    "write_idx",
]
