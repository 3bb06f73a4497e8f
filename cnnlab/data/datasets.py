"""In-memory datasets: ``ArrayDataset`` and loaders for digits, MNIST, Fashion-MNIST.

Every loader returns an :class:`ArrayDataset` whose ``x`` is a float32 array in
NCHW layout with values in ``[0, 1]`` and whose ``y`` is an int64 label vector.
Nothing is downloaded: digits ship with scikit-learn, Fashion-MNIST comes from
the Debian package ``dataset-fashion-mnist`` and MNIST must be supplied by the
caller.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.data.idx import StrPath, read_idx

__all__ = [
    "DATASET_NAMES",
    "DIGIT_CLASSES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "ArrayDataset",
    "dataset_stats",
    "get_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_CLASSES: list[str] = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
DIGIT_CLASSES: list[str] = [str(i) for i in range(10)]

#: Canonical dataset names accepted by :func:`get_dataset` and :func:`dataset_stats`.
DATASET_NAMES: tuple[str, ...] = ("digits", "fashion-mnist", "mnist")

_SPLITS = ("train", "test")
# IDX file-name prefix of each split (the MNIST family calls the test split "t10k").
_IDX_PREFIX = {"train": "train", "test": "t10k"}


class ArrayDataset:
    """A dataset backed by two aligned arrays (like ``torch.utils.data.TensorDataset``).

    Parameters
    ----------
    x : array_like, shape (N, ...)
        Inputs, e.g. images (N, C, H, W).
    y : array_like, shape (N,) or (N, ...)
        Targets aligned with ``x``.
    classes : sequence of str, optional
        Class names, ``classes[k]`` naming label ``k``.

    Attributes
    ----------
    x, y : np.ndarray
        The arrays (not copied when already ndarrays); :class:`DataLoader`
        indexes them directly, one fancy-index per batch.
    classes : list of str or None
    """

    def __init__(self, x: np.ndarray, y: np.ndarray,
                 classes: Sequence[str] | None = None) -> None:
        x = np.asarray(x)
        y = np.asarray(y)
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(
                f"ArrayDataset: x and y must be at least 1-d, got shapes {x.shape} and {y.shape}"
            )
        if len(x) != len(y):
            raise ValueError(
                f"ArrayDataset: x and y must have the same length, got len(x)={len(x)} "
                f"and len(y)={len(y)}"
            )
        self.x: np.ndarray = x
        self.y: np.ndarray = y
        self.classes: list[str] | None = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x[index], y[index])``."""
        return self.x[index], self.y[index]

    def __repr__(self) -> str:
        return (f"ArrayDataset(n={len(self)}, x={self.x.shape} {self.x.dtype}, "
                f"y={self.y.shape} {self.y.dtype}, "
                f"classes={None if self.classes is None else len(self.classes)})")


def _check_split(split: str, func: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"{func}: split must be one of {list(_SPLITS)}, got {split!r}")


# --------------------------------------------------------------------- digits
def load_digits(split: str = "train", test_fraction: float = 0.2,
                seed: int = 0) -> ArrayDataset:
    """The 8x8 handwritten digits bundled with scikit-learn (1797 images).

    Parameters
    ----------
    split : {"train", "test"}
    test_fraction : float
        Fraction of the 1797 samples in the test split, in ``(0, 1)``.
    seed : int
        ``random_state`` of the split.

    Returns
    -------
    ArrayDataset
        ``x`` float32 (N, 1, 8, 8) in ``[0, 1]`` (raw values / 16), ``y`` int64
        (N,), classes ``'0'..'9'``.  The split is deterministic for a given
        ``(test_fraction, seed)`` and stratified by class; train and test are
        disjoint and together cover all 1797 samples.
    """
    _check_split(split, "load_digits")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    train_test_split = _sklearn("model_selection").train_test_split
    x, y = _digits_arrays()
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=float(test_fraction), stratify=y, random_state=seed
    )
    if split == "train":
        return ArrayDataset(x_tr, y_tr, DIGIT_CLASSES)
    return ArrayDataset(x_te, y_te, DIGIT_CLASSES)


def _sklearn(module: str):
    """Import ``sklearn.<module>``; scikit-learn is optional (the digits ship in its wheel)."""
    import importlib

    try:
        return importlib.import_module(f"sklearn.{module}")
    except ImportError as e:
        raise ImportError("the digits dataset comes with scikit-learn: "
                          "pip install scikit-learn (or cnnlab[all])") from e


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as (x float32 (N,1,8,8) in [0,1], y int64 (N,)); fresh arrays."""
    bunch = _sklearn("datasets").load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    return x, y


# ----------------------------------------------------------- MNIST family
def _find_idx_files(root: Path, split: str) -> tuple[Path, Path] | list[Path]:
    """Return (images, labels) paths, or the list of candidates when one is missing."""
    prefix = _IDX_PREFIX[split]
    found: list[Path] = []
    looked: list[Path] = []
    for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        candidates = [root / stem, root / f"{stem}.gz"]
        looked.extend(candidates)
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is not None:
            found.append(hit)
    if len(found) == 2:
        return found[0], found[1]
    return looked


def _load_mnist_like(root: StrPath, split: str, name: str, classes: list[str],
                     hint: str = "") -> ArrayDataset:
    root_path = Path(root)
    files = _find_idx_files(root_path, split)
    if isinstance(files, list):
        where = ("directory does not exist" if not root_path.is_dir()
                 else "file(s) missing")
        msg = (f"{name} {split} split not found in {os.fspath(root_path)} ({where}); "
               f"looked for: {', '.join(os.fspath(p) for p in files)}"
               f" (raw or .gz; one of each pair is needed)")
        raise FileNotFoundError(msg + hint)
    img_path, lbl_path = files
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, 28, 28), "
                         f"got {images.dtype} {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        raise ValueError(f"{lbl_path}: expected an integer label vector of shape (N,), "
                         f"got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{name} {split}: image count and label count differ: "
                         f"{img_path} has {len(images)} images, "
                         f"{lbl_path} has {len(labels)} labels")
    n_classes = len(classes)
    out_of_range = (labels < 0) | (labels >= n_classes)
    if out_of_range.any():
        bad = int(labels[out_of_range][0])
        raise ValueError(f"{lbl_path}: labels must be in [0, {n_classes - 1}], "
                         f"got {int(out_of_range.sum())} out of range (first: {bad})")
    x = images.astype(np.float32)
    x /= np.float32(255.0)
    return ArrayDataset(x.reshape(-1, 1, 28, 28), labels.astype(np.int64), classes)


def load_fashion_mnist(split: str = "train", root: StrPath | None = None) -> ArrayDataset:
    """Fashion-MNIST (Zalando): 60000 train / 10000 test 28x28 grey images.

    Parameters
    ----------
    split : {"train", "test"}
    root : str or os.PathLike, optional
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each raw or
        with ``.gz``).  Defaults to :data:`FASHION_MNIST_DIR`, where
        ``apt-get install dataset-fashion-mnist`` puts them.

    Returns
    -------
    ArrayDataset
        ``x`` float32 (N, 1, 28, 28) in ``[0, 1]`` (bytes / 255), ``y`` int64
        (N,), classes :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    FileNotFoundError
        Naming the files looked for.
    ValueError
        For malformed files (see :func:`~cnnlab.data.idx.read_idx`), image and
        label counts that differ, or labels outside ``0..9``.
    """
    _check_split(split, "load_fashion_mnist")
    if root is None:
        root = FASHION_MNIST_DIR
    hint = ""
    if Path(root).resolve() == Path(FASHION_MNIST_DIR).resolve():
        hint = ("; on Debian/Ubuntu `apt-get install dataset-fashion-mnist` "
                f"installs them in {FASHION_MNIST_DIR}")
    return _load_mnist_like(root, split, "Fashion-MNIST", FASHION_MNIST_CLASSES, hint)


def load_mnist(split: str, root: StrPath) -> ArrayDataset:
    """MNIST handwritten digits from IDX files in ``root``.

    Same file names, format and output as :func:`load_fashion_mnist`, class
    names ``'0'..'9'``.  ``root`` is required: no copy of MNIST is installed by
    default and nothing is downloaded.
    """
    _check_split(split, "load_mnist")
    if root is None:
        raise ValueError("load_mnist: root is required (directory with the MNIST IDX files "
                         "train-images-idx3-ubyte[.gz] etc.); nothing is downloaded")
    return _load_mnist_like(root, split, "MNIST", DIGIT_CLASSES)


# ------------------------------------------------------------------ registry
def _canonical_name(name: str, func: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise ValueError(f"{func}: unknown dataset {name!r}; valid names are "
                         f"{', '.join(DATASET_NAMES)} ('fashion_mnist' is also accepted)")
    return key


def get_dataset(name: str, split: str = "train", root: StrPath | None = None,
                size: int | None = None) -> ArrayDataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : {"digits", "fashion-mnist" (or "fashion_mnist"), "mnist", "folder:PATH", "cifar10:PATH"}
        Case-insensitive kind; ``folder:PATH`` is an image-folder tree and
        ``cifar10:PATH`` CIFAR-10's binary batches (:mod:`cnnlab.data.user_data`).
    split : {"train", "test"}
    root : str or os.PathLike, optional
        Data directory for the IDX datasets (required for ``"mnist"``,
        defaults to :data:`FASHION_MNIST_DIR` for Fashion-MNIST); the digits
        (the default 80/20 split with seed 0) and the ``KIND:PATH`` datasets
        take none.
    size : int, optional
        The side ``folder:PATH`` images are resized to (default 32).
    """
    kind, sep, where = str(name).partition(":")
    if sep:
        return _user_dataset(kind.strip().lower(), where, split, root, size)
    key = _canonical_name(name, "get_dataset")
    if key == "digits" and root is not None:
        raise ValueError(f"get_dataset: the digits ship inside scikit-learn; a data directory "
                         f"({os.fspath(root)}) does not apply to them")
    if key == "digits":
        return load_digits(split)
    if key == "fashion-mnist":
        return load_fashion_mnist(split, root)
    return load_mnist(split, root)  # type: ignore[arg-type]  # None -> clear ValueError


def _user_dataset(kind: str, where: str, split: str, root, size) -> ArrayDataset:
    from cnnlab.data import user_data

    if kind not in user_data.USER_DATASET_KINDS:
        raise ValueError(f"get_dataset: unknown dataset kind {kind!r} in {kind}:{where}; "
                         "paths go with folder:PATH or cifar10:PATH")
    if not where:
        raise ValueError(f"get_dataset: {kind}: needs a path, e.g. {kind}:/data/{kind}")
    if root is not None:
        raise ValueError(f"get_dataset: {kind}:{where} names its own folder; a data directory "
                         f"({os.fspath(root)}) does not apply")
    if kind == "folder":
        return user_data.load_image_folder(where, split, 32 if size is None else size)
    return user_data.load_cifar10(where, split)


# Population mean / std (ddof=0) of all training pixels after scaling to [0, 1].
# Fashion-MNIST: computed over the 60000 x 784 training pixels of the Debian
# files (0.28604, 0.35302); verified by tests/test_data.py.  MNIST: the usual
# published values computed the same way (0.13066, 0.30811).
_CONSTANT_STATS: dict[str, tuple[float, float]] = {
    "fashion-mnist": (0.2860, 0.3530),
    "mnist": (0.1307, 0.3081),
}


@functools.cache
def _digits_stats() -> tuple[float, float]:
    x = load_digits("train").x.astype(np.float64)
    return float(x.mean()), float(x.std())


def dataset_stats(name: str) -> tuple[float, float]:
    """Default normalisation statistics ``(mean, std)`` of a dataset's training split.

    Pixel values are taken in ``[0, 1]`` and the statistics are over all
    training pixels (one channel), ``std`` with ``ddof=0``: feed them to
    :class:`~cnnlab.data.transforms.Normalize`.  Digits are computed from the
    default train split (``test_fraction=0.2, seed=0``) on first use;
    Fashion-MNIST and MNIST are constants (see ``_CONSTANT_STATS``).
    """
    key = _canonical_name(name, "dataset_stats")
    if key == "digits":
        return _digits_stats()
    return _CONSTANT_STATS[key]
