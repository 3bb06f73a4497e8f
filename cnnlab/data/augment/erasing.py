"""Occlusion augmentation: :class:`RandomErasing`."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnnlab.data.augment.base import RandomTransform, Seed, _as_batch

__all__ = ["RandomErasing"]


class RandomErasing(RandomTransform):
    """Random Erasing (Zhong et al. 2017): overwrite one random rectangle per sample.

    Parameters
    ----------
    p : float
        Probability that a sample is erased.
    scale : (float, float)
        Range of the rectangle's area as a fraction of the image's.
    ratio : (float, float)
        Range of its aspect ratio h / w, drawn log-uniformly.
    value : float, sequence of C floats, or 'random'
        What is written: a constant, one per channel, or N(0, 1) noise per pixel.
    seed : int, optional
        Seed of the fallback generator.

    Notes
    -----
    torchvision's algorithm, vectorised over the batch: for each sample, up
    to 10 candidate rectangles of area ``s·H·W`` (``s ~ U(scale)``) and
    aspect ``r`` give ``h = round(sqrt(s·H·W·r))``, ``w = round(sqrt(s·H·W / r))``;
    the first with ``1 <= h < H`` and ``1 <= w < W`` is placed at a uniform
    offset; if none fits the sample is left unchanged.  (torchvision also
    accepts h = 0 or w = 0, an empty rectangle.)  Shape and dtype kept.
    """

    ATTEMPTS = 10

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.33),
                 ratio: Sequence[float] = (0.3, 3.3), value: float | Sequence[float] | str = 0.0,
                 seed: Seed = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], got {p!r}")
        scale_range, ratio_range = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1] <= 1:
            raise ValueError(f"RandomErasing: scale must be (lo, hi) with 0 < lo <= hi <= 1, got {scale!r}")
        if len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError(f"RandomErasing: ratio must be (lo, hi) with 0 < lo <= hi, got {ratio!r}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value must be a number, a sequence or 'random', got {value!r}")
        super().__init__(seed)
        self.p, self.scale, self.ratio, self.value = float(p), scale_range, ratio_range, value

    def draw_boxes(self, shape: tuple[int, int, int, int], rng: np.random.Generator | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rectangles ``(top, left, h, w)``, each (B,) int; ``h = w = 0`` means not erased."""
        B, _, H, W = shape
        g = self._generator(rng)
        erase = g.random(B) < self.p
        area = H * W * g.uniform(self.scale[0], self.scale[1], size=(B, self.ATTEMPTS))
        aspect = np.exp(g.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]),
                                  size=(B, self.ATTEMPTS)))
        hs = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        ws = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (hs >= 1) & (hs < H) & (ws >= 1) & (ws < W)
        first = np.argmax(fits, axis=1)
        ok = erase & fits.any(axis=1)
        rows = np.arange(B)
        h = np.where(ok, hs[rows, first], 0)
        w = np.where(ok, ws[rows, first], 0)
        top = (g.random(B) * (H - h + 1)).astype(np.int64)
        left = (g.random(B) * (W - w + 1)).astype(np.int64)
        return top, left, h, w

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        xb, single = _as_batch(x, "RandomErasing")
        B, C, H, W = xb.shape
        g = self._generator(rng)
        top, left, h, w = self.draw_boxes(xb.shape, g)
        r, c = np.arange(H), np.arange(W)
        in_rows = (r >= top[:, None]) & (r < (top + h)[:, None])          # (B, H)
        in_cols = (c >= left[:, None]) & (c < (left + w)[:, None])        # (B, W)
        mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]       # (B, 1, H, W)
        if isinstance(self.value, str):
            fill = g.standard_normal(xb.shape).astype(xb.dtype)
        else:
            v = np.asarray(self.value, dtype=xb.dtype)
            if v.ndim == 1 and len(v) not in (1, C):
                raise ValueError(f"RandomErasing: {len(v)} fill values for {C} channels")
            fill = v.reshape(1, -1, 1, 1) if v.ndim == 1 else v
        out = np.where(mask, fill, xb).astype(xb.dtype, copy=False)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r})"
