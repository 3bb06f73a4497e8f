"""t-SNE maps of CNN codes (the notes' "embedding the codes with t-SNE").

A *CNN code* is the activation vector a trained network computes for an image just
before its classifier (AlexNet's 4096-d ReLU'd ``fc7``).  Images whose codes are
close look alike *to the network*; t-SNE places the codes in 2-D so that close
codes stay close, and :func:`plot_tsne_mosaic` draws each image at its place on a
grid (Karpathy's "t-SNE of CNN codes" picture).

::

    codes = extract_codes(model, "classifier.1", x)       # (N, D)
    emb = tsne(codes, perplexity=30, seed=0)               # (N, 2)
    plot_tsne_scatter(emb, y, "tsne.png", classes)
    plot_tsne_mosaic(emb, x_raw, "mosaic.png")

t-SNE comes from openTSNE (FFT-accelerated, deterministic for a seed); without it,
scikit-learn's ``TSNE`` is used (same objective, Barnes-Hut, a slightly different map).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.nn.capture import capture_outputs, layer_names
from cnnlab.nn.module import Module
from cnnlab.plots import subplots
from cnnlab.viz.attribution import inspecting
from cnnlab.viz.image import save_png, to_unit

__all__ = ["check_layer", "penultimate_layer", "extract_codes", "tsne", "grid_assignment",
           "plot_tsne_scatter", "plot_tsne_mosaic"]


def check_layer(model: Module, layer: str, func: str = "layer") -> str:
    """Return ``layer`` if ``model`` has a submodule of that dotted name, else raise a
    ValueError that lists every name the model has."""
    names = layer_names(model)
    if layer not in names:
        raise ValueError(f"{func}: {type(model).__name__} has no layer {layer!r}; "
                         f"available layers: {', '.join(names)}")
    return layer


def penultimate_layer(model: Module) -> str:
    """Name of the leaf layer whose output feeds the model's last ``Linear`` layer
    (skipping Dropout): the layer whose output is the "CNN code".

    Found in registration order, which is the forward order for the zoo's models
    (``DigitsCNN`` -> ``'classifier.1'``, the ReLU after FC 64).
    """
    from cnnlab.nn import Dropout, Linear

    leaves = [(n, m) for n, m in model.named_modules() if n and not m._modules]
    last_linear = max((i for i, (_, m) in enumerate(leaves) if isinstance(m, Linear)), default=None)
    if last_linear is None or last_linear == 0:
        raise ValueError(f"penultimate_layer: {type(model).__name__} has no Linear layer with a "
                         "layer before it; pass the layer name explicitly")
    for name, mod in reversed(leaves[:last_linear]):
        if not isinstance(mod, Dropout):
            return name
    raise ValueError(f"penultimate_layer: only Dropout before the last Linear of {type(model).__name__}")


def extract_codes(model: Module, layer: str | None, images: np.ndarray | Tensor,
                  batch_size: int = 256) -> np.ndarray:
    """The flattened output of ``layer`` for every image (eval mode, no graph).

    Parameters
    ----------
    model : Module
    layer : str or None
        Dotted layer name (see :func:`cnnlab.nn.capture.layer_names`); None takes
        :func:`penultimate_layer`.
    images : (N, C, H, W) array or Tensor
        Model inputs (already resized / normalised as the model was trained).
    batch_size : int

    Returns
    -------
    codes : (N, D) float32, D = the product of the layer's output shape.
    """
    x = np.asarray(images.data if isinstance(images, Tensor) else images)
    if x.ndim != 4:
        raise ValueError(f"extract_codes: expected images (N, C, H, W), got shape {x.shape}")
    if batch_size < 1:
        raise ValueError(f"extract_codes: batch_size must be >= 1, got {batch_size}")
    layer = penultimate_layer(model) if layer is None else check_layer(model, layer, "extract_codes")
    parts = []
    with inspecting(model), no_grad(), capture_outputs(model, [layer]) as seen:
        for start in range(0, len(x), batch_size):
            model(Tensor(x[start:start + batch_size]))
            parts.append(seen[layer].reshape(len(x[start:start + batch_size]), -1))
    return np.concatenate(parts).astype(np.float32, copy=False)


def tsne(codes: np.ndarray, perplexity: float = 30.0, seed: int = 0, n_iter: int = 750,
         pca_dims: int | None = 50, n_jobs: int = 1) -> np.ndarray:
    """2-D t-SNE embedding of ``codes``.

    Parameters
    ----------
    codes : (N, D) array
    perplexity : float
        Effective number of neighbours per point; must be < N (openTSNE lowers it
        to (N - 1) / 3 with a warning if it is too large).
    seed : int
        Random state; the same seed gives the same map.
    n_iter : int
        Optimisation iterations after the 250 early-exaggeration ones.
    pca_dims : int or None
        First project the codes on their top principal components when D is larger
        (the usual t-SNE preprocessing; None keeps all D).
    n_jobs : int

    Returns
    -------
    emb : (N, 2) float64

    Notes
    -----
    Uses ``openTSNE.TSNE`` (PCA initialisation, FFT gradients).  If openTSNE is not
    installed, falls back to ``sklearn.manifold.TSNE`` (PCA init, Barnes-Hut), which
    optimises the same objective but gives a different layout for the same seed.
    """
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"tsne: expected codes (N, D) with N >= 4, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("tsne: codes contain NaN or infinite values")
    if perplexity <= 0:
        raise ValueError(f"tsne: perplexity must be > 0, got {perplexity}")
    perplexity = min(float(perplexity), (len(x) - 1) / 3.0)
    if pca_dims is not None and x.shape[1] > pca_dims:
        xc = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        x = xc @ vt[:pca_dims].T
    try:
        from openTSNE import TSNE as OpenTSNE
    except ImportError:
        from sklearn.manifold import TSNE as SkTSNE

        kw = {"max_iter": n_iter + 250}
        try:
            sk = SkTSNE(2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=n_jobs, **kw)
        except TypeError:   # scikit-learn < 1.5 names it n_iter
            sk = SkTSNE(2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=n_jobs,
                        n_iter=n_iter + 250)
        return np.asarray(sk.fit_transform(x), dtype=np.float64)
    emb = OpenTSNE(n_components=2, perplexity=perplexity, n_iter=n_iter, initialization="pca",
                   random_state=seed, n_jobs=n_jobs, verbose=False).fit(x)
    return np.asarray(emb, dtype=np.float64)


def grid_assignment(emb: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Snap 2-D points to distinct cells of a ``rows x cols`` grid, keeping the layout.

    The points are scaled to the grid's extent and each gets its own cell so that the
    total squared distance moved is smallest (an optimal assignment by
    ``scipy.optimize.linear_sum_assignment`` for up to 4 million point-cell pairs;
    beyond that, points greedily take the nearest free cell, farthest-out points first).

    Parameters
    ----------
    emb : (N, 2) array, N <= rows * cols
    grid : (rows, cols)

    Returns
    -------
    cells : (N, 2) int array of (row, col), all distinct.
    """
    e = np.asarray(emb, dtype=np.float64)
    rows, cols = int(grid[0]), int(grid[1])
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"grid_assignment: expected points (N, 2), got shape {e.shape}")
    if len(e) > rows * cols:
        raise ValueError(f"grid_assignment: {len(e)} points do not fit a {rows}x{cols} grid")
    lo, hi = e.min(axis=0), e.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    u = (e - lo) / span                                  # [0, 1]^2; x -> column, y -> row (up)
    target = np.stack([(1 - u[:, 1]) * (rows - 1), u[:, 0] * (cols - 1)], axis=1)
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    cells = np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.float64)
    if len(e) * len(cells) <= 4_000_000:
        from scipy.optimize import linear_sum_assignment

        cost = ((target[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
        pts, chosen = linear_sum_assignment(cost)
        out = np.empty((len(e), 2), dtype=np.int64)
        out[pts] = cells[chosen].astype(np.int64)
        return out
    centre = np.array([(rows - 1) / 2, (cols - 1) / 2])
    order = np.argsort(-((target - centre) ** 2).sum(1))
    free = np.ones(len(cells), dtype=bool)
    out = np.empty((len(e), 2), dtype=np.int64)
    for i in order:
        d = ((cells - target[i]) ** 2).sum(1)
        d[~free] = np.inf
        j = int(np.argmin(d))
        free[j] = False
        out[i] = cells[j].astype(np.int64)
    return out


def _class_colours(k: int) -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return np.array([cmap(i % cmap.N)[:3] for i in range(k)])


def plot_tsne_scatter(emb: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                      class_names: Sequence[str] | None = None, title: str = "t-SNE of CNN codes",
                      figsize: tuple[float, float] = (6.4, 5.6), dpi: int = 100) -> Path:
    """Scatter the 2-D embedding coloured by class, with a legend; writes a PNG.

    Parameters
    ----------
    emb : (N, 2) array
    labels : (N,) int array, classes 0..K-1
    class_names : K names for the legend (default "0".."K-1")
    """

    from cnnlab.viz.training_plots import save_exact

    e = np.asarray(emb, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    if e.ndim != 2 or e.shape[1] != 2 or len(y) != len(e):
        raise ValueError(f"plot_tsne_scatter: expected emb (N, 2) and labels (N,), "
                         f"got {e.shape} and {y.shape}")
    k = int(y.max()) + 1 if len(y) else 0
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    colours = _class_colours(max(k, len(names)))
    fig, ax = subplots(figsize=figsize)
    for c in range(k):
        sel = y == c
        if sel.any():
            ax.scatter(e[sel, 0], e[sel, 1], s=9, color=colours[c], label=names[c] if c < len(names) else c)
            cx, cy = np.median(e[sel], axis=0)
            ax.text(cx, cy, names[c] if c < len(names) else str(c), fontsize=11, weight="bold",
                    ha="center", va="center", bbox={"boxstyle": "round,pad=0.2", "fc": "white",
                                                    "ec": colours[c], "alpha": 0.8})
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5, frameon=False)
    fig.tight_layout()
    return save_exact(fig, path, dpi)


def _thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) -> (N, size, size[, 3]) in [0, 1]."""
    from cnnlab.data import Resize

    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"plot_tsne_mosaic: expected images (N, 1 or 3, H, W) or (N, H, W), got {x.shape}")
    if x.min() < 0 or x.max() > 1:
        x = to_unit(x)
    N, C, H, W = x.shape
    if (H, W) != (size, size):
        if size % H == 0 and size % W == 0 and size // H == size // W:
            r = size // H
            x = np.repeat(np.repeat(x, r, axis=2), r, axis=3)   # crisp pixels for tiny images
        else:
            x = np.clip(Resize(size)(x), 0.0, 1.0)
    return x[:, 0] if C == 1 else np.transpose(x, (0, 2, 3, 1))


def plot_tsne_mosaic(emb: np.ndarray, images: np.ndarray, path: str | os.PathLike, size: int = 24,
                     grid: tuple[int, int] | None = None, labels: np.ndarray | None = None,
                     border: int = 1) -> Path:
    """The notes' t-SNE image mosaic: each image drawn at its embedded position,
    snapped to a grid (:func:`grid_assignment`) so thumbnails never overlap.

    Parameters
    ----------
    emb : (N, 2) array
    images : (N, C, H, W) with C in (1, 3), or (N, H, W)
        Raw pixels for display (values outside [0, 1] are rescaled together).
    size : int
        Thumbnail side in pixels (tiny images are enlarged by pixel repetition when
        ``size`` is a multiple of their side, else bilinearly).
    grid : (rows, cols), optional
        Default: the smallest square grid with about 10% more cells than images.
    labels : (N,) int array, optional
        Draw a ``border``-pixel frame in each image's class colour.

    Returns
    -------
    The PNG path; the picture is exactly ``(rows * size, cols * size)`` pixels,
    empty cells white.
    """
    e = np.asarray(emb, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != 2 or len(e) != len(images):
        raise ValueError(f"plot_tsne_mosaic: expected emb (N, 2) for N = {len(images)} images, got {e.shape}")
    if size < 2:
        raise ValueError(f"plot_tsne_mosaic: size must be >= 2, got {size}")
    if grid is None:
        side = math.ceil(math.sqrt(len(e) * 1.1))
        grid = (side, side)
    thumbs = _thumbnails(images, size)
    cells = grid_assignment(e, grid)
    colour = labels is not None
    if colour:
        y = np.asarray(labels).astype(np.int64).ravel()
        pal = _class_colours(int(y.max()) + 1)
    canvas = np.ones((grid[0] * size, grid[1] * size, 3))
    for i, (r, c) in enumerate(cells):
        t = thumbs[i]
        t = np.repeat(t[..., None], 3, axis=2) if t.ndim == 2 else t
        if colour and border > 0:
            t = t.copy()
            b = border
            t[:b], t[-b:], t[:, :b], t[:, -b:] = pal[y[i]], pal[y[i]], pal[y[i]], pal[y[i]]
        canvas[r * size:(r + 1) * size, c * size:(c + 1) * size] = t
    return save_png(canvas, path)
