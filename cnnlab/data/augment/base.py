"""What every augmentation shares: batch handling, size arguments and the seeded :class:`RandomTransform`."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["RandomTransform", "Seed"]

Seed = int | np.random.SeedSequence | None


def _as_batch(x: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """(B, C, H, W) view of ``x`` and whether it was a single (C, H, W) image."""
    x = np.asarray(x)
    if x.ndim == 4:
        return x, False
    if x.ndim == 3:
        return x[None], True
    raise ValueError(f"{name}: expected (B, C, H, W) or (C, H, W) input, got shape {x.shape}")


def _float_dtype(x: np.ndarray) -> np.dtype:
    return np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)


def _pair(size: int | Sequence[int], name: str, what: str = "size") -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    else:
        hw = tuple(int(v) for v in size)
        if len(hw) != 2:
            raise ValueError(f"{name}: {what} must be an int or (H, W), got {size!r}")
    if hw[0] <= 0 or hw[1] <= 0:
        raise ValueError(f"{name}: {what} must be positive, got {size!r}")
    return hw[0], hw[1]


def _padding4(padding: int | Sequence[int], name: str) -> tuple[int, int, int, int]:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        pads = (int(padding),) * 4
    else:
        p = tuple(int(v) for v in padding)
        if len(p) == 2:
            pads = (p[0], p[1], p[0], p[1])
        elif len(p) == 4:
            pads = p
        else:
            raise ValueError(f"{name}: padding must be an int, a 2-tuple or a 4-tuple, got {padding!r}")
    if any(v < 0 for v in pads):
        raise ValueError(f"{name}: padding must be non-negative, got {padding!r}")
    return pads[0], pads[1], pads[2], pads[3]


class RandomTransform:
    """Base of the random transforms: owns a seeded fallback generator.

    Parameters
    ----------
    seed : int or SeedSequence, optional
        Seed of the generator used when ``__call__`` gets no ``rng``.
    """

    random = True

    def __init__(self, seed: Seed = None) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def _generator(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is None:
            return self._rng
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{type(self).__name__}: rng must be a numpy.random.Generator or None, "
                            f"got {type(rng).__name__}")
        return rng
