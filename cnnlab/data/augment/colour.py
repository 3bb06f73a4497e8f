"""Photometric augmentation: colour jitter and AlexNet's PCA lighting noise."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlab.data.augment.base import RandomTransform, Seed, _as_batch, _float_dtype

__all__ = ["IMAGENET_EIGVAL", "IMAGENET_EIGVEC", "ColorJitter", "Lighting", "PCALighting", "grey",
           "pca_lighting_basis"]

#: The ImageNet RGB eigenvalues / eigenvectors (columns) for pixels in [0, 1],
#: as used by fb.resnet.torch and torchvision's reference scripts for AlexNet's
#: PCA lighting noise.
IMAGENET_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                            [-0.5808, -0.0045, -0.8140],
                            [-0.5836, -0.6948, 0.4203]])

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_GREY_WEIGHTS = np.array([0.2989, 0.587, 0.114])


def _factor_range(value: float | Sequence[float], name: str, what: str) -> tuple[float, float] | None:
    """torchvision's ColorJitter argument: b -> [max(0, 1-b), 1+b], or (lo, hi).
    None when the range is (1, 1), i.e. the adjustment is off."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name}: {what} must be non-negative, got {value!r}")
        lo, hi = max(0.0, 1.0 - float(value)), 1.0 + float(value)
    else:
        v = tuple(float(a) for a in value)
        if len(v) != 2 or not 0 <= v[0] <= v[1]:
            raise ValueError(f"{name}: {what} must be a non-negative number or a pair "
                             f"0 <= lo <= hi, got {value!r}")
        lo, hi = v
    return None if lo == hi == 1.0 else (lo, hi)


def grey(x: np.ndarray) -> np.ndarray:
    """Grey image (B, 1, H, W) of (B, C, H, W): the image itself for C = 1,
    ``0.2989 R + 0.587 G + 0.114 B`` for C = 3 (torchvision's rgb_to_grayscale)."""
    channels = x.shape[1]
    if channels == 1:
        return x
    if channels == 3:
        w = _GREY_WEIGHTS.astype(x.dtype)
        return np.einsum("bchw,c->bhw", x, w)[:, None]
    raise ValueError(f"grey: defined for 1 or 3 channels, got input of shape {x.shape}")


class ColorJitter(RandomTransform):
    """Random brightness, contrast and saturation, one factor of each per sample.

    Parameters
    ----------
    brightness, contrast, saturation : float or (lo, hi)
        As torchvision: ``b`` draws the factor uniformly from
        ``[max(0, 1 - b), 1 + b]``; a pair gives the range directly; 0 turns
        the adjustment off.
    clip : bool
        Clamp to [0, 1] after each adjustment, as torchvision does for float
        images.  The input must then be raw pixels in [0, 1] (before
        ``Normalize``).
    seed : int, optional
        Seed of the fallback generator.

    Notes
    -----
    With ``f`` a sample's factor and ``clip`` the clamp to [0, 1], applied in
    this fixed order (torchvision instead permutes the order at random on each
    call):

    1. brightness: ``x <- clip(f_b * x)``
    2. contrast:   ``x <- clip(f_c * x + (1 - f_c) * mean(grey(x)))``, the mean
       over the whole grey image of that sample
    3. saturation: ``x <- clip(f_s * x + (1 - f_s) * grey(x))``, pixel-wise;
       a no-op for 1-channel images

    where ``grey`` is the image itself for 1 channel and
    ``0.2989 R + 0.587 G + 0.114 B`` for 3 (torchvision's formulas).
    Contrast and saturation need 1 or 3 channels.  Hue is not implemented.
    Output float32 (float64 for float64 input); floating input only.
    """

    def __init__(self, brightness: float | Sequence[float] = 0, contrast: float | Sequence[float] = 0,
                 saturation: float | Sequence[float] = 0, clip: bool = True, seed: Seed = None) -> None:
        self.brightness = _factor_range(brightness, "ColorJitter", "brightness")
        self.contrast = _factor_range(contrast, "ColorJitter", "contrast")
        self.saturation = _factor_range(saturation, "ColorJitter", "saturation")
        self.clip = bool(clip)
        super().__init__(seed)

    def draw_factors(self, batch: int, rng: np.random.Generator | None = None
                     ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """The (brightness, contrast, saturation) factors, each (B,) or None when off."""
        g = self._generator(rng)
        return tuple(None if r is None else g.uniform(r[0], r[1], size=batch)  # type: ignore[return-value]
                     for r in (self.brightness, self.contrast, self.saturation))

    def apply(self, x: np.ndarray, brightness: np.ndarray | None = None,
              contrast: np.ndarray | None = None, saturation: np.ndarray | None = None) -> np.ndarray:
        """Apply given per-sample factors (B,) to a batch (B, C, H, W); the deterministic part."""
        dt = _float_dtype(x)
        out = x.astype(dt)   # a copy

        def blend(a, b, f):
            f = f.astype(dt).reshape(-1, 1, 1, 1)
            r = f * a + (1 - f) * b
            return np.clip(r, 0, 1, out=r) if self.clip else r

        if brightness is not None:
            out = blend(out, np.zeros((), dt), brightness)
        if contrast is not None:
            out = blend(out, grey(out).mean(axis=(1, 2, 3), keepdims=True), contrast)
        if saturation is not None and out.shape[1] != 1:
            out = blend(out, grey(out), saturation)
        return out

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        xb, single = _as_batch(x, "ColorJitter")
        if not np.issubdtype(xb.dtype, np.floating):
            raise TypeError(f"ColorJitter: expects float pixels in [0, 1], got dtype {xb.dtype}")
        if (self.contrast or self.saturation) and xb.shape[1] not in (1, 3):
            raise ValueError(f"ColorJitter: contrast and saturation need 1 or 3 channels, "
                             f"got input of shape {np.shape(x)}")
        out = self.apply(xb, *self.draw_factors(len(xb), rng))
        return out[0] if single else out

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, clip={self.clip})")


def pca_lighting_basis(images: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the pixel-colour covariance of a dataset.

    Parameters
    ----------
    images : ndarray, shape (N, C, H, W)
        Every pixel is one sample of a C-vector (AlexNet: RGB over ImageNet).
    chunk : int
        Images per step of the float64 accumulation (bounds the memory).

    Returns
    -------
    eigval : ndarray, shape (C,)
        Eigenvalues of the C×C covariance (population, /N·H·W), descending,
        clipped at 0.
    eigvec : ndarray, shape (C, C)
        Unit eigenvectors as *columns*, ``eigvec[:, i]`` belonging to
        ``eigval[i]``; each column's largest-magnitude entry is positive.

    Notes
    -----
    For grey images this is ``eigval = [Var(pixels)]``, ``eigvec = [[1]]``.
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"pca_lighting_basis: expected a non-empty (N, C, H, W) array, got shape {x.shape}")
    N, C, H, W = x.shape
    s1 = np.zeros(C)
    s2 = np.zeros((C, C))
    for i in range(0, N, chunk):
        part = x[i:i + chunk].astype(np.float64)
        s1 += part.sum(axis=(0, 2, 3))
        s2 += np.einsum("nchw,ndhw->cd", part, part)
    n = N * H * W
    mean = s1 / n
    cov = s2 / n - np.outer(mean, mean)
    eigval, eigvec = np.linalg.eigh((cov + cov.T) / 2)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.maximum(eigval[order], 0.0), eigvec[:, order]
    signs = np.sign(eigvec[np.argmax(np.abs(eigvec), axis=0), np.arange(C)])
    return eigval, eigvec * np.where(signs == 0, 1.0, signs)


class Lighting(RandomTransform):
    """AlexNet's PCA colour noise: add ``sum_i alpha_i lambda_i p_i`` to every pixel.

    Parameters
    ----------
    alphastd : float
        Standard deviation of ``alpha_i ~ N(0, alphastd)``, drawn once per
        sample and component (AlexNet: 0.1).
    eigval : array_like, shape (C,), optional
        Eigenvalues ``lambda_i`` of the pixel-colour covariance; default the
        ImageNet RGB values :data:`IMAGENET_EIGVAL` (pixels in [0, 1]).
    eigvec : array_like, shape (C, C), optional
        Eigenvectors ``p_i`` as columns; default :data:`IMAGENET_EIGVEC`.
        Use :func:`pca_lighting_basis` to compute both from a dataset.
    seed : int, optional
        Seed of the fallback generator.

    Notes
    -----
    Sample ``b`` gets the constant colour ``shift[b] = eigvec @ (alpha[b] * eigval)``
    added to each of its pixels, so the noise changes the intensity and colour
    of the illumination but not the image's structure.  For grey images
    (C = 1, ``eigvec = [[1]]``, ``eigval = [Var]``) it reduces to additive
    brightness noise ``x + alpha * Var``.  No clamping (as fb.resnet.torch).
    Output float32 (float64 for float64 input); floating input only.
    """

    def __init__(self, alphastd: float = 0.1, eigval: Sequence[float] | np.ndarray | None = None,
                 eigvec: Sequence[Sequence[float]] | np.ndarray | None = None, seed: Seed = None) -> None:
        if alphastd < 0:
            raise ValueError(f"Lighting: alphastd must be non-negative, got {alphastd!r}")
        if (eigval is None) != (eigvec is None):
            raise ValueError("Lighting: give both eigval and eigvec, or neither (ImageNet's)")
        val = IMAGENET_EIGVAL if eigval is None else np.asarray(eigval, dtype=np.float64)
        vec = IMAGENET_EIGVEC if eigvec is None else np.asarray(eigvec, dtype=np.float64)
        if val.ndim != 1 or vec.shape != (len(val), len(val)):
            raise ValueError(f"Lighting: eigval must be (C,) and eigvec (C, C), "
                             f"got shapes {val.shape} and {vec.shape}")
        super().__init__(seed)
        self.alphastd = float(alphastd)
        self.eigval = val.copy()
        self.eigvec = vec.copy()

    def draw_shift(self, batch: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """The per-sample colour shifts (B, C): ``(alpha * eigval) @ eigvec.T``."""
        alpha = self._generator(rng).normal(0.0, self.alphastd, size=(batch, len(self.eigval)))
        return (alpha * self.eigval) @ self.eigvec.T

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        xb, single = _as_batch(x, "Lighting")
        if not np.issubdtype(xb.dtype, np.floating):
            raise TypeError(f"Lighting: expects float pixels, got dtype {xb.dtype}")
        if xb.shape[1] != len(self.eigval):
            raise ValueError(f"Lighting: basis for {len(self.eigval)} channels, "
                             f"got input of shape {np.shape(x)}")
        dt = _float_dtype(xb)
        shift = self.draw_shift(len(xb), rng).astype(dt)
        out = xb + shift[:, :, None, None]
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"Lighting(alphastd={self.alphastd}, eigval={np.round(self.eigval, 6).tolist()})"


PCALighting = Lighting
