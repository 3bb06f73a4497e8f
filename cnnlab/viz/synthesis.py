"""Images made by gradient ascent on the input: class models, unit visualisations and
reconstructions from CNN codes.

* :func:`class_model` -- Simonyan et al. (2014): ``argmax_x S_c(x) - l2 ||x||^2``, the
  image the network finds most typical of class ``c`` (or of one channel of a layer,
  as in Erhan et al. 2009 / Yosinski et al. 2015), with the regularisers of Yosinski
  et al. ("Understanding neural networks through deep visualization"): L2 decay,
  random jitter (translation) and a periodic Gaussian blur.
* :func:`invert_features` -- Mahendran and Vedaldi (2015), "Understanding deep image
  representations by inverting them": ``argmin_x ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2
  + l2 mean(x^2) + tv TV(x)`` -- what a layer's code ``phi`` keeps of an image.

Both work in the model's input units (normalised images), leave the model's mode
and parameters' ``.grad`` as they were, and are deterministic for a given ``seed``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.capture import capture_outputs
from cnnlab.nn.module import Module
from cnnlab.viz.attribution import check_logits, inspecting, logits_of, model_dtype

__all__ = ["class_model", "invert_features", "gaussian_blur", "plot_class_models", "total_variation"]


# ---------------------------------------------------------------- regularisers
def gaussian_kernel1d(sigma: float) -> np.ndarray:
    """Normalised 1-d Gaussian taps, radius ``ceil(3 sigma)``."""
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each channel of ``x`` (..., H, W) with a separable Gaussian of width ``sigma``
    pixels (edges reflected); ``sigma <= 0`` returns a copy.  Every output pixel is a
    convex combination of input pixels, so the range never grows."""
    x = np.asarray(x)
    if sigma <= 0:
        return x.copy()
    k = gaussian_kernel1d(sigma)
    r = len(k) // 2
    out = x.astype(np.float64)
    for axis in (-2, -1):
        n = out.shape[axis]
        idx = np.arange(-r, n + r)
        idx = np.abs(idx)                                     # reflect at 0 ...
        idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)   # ... and at n - 1
        idx = np.clip(idx, 0, n - 1)                          # (maps smaller than the kernel)
        padded = np.take(out, idx, axis=axis)
        acc = np.zeros_like(out)
        for j, w in enumerate(k):
            acc += w * np.take(padded, np.arange(j, j + n), axis=axis)
        out = acc
    return out.astype(x.dtype)


def total_variation(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Squared total variation ``mean over neighbour pairs of (x_right - x)^2 + (x_below - x)^2``
    (Mahendran and Vedaldi's ``R_V^beta`` with ``beta = 2``) and its gradient, for (..., H, W)."""
    dh = x[..., 1:, :] - x[..., :-1, :]
    dw = x[..., :, 1:] - x[..., :, :-1]
    n = max(dh.size + dw.size, 1)
    value = float((dh ** 2).sum() + (dw ** 2).sum()) / n
    g = np.zeros_like(x, dtype=np.float64)
    g[..., 1:, :] += 2 * dh
    g[..., :-1, :] -= 2 * dh
    g[..., :, 1:] += 2 * dw
    g[..., :, :-1] -= 2 * dw
    return value, g / n


def _check_shape(input_shape: Sequence[int], name: str) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name}: input_shape must be (C, H, W), got {tuple(input_shape)}")
    return shape  # type: ignore[return-value]


def _jitter_offsets(rng: np.random.Generator, jitter: int) -> tuple[int, int]:
    if jitter <= 0:
        return 0, 0
    dy, dx = rng.integers(-jitter, jitter + 1, size=2)
    return int(dy), int(dx)


def _roll(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(x, (dy, dx), axis=(-2, -1)) if dy or dx else x


def _clip(x: np.ndarray, pixel_range: tuple[float, float] | None) -> np.ndarray:
    if pixel_range is None:
        return x
    return np.clip(x, float(pixel_range[0]), float(pixel_range[1])).astype(x.dtype)


def _check_common(name: str, steps: int, lr: float, l2: float, jitter: int, blur_every: int,
                  blur_sigma: float) -> None:
    if int(steps) < 1:
        raise ValueError(f"{name}: steps must be >= 1, got {steps}")
    if not lr > 0:
        raise ValueError(f"{name}: lr must be > 0, got {lr}")
    if l2 < 0 or jitter < 0 or blur_every < 0 or blur_sigma < 0:
        raise ValueError(f"{name}: l2, jitter, blur_every and blur_sigma must be >= 0, "
                         f"got {l2}, {jitter}, {blur_every}, {blur_sigma}")


# ---------------------------------------------------------------- class model
def _objective(model: Module, x: np.ndarray, target: int | None, layer: str | None,
               channel: int | None) -> tuple[float, np.ndarray]:
    """The score to maximise at x (1, C, H, W) and its gradient with respect to x."""
    xt = Tensor(x, requires_grad=True)
    if layer is None:
        out = logits_of(model(xt))
        check_logits(out, np.array([target]), "class_model")
        score = out[0, target]
    else:
        with capture_outputs(model, [layer], keep_tensor=True) as seen:
            model(xt)
        act = seen[layer]
        if not isinstance(act, Tensor) or act.ndim not in (2, 4):
            raise ValueError(f"class_model: layer {layer!r} must output a Tensor (N, F) or (N, C, H, W), "
                             f"got {getattr(act, 'shape', type(act))}")
        if not 0 <= channel < act.shape[1]:
            raise ValueError(f"class_model: channel must be in [0, {act.shape[1]}) for layer {layer!r}, "
                             f"got {channel}")
        score = act[0, channel].mean() if act.ndim == 4 else act[0, channel]
    if not score.requires_grad:
        return float(score.data), np.zeros_like(x)
    score.backward()
    return float(score.data), xt.grad


def class_model(model: Module, target: int | None, input_shape: Sequence[int], steps: int = 200,
                lr: float = 0.1, l2: float = 0.3, jitter: int = 1, blur_every: int = 4,
                blur_sigma: float = 0.6, seed: int = 0, layer: str | None = None,
                channel: int | None = None, pixel_range: tuple[float, float] | None = None,
                init_std: float = 0.01, return_history: bool = False,
                progress: Callable[[int, int], None] | None = None
                ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """The input that maximises a class score (or a unit), by regularised gradient ascent.

    Each step, from a small random start ``x0 ~ N(0, init_std^2)``:

    1. shift the image by a random ``(dy, dx)`` in ``[-jitter, jitter]`` (circularly),
    2. compute the score ``S`` and ``g = dS/dx`` there and shift ``g`` back,
    3. ``x <- (x + lr * g / rms(g)) / (1 + 2 lr l2)``: a gradient step of ``lr`` (root
       mean square, in input units -- so ``lr`` means the same for every model),
       then the L2 penalty ``l2 ||x||^2`` taken implicitly (its proximal step), which is
       stable for any ``l2`` and keeps ``rms(x) <= max(rms(x0), 1 / (2 l2))``,
    4. every ``blur_every`` steps blur with a Gaussian of ``blur_sigma`` pixels, and clip
       to ``pixel_range`` if given.

    The defaults were tuned by eye on the 8x8 digits model (``digits_cnn``); larger
    images usually want more jitter (a few pixels) and a wider blur.

    Parameters
    ----------
    model : Module
        Returns logits (N, classes).  Used in eval mode (restored afterwards).
    target : int or None
        The class whose logit ``S_c`` (before the softmax, as Simonyan et al.) is
        maximised.  Ignored (may be None) when ``layer`` is given.
    input_shape : (C, H, W)
        The model's input shape.
    steps, lr, l2, jitter, blur_every, blur_sigma : see above (``blur_every = 0`` never blurs).
    seed : int
        Seeds the start image and the jitter.
    layer, channel : str, int, optional
        Maximise the mean activation of channel ``channel`` of the submodule ``layer``
        (a dotted name, see :func:`cnnlab.nn.capture.layer_names`) instead; for a layer
        with output (N, F) the unit ``channel``.
    pixel_range : (low, high), optional
        Valid input values (model units), enforced after every step.
    init_std : float
        Standard deviation of the start image.
    return_history : bool
        Also return ``{"score": (steps,), "l2": (steps,)}``: the score at each step's
        (jittered) forward, before that step's update, and ``mean(x^2)`` there.
    progress : callable, optional
        Called after every step with (steps done, steps).

    Returns
    -------
    x : (C, H, W) ndarray of the model's dtype, in the model's input units
    """
    C, H, W = _check_shape(input_shape, "class_model")
    _check_common("class_model", steps, lr, l2, jitter, blur_every, blur_sigma)
    if layer is None and target is None:
        raise ValueError("class_model: give a target class or a layer and channel")
    if layer is not None and channel is None:
        raise ValueError(f"class_model: layer {layer!r} given without a channel")
    if layer is None:
        target = int(target)
    rng = np.random.default_rng(seed)
    dtype = model_dtype(model)
    x = (init_std * rng.standard_normal((1, C, H, W))).astype(dtype)
    scores, norms = np.empty(int(steps)), np.empty(int(steps))
    shrink = 1.0 / (1.0 + 2.0 * lr * l2)
    with inspecting(model):
        for k in range(int(steps)):
            dy, dx = _jitter_offsets(rng, int(jitter))
            scores[k], g = _objective(model, _roll(x, dy, dx), target, layer, channel)
            norms[k] = float(np.mean(x.astype(np.float64) ** 2))
            g = _roll(g, -dy, -dx)
            rms = float(np.sqrt(np.mean(g.astype(np.float64) ** 2)))
            step = g / rms if rms > 0 else g
            x = ((x + lr * step) * shrink).astype(dtype)
            if blur_every and (k + 1) % blur_every == 0:
                x = gaussian_blur(x, blur_sigma)
            x = _clip(x, pixel_range)
            if progress is not None:
                progress(k + 1, int(steps))
    if return_history:
        return x[0], {"score": scores, "l2": norms}
    return x[0]


# ---------------------------------------------------------------- inversion
def _features(model: Module, layer: str, x: np.ndarray, requires_grad: bool) -> tuple[Tensor, Tensor]:
    xt = Tensor(x, requires_grad=requires_grad)
    with capture_outputs(model, [layer], keep_tensor=True) as seen:
        model(xt)
    phi = seen.get(layer)
    if not isinstance(phi, Tensor):
        raise ValueError(f"invert_features: layer {layer!r} produced no Tensor output")
    return xt, phi


def invert_features(model: Module, layer: str, image: np.ndarray, steps: int = 200, lr: float = 0.05,
                    l2: float = 0.0, tv: float = 0.0, jitter: int = 0, blur_every: int = 0,
                    blur_sigma: float = 0.5, seed: int = 0,
                    pixel_range: tuple[float, float] | None = None, init_std: float = 0.1,
                    return_history: bool = False
                    ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reconstruct an image from its code at ``layer`` (Mahendran and Vedaldi 2015).

    Minimises ``L(x) = ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + l2 mean(x^2) + tv TV(x)``
    (``phi`` = the output of submodule ``layer``, ``TV`` = :func:`total_variation`)
    with Adam (betas 0.9, 0.999) from random noise ``N(0, init_std^2)``; optional
    jitter (the reconstruction is shifted before each forward) and periodic blur as in
    :func:`class_model`.

    Parameters
    ----------
    model : Module
    layer : str
        Dotted submodule name whose output is the code.
    image : (C, H, W) or (1, C, H, W)
        ``x0``, in the model's input units.
    steps, lr : int, float
        Adam iterations and step size (input units).
    l2, tv : float
        Weights of the regularisers (>= 0).
    jitter, blur_every, blur_sigma, seed, pixel_range, init_std : see :func:`class_model`.
    return_history : bool
        Also return ``{"loss": (steps,), "feature_loss": (steps,)}``, the objective and
        its first (normalised feature distance) term at each step, before the update.

    Returns
    -------
    x : (C, H, W) ndarray of the model's dtype
    """
    _check_common("invert_features", steps, lr, l2, jitter, blur_every, blur_sigma)
    if tv < 0:
        raise ValueError(f"invert_features: tv must be >= 0, got {tv}")
    x0 = np.asarray(image.data if isinstance(image, Tensor) else image)
    if x0.ndim == 3:
        x0 = x0[None]
    if x0.ndim != 4 or x0.shape[0] != 1:
        raise ValueError(f"invert_features: image must be (C, H, W) or (1, C, H, W), got {x0.shape}")
    dtype = model_dtype(model)
    x0 = x0.astype(dtype)
    rng = np.random.default_rng(seed)
    x = (init_std * rng.standard_normal(x0.shape)).astype(dtype)
    m = np.zeros(x.shape)
    v = np.zeros(x.shape)
    b1, b2, adam_eps = 0.9, 0.999, 1e-8
    losses, feats = np.empty(int(steps)), np.empty(int(steps))
    with inspecting(model):
        _, phi0_t = _features(model, layer, x0, requires_grad=False)
        phi0 = phi0_t.data.astype(np.float64)
        denom = float((phi0 ** 2).sum())
        if denom == 0:
            raise ValueError(f"invert_features: the code of the image at layer {layer!r} is all zeros")
        for k in range(int(steps)):
            dy, dx = _jitter_offsets(rng, int(jitter))
            xt, phi = _features(model, layer, _roll(x, dy, dx), requires_grad=True)
            diff = phi.data.astype(np.float64) - phi0
            feats[k] = float((diff ** 2).sum()) / denom
            if phi.requires_grad:
                phi.backward((2.0 * diff / denom).astype(phi.dtype))
            g = _roll(xt.grad, -dy, -dx) if xt.grad is not None else np.zeros(x.shape)
            g = g.astype(np.float64)
            xf = x.astype(np.float64)
            tv_value, tv_grad = total_variation(xf) if tv else (0.0, 0.0)
            losses[k] = feats[k] + l2 * float(np.mean(xf ** 2)) + tv * tv_value
            g = g + l2 * 2.0 * xf / xf.size + tv * tv_grad
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mh, vh = m / (1 - b1 ** (k + 1)), v / (1 - b2 ** (k + 1))
            x = (xf - lr * mh / (np.sqrt(vh) + adam_eps)).astype(dtype)
            if blur_every and (k + 1) % blur_every == 0:
                x = gaussian_blur(x, blur_sigma)
            x = _clip(x, pixel_range)
    if return_history:
        return x[0], {"loss": losses, "feature_loss": feats}
    return x[0]


def plot_class_models(images: Sequence[np.ndarray] | np.ndarray, labels: Sequence[str], path,
                      title: str = "class models", ncols: int | None = None, dpi: int = 100):
    """A grid of class-model images (each (H, W) or (H, W, 3), values in [0, 1]),
    every tile titled with its ``labels`` entry (class name and probability, say);
    the figure's title above, sized so no text is clipped.  Returns the PNG path."""
    import math

    from cnnlab.plots import save_exact, subplots

    imgs = [np.asarray(im, dtype=np.float64) for im in images]
    if not imgs or len(imgs) != len(labels):
        raise ValueError(f"plot_class_models: {len(imgs)} images and {len(labels)} labels must be "
                         "equally many, and at least one")
    n = len(imgs)
    cols = max(1, min(n, ncols or math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    side = max(1.6, 0.07 * max(len(t) for t in labels) + 0.4)
    fig, axes = subplots(rows, cols, figsize=(max(side * cols, 0.09 * len(title) + 0.6),
                                              (side + 0.35) * rows + 0.4),
                         squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < n:
            im = np.clip(imgs[k], 0.0, 1.0)
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(labels[k], fontsize=9)
    fig.suptitle(title, fontsize=11)
    return save_exact(fig, path, dpi)
