"""``cnnlab viz METHOD`` and ``cnnlab report``: the visualisation toolkit from the shell.

::

    cnnlab viz saliency --checkpoint runs/digits-digits_cnn/model.npz --index 3
    cnnlab viz occlusion --checkpoint RUN/model.npz --image my_digit.png --invert --size 2
    cnnlab viz top-k --checkpoint RUN --layer features.4 --channel 5
    cnnlab report RUN --out RUN/report.html

Every method writes PNGs (default folder ``RUN/viz``), prints their paths, and ends
with a one-line numeric summary.  The input image is ``--index N`` (test image N of
the run's dataset, the default N = 0) or ``--image PATH`` (a PNG/JPG, turned into
the model's channels, centre-cropped square, resized to the training images' size
and passed through the run's own input pipeline).
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["add_viz_commands", "METHODS", "load_image_file", "image_to_model_input", "VizContext",
           "open_checkpoint"]

METHODS = ("kernels", "activations", "dead-filters", "filters", "top-k", "tsne", "occlusion", "saliency",
           "guided", "deconvnet", "class-model", "invert", "fgsm", "curves", "confusion", "misclassified")
_NEEDS_INPUT = {"kernels", "activations", "occlusion", "saliency", "guided", "deconvnet", "invert", "fgsm"}


# ----------------------------------------------------------------- inputs
PHOTOS = ("camera", "chelsea", "astronaut", "coffee", "coins", "moon")


def sample_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos (no download) as float64 in [0, 1]."""
    if name not in PHOTOS:
        raise ValueError(f"--photo must be one of {', '.join(PHOTOS)}, got {name!r}")
    from skimage import data

    a = np.asarray(getattr(data, name)())
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def shrink(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Anti-aliased downscale so the longer side is at most ``max_side`` (unchanged if smaller)."""
    if not max_side or max(img.shape[:2]) <= max_side:
        return img
    from skimage.transform import resize

    f = max_side / max(img.shape[:2])
    shape = (max(1, round(img.shape[0] * f)), max(1, round(img.shape[1] * f))) + img.shape[2:]
    return resize(img, shape, anti_aliasing=True)


def load_image_file(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG / JPG as float64 in [0, 1]: (H, W) grey or (H, W, 3) colour
    (an alpha channel is dropped).  Uses scikit-image, else matplotlib."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--image: {path} does not exist")
    try:
        from skimage.io import imread
    except ImportError:   # pragma: no cover - scikit-image is installed with the viz extra
        from matplotlib.image import imread
    try:
        a = np.asarray(imread(str(path)))
    except Exception as e:   # any decoder error, reported with the file name
        raise ValueError(f"--image: cannot read {path} as an image: {e}") from None
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    elif a.dtype == np.bool_:
        a = a.astype(np.float64)
    else:
        a = a.astype(np.float64)
        if a.size and a.max() > 1.0:
            a = a / 255.0
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise ValueError(f"--image: {path} has shape {a.shape}; expected (H, W) grey or (H, W, 3) colour")
    return np.clip(a, 0.0, 1.0)


def _resize_hw(img: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) -> (C, size, size), anti-aliased when shrinking."""
    try:
        from skimage.transform import resize
    except ImportError:   # pragma: no cover
        from cnnlab.data import Resize
        return np.asarray(Resize(size)(img), dtype=np.float64)
    out = resize(np.transpose(img, (1, 2, 0)), (size, size), order=1, anti_aliasing=img.shape[-1] > size,
                 mode="edge", preserve_range=True)
    return np.transpose(np.asarray(out, dtype=np.float64).reshape(size, size, -1), (2, 0, 1))


def image_to_model_input(img: np.ndarray, meta: dict[str, Any], invert: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Bring a photo (H, W) / (H, W, 3) in [0, 1] to what the run's model takes.

    Converts to the model's channel count (luminance 0.2125 R + 0.7154 G + 0.0721 B
    for grey), crops the centre square, resizes it to the training images' side,
    optionally inverts (``1 - x``: dark ink on white paper -> the datasets' light ink on
    black), then applies the run's pipeline (:func:`cnnlab.training.run.input_transform`).

    Returns
    -------
    raw : (1, C, S, S) float32, the image at the model's input size in raw pixels
    x : (1, C, S, S) float32, ``raw`` standardised as in training (the model's input)
    """
    spec = meta["model_spec"]
    C = int(spec["kwargs"]["in_channels"])
    a = np.asarray(img, dtype=np.float64)
    if C == 1 and a.ndim == 3:
        from cnnlab.viz.kernels import to_grey

        a = to_grey(a)
    elif C == 3 and a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif C not in (1, 3):
        raise ValueError(f"--image: the model takes {C} channels; only 1 (grey) or 3 (RGB) images "
                         "are supported")
    chw = a[None] if a.ndim == 2 else np.transpose(a, (2, 0, 1))
    H, W = chw.shape[1:]
    s = min(H, W)
    chw = chw[:, (H - s) // 2:(H - s) // 2 + s, (W - s) // 2:(W - s) // 2 + s]
    size = int((spec.get("input") or {}).get("from", spec["kwargs"]["input_size"]))
    small = _resize_hw(chw, size)
    if invert:
        small = 1.0 - small
    return _pipeline(small[None].astype(np.float32), meta)


def _pipeline(raw_small: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Training-size raw pixels (N, C, h, w) -> (raw at model size, model input)."""
    from cnnlab.training.run import input_transform

    spec, norm = meta["model_spec"], meta.get("normalize")
    C, h = raw_small.shape[1], raw_small.shape[-1]
    geometry = input_transform(spec, None, C, size=h)
    raw = np.asarray(geometry(raw_small) if geometry is not None else raw_small, dtype=np.float32)
    x = raw if not norm else ((raw - norm["mean"]) / norm["std"]).astype(np.float32)
    return raw, x


# ----------------------------------------------------------------- context
def open_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint file, run folder) for ``RUN``, ``RUN/model.npz`` or
    ``RUN/checkpoints/epoch-NNN.npz``."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.npz"
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist (pass RUN/model.npz written by "
                                "`cnnlab train`)")
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return p, run


@dataclass
class VizContext:
    """What a ``cnnlab viz`` method works on: the model, its run, one input image."""

    model: Any
    meta: dict[str, Any]
    run_dir: Path
    out_dir: Path
    args: argparse.Namespace
    _test: Any = None
    _loader: Any = None
    raw: np.ndarray | None = None          # (1, C, S, S) raw pixels at model size
    x: np.ndarray | None = None            # (1, C, S, S) model input
    label: int | None = None               # true class of a test image
    tag: str = ""                          # "test3" or the image file's stem
    original: np.ndarray | None = None     # the photo as loaded (kernels work on it)
    written: list[Path] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        names = self.meta.get("classes")
        if names:
            return list(names)
        k = int(self.meta["model_spec"]["kwargs"].get("num_classes", 0))
        return [str(i) for i in range(k)]

    def test_data(self):
        """(test dataset, unshuffled loader with the run's transform)."""
        if self._loader is None:
            from cnnlab.training.run import evaluation_loader

            self._test, self._loader = evaluation_loader(self.meta, self.args.dataset, self.args.data_dir,
                                                         batch_size=500)
        return self._test, self._loader

    def test_inputs(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw images at training size, model inputs, labels) of the test set."""
        test, _ = self.test_data()
        n = len(test) if limit is None else min(limit, len(test))
        raw_small = np.asarray(test.x[:n], dtype=np.float32)
        _, x = _pipeline(raw_small, self.meta)
        return raw_small, x, np.asarray(test.y[:n]).astype(np.int64)

    def path(self, stem: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        p = self.out_dir / (f"{stem}_{self.tag}.png" if self.tag else f"{stem}.png")
        self.written.append(p)
        return p

    def predict(self, x: np.ndarray | None = None) -> tuple[int, float, np.ndarray]:
        """(predicted class, its probability, all probabilities) for one input."""
        from cnnlab.autograd.tensor import Tensor, no_grad
        from cnnlab.kernels.activation import softmax_forward
        from cnnlab.training.loop import main_logits

        self.model.eval()
        with no_grad():
            logits = np.asarray(main_logits(self.model(Tensor(self.x if x is None else x))).data, np.float64)
        p = softmax_forward(logits[0], axis=0)
        return int(p.argmax()), float(p.max()), p

    def name(self, k: int) -> str:
        c = self.classes
        return c[k] if 0 <= k < len(c) else str(k)

    def target(self) -> int:
        """--target, else the predicted class of the input."""
        if self.args.target is not None:
            k = int(self.args.target)
            n = len(self.classes)
            if n and not 0 <= k < n:
                raise ValueError(f"--target must be a class index in [0, {n - 1}], got {k}")
            return k
        return self.predict()[0]

    def prediction_text(self, x: np.ndarray | None = None) -> str:
        k, p, _ = self.predict(x)
        truth = f", true {self.name(self.label)}" if self.label is not None and x is None else ""
        return f"predicted {self.name(k)} (p={p:.3f}){truth}"


def _layer(ctx: VizContext, default: Callable[[], str] | None = None) -> str:
    from cnnlab.viz.embedding import check_layer

    if ctx.args.layer:
        return check_layer(ctx.model, ctx.args.layer, "--layer")
    if default is None:
        raise ValueError(f"{ctx.args.method}: give --layer NAME")
    return default()


def _leaf_layers(model, kinds: tuple[str, ...]) -> list[str]:
    return [n for n, m in model.named_modules() if n and not m._modules and type(m).__name__ in kinds]


def _last_conv(model) -> str:
    convs = _leaf_layers(model, ("Conv2d",))
    if not convs:
        raise ValueError("the model has no Conv2d layer; give --layer NAME")
    return convs[-1]


def _after(model, layer: str, kinds: tuple[str, ...] = ("ReLU", "LeakyReLU", "ELU")) -> str:
    """The first activation leaf registered after ``layer`` (the layer itself if none)."""
    leaves = [(n, type(m).__name__) for n, m in model.named_modules() if n and not m._modules]
    names = [n for n, _ in leaves]
    if layer in names:
        for n, t in leaves[names.index(layer) + 1:]:
            if t in kinds:
                return n
            if t in ("Conv2d", "Linear"):
                break
    return layer


def _check_channel(ctx: VizContext, layer: str, channels: int) -> int:
    k = 0 if ctx.args.channel is None else int(ctx.args.channel)
    if not 0 <= k < channels:
        raise ValueError(f"--channel must be in [0, {channels - 1}] for layer {layer!r}, got {k}")
    return k


# ----------------------------------------------------------------- methods
def m_kernels(ctx: VizContext) -> str:
    from cnnlab.viz.image import as_hwc
    from cnnlab.viz.kernels import apply_kernels, plot_kernels

    img = ctx.original if ctx.original is not None else as_hwc(ctx.raw[0])
    plot_kernels(img, ctx.path("kernels"))
    res = apply_kernels(img)
    return "response std: " + ", ".join(f"{k} {float(np.std(v)):.3f}" for k, v in res.items())


def m_activations(ctx: VizContext) -> str:
    from cnnlab.viz.maps import activation_maps, plot_activation_grid

    layers = [_layer(ctx)] if ctx.args.layer else None
    maps = activation_maps(ctx.model, ctx.x[0], layers=layers)
    parts = []
    for name, m in maps.items():
        plot_activation_grid(m, ctx.path(f"activations_{name}"), title=f"{name}: {m.shape[0]} maps",
                             normalize=ctx.args.normalize)
        parts.append(f"{name} {float((m <= 0).mean()):.0%} <= 0")
    return ctx.prediction_text() + "; " + ", ".join(parts)


def m_dead_filters(ctx: VizContext) -> str:
    from cnnlab.viz.maps import dead_filters

    _, loader = ctx.test_data()
    layers = ([_layer(ctx)] if ctx.args.layer
              else _leaf_layers(ctx.model, ("ReLU", "LeakyReLU", "ELU")))
    reports, parts = [], []
    for name in layers:
        rep = dead_filters(ctx.model, loader, name, threshold=ctx.args.threshold)
        print(rep)
        reports.append({"layer": name, "channels": len(rep.zero_fraction), "dead": rep.dead.tolist(),
                        "zero_fraction": [round(float(v), 4) for v in rep.zero_fraction],
                        "threshold": rep.threshold, "n_inputs": rep.n_inputs})
        parts.append(f"{name} {len(rep.dead)}/{len(rep.zero_fraction)}")
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    p = ctx.out_dir / "dead_filters.json"
    p.write_text(json.dumps(reports, indent=1) + "\n")
    ctx.written.append(p)
    return "dead filters: " + ", ".join(parts)


def m_filters(ctx: VizContext) -> str:
    from cnnlab.viz.filters import filter_smoothness, plot_filters

    convs = _leaf_layers(ctx.model, ("Conv2d",))
    if not ctx.args.layer and not convs:
        raise ValueError("the model has no Conv2d layer; give --layer NAME")
    name = _layer(ctx, lambda: convs[0])
    plot_filters(ctx.model, ctx.path(f"filters_{name}"), layer=name)
    w = np.asarray(ctx.model.get_submodule(name).weight.data)
    s = np.asarray(filter_smoothness(w), dtype=np.float64).ravel()
    return (f"{name}: {w.shape[0]} filters {tuple(w.shape[1:])}; smoothness mean {s.mean():.3f} "
            f"(min {s.min():.3f}, max {s.max():.3f})")


def m_top_k(ctx: VizContext) -> str:
    from cnnlab.viz.topk import plot_top_k, top_k_activating

    layer = _layer(ctx, lambda: _after(ctx.model, _last_conv(ctx.model)))
    raw, x, y = ctx.test_inputs()
    out_shape = _layer_shape(ctx, layer, x[:1])
    if len(out_shape) != 4:
        raise ValueError(f"top-k: layer {layer!r} must give (N, C, H, W) maps, its output is {out_shape}")
    channel = _check_channel(ctx, layer, out_shape[1])
    top = top_k_activating(ctx.model, layer, channel, x, k=ctx.args.k)
    display = _pipeline(raw, ctx.meta)[0]
    ctx.tag = f"{layer}_ch{channel}"
    plot_top_k(display, top, ctx.path("topk"))
    vals = getattr(top, "values", None)
    idx = getattr(top, "indices", None)
    text = f"layer {layer} channel {channel}: top {ctx.args.k}"
    if idx is not None:
        text += " test images " + ", ".join(str(int(i)) for i in np.asarray(idx).ravel()[:ctx.args.k])
    if vals is not None:
        v = np.asarray(vals, dtype=np.float64).ravel()
        text += f"; activations {v.max():.3f} .. {v.min():.3f}"
    return text


def _layer_shape(ctx: VizContext, layer: str, x: np.ndarray) -> tuple[int, ...]:
    from cnnlab.autograd.tensor import Tensor, no_grad
    from cnnlab.nn.capture import capture_outputs

    ctx.model.eval()
    with no_grad(), capture_outputs(ctx.model, [layer]) as seen:
        ctx.model(Tensor(x))
    return tuple(seen[layer].shape)


def m_tsne(ctx: VizContext) -> str:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from cnnlab.viz.embedding import (
        extract_codes,
        penultimate_layer,
        plot_tsne_mosaic,
        plot_tsne_scatter,
        tsne,
    )

    layer = _layer(ctx, lambda: penultimate_layer(ctx.model))
    raw, x, y = ctx.test_inputs(ctx.args.max_images)
    codes = extract_codes(ctx.model, layer, x)
    emb = tsne(codes, perplexity=ctx.args.perplexity, seed=ctx.args.seed)
    ctx.tag = layer
    plot_tsne_scatter(emb, y, ctx.path("tsne"), ctx.classes, title=f"t-SNE of {layer} codes")
    plot_tsne_mosaic(emb, raw, ctx.path("tsne_mosaic"), size=ctx.args.thumb, labels=y)
    folds = int(min(5, np.bincount(y).min())) if len(y) else 0
    knn = (cross_val_score(KNeighborsClassifier(5), emb, y, cv=folds).mean() if folds >= 2 else float("nan"))
    return (f"{len(y)} test images, codes {codes.shape[1]}-d from {layer}; 5-NN accuracy in the 2-D map "
            f"{knn:.3f} ({folds}-fold)")


def _occlusion_defaults(ctx: VizContext) -> tuple[int, int]:
    S = ctx.x.shape[-1]
    size = ctx.args.size or max(1, round(S / 4))
    stride = ctx.args.stride or max(1, size // 2)
    return size, stride


def m_occlusion(ctx: VizContext) -> str:
    from cnnlab.viz.attribution import occlusion, plot_occlusion

    # Zeiler and Fergus plot p(true class): the label of a test image unless --target is given
    t = ctx.label if ctx.args.target is None and ctx.label is not None else ctx.target()
    size, stride = _occlusion_defaults(ctx)
    heat = np.asarray(occlusion(ctx.model, ctx.x, t, size, stride, fill=ctx.args.fill))
    h = heat.reshape(heat.shape[-2:])
    plot_occlusion(ctx.raw[0], h, ctx.path("occlusion"), size=size, stride=stride,
                   title=f"occluding {size}x{size} patches, p({ctx.name(t)})")
    r, c = np.unravel_index(int(h.argmin()), h.shape)
    return (f"{ctx.prediction_text()}; p({ctx.name(t)}) under occlusion {h.min():.3f} .. {h.max():.3f}, "
            f"lowest with the patch at ({r * stride}, {c * stride})")


def _gradient_method(ctx: VizContext, fn_name: str) -> str:
    from cnnlab.viz import attribution as A

    t = ctx.target()
    fn = getattr(A, {"saliency": "saliency", "guided": "guided_backprop", "deconvnet": "deconvnet"}[fn_name])
    g = np.asarray(fn(ctx.model, ctx.x, t))
    g0 = g[0] if g.ndim == 4 else g
    if fn_name == "saliency":
        A.plot_saliency(ctx.raw[0], g0, ctx.path("saliency"), title=f"saliency of {ctx.name(t)}")
    else:
        A.plot_guided(ctx.raw[0], {fn_name: g0}, ctx.path(fn_name), title=f"{fn_name} for {ctx.name(t)}")
    a = np.abs(g0).reshape(-1, *g0.shape[-2:]).max(axis=0) if g0.ndim == 3 else np.abs(g0)
    r, c = np.unravel_index(int(a.argmax()), a.shape)
    return f"{ctx.prediction_text()}; target {ctx.name(t)}, max |map| {a.max():.4g} at pixel ({r}, {c})"


def _norm_stats(ctx: VizContext) -> tuple[float, float]:
    """The run's input normalisation ``(mean, std)``; ``(0, 1)`` when it has none."""
    norm = ctx.meta.get("normalize") or {"mean": 0.0, "std": 1.0}
    return norm["mean"], norm["std"]


def m_class_model(ctx: VizContext) -> str:
    from cnnlab.viz.attribution import _display
    from cnnlab.viz.image import save_png, save_titled_png, tile, to_unit
    from cnnlab.viz.synthesis import class_model

    spec = ctx.meta["model_spec"]["kwargs"]
    shape = (int(spec["in_channels"]), int(spec["input_size"]), int(spec["input_size"]))
    mean, std = _norm_stats(ctx)
    rng = ((0.0 - mean) / std, (1.0 - mean) / std)
    common = {"steps": ctx.args.steps, "lr": ctx.args.lr, "l2": ctx.args.l2, "jitter": ctx.args.jitter,
              "blur_every": ctx.args.blur_every, "seed": ctx.args.seed, "pixel_range": rng}
    if ctx.args.layer:
        layer = _layer(ctx)
        out_shape = _layer_shape(ctx, layer, np.zeros((1, *shape), np.float32))
        ch = _check_channel(ctx, layer, out_shape[1])
        img = np.asarray(class_model(ctx.model, None, shape, layer=layer, channel=ch, **common))
        ctx.tag = f"{layer}_ch{ch}"
        scale = max(1, 192 // shape[-1])
        save_png(_display(img), ctx.path("class_model"), scale=scale)
        return f"unit {layer}[{ch}] maximised; {ctx.prediction_text(img[None])}"
    targets = [ctx.args.target] if ctx.args.target is not None else list(range(len(ctx.classes)))
    imgs, probs = [], []
    for t in targets:
        ctx.args.target = t
        ctx.target()   # range check
        img = np.asarray(class_model(ctx.model, int(t), shape, **common))
        imgs.append(_display(img))
        probs.append(ctx.predict(img[None])[2][int(t)])
    ctx.args.target = targets[0] if len(targets) == 1 else None
    grid = tile(np.stack(imgs), pad=1) if len(imgs) > 1 else to_unit(imgs[0])
    ctx.tag = f"class{targets[0]}" if len(targets) == 1 else "all"
    save_titled_png(grid, ctx.path("class_model"), scale=max(1, 256 // grid.shape[1]), cmap="gray",
                    title="class model " + (ctx.name(int(targets[0])) if len(targets) == 1
                                            else f"of classes {ctx.name(0)}..{ctx.name(len(targets) - 1)}"))
    return "p(target | class model): " + ", ".join(f"{ctx.name(int(t))} {p:.3f}"
                                                   for t, p in zip(targets, probs))


def m_invert(ctx: VizContext) -> str:
    from cnnlab.viz.attribution import _display
    from cnnlab.viz.embedding import extract_codes, penultimate_layer
    from cnnlab.viz.image import save_titled_png, tile
    from cnnlab.viz.synthesis import invert_features

    layer = _layer(ctx, lambda: penultimate_layer(ctx.model))
    mean, std = _norm_stats(ctx)
    rng = ((0.0 - mean) / std, (1.0 - mean) / std)
    rec = np.asarray(invert_features(ctx.model, layer, ctx.x[0], steps=ctx.args.steps, lr=ctx.args.lr,
                                     tv=ctx.args.tv, seed=ctx.args.seed, pixel_range=rng))
    a = extract_codes(ctx.model, layer, ctx.x).astype(np.float64)
    b = extract_codes(ctx.model, layer, rec[None]).astype(np.float64)
    rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))
    pair = tile(np.stack([_display(ctx.x[0]), _display(rec)]), ncols=2, pad=1)
    ctx.tag = f"{ctx.tag}_{layer}"
    save_titled_png(pair, ctx.path("invert"), title=f"original | from {layer}",
                    scale=max(1, 320 // pair.shape[1]), cmap="gray")
    return (f"reconstruction from {layer}: relative code distance {rel:.4f}; "
            f"{ctx.prediction_text(rec[None])} for the reconstruction")


def m_fgsm(ctx: VizContext) -> str:
    from cnnlab.viz.adversarial import accuracy_under_attack, fgsm, iterative_fgsm, plot_adversarial

    m, s = _norm_stats(ctx)
    k0, p0, _ = ctx.predict()
    y = ctx.label if ctx.label is not None else k0
    if ctx.args.steps > 1:
        adv = iterative_fgsm(ctx.model, ctx.x, y, ctx.args.eps, steps=ctx.args.steps, pixel_range=(0.0, 1.0),
                             mean=m, std=s)
    else:
        adv = fgsm(ctx.model, ctx.x, y, ctx.args.eps, pixel_range=(0.0, 1.0), mean=m, std=s)
    adv = np.asarray(adv, dtype=np.float32)
    adv_raw = adv * s + m
    k1, p1, _ = ctx.predict(adv)
    what = f"iterative FGSM ({ctx.args.steps} steps)" if ctx.args.steps > 1 else "FGSM"
    plot_adversarial(ctx.raw[0], adv_raw[0] - ctx.raw[0], adv_raw[0], f"{ctx.name(k0)} ({p0:.2f})",
                     f"{ctx.name(k1)} ({p1:.2f})", ctx.path("fgsm"), title=f"{what}, eps = {ctx.args.eps:g}")
    text = f"eps {ctx.args.eps:g}: {ctx.name(k0)} (p={p0:.3f}) -> {ctx.name(k1)} (p={p1:.3f})"
    if ctx.args.sweep:
        eps_list = [float(v) for v in ctx.args.sweep.split(",")]
        _, loader = ctx.test_data()
        res = accuracy_under_attack(ctx.model, loader, eps_list, pixel_range=(0.0, 1.0), mean=m, std=s)
        text += "; test accuracy under attack: " + ", ".join(f"eps {e:g} {a:.3f}" for e, a in res)
    return text


def m_curves(ctx: VizContext) -> str:
    from cnnlab.viz.training_plots import plot_curves, read_history

    try:
        hist = read_history(ctx.run_dir)
    except FileNotFoundError:
        hist = list(ctx.meta.get("history") or [])
    if not hist:
        raise ValueError(f"no training history in {ctx.run_dir} or the checkpoint")
    spec = ctx.meta["model_spec"]["name"]
    plot_curves(hist, ctx.path("curves"), title=f"{spec} on {ctx.meta.get('dataset')}")
    best = max(hist, key=lambda h: h.get("test_acc", -1))
    nan = float("nan")
    return (f"{len(hist)} epochs; final train loss {hist[-1]['train_loss']:.4f}, test acc "
            f"{hist[-1].get('test_acc', nan):.4f}; best test acc {best.get('test_acc', nan):.4f} "
            f"at epoch {best['epoch']}")


def m_confusion(ctx: VizContext) -> str:
    from cnnlab.viz.training_plots import confusion, plot_confusion

    _, loader = ctx.test_data()
    cm, _, _ = confusion(ctx.model, loader, num_classes=len(ctx.classes) or None)
    plot_confusion(cm, ctx.classes or None, ctx.path("confusion"))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    worst = f"; most confused: {ctx.name(i)} as {ctx.name(j)} ({int(off[i, j])}x)" if off.max() else ""
    return f"test accuracy {np.trace(cm) / cm.sum():.4f} ({int(np.trace(cm))}/{int(cm.sum())}){worst}"


def m_misclassified(ctx: VizContext) -> str:
    from cnnlab.viz.training_plots import misclassified, plot_misclassified

    test, loader = ctx.test_data()
    idx, preds, targets = misclassified(ctx.model, loader)
    raw = np.asarray(test.x)[idx]
    probs = None
    if len(idx):
        _, x, _ = ctx.test_inputs()
        probs = np.array([ctx.predict(x[i:i + 1])[1] for i in idx[:ctx.args.max_n]])
    shown = min(len(idx), ctx.args.max_n)
    plot_misclassified(raw[:shown], preds[:shown], targets[:shown], ctx.classes or None,
                       ctx.path("misclassified"), max_n=ctx.args.max_n, probs=probs)
    return (f"{len(idx)} of {len(test)} test images misclassified; shown {shown}: indices "
            + ", ".join(map(str, idx[:shown].tolist())))


HANDLERS: dict[str, Callable[[VizContext], str]] = {
    "kernels": m_kernels, "activations": m_activations, "dead-filters": m_dead_filters,
    "filters": m_filters, "top-k": m_top_k, "tsne": m_tsne, "occlusion": m_occlusion,
    "saliency": lambda c: _gradient_method(c, "saliency"),
    "guided": lambda c: _gradient_method(c, "guided"),
    "deconvnet": lambda c: _gradient_method(c, "deconvnet"),
    "class-model": m_class_model, "invert": m_invert, "fgsm": m_fgsm, "curves": m_curves,
    "confusion": m_confusion, "misclassified": m_misclassified,
}


# ----------------------------------------------------------------- commands
def cmd_viz(args: argparse.Namespace) -> int:
    method = args.method
    if args.checkpoint is None:
        if method != "kernels":
            raise ValueError(f"{method}: --checkpoint RUN/model.npz is required")
        img = load_image_file(args.image) if args.image is not None else sample_photo(args.photo)
        img = shrink(img, args.max_side)
        out_dir = Path(args.out or "viz")
        tag = Path(args.image).stem if args.image is not None else args.photo
        ctx = VizContext(None, {}, out_dir, out_dir, args, tag=tag, original=img)
    else:
        from cnnlab.training.run import load_for_evaluation

        ckpt, run = open_checkpoint(args.checkpoint)
        model, meta = load_for_evaluation(ckpt)
        ctx = VizContext(model, meta, run, Path(args.out) if args.out else run / "viz", args)
        if args.layer:
            _layer(ctx)   # fail early, listing the layer names
        if method in _NEEDS_INPUT:
            if args.image is not None:
                ctx.original = load_image_file(args.image)
                ctx.raw, ctx.x = image_to_model_input(ctx.original, meta, invert=args.invert)
                ctx.tag = Path(args.image).stem
            else:
                test, _ = ctx.test_data()
                n = args.index if args.index is not None else 0
                if not -len(test) <= n < len(test):
                    raise ValueError(f"--index must be in [0, {len(test) - 1}] for the {len(test)} test "
                                     f"images, got {n}")
                n %= len(test)
                ctx.raw, ctx.x = _pipeline(np.asarray(test.x[n:n + 1], dtype=np.float32), meta)
                ctx.label = int(test.y[n])
                ctx.tag = f"test{n}"
    summary = HANDLERS[method](ctx)
    for p in ctx.written:
        print(f"wrote {p}")
    print(summary)
    return 0


def _common_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--checkpoint", metavar="RUN/model.npz",
                   help="a model file, checkpoint or run folder written by `cnnlab train`")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", metavar="PATH", help="a PNG/JPG to look at (brought to the model's input)")
    src.add_argument("--index", type=int, metavar="N", help="test image N of the run's dataset (default 0)")
    p.add_argument("--invert", action="store_true",
                   help="with --image: use 1 - pixels (dark ink on white paper -> the datasets' "
                        "light ink on black)")
    p.add_argument("--layer", metavar="NAME", help="dotted layer name, e.g. features.3")
    p.add_argument("--channel", type=int, metavar="K", help="channel (or unit) of --layer")
    p.add_argument("--target", type=int, metavar="CLASS",
                   help="class whose score is explained / synthesised (default: the predicted class)")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN/viz)")
    p.add_argument("--dataset", choices=["digits", "fashion-mnist", "mnist"],
                   help="test set to use (default: the run's)")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    return p


_HELP = {
    "kernels": "classic image kernels (edges, sharpen, blur, Sobel, Gaussian) applied to the image",
    "activations": "feature maps of every conv / pool / ReLU layer (or --layer) for the image",
    "dead-filters": "channels that are zero for (almost) all test images, per ReLU layer",
    "filters": "a conv layer's filters as images (default: the first) with smoothness scores",
    "top-k": "test images that most activate --channel of --layer, with its receptive field",
    "tsne": "t-SNE map of the CNN codes of the test set: scatter and image mosaic",
    "occlusion": "class probability as a grey square slides over the image (Zeiler & Fergus)",
    "saliency": "|d score / d pixel|, the data gradient (Simonyan et al.)",
    "guided": "guided backpropagation (Springenberg et al.)",
    "deconvnet": "DeconvNet reconstruction (Zeiler & Fergus)",
    "class-model": "the image that maximises a class score (all classes, or --target) or a unit",
    "invert": "reconstruct the image from its code at --layer (Mahendran & Vedaldi)",
    "fgsm": "fool the network: fast gradient sign adversarial example",
    "curves": "loss and accuracy per epoch",
    "confusion": "test confusion matrix with counts",
    "misclassified": "the test images the model gets wrong",
}


def _add_viz(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("viz", help="see inside a trained model (saliency, occlusion, t-SNE, ...)",
                       description="Visualise a trained model; each METHOD writes PNGs and prints a summary.")
    methods = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    parent = _common_parent()
    for name in METHODS:
        m = methods.add_parser(name, parents=[parent], help=_HELP[name], description=_HELP[name])
        if name == "kernels":
            m.add_argument("--photo", choices=PHOTOS, default="camera",
                           help="without --image: scikit-image's sample photo to filter (default camera)")
            m.add_argument("--max-side", type=int, default=256,
                           help="shrink the photo so its longer side is at most this (default 256)")
        elif name == "activations":
            m.add_argument("--normalize", choices=["layer", "map"], default="layer",
                           help="grey levels shared by the layer's maps (default) or per map")
        elif name == "dead-filters":
            m.add_argument("--threshold", type=float, default=0.99,
                           help="dead when zero on at least this fraction of test images")
        elif name == "top-k":
            m.add_argument("--k", type=int, default=9)
        elif name == "tsne":
            m.add_argument("--perplexity", type=float, default=30.0)
            m.add_argument("--max-images", type=int, default=2000, help="first N test images")
            m.add_argument("--thumb", type=int, default=24, help="mosaic thumbnail side in pixels")
        elif name == "occlusion":
            m.add_argument("--size", type=int, help="occluder side in pixels (default: input side / 4)")
            m.add_argument("--stride", type=int, help="occluder step (default: size / 2)")
            m.add_argument("--fill", type=float, default=0.0,
                           help="occluder value in model units (0 = the training mean)")
        elif name in ("class-model", "invert"):
            m.add_argument("--steps", type=int, default=200)
            m.add_argument("--lr", type=float, default=0.1 if name == "class-model" else 0.05)
            if name == "class-model":
                # the defaults of cnnlab.viz.synthesis.class_model (tuned on digits_cnn)
                m.add_argument("--l2", type=float, default=0.3, help="L2 decay weight (default 0.3)")
                m.add_argument("--jitter", type=int, default=1, help="random shift in pixels (default 1)")
                m.add_argument("--blur-every", type=int, default=4,
                               help="Gaussian blur every N steps, 0 = never (default 4)")
            else:
                m.add_argument("--tv", type=float, default=0.0, help="total-variation weight")
        elif name == "fgsm":
            m.add_argument("--eps", type=float, default=0.1, help="budget in raw pixel units ([0, 1] images)")
            m.add_argument("--steps", type=int, default=1, help="> 1: iterative FGSM")
            m.add_argument("--sweep", metavar="E1,E2,..",
                           help="also the test accuracy under attack for these eps")
        elif name == "misclassified":
            m.add_argument("--max-n", type=int, default=32)
        m.set_defaults(func=cmd_viz, method=name)


def cmd_report(args: argparse.Namespace) -> int:
    from cnnlab.viz.report import write_report

    path = write_report(args.run, args.out, n_examples=args.examples, seed=args.seed, max_tsne=args.max_tsne)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page about a trained run",
                       description="Write a single HTML file (images embedded) with a run's curves, "
                                   "confusion matrix, filters, activations, occlusion, saliency, t-SNE "
                                   "map and mistakes.")
    p.add_argument("run", metavar="RUN_DIR", help="run folder written by `cnnlab train` (or its model.npz)")
    p.add_argument("--out", metavar="FILE", help="HTML file (default RUN_DIR/report.html)")
    p.add_argument("--examples", type=int, default=4, help="test images shown with occlusion / saliency")
    p.add_argument("--max-tsne", type=int, default=2000, help="first N test images in the t-SNE map")
    p.add_argument("--seed", type=int, default=0, help="t-SNE seed")
    p.set_defaults(func=cmd_report)


def add_viz_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``viz`` and ``report`` on the ``cnnlab`` command's subparsers."""
    _add_viz(sub)
    _add_report(sub)
