"""A user's own images: a torchvision-style image-folder tree, and CIFAR-10 in its
binary format.  Nothing is downloaded and nothing is unpickled.

* ``folder:PATH`` -- one subfolder per class holding PNG or JPEG files, as
  ``torchvision.datasets.ImageFolder`` reads them (classes in sorted order).
  With ``PATH/train`` and ``PATH/test`` subfolders those are the splits;
  otherwise the whole tree is split 80/20, stratified, with seed 0.  Every image
  is squashed to ``size`` x ``size`` (bilinear), grey when every file is grey,
  else RGB.
* ``cifar10:PATH`` -- the "binary version" of CIFAR-10: ``data_batch_1.bin`` ..
  ``data_batch_5.bin`` and ``test_batch.bin`` (each record one label byte and
  3,072 pixel bytes, red, green, blue planes of 32 x 32), in PATH or in
  ``PATH/cifar-10-batches-bin``; class names from ``batches.meta.txt``.  The
  "python version" is pickled and is refused.

Sizes are checked before anything large is allocated: an image's header
before it is decoded, a batch file's length before it is read, the total
array before it is made.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["CIFAR10_CLASSES", "USER_DATASET_KINDS", "load_cifar10", "load_image_folder",
           "pixel_stats"]

CIFAR10_CLASSES: list[str] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                              "horse", "ship", "truck"]
#: The dataset kinds that take a path: ``folder:PATH``, ``cifar10:PATH``.
USER_DATASET_KINDS: tuple[str, ...] = ("folder", "cifar10")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 50_000_000          # an image header claiming more is refused before decoding
MAX_DATASET_BYTES = 8 << 30            # the float32 array of a split
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _pil():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("reading PNG/JPEG files needs Pillow: pip install pillow "
                          "(or cnnlab[datasets])") from e
    return Image


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _scan(root: Path, classes: list[str] | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    """(files, labels, class names) of an image-folder tree; ``classes`` fixes the
    class list (the test split's folders must be the training split's)."""
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist" if not root.exists()
                                else f"{root} is a file, not a folder of class folders")
    folders = _class_folders(root)
    names = [p.name for p in folders]
    if not folders:
        raise ValueError(f"{root} holds no class folders: put each class's PNG/JPEG images in "
                         "a subfolder named after the class (ROOT/cat/1.png, ROOT/dog/2.jpg, ...)")
    if classes is not None and names != classes:
        raise ValueError(f"{root}: class folders {names} differ from the training split's {classes}")
    files, labels = [], []
    for k, folder in enumerate(folders):
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"class folder {folder} holds no PNG or JPEG file "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        files += found
        labels += [k] * len(found)
    return files, np.asarray(labels, dtype=np.int64), names


def _header(path: Path):
    """The opened (not yet decoded) image, its format and size checked."""
    Image = _pil()
    try:
        img = Image.open(path)
    except Exception as e:   # PIL.UnidentifiedImageError, truncated headers, ...
        raise ValueError(f"{path}: not a readable PNG or JPEG image ({e})") from e
    if img.format not in ("PNG", "JPEG"):
        img.close()
        raise ValueError(f"{path}: a {img.format} image; only PNG and JPEG files are read")
    w, h = img.size
    if w < 1 or h < 1 or w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise ValueError(f"{path}: its header says {w}x{h} pixels; images of 1 to "
                         f"{MAX_IMAGE_PIXELS:,} pixels are read")
    return img


def _read_images(files: list[Path], size: int, channels: int) -> np.ndarray:
    _check_bytes(len(files) * channels * size * size * 4, f"{len(files)} images of {size}x{size}")
    Image = _pil()
    x = np.empty((len(files), channels, size, size), dtype=np.float32)
    mode = "L" if channels == 1 else "RGB"
    for i, path in enumerate(files):
        with _header(path) as img:
            try:
                small = img.convert(mode).resize((size, size), Image.BILINEAR)
            except OSError as e:
                raise ValueError(f"{path}: cannot be decoded ({e})") from e
            a = np.asarray(small, dtype=np.float32) / np.float32(255.0)
        x[i] = a[None] if channels == 1 else a.transpose(2, 0, 1)
    return x


def _check_bytes(nbytes: int, what: str) -> None:
    if nbytes > MAX_DATASET_BYTES:
        raise ValueError(f"{what} would take {nbytes / 2**30:.1f} GiB as float32; at most "
                         f"{MAX_DATASET_BYTES / 2**30:.0f} GiB is loaded (choose a smaller --input-size)")


def load_image_folder(root: str | os.PathLike, split: str = "train", size: int = 32,
                      test_fraction: float = 0.2, seed: int = 0):
    """An image-folder tree as an :class:`~cnnlab.data.ArrayDataset` (see the module
    docstring): ``x`` float32 (N, C, size, size) in [0, 1], ``y`` int64, classes
    the sorted folder names; C = 1 when every image is grey, else 3."""
    from cnnlab.data.datasets import ArrayDataset, _check_split, _sklearn

    _check_split(split, "load_image_folder")
    if int(size) < 1:
        raise ValueError(f"load_image_folder: size must be >= 1, got {size}")
    root = Path(root)
    split_folders = (root / "train").is_dir() and (root / "test").is_dir()
    if split_folders:
        files, y, classes = _scan(root / split, _scan(root / "train")[2] if split == "test" else None)
        everything = files + (_scan(root / "test")[0] if split == "train" else _scan(root / "train")[0])
    else:
        everything, all_y, classes = _scan(root)
    grey = True
    for path in everything:     # every header checked; both splits get the same channels
        with _header(path) as img:
            grey = grey and img.mode in _GREY_MODES
    if not split_folders:
        counts = np.bincount(all_y)
        if counts.min() < 2 or round(test_fraction * len(all_y)) < len(counts):
            raise ValueError(f"{root}: {len(all_y)} images in {len(counts)} classes are too few to "
                             f"hold out a stratified {test_fraction:.0%} test split (the smallest "
                             f"class has {counts.min()}); add images, or give {root}/train and "
                             f"{root}/test folders")
        train_test_split = _sklearn("model_selection").train_test_split
        idx_tr, idx_te = train_test_split(np.arange(len(all_y)), test_size=test_fraction,
                                          stratify=all_y, random_state=seed)
        idx = np.sort(idx_tr if split == "train" else idx_te)
        files, y = [everything[i] for i in idx], all_y[idx]
    return ArrayDataset(_read_images(files, int(size), 1 if grey else 3), y, classes)


def _cifar_dir(root: Path) -> Path:
    if not root.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {root} does not exist" if not root.exists()
                                else f"{root} is a file; give the folder holding data_batch_1.bin ...")
    for where in (root, root / "cifar-10-batches-bin"):
        if (where / "test_batch.bin").is_file() or list(where.glob("data_batch_*.bin")):
            return where
    for where in (root, root / "cifar-10-batches-py"):
        if (where / "data_batch_1").is_file() or (where / "test_batch").is_file():
            raise ValueError(f"{where} holds CIFAR-10's python version, whose batches are "
                             "pickled; cnnlab never unpickles a file. Use the binary version "
                             "(cifar-10-binary.tar.gz: data_batch_1.bin ... test_batch.bin)")
    raise FileNotFoundError(f"no CIFAR-10 binary batches in {root}: expected data_batch_1.bin .. "
                            "data_batch_5.bin and test_batch.bin (there or in cifar-10-batches-bin/)")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    n_bytes = path.stat().st_size
    if n_bytes == 0 or n_bytes % _CIFAR_RECORD or n_bytes > (1 << 30):
        raise ValueError(f"{path}: {n_bytes:,} bytes is not a CIFAR-10 binary batch (a whole number "
                         f"of {_CIFAR_RECORD:,}-byte records: one label byte and 3x32x32 pixel bytes)")
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = raw[:, 0].astype(np.int64)
    if labels.max() >= 10:
        raise ValueError(f"{path}: labels must be 0..9, found {int(labels.max())} (record "
                         f"{int(np.argmax(labels >= 10))}); is it CIFAR-100's format?")
    return raw[:, 1:], labels


def load_cifar10(root: str | os.PathLike, split: str = "train"):
    """CIFAR-10's binary version (see the module docstring) as an
    :class:`~cnnlab.data.ArrayDataset`: ``x`` float32 (N, 3, 32, 32) in [0, 1]."""
    from cnnlab.data.datasets import ArrayDataset, _check_split

    _check_split(split, "load_cifar10")
    where = _cifar_dir(Path(root))
    files = (sorted(where.glob("data_batch_*.bin"), key=lambda p: p.name) if split == "train"
             else [where / "test_batch.bin"])
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"CIFAR-10 {split} split: no "
                                f"{'data_batch_*.bin' if split == 'train' else 'test_batch.bin'} in {where}")
    parts = [_read_cifar_batch(p) for p in files]
    pixels = np.concatenate([p[0] for p in parts])
    x = (pixels.astype(np.float32) / np.float32(255.0)).reshape(-1, 3, 32, 32)
    y = np.concatenate([p[1] for p in parts])
    meta = where / "batches.meta.txt"
    classes = CIFAR10_CLASSES
    if meta.is_file() and meta.stat().st_size < 4096:
        names = [line.strip() for line in meta.read_text(errors="replace").splitlines() if line.strip()]
        classes = names if len(names) == 10 else classes
    return ArrayDataset(x, y, classes)


def pixel_stats(x: np.ndarray) -> tuple[float, float]:
    """(mean, std) over every pixel of every channel (ddof 0), as
    :func:`~cnnlab.data.dataset_stats` gives for the built-in datasets.

    Summed in float64 over blocks of images (Chan et al.'s pairwise update of the
    mean and the sum of squared deviations), so CIFAR-10's 50,000 images need a few
    MB at a time rather than a 1.2 GB float64 copy."""
    x = np.asarray(x)
    if x.size == 0:
        return float("nan"), float("nan")
    flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    n, mean, m2 = 0, 0.0, 0.0
    block = max(1, (4 << 20) // max(1, flat.shape[1] * 8))     # about 4 MB of float64
    for i in range(0, len(flat), block):
        b = flat[i:i + block].astype(np.float64)
        nb, mb = b.size, float(b.mean())
        m2b = float(np.square(b - mb).sum())
        delta = mb - mean
        total = n + nb
        mean += delta * nb / total
        m2 += m2b + delta * delta * n * nb / total
        n = total
    return mean, float(np.sqrt(m2 / n))
