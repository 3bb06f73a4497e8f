"""Vectorised batch transforms (ndarray in, ndarray out).

Every transform works on a whole batch ``(B, C, H, W)`` as well as on a
single image ``(C, H, W)`` (``Pad`` and ``Resize`` act on the last two axes
of any array with at least 2 dimensions).  They never modify their input.
The :class:`~cnnlab.data.loader.DataLoader` applies its ``transform`` to each
batch's ``x`` before wrapping it in a Tensor.

The random augmentations (flips, crops, colour and lighting jitter, erasing)
live in :mod:`cnnlab.data.augment` and are re-exported here.  A transform
with the attribute ``random = True`` is called as ``t(x, rng=None)``;
:class:`Compose` forwards its ``rng`` to those, and the ``DataLoader`` passes
one that depends only on (seed, epoch, batch index).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cnnlab.data.augment import (
    AUGMENTATION_NAMES,
    CenterCrop,
    ColorJitter,
    Lighting,
    PCALighting,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    build_augmentation,
    pad_images,
    pca_lighting_basis,
)
from cnnlab.data.augment.base import _float_dtype, _padding4, _pair

__all__ = ["AUGMENTATION_NAMES", "CenterCrop", "ColorJitter", "Compose", "Lighting", "Normalize",
           "PCALighting", "Pad", "RandomCrop", "RandomErasing", "RandomHorizontalFlip", "Resize",
           "Transform", "build_augmentation", "pca_lighting_basis"]

Transform = Callable[[np.ndarray], np.ndarray]


class Compose:
    """Apply transforms one after the other.

    Parameters
    ----------
    transforms : sequence of callables ``ndarray -> ndarray``
        Those with ``random = True`` are called as ``t(x, rng=rng)`` when
        :meth:`__call__` is given an ``rng``, so one generator drives the
        whole pipeline (each random transform draws from it in turn).

    Attributes
    ----------
    random : bool
        True when any of the transforms is random (then the ``DataLoader``
        passes an ``rng``).
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms: list[Transform] = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {t!r}")

    @property
    def random(self) -> bool:
        return any(getattr(t, "random", False) for t in self.transforms)

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        for t in self.transforms:
            if rng is not None and getattr(t, "random", False):
                x = t(x, rng=rng)   # type: ignore[call-arg]
            else:
                x = t(x)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class Normalize:
    """Per-channel standardisation ``(x - mean[c]) / std[c]``.

    Parameters
    ----------
    mean, std : float or sequence of float
        One value (used for every channel) or one per channel.  ``std`` must
        be positive.

    Notes
    -----
    Input ``(B, C, H, W)`` or ``(C, H, W)``; the channel axis is ``-3``.
    The output is float64 for float64 input and float32 otherwise.
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        s = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if m.ndim != 1 or s.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be scalars or 1-d sequences, "
                             f"got shapes {m.shape} and {s.shape}")
        if len(m) != len(s) and 1 not in (len(m), len(s)):
            raise ValueError(f"Normalize: mean and std lengths differ: {len(m)} and {len(s)}")
        if not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"Normalize: std must be positive and mean/std finite, "
                             f"got mean={m.tolist()} std={s.tolist()}")
        self.mean = m
        self.std = s

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(f"Normalize: expected (B, C, H, W) or (C, H, W) input, "
                             f"got shape {x.shape}")
        channels = x.shape[-3]
        n = max(len(self.mean), len(self.std))
        if n != 1 and n != channels:
            raise ValueError(f"Normalize: {n} mean/std values for {channels} channels "
                             f"(input shape {x.shape})")
        dt = _float_dtype(x)
        mean = self.mean.astype(dt).reshape(-1, 1, 1)
        inv_std = (1.0 / self.std).astype(dt).reshape(-1, 1, 1)
        out = x.astype(dt, copy=True)
        out -= mean
        out *= inv_std
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Pad:
    """Constant padding of the last two (H, W) axes.

    Parameters
    ----------
    padding : int or tuple of int
        As in torchvision: ``p`` pads every side by ``p``; ``(pw, ph)`` pads
        left/right by ``pw`` and top/bottom by ``ph``; ``(left, top, right,
        bottom)`` pads each side separately.  Non-negative.
    fill : float
        The constant value.

    Notes
    -----
    ``Pad(2)`` turns (B, C, 28, 28) into (B, C, 32, 32).  The dtype is kept.
    """

    def __init__(self, padding: int | Sequence[int], fill: float = 0) -> None:
        self.left, self.top, self.right, self.bottom = _padding4(padding, "Pad")
        self.fill = fill

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"Pad: expected at least 2-d input (..., H, W), got shape {x.shape}")
        return pad_images(x, (self.left, self.top, self.right, self.bottom), self.fill)

    def __repr__(self) -> str:
        return (f"Pad(padding=({self.left}, {self.top}, {self.right}, {self.bottom}), "
                f"fill={self.fill})")


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 matrix of 1-d linear interpolation, align_corners=False.

    Matches ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)`` when the output size is given: source coordinate
    ``(i + 0.5) * n_in / n_out - 0.5`` clamped below at 0, neighbours
    ``floor`` and ``floor + 1`` (clamped to ``n_in - 1``).
    """
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


class Resize:
    """Bilinear resize of the last two (H, W) axes, ``align_corners=False``.

    Parameters
    ----------
    size : int or (int, int)
        Output ``(H, W)``; an int gives a square ``(size, size)`` output
        (unlike torchvision, which would match the shorter edge).

    Notes
    -----
    Numerically matches ``torch.nn.functional.interpolate(x, size,
    mode="bilinear", align_corners=False)`` (no antialiasing), computed as
    ``A_h @ x @ A_w.T`` with two small interpolation matrices, so a whole
    batch is resized with two matmuls.  Output float64 for float64 input,
    float32 otherwise.
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size: tuple[int, int] = _pair(size, "Resize")
        self._cache: dict[tuple[int, int, np.dtype], tuple[np.ndarray, np.ndarray]] = {}

    def _matrices(self, h: int, w: int, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        key = (h, w, dt)
        if key not in self._cache:
            a_h = _bilinear_matrix(h, self.size[0]).astype(dt)
            a_wt = np.ascontiguousarray(_bilinear_matrix(w, self.size[1]).T).astype(dt)
            self._cache[key] = (a_h, a_wt)
        return self._cache[key]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"Resize: expected at least 2-d input (..., H, W), "
                             f"got shape {x.shape}")
        h, w = x.shape[-2:]
        if h == 0 or w == 0:
            raise ValueError(f"Resize: input spatial size must be non-empty, got shape {x.shape}")
        dt = _float_dtype(x)
        a_h, a_wt = self._matrices(h, w, dt)
        xf = x.astype(dt, copy=False)
        return np.matmul(np.matmul(a_h, xf), a_wt)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"
