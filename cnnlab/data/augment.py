"""Data augmentation: random flips, crops, colour and lighting jitter, erasing.

The notes (AlexNet) enlarge the training set with label-preserving
distortions: horizontal reflections, random crops (224 of 256 pixels), and
colour / lighting noise along the principal components of the pixel colours.
Every transform here works on a whole batch ``(B, C, H, W)`` at once -- one
random draw per *sample*, vectorised, no Python loop over samples -- and on a
single image ``(C, H, W)``.  None of them modifies its input.

They act on **raw pixels in [0, 1]** (what :func:`~cnnlab.data.load_digits`
and :func:`~cnnlab.data.load_fashion_mnist` return), so put them *before*
``Pad`` / ``Resize`` / ``Normalize`` in a pipeline: zero padding is then
background, and :class:`ColorJitter` clamps to the valid range [0, 1].

Randomness and reproducibility
------------------------------
A random transform has the class attribute ``random = True`` and is called as
``t(x, rng=None)``.  With ``rng`` (a ``np.random.Generator``) it draws only
from that generator; without, from its own ``np.random.default_rng(seed)``
made at construction.  :class:`~cnnlab.data.transforms.Compose` forwards its
``rng`` to the random transforms it holds, and
:class:`~cnnlab.data.loader.DataLoader` passes
``np.random.default_rng([seed, epoch, batch_index, 1])``, so the augmented
batches depend only on (loader seed, epoch, batch index) and a resumed run
sees exactly the batches of an uninterrupted one.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "AUGMENTATION_NAMES",
    "IMAGENET_EIGVAL",
    "IMAGENET_EIGVEC",
    "CenterCrop",
    "ColorJitter",
    "Lighting",
    "PCALighting",
    "RandomCrop",
    "RandomErasing",
    "RandomHorizontalFlip",
    "build_augmentation",
    "pca_lighting_basis",
]

Seed = int | np.random.SeedSequence | None

#: The ImageNet RGB eigenvalues / eigenvectors (columns) for pixels in [0, 1],
#: as used by fb.resnet.torch and torchvision's reference scripts for AlexNet's
#: PCA lighting noise.
IMAGENET_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                            [-0.5808, -0.0045, -0.8140],
                            [-0.5836, -0.6948, 0.4203]])

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_GREY_WEIGHTS = np.array([0.2989, 0.587, 0.114])


# ------------------------------------------------------------------ helpers
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


# ------------------------------------------------------------------ flips
class RandomHorizontalFlip(RandomTransform):
    """Mirror each sample left-right with probability ``p``: ``x[..., ::-1]``.

    Parameters
    ----------
    p : float
        Probability in [0, 1] that a sample is flipped (one draw per sample).
    seed : int, optional
        Seed of the fallback generator (see the module docstring).

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


# ------------------------------------------------------------------ crops
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


# ------------------------------------------------------------------ colour
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


# ------------------------------------------------------------------ erasing
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
        sc, ra = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
        if len(sc) != 2 or not 0 < sc[0] <= sc[1] <= 1:
            raise ValueError(f"RandomErasing: scale must be (lo, hi) with 0 < lo <= hi <= 1, got {scale!r}")
        if len(ra) != 2 or not 0 < ra[0] <= ra[1]:
            raise ValueError(f"RandomErasing: ratio must be (lo, hi) with 0 < lo <= hi, got {ratio!r}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value must be a number, a sequence or 'random', got {value!r}")
        super().__init__(seed)
        self.p, self.scale, self.ratio, self.value = float(p), sc, ra, value

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


# ------------------------------------------------------------------ presets
#: Names accepted by :func:`build_augmentation`.
AUGMENTATION_NAMES: tuple[str, ...] = ("none", "crop", "flip-crop", "alexnet", "erasing")


def crop_padding(image_size: int) -> int:
    """The ``RandomCrop`` padding of the presets: 1/8 of the side, at least 1 pixel."""
    return max(1, image_size // 8)


def build_augmentation(name: str, image_size: int, channels: int, *, images: np.ndarray | None = None,
                       seed: int | None = None) -> list:
    """The training-time augmentation preset ``name``, as a list of transforms.

    Parameters
    ----------
    name : {'none', 'crop', 'flip-crop', 'alexnet', 'erasing'}
        - ``none``: no augmentation (an empty list).
        - ``crop``: ``RandomCrop(image_size, padding=max(1, image_size // 8))``,
          random shifts of up to 1/8 of the side (3 px on 28×28, 1 px on 8×8).
        - ``flip-crop``: ``crop`` + ``RandomHorizontalFlip(0.5)``.
        - ``alexnet``: ``flip-crop`` + PCA ``Lighting(0.1)`` (AlexNet's recipe,
          with shifted crops of the same size instead of 224-of-256 crops).
        - ``erasing``: ``flip-crop`` + ``RandomErasing(0.5, value=0)``.
    image_size : int
        Side of the (square) raw training images; the output keeps this size.
    channels : int
        Number of channels (the PCA basis needs it).
    images : ndarray (N, C, H, W), optional
        Training images; ``alexnet`` computes its PCA basis from them with
        :func:`pca_lighting_basis`.  Required for ``alexnet`` unless
        ``channels == 3``, where ImageNet's basis is the default.
    seed : int, optional
        Seeds the transforms' fallback generators (a :class:`DataLoader`
        passes its own generator anyway).

    Returns
    -------
    list of transforms, to go *before* Pad / Resize / Normalize (raw pixels).

    Notes
    -----
    Which suit which data: horizontal flips preserve the label of clothes, so
    ``flip-crop``, ``alexnet`` and ``erasing`` suit **Fashion-MNIST** (and
    natural images).  They do **not** suit **digits** (a mirrored 2, 3, 4, 7
    or 9 is no longer that digit); use ``crop`` there.  On grey images the
    PCA lighting of ``alexnet`` is additive brightness noise.
    """
    if name not in AUGMENTATION_NAMES:
        raise ValueError(f"build_augmentation: unknown augmentation {name!r}; "
                         f"choose one of {', '.join(AUGMENTATION_NAMES)}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size <= 0:
        raise ValueError(f"build_augmentation: image_size must be a positive int, got {image_size!r}")
    if name == "none":
        return []
    seeds = np.random.SeedSequence(seed).spawn(3)
    steps: list = [RandomCrop(image_size, padding=crop_padding(image_size), seed=seeds[0])]
    if name == "crop":
        return steps
    steps.append(RandomHorizontalFlip(0.5, seed=seeds[1]))
    if name == "alexnet":
        if images is not None:
            if np.shape(images)[1] != channels:
                raise ValueError(f"build_augmentation: images have {np.shape(images)[1]} channels, "
                                 f"expected {channels}")
            eigval, eigvec = pca_lighting_basis(images)
        elif channels == 3:
            eigval, eigvec = IMAGENET_EIGVAL, IMAGENET_EIGVEC
        else:
            raise ValueError(f"build_augmentation: 'alexnet' on {channels}-channel images needs "
                             "images=... (the training set) to compute the PCA lighting basis")
        steps.append(Lighting(0.1, eigval, eigvec, seed=seeds[2]))
    elif name == "erasing":
        steps.append(RandomErasing(0.5, value=0.0, seed=seeds[2]))
    return steps
