"""Fooling a ConvNet: adversarial examples by the sign of the loss gradient.

* :func:`fgsm` -- the fast gradient sign method (Goodfellow, Shlens and Szegedy 2015):
  ``x_adv = x + eps * sign(d loss / d x)``, one step.
* :func:`iterative_fgsm` -- the basic iterative method (Kurakin, Goodfellow and Bengio
  2017): steps of ``alpha * sign(grad)``, each followed by projection onto the
  L-infinity ball of radius ``eps`` around ``x`` (and onto the valid pixel range).
* :func:`accuracy_under_attack` -- test accuracy as a function of ``eps``.

Units.  The model sees *normalised* inputs ``x = (raw - mean) / std`` (the
loader's :class:`~cnnlab.data.transforms.Normalize`), but a budget is meant in
raw pixel units, where images are in ``[0, 1]``: ``eps = 0.1`` changes no raw
pixel by more than 0.1 (a tenth of the black-to-white range).  So every function
here takes ``eps``, ``alpha`` and ``pixel_range`` in **raw pixel units** together
with the ``mean`` and ``std`` of the normalisation (per channel or one value);
with the defaults ``mean=0, std=1`` raw and model units coincide.
:func:`accuracy_under_attack` reads ``mean`` and ``std`` from the loader's
transform.  Inputs and outputs ``x`` / ``x_adv`` stay in the model's (normalised)
units, ready for ``model(x_adv)``; :func:`to_raw` converts back for display.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.data.transforms import Compose, Normalize
from cnnlab.nn import functional as F
from cnnlab.nn.module import Module
from cnnlab.plots import subplots
from cnnlab.viz.attribution import as_batch, as_targets, check_logits, inspecting, logits_of
from cnnlab.viz.image import as_hwc, save_figure, to_unit

__all__ = ["fgsm", "iterative_fgsm", "accuracy_under_attack", "loader_normalization", "to_raw",
           "plot_adversarial"]

Stat = float | Sequence[float] | np.ndarray


def _channel_stats(mean: Stat, std: Stat, C: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    s = np.atleast_1d(np.asarray(std, dtype=np.float64))
    for v, what in ((m, "mean"), (s, "std")):
        if v.ndim != 1 or len(v) not in (1, C):
            raise ValueError(f"{name}: {what} must be one value or one per channel ({C}), got {v.tolist()}")
    if np.any(s <= 0):
        raise ValueError(f"{name}: std must be positive, got {s.tolist()}")
    return np.broadcast_to(m, (C,)).reshape(1, C, 1, 1), np.broadcast_to(s, (C,)).reshape(1, C, 1, 1)


def to_raw(x: np.ndarray, mean: Stat = 0.0, std: Stat = 1.0) -> np.ndarray:
    """Undo the normalisation: ``raw = x * std + mean`` (x is (N, C, H, W) or (C, H, W))."""
    a = np.asarray(x, dtype=np.float64)
    single = a.ndim == 3
    a = a[None] if single else a
    m, s = _channel_stats(mean, std, a.shape[1], "to_raw")
    r = a * s + m
    return r[0] if single else r


def loss_gradient(model: Module, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``d L / d x`` of the summed cross-entropy (so each row is its own image's
    gradient) and the logits; model already in eval mode with frozen parameters."""
    xt = Tensor(x, requires_grad=True)
    out = logits_of(model(xt))
    check_logits(out, y, "adversarial")
    F.cross_entropy(out, y, reduction="sum").backward()
    return xt.grad, out.data


def _clip_delta(delta_raw: np.ndarray, r0: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    """Limit a raw perturbation so that ``r0 + delta`` stays in [lo, hi].

    A pixel already (by rounding) outside the range is never moved further and
    never pulled back, so a zero perturbation stays exactly zero."""
    if lo is not None:
        delta_raw = np.maximum(delta_raw, np.minimum(lo - r0, 0.0))
    if hi is not None:
        delta_raw = np.minimum(delta_raw, np.maximum(hi - r0, 0.0))
    return delta_raw


def _apply(x: np.ndarray, delta_raw: np.ndarray, s: np.ndarray) -> np.ndarray:
    """x (model units) moved by ``delta_raw`` raw units, in x's dtype."""
    return (x + delta_raw / s).astype(x.dtype)


def _check_range(pixel_range: tuple[float, float] | None, name: str) -> tuple[float | None, float | None]:
    if pixel_range is None:
        return None, None
    lo, hi = (float(v) for v in pixel_range)
    if not lo < hi:
        raise ValueError(f"{name}: pixel_range must be (low, high) with low < high, got {pixel_range}")
    return lo, hi


def fgsm(model: Module, x: np.ndarray | Tensor, y: int | Sequence[int] | np.ndarray, eps: float,
         pixel_range: tuple[float, float] | None = None, mean: Stat = 0.0, std: Stat = 1.0) -> np.ndarray:
    """Fast gradient sign method: one step of size ``eps`` along ``sign(d CE / d x)``.

    Parameters
    ----------
    model : Module
        Returns logits (N, classes); used in eval mode (restored afterwards).
    x : (N, C, H, W) or (C, H, W)
        The model's (normalised) input.  Not modified.
    y : int or (N,) ints
        True labels; the attack increases their cross-entropy.
    eps : float
        Budget in raw pixel units (see the module docstring), ``>= 0``.
    pixel_range : (low, high), optional
        Valid raw pixel values, e.g. ``(0.0, 1.0)``; the result is clipped to it.
    mean, std : float or per-channel sequence
        The normalisation ``x = (raw - mean) / std`` of the input.

    Returns
    -------
    x_adv : (N, C, H, W) ndarray in the model's units and dtype, with
        ``|to_raw(x_adv) - to_raw(x)| <= eps`` everywhere.
    """
    if not eps >= 0:
        raise ValueError(f"fgsm: eps must be >= 0, got {eps}")
    xa = as_batch(model, x, "fgsm")
    targets = as_targets(y, len(xa), "fgsm")
    m, s = _channel_stats(mean, std, xa.shape[1], "fgsm")
    lo, hi = _check_range(pixel_range, "fgsm")
    if eps == 0:
        return xa
    with inspecting(model):
        g, _ = loss_gradient(model, xa, targets)
    return _apply(xa, _clip_delta(eps * np.sign(g), xa * s + m, lo, hi), s)


def iterative_fgsm(model: Module, x: np.ndarray | Tensor, y: int | Sequence[int] | np.ndarray, eps: float,
                   alpha: float | None = None, steps: int = 10,
                   pixel_range: tuple[float, float] | None = None, mean: Stat = 0.0,
                   std: Stat = 1.0) -> np.ndarray:
    """The basic iterative method (I-FGSM, Kurakin et al. 2017).

    ``x_{k+1} = Clip_{x, eps}(x_k + alpha * sign(d CE(x_k) / d x))``: each step is
    projected back onto the L-infinity ball of radius ``eps`` around ``x`` and onto
    ``pixel_range``.

    Parameters
    ----------
    eps, alpha : float
        Raw pixel units.  ``alpha`` defaults to ``2.5 * eps / steps`` (so the steps
        can cross the ball and then refine), Kurakin et al. use 1/255 per step.
    steps : int
        Number of gradient steps, ``>= 1``.
    Other parameters and the result as :func:`fgsm`.
    """
    if not eps >= 0:
        raise ValueError(f"iterative_fgsm: eps must be >= 0, got {eps}")
    if int(steps) < 1:
        raise ValueError(f"iterative_fgsm: steps must be >= 1, got {steps}")
    alpha = 2.5 * eps / int(steps) if alpha is None else float(alpha)
    if not alpha > 0 and eps > 0:
        raise ValueError(f"iterative_fgsm: alpha must be > 0, got {alpha}")
    xa = as_batch(model, x, "iterative_fgsm")
    targets = as_targets(y, len(xa), "iterative_fgsm")
    m, s = _channel_stats(mean, std, xa.shape[1], "iterative_fgsm")
    lo, hi = _check_range(pixel_range, "iterative_fgsm")
    if eps == 0:
        return xa
    r0 = xa * s + m
    delta = np.zeros_like(r0)          # accumulated raw perturbation
    with inspecting(model):
        for _ in range(int(steps)):
            g, _ = loss_gradient(model, _apply(xa, delta, s), targets)
            delta = _clip_delta(np.clip(delta + alpha * np.sign(g), -eps, eps), r0, lo, hi)
    return _apply(xa, delta, s)


def loader_normalization(loader) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of the :class:`Normalize` in a loader's transform (searching a
    :class:`Compose`), or ``(0, 1)`` when it does not normalise."""
    t = getattr(loader, "transform", None)
    found = [t] if isinstance(t, Normalize) else []
    if isinstance(t, Compose):
        found = [u for u in t.transforms if isinstance(u, Normalize)]
    if len(found) > 1:
        raise ValueError("loader_normalization: the loader's transform normalises more than once")
    if not found:
        return np.zeros(1), np.ones(1)
    return found[0].mean, found[0].std


def accuracy_under_attack(model: Module, loader: Iterable, eps_list: Sequence[float], method: str = "fgsm",
                          alpha: float | None = None, steps: int = 10,
                          pixel_range: tuple[float, float] | None = (0.0, 1.0),
                          mean: Stat | None = None, std: Stat | None = None) -> list[tuple[float, float]]:
    """Accuracy on adversarial versions of every batch of ``loader``, for each ``eps``.

    Parameters
    ----------
    model : Module
    loader : iterable of (x, y) batches, e.g. :func:`cnnlab.training.run.evaluation_loader`'s
    eps_list : sequence of float
        Budgets in raw pixel units; ``eps = 0`` gives the clean accuracy exactly.
    method : {'fgsm', 'ifgsm'}
    alpha, steps : passed to :func:`iterative_fgsm`
    pixel_range : (low, high) or None
        Valid raw pixel values; cnnlab's datasets are in ``[0, 1]``.
    mean, std : optional
        The input normalisation; by default read from ``loader.transform``
        (:func:`loader_normalization`).

    Returns
    -------
    list of (eps, accuracy), in the order of ``eps_list``.
    """
    if method not in ("fgsm", "ifgsm"):
        raise ValueError(f"accuracy_under_attack: method must be 'fgsm' or 'ifgsm', got {method!r}")
    if mean is None or std is None:
        lm, ls = loader_normalization(loader)
        mean = lm if mean is None else mean
        std = ls if std is None else std
    eps_list = [float(e) for e in eps_list]
    correct = np.zeros(len(eps_list), dtype=np.int64)
    total = 0
    for xb, yb in loader:
        x = np.asarray(xb.data if isinstance(xb, Tensor) else xb)
        y = np.asarray(yb.data if isinstance(yb, Tensor) else yb).astype(np.int64)
        total += len(y)
        for k, eps in enumerate(eps_list):
            if method == "fgsm":
                adv = fgsm(model, x, y, eps, pixel_range=pixel_range, mean=mean, std=std)
            else:
                adv = iterative_fgsm(model, x, y, eps, alpha=alpha, steps=steps, pixel_range=pixel_range,
                                     mean=mean, std=std)
            with inspecting(model), no_grad():
                pred = logits_of(model(Tensor(adv))).data.argmax(axis=1)
            correct[k] += int((pred == y).sum())
    if total == 0:
        raise ValueError("accuracy_under_attack: the loader yielded no samples")
    return [(eps, float(c) / total) for eps, c in zip(eps_list, correct)]


def plot_adversarial(image: np.ndarray, perturbation: np.ndarray, adv: np.ndarray,
                     pred_before: str | int, pred_after: str | int, path: str | os.PathLike,
                     title: str | None = None) -> Path:
    """Clean image, perturbation (grey = 0, magnified to full contrast) and adversarial image.

    Parameters
    ----------
    image, adv : (C, H, W) or (H, W), raw pixels (see :func:`to_raw`), shown on one
        shared grey scale so the change is not hidden by rescaling
    perturbation : same shape, ``adv - image``
    pred_before, pred_after : the model's prediction (class name or index, or any label
        text such as ``"3 (0.98)"``)
    """

    img = as_hwc(np.asarray(image, dtype=np.float64))
    adv_img = as_hwc(np.asarray(adv, dtype=np.float64))
    pert = as_hwc(np.asarray(perturbation, dtype=np.float64))
    lo, hi = min(img.min(), adv_img.min()), max(img.max(), adv_img.max())
    scale = (lambda a: (a - lo) / (hi - lo)) if hi > lo else (lambda a: np.full_like(a, 0.5))
    fig, axes = subplots(1, 3, figsize=(7.5, 3.0))
    axes[0].imshow(np.clip(scale(img), 0, 1), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"clean\npredicted {pred_before}", fontsize=9)
    axes[1].imshow(to_unit(pert, symmetric=True), cmap="seismic" if pert.ndim == 2 else None, vmin=0, vmax=1)
    axes[1].set_title(f"perturbation\nmax |.| = {np.abs(pert).max():.3g}", fontsize=9)
    axes[2].imshow(np.clip(scale(adv_img), 0, 1), cmap="gray", vmin=0, vmax=1)
    axes[2].set_title(f"adversarial\npredicted {pred_after}", fontsize=9)
    for a in axes:
        a.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10, y=1.04)
    return save_figure(fig, path)
