"""Images are matrices: the classic hand-made kernels and what each does to a photo.

The notes' filter table (002) shows one image convolved with an identity, an edge
detector, a sharpening and two blurring kernels, and (001) Sobel operators that keep
only the edges.  :func:`apply_kernels` runs each with cnnlab's own
:func:`cnnlab.nn.functional.conv2d` and :func:`plot_kernels` draws the table.

Like every deep-learning "convolution", ``conv2d`` is a *cross-correlation*:
``out[i, j] = sum_{u, v} k[u, v] * x[i + u - c, j + v - c]`` with ``c`` the kernel's
centre, the kernel not flipped (``scipy.signal.correlate2d``, not ``convolve2d``).
For the symmetric kernels (identity, Laplacian, blurs, sharpen) the two agree;
the Sobel kernels change sign under a true convolution.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn.functional import conv2d
from cnnlab.plots import subplots
from cnnlab.viz.image import save_figure, to_unit

__all__ = ["CLASSIC_KERNELS", "apply_kernels", "to_grey", "kernel_display", "plot_kernels"]

_binomial5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0])

CLASSIC_KERNELS: OrderedDict[str, np.ndarray] = OrderedDict([
    # out = in
    ("identity", np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64)),
    # discrete Laplacian: zero on flat and linearly varying regions, large at edges
    ("edge", np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)),
    # d/dx (left -> right) smoothed vertically: responds to vertical edges
    ("sobel_x", np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)),
    # d/dy (top -> bottom) smoothed horizontally: responds to horizontal edges
    ("sobel_y", np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)),
    # identity minus the Laplacian: boosts the edges, keeps flat regions (sums to 1)
    ("sharpen", np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)),
    # mean of the 3x3 neighbourhood
    ("box_blur", np.full((3, 3), 1.0 / 9.0)),
    # 5x5 binomial, the usual integer approximation of a Gaussian (sigma ~ 1)
    ("gaussian_blur", np.outer(_binomial5, _binomial5) / 256.0),
])
"""Name -> kernel (float64, 3x3 or 5x5), in the order the table shows them."""

# ITU-R BT.709 luma, the weights skimage.color.rgb2gray uses
_LUMA = np.array([0.2125, 0.7154, 0.0721])


def to_grey(image: np.ndarray) -> np.ndarray:
    """An image as float64 grey values: (H, W) kept, (H, W, 3) or (H, W, 4) reduced with
    the BT.709 luma weights (0.2125 R + 0.7154 G + 0.0721 B, as ``skimage.color.rgb2gray``;
    alpha dropped).  Integer images are divided by their dtype's maximum (uint8 -> [0, 1])."""
    a = _as_float_image(image, "to_grey")
    return a if a.ndim == 2 else a[..., :3] @ _LUMA


def _as_float_image(image: np.ndarray, func: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"{func}: expected an image (H, W) or (H, W, 3), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / np.iinfo(a.dtype).max
    return a.astype(np.float64)


def _check_kernel(name: str, k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"apply_kernels: kernel {name!r} must be a 2-D array of odd sizes "
                         f"(so it has a centre), got shape {k.shape}")
    return k


def apply_kernels(image: np.ndarray, kernels: Mapping[str, np.ndarray] | None = None,
                  per_channel: bool = False) -> dict[str, np.ndarray]:
    """Filter one image with each kernel, using :func:`cnnlab.nn.functional.conv2d`.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
        Integers are scaled to [0, 1] (uint8 / 255); floats are used as they are.
    kernels : mapping name -> (kh, kw) ndarray, optional
        Odd-sized 2-D kernels; default :data:`CLASSIC_KERNELS`.
    per_channel : bool
        A colour image is converted to grey first (:func:`to_grey`) unless this is
        True, in which case each of R, G, B is filtered separately with the same kernel
        (a depthwise convolution, ``groups=3``).

    Returns
    -------
    dict name -> (H, W) float64 ndarray, or (H, W, 3) with ``per_channel`` and a colour
    image.  Each is the cross-correlation of the image with the kernel (not flipped; see
    the module docstring) with ``padding='same'``: the image is zero-padded, so pixels
    within half a kernel of the border see black beyond it.
    """
    kernels = CLASSIC_KERNELS if kernels is None else kernels
    a = _as_float_image(image, "apply_kernels")
    if a.ndim == 3 and per_channel:
        x = np.ascontiguousarray(np.transpose(a[..., :3], (2, 0, 1)))[None]   # (1, 3, H, W)
    else:
        x = to_grey(a)[None, None]                                              # (1, 1, H, W)
    C = x.shape[1]
    out: dict[str, np.ndarray] = {}
    with no_grad():
        xt = Tensor(x)
        for name, k in kernels.items():
            k = _check_kernel(name, k)
            w = Tensor(np.repeat(k[None, None], C, axis=0))                      # (C, 1, kh, kw)
            y = conv2d(xt, w, None, padding="same", groups=C).numpy()[0]         # (C, H, W)
            out[name] = y[0] if C == 1 else np.transpose(y, (1, 2, 0))
    return out


def kernel_display(result: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """How the table shows a filtered image, in [0, 1].

    A kernel whose entries sum to ~1 (identity, blur, sharpen) keeps the brightness,
    so its result is shown as it is, clipped to [0, 1].  One that sums to ~0 (edges,
    Sobel) measures change, so the magnitude ``|result|`` is shown, scaled to its 99th
    percentile: black where the image is flat, white on the strongest edges.  Any
    other kernel is min-max scaled.
    """
    total = float(np.sum(kernel))
    if abs(total - 1.0) < 1e-6:
        return np.clip(result, 0.0, 1.0)
    if abs(total) < 1e-6:
        mag = np.abs(result)
        hi = float(np.percentile(mag, 99)) if mag.size else 0.0
        return np.clip(mag / hi, 0.0, 1.0) if hi > 0 else np.zeros_like(mag)
    return to_unit(result)


def _common_denominator(k: np.ndarray) -> int:
    """The smallest of 1, 9, 16, 256 that makes every entry of ``k`` an integer (0: none)."""
    for den in (1, 9, 16, 256):
        if np.allclose(k * den, np.round(k * den), rtol=0, atol=1e-9):
            return den
    return 0


def plot_kernels(image: np.ndarray, path: str | os.PathLike,
                 kernels: Mapping[str, np.ndarray] | None = None, ncols: int = 2,
                 per_channel: bool = False) -> Path:
    """Draw the notes' filter table: each kernel's matrix beside the filtered image.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
    path : where the PNG goes (parent folders created)
    kernels : mapping name -> kernel, optional (default :data:`CLASSIC_KERNELS`)
    ncols : int
        (kernel, result) pairs per row.
    per_channel : bool
        Filter R, G, B separately instead of the grey image (see :func:`apply_kernels`).

    Returns
    -------
    Path of the PNG.  Results are shown by :func:`kernel_display`.
    """

    kernels = CLASSIC_KERNELS if kernels is None else kernels
    results = apply_kernels(image, kernels, per_channel=per_channel)
    n = len(results)
    if n == 0:
        raise ValueError("plot_kernels: no kernels given")
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    H, W = next(iter(results.values())).shape[:2]
    img_w = 3.2 * W / max(H, W) * 1.0
    fig, axes = subplots(nrows, 2 * ncols, figsize=(ncols * (2.6 + img_w), nrows * 3.0),
                             gridspec_kw={"width_ratios": [2.2, img_w] * ncols}, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for idx, (name, res) in enumerate(results.items()):
        r, c = divmod(idx, ncols)
        k = np.asarray(kernels[name], dtype=np.float64)
        kax, iax = axes[r, 2 * c], axes[r, 2 * c + 1]
        kax.imshow(k, cmap="coolwarm", vmin=-np.abs(k).max(), vmax=np.abs(k).max())
        den = _common_denominator(k)
        if k.size <= 49:
            fs = 10 if k.shape[1] <= 3 else 8
            for (i, j), v in np.ndenumerate(k):
                label = f"{int(round(v * den))}" if den else f"{v:.2g}"
                kax.text(j, i, label, ha="center", va="center", fontsize=fs)
        scale = f" x 1/{den}" if den > 1 else ""
        kax.set_title(f"{name} {k.shape[0]}x{k.shape[1]}{scale}", fontsize=10)
        kax.axis("on")
        kax.set_xticks([])
        kax.set_yticks([])
        iax.imshow(kernel_display(res, k), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        iax.set_title(name, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
