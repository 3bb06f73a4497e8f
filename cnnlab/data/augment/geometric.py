"""Geometric augmentation: padding, horizontal flips, random and centre crops."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.data.augment.base import RandomTransform, Seed, _as_batch, _padding4, _pair

__all__ = ["CenterCrop", "RandomCrop", "RandomHorizontalFlip", "crop_windows", "pad_images"]

_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def pad_images(x: np.ndarray, pads: tuple[int, int, int, int], fill: float = 0,
               padding_mode: str = "constant") -> np.ndarray:
    """Pad the last two axes by ``(left, top, right, bottom)``; torchvision's modes.

    ``constant`` fills with ``fill``; ``edge`` repeats the border pixel;
    ``reflect`` mirrors without repeating it (``[3 2 | 1 2 3]`` → NumPy's
    ``reflect``); ``symmetric`` mirrors repeating it.  The dtype is kept.
    """
    left, top, right, bottom = pads
    if padding_mode == "constant":
        h, w = x.shape[-2:]
        out = np.full(x.shape[:-2] + (h + top + bottom, w + left + right), fill, dtype=x.dtype)
        out[..., top:top + h, left:left + w] = x
        return out
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"pad: padding_mode must be one of {_PAD_MODES}, got {padding_mode!r}")
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, mode=padding_mode)


class RandomHorizontalFlip(RandomTransform):
    """Mirror each sample left-right with probability ``p``: ``x[..., ::-1]``.

    Parameters
    ----------
    p : float
        Probability in [0, 1] that a sample is flipped (one draw per sample).
    seed : int, optional
        Seed of the fallback generator (see :mod:`cnnlab.data.augment`).

    Notes
    -----
    (B, C, H, W) -> (B, C, H, W), or (C, H, W) -> (C, H, W); dtype kept.
    Label-preserving for clothes (Fashion-MNIST) and natural images, *not*
    for digits or text.
    """

    def __init__(self, p: float = 0.5, seed: Seed = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p!r}")
        super().__init__(seed)
        self.p = float(p)

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        xb, single = _as_batch(x, "RandomHorizontalFlip")
        flip = self._generator(rng).random(len(xb)) < self.p
        out = xb.copy()
        out[flip] = xb[flip][..., ::-1]
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def crop_windows(x: np.ndarray, top: np.ndarray, left: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Per-sample crops ``x[b, :, top[b]:top[b]+h, left[b]:left[b]+w]`` in one gather.

    Parameters
    ----------
    x : ndarray, shape (B, C, H, W)
    top, left : int arrays, shape (B,)
        Offsets with ``0 <= top <= H - h`` and ``0 <= left <= W - w``.
    size : (h, w)

    Returns
    -------
    ndarray, shape (B, C, h, w), a new array.
    """
    windows = sliding_window_view(x, size, axis=(2, 3))   # (B, C, H-h+1, W-w+1, h, w), a view
    # Advanced indices separated by a slice: the batch axis comes first -> (B, C, h, w).
    return windows[np.arange(len(x)), :, top, left]


class RandomCrop(RandomTransform):
    """Pad, then cut a ``size`` window at a random offset, per sample (torchvision's RandomCrop).

    Parameters
    ----------
    size : int or (h, w)
        Output spatial size.
    padding : int or tuple of int
        Padding first applied to every side (int), ``(left/right, top/bottom)``
        or ``(left, top, right, bottom)``.
    fill : float
        Value of ``constant`` padding (0 = black background for raw pixels).
    padding_mode : {'constant', 'edge', 'reflect', 'symmetric'}
    seed : int, optional
        Seed of the fallback generator.

    Notes
    -----
    (B, C, H, W) -> (B, C, h, w).  The offsets ``top ~ U{0 .. H + pt + pb - h}``,
    ``left ~ U{0 .. W + pl + pr - w}`` are drawn independently per sample and
    the windows are gathered in one fancy-index over a strided view (no loop
    over samples).  ``RandomCrop(28, padding=3)`` on 28×28 images shifts each
    image by up to 3 pixels in each direction, the CIFAR/Fashion-MNIST recipe;
    ``RandomCrop(224)`` on 256×256 images is AlexNet's.  The dtype is kept.
    """

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] = 0, fill: float = 0,
                 padding_mode: str = "constant", seed: Seed = None) -> None:
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {_PAD_MODES}, "
                             f"got {padding_mode!r}")
        super().__init__(seed)
        self.size = _pair(size, "RandomCrop")
        self.padding = _padding4(padding, "RandomCrop")
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        xb, single = _as_batch(x, "RandomCrop")
        if any(self.padding):
            xb = pad_images(xb, self.padding, self.fill, self.padding_mode)
        B, C, H, W = xb.shape
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded input "
                             f"({H}, {W}) (input shape {np.shape(x)}, padding {self.padding})")
        g = self._generator(rng)
        top = g.integers(0, H - h + 1, size=B)
        left = g.integers(0, W - w + 1, size=B)
        out = crop_windows(xb, top, left, (h, w))
        return out[0] if single else out

    def __repr__(self) -> str:
        return (f"RandomCrop(size={self.size}, padding={self.padding}, fill={self.fill}, "
                f"padding_mode={self.padding_mode!r})")


class CenterCrop:
    """Cut the central ``size`` window (torchvision's CenterCrop).

    Parameters
    ----------
    size : int or (h, w)

    Notes
    -----
    (..., H, W) -> (..., h, w), a copy; the offsets are
    ``round((H - h) / 2)`` and ``round((W - w) / 2)`` with Python's rounding,
    as torchvision.  A crop larger than the image is an error (torchvision
    would pad).
    """

    random = False

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size, "CenterCrop")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"CenterCrop: expected at least 2-d input (..., H, W), got shape {x.shape}")
        H, W = x.shape[-2:]
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"CenterCrop: crop size {self.size} is larger than the input ({H}, {W})")
        top, left = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
        return x[..., top:top + h, left:left + w].copy()

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"
