"""Which pixels matter: gradients, occlusion, DeconvNet and guided backpropagation.

* :func:`input_gradient` / :func:`saliency` -- the data gradient of a class score
  (Simonyan, Vedaldi and Zisserman 2014, "Deep inside convolutional networks"):
  ``d S_c / d x`` for the logit ``S_c`` (before the softmax), and the saliency map
  ``max_c |d S_c / d x_c|`` over the colour channels.
* :func:`occlusion` -- Zeiler and Fergus (2014): slide a grey (or zero) square over
  the image and record the probability of the true class; a drop marks what the
  network relies on.
* :func:`deconvnet` and :func:`guided_backprop` -- the same backward pass with the
  ReLU rule switched by :func:`cnnlab.autograd.relu_backward_mode` (Zeiler and
  Fergus 2014; Springenberg et al. 2015, "Striving for simplicity").

Every function takes the model's input batch ``x`` (N, C, H, W) -- already
normalised the way the model was trained -- and one class index per image;
it puts the model in eval mode for the call (restoring its mode afterwards),
never changes ``x`` and leaves the parameters' ``.grad`` untouched.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cnnlab.autograd.relu_modes import relu_backward_mode
from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.kernels.activation import softmax_forward
from cnnlab.nn.module import Module
from cnnlab.nn.modules.activation import ReLU
from cnnlab.plots import subplots
from cnnlab.training.loop import main_logits
from cnnlab.viz.image import as_hwc, display_image, save_figure, to_unit

__all__ = ["input_gradient", "saliency", "guided_backprop", "deconvnet", "occlusion", "occlusion_size",
           "plot_saliency", "plot_guided", "plot_occlusion"]

Target = int | Sequence[int] | np.ndarray


# ------------------------------------------------------------------ helpers
def model_dtype(model: Module) -> np.dtype:
    """The floating dtype of the model's first parameter (float32 if it has none)."""
    for p in model.parameters():
        return p.data.dtype
    return np.dtype(np.float32)


def as_batch(model: Module, x: np.ndarray | Tensor, name: str) -> np.ndarray:
    """A fresh (N, C, H, W) array of the model's dtype (a single (C, H, W) image gets N = 1)."""
    a = np.asarray(x.data if isinstance(x, Tensor) else x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"{name}: expected x of shape (N, C, H, W) or (C, H, W), got {a.shape}")
    return np.array(a, dtype=model_dtype(model), copy=True)


def as_targets(target: Target, n: int, name: str) -> np.ndarray:
    """One int64 class index per image: an int is broadcast to all ``n`` images."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{name}: target must be class indices (int), got dtype {t.dtype}")
    t = np.broadcast_to(t.astype(np.int64), (n,)) if t.ndim == 0 else t.astype(np.int64)
    if t.shape != (n,):
        raise ValueError(f"{name}: expected one target per image ({n}), got shape {t.shape}")
    return t


def logits_of(outputs) -> Tensor:
    """The class scores of a model's output: ``outputs.logits`` for a multi-head model
    (GoogLeNet's auxiliary heads), else the output itself (:func:`cnnlab.training.loop.main_logits`)."""
    return main_logits(outputs)


def check_logits(out: Tensor, targets: np.ndarray | None, name: str) -> None:
    if not isinstance(out, Tensor) or out.ndim != 2:
        raise ValueError(f"{name}: the model must return logits (N, classes), "
                         f"got {getattr(out, 'shape', type(out).__name__)}")
    if targets is not None and targets.size and (targets.min() < 0 or targets.max() >= out.shape[1]):
        raise ValueError(f"{name}: target classes must be in [0, {out.shape[1]}), got {targets.tolist()}")


@contextmanager
def inspecting(model: Module) -> Iterator[Module]:
    """Eval mode and frozen parameters for the block; both restored afterwards.

    Freezing (``requires_grad = False``) means a backward computes only the
    gradient with respect to the input and leaves every ``p.grad`` as it was.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    model.eval()
    for p in params:
        p.requires_grad = False
    try:
        yield model
    finally:
        for p, f in zip(params, flags):
            p.requires_grad = f
        for m, t in modes:
            object.__setattr__(m, "training", t)


def _score_gradient(model: Module, x: np.ndarray | Tensor, target: Target, name: str,
                    mode: str) -> np.ndarray:
    xa = as_batch(model, x, name)
    targets = as_targets(target, len(xa), name)
    if mode != "normal" and not any(isinstance(m, ReLU) for m in model.modules()):
        warnings.warn(f"{name}: {type(model).__name__} has no ReLU module, so unless its forward calls "
                      f"F.relu the {mode} rule changes nothing and the map is the plain input gradient",
                      stacklevel=3)
    with inspecting(model), relu_backward_mode(mode):
        xt = Tensor(xa, requires_grad=True)
        out = logits_of(model(xt))
        check_logits(out, targets, name)
        seed = np.zeros(out.shape, dtype=out.dtype)
        seed[np.arange(len(xa)), targets] = 1.0
        out.backward(seed)
    return xt.grad if xt.grad is not None else np.zeros_like(xa)


# ---------------------------------------------------------------- gradients
def input_gradient(model: Module, x: np.ndarray | Tensor, target: Target) -> np.ndarray:
    """The data gradient ``d S_target / d x`` of each image's class score.

    Parameters
    ----------
    model : Module
        Returns logits (N, classes); the score is the logit, before the softmax
        (Simonyan et al.: the softmax would also depend on the other classes).
    x : (N, C, H, W) or (C, H, W) ndarray or Tensor
        The model's input (normalised as in training).  Not modified.
    target : int or (N,) ints
        The class of each image (an int is used for all).

    Returns
    -------
    grad : (N, C, H, W) ndarray of the model's dtype
        Images are independent (eval mode), so row n is the gradient of image n's
        score alone.
    """
    return _score_gradient(model, x, target, "input_gradient", "normal")


def saliency(model: Module, x: np.ndarray | Tensor, target: Target) -> np.ndarray:
    """Simonyan et al.'s image-specific class saliency map.

    ``M[n, i, j] = max_c |d S_target / d x[n, c, i, j]|`` (the largest magnitude
    over the colour channels).  Arguments as :func:`input_gradient`.

    Returns
    -------
    saliency : (N, H, W) ndarray, non-negative
    """
    return np.abs(_score_gradient(model, x, target, "saliency", "normal")).max(axis=1)


def guided_backprop(model: Module, x: np.ndarray | Tensor, target: Target) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015): the input gradient of the
    class logit computed with every ReLU passing back ``g * (x > 0) * (g > 0)``.

    Arguments as :func:`input_gradient`.

    Returns
    -------
    map : (N, C, H, W) ndarray, signed (show it with ``to_unit(m, symmetric=True)``)
    """
    return _score_gradient(model, x, target, "guided_backprop", "guided")


def deconvnet(model: Module, x: np.ndarray | Tensor, target: Target) -> np.ndarray:
    """Zeiler and Fergus's DeconvNet reconstruction of the class logit.

    A DeconvNet runs the network backwards with transposed filters, max-unpooling
    through the recorded switches and a ReLU on the reconstructed signal; that is
    exactly the backward pass with each ReLU passing back ``g * (g > 0)``
    (ignoring its forward input).  Arguments as :func:`input_gradient`.

    Returns
    -------
    map : (N, C, H, W) ndarray, signed
    """
    return _score_gradient(model, x, target, "deconvnet", "deconvnet")


# ---------------------------------------------------------------- occlusion
def occlusion_size(side: int, size: int | None = None, stride: int | None = None) -> tuple[int, int]:
    """(size, stride) of the occluding square on an input ``side`` pixels wide: the given
    ones, else a quarter of the side, moved by half the size."""
    size = size or max(1, round(side / 4))
    return size, stride or max(1, size // 2)


def occlusion_windows(H: int, W: int, size: int, stride: int) -> tuple[int, int]:
    """Number of patch positions ``((H - size) // stride + 1, (W - size) // stride + 1)``."""
    return (H - size) // stride + 1, (W - size) // stride + 1


def occlusion(model: Module, x: np.ndarray | Tensor, target: Target, size: int, stride: int,
              fill: float | str = 0.0, batch_size: int = 256,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Zeiler and Fergus's occlusion map: the probability of the target class when a
    ``size x size`` square of the image is replaced by ``fill``.

    Parameters
    ----------
    model : Module
        Returns logits (N, classes); probabilities are their softmax.
    x : (N, C, H, W) or (C, H, W)
        The model's input.  Not modified.
    target : int or (N,) ints
    size, stride : int
        Square side and step in pixels, ``1 <= size <= min(H, W)``, ``stride >= 1``.
    fill : float or 'mean'
        Value of the occluder in the model's input units (0.0 is the training mean
        when the input is standardised); ``'mean'`` uses each image's per-channel mean.
    batch_size : int
        Occluded copies evaluated per forward pass.
    progress : callable, optional
        Called after every forward pass with (occluded copies done, total).

    Returns
    -------
    heat : (N, H', W') float64
        ``heat[n, i, j]`` = p(target | image n with rows ``i*stride : i*stride+size``
        and columns ``j*stride : j*stride+size`` occluded);
        ``H' = (H - size) // stride + 1`` (likewise ``W'``).
    """
    xa = as_batch(model, x, "occlusion")
    N, C, H, W = xa.shape
    targets = as_targets(target, N, "occlusion")
    size, stride = int(size), int(stride)
    if not 1 <= size <= min(H, W):
        raise ValueError(f"occlusion: size must be in [1, {min(H, W)}] for {H}x{W} images, got {size}")
    if stride < 1 or batch_size < 1:
        raise ValueError(f"occlusion: stride and batch_size must be >= 1, got {stride}, {batch_size}")
    if isinstance(fill, str) and fill != "mean":
        raise ValueError(f"occlusion: fill must be a number or 'mean', got {fill!r}")
    OH, OW = occlusion_windows(H, W, size, stride)
    rows, cols = np.meshgrid(np.arange(OH) * stride, np.arange(OW) * stride, indexing="ij")
    corners = np.stack([rows.ravel(), cols.ravel()], axis=1)
    heat = np.empty((N, OH * OW))
    with inspecting(model), no_grad():
        for n in range(N):
            value = xa[n].mean(axis=(1, 2), keepdims=True) if fill == "mean" else np.asarray(fill)
            for start in range(0, len(corners), batch_size):
                chunk = corners[start:start + batch_size]
                batch = np.repeat(xa[n:n + 1], len(chunk), axis=0)
                for k, (r, c) in enumerate(chunk):
                    batch[k, :, r:r + size, c:c + size] = value
                out = logits_of(model(Tensor(batch)))
                check_logits(out, targets[n:n + 1], "occlusion")
                p = softmax_forward(out.data.astype(np.float64), axis=1)
                heat[n, start:start + len(chunk)] = p[:, targets[n]]
                if progress is not None:
                    progress(n * len(corners) + start + len(chunk), N * len(corners))
    return heat.reshape(N, OH, OW)


# -------------------------------------------------------------------- plots
def _rows(image: np.ndarray, maps: np.ndarray, map_ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn one image or a batch into lists of (C, H, W) images and maps."""
    img = np.asarray(image)
    mp = np.asarray(maps)
    if img.ndim == 2:
        img = img[None]
    if img.ndim == 3:
        img = img[None]
    if mp.ndim == map_ndim:
        mp = mp[None]
    if len(img) != len(mp):
        raise ValueError(f"plot: {len(img)} images but {len(mp)} maps")
    return img, mp


def plot_saliency(image: np.ndarray, saliency_map: np.ndarray, path: str | os.PathLike,
                  title: str | None = None) -> Path:
    """Each image beside its saliency map (``hot`` colour map, brighter = larger gradient).

    Parameters
    ----------
    image : (C, H, W), (H, W) or a batch (N, C, H, W)
    saliency_map : (H, W) or (N, H, W), from :func:`saliency`
    path : where the PNG goes (parents created)
    """

    img, sal = _rows(image, saliency_map, 2)
    fig, axes = subplots(len(img), 2, figsize=(4.4, 2.2 * len(img)), squeeze=False)
    for n in range(len(img)):
        axes[n, 0].imshow(display_image(img[n]), cmap="gray", vmin=0, vmax=1)
        axes[n, 1].imshow(sal[n], cmap="hot", vmin=0)
        for a in axes[n]:
            a.set_axis_off()
    axes[0, 0].set_title("image", fontsize=9)
    axes[0, 1].set_title("saliency |dS/dx|", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=1.03)
    return save_figure(fig, path)


def plot_guided(image: np.ndarray, maps: np.ndarray | dict[str, np.ndarray], path: str | os.PathLike,
                title: str | None = None) -> Path:
    """Each image beside one or more signed input-space maps (grey = 0, light = positive).

    Parameters
    ----------
    image : (C, H, W), (H, W) or a batch (N, C, H, W)
    maps : (C, H, W) / (N, C, H, W) array, or a dict ``{column title: array}`` to show
        several methods side by side (e.g. ``{"gradient": g, "deconvnet": d, "guided": gb}``)
    path : where the PNG goes
    """

    named = maps if isinstance(maps, dict) else {"guided backprop": maps}
    columns = {}
    img = None
    for key, m in named.items():
        img, columns[key] = _rows(image, m, 3)
    fig, axes = subplots(len(img), 1 + len(columns), figsize=(2.2 * (1 + len(columns)), 2.2 * len(img)),
                             squeeze=False)
    for n in range(len(img)):
        axes[n, 0].imshow(display_image(img[n]), cmap="gray", vmin=0, vmax=1)
        for k, m in enumerate(columns.values()):
            axes[n, k + 1].imshow(to_unit(as_hwc(m[n]), symmetric=True), cmap="gray", vmin=0, vmax=1)
        for a in axes[n]:
            a.set_axis_off()
    for k, key in enumerate(["image", *columns]):
        axes[0, k].set_title(key, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=1.03)
    return save_figure(fig, path)


def plot_occlusion(image: np.ndarray, heat: np.ndarray, path: str | os.PathLike,
                   size: int | None = None, stride: int | None = None, title: str | None = None) -> Path:
    """The image, the occlusion map, and the map laid over the image.

    Parameters
    ----------
    image : (C, H, W) or (H, W)
    heat : (H', W'), one row of :func:`occlusion`'s output
    size, stride : int, optional
        The occluder's; with them each heat cell is drawn centred on its patch,
        without them the map is stretched over the whole image.
    """

    disp = display_image(image)
    H, W = disp.shape[:2]
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"plot_occlusion: expected heat (H', W'), got shape {heat.shape}")
    OH, OW = heat.shape
    if size is not None and stride is not None:
        half = (size - 1) / 2
        extent = (half - stride / 2 - 0.5, half + (OW - 1) * stride + stride / 2 - 0.5,
                  half + (OH - 1) * stride + stride / 2 - 0.5, half - stride / 2 - 0.5)
    else:
        extent = (-0.5, W - 0.5, H - 0.5, -0.5)
    fig, axes = subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(disp, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("image", fontsize=9)
    im = axes[1].imshow(heat, cmap="jet", vmin=0, vmax=1)
    axes[1].set_title("p(class), occluder at each position", fontsize=9)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(disp, cmap="gray", vmin=0, vmax=1)
    axes[2].imshow(heat, cmap="jet", vmin=0, vmax=1, alpha=0.5, extent=extent, interpolation="nearest")
    axes[2].set_xlim(-0.5, W - 0.5)
    axes[2].set_ylim(H - 0.5, -0.5)
    axes[2].set_title("overlay", fontsize=9)
    for a in axes:
        a.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10, y=1.03)
    return save_figure(fig, path)
