"""``cnnlab viz`` runners for what the layers compute: kernels, activations, dead-filters,
filters, top-k and tsne."""
from __future__ import annotations

import json

import numpy as np

from cnnlab._files import write_text_atomic
from cnnlab.viz.commands.context import ACTIVATIONS, VizContext, activation_after, last_conv, leaf_layers
from cnnlab.viz.inputs import model_pipeline


def run_kernels(ctx: VizContext) -> str:
    from cnnlab.viz.image import as_hwc
    from cnnlab.viz.kernels import apply_kernels, plot_kernels

    img = ctx.original if ctx.original is not None else as_hwc(ctx.raw[0])
    plot_kernels(img, ctx.path("kernels"))
    res = apply_kernels(img)
    return "response std: " + ", ".join(f"{k} {float(np.std(v)):.3f}" for k, v in res.items())


def run_activations(ctx: VizContext) -> str:
    from cnnlab.viz.maps import activation_maps, plot_activation_grid

    layers = [ctx.layer()] if ctx.args.layer else None
    maps = activation_maps(ctx.model, ctx.x[0], layers=layers)
    parts = []
    for name, m in maps.items():
        plot_activation_grid(m, ctx.path(f"activations_{name}"), title=f"{name}: {m.shape[0]} maps",
                             normalize=ctx.args.normalize)
        parts.append(f"{name} {float((m <= 0).mean()):.0%} <= 0")
    return ctx.prediction_text() + "; " + ", ".join(parts)


def run_dead_filters(ctx: VizContext) -> str:
    from cnnlab.viz.maps import dead_filters

    _, loader = ctx.test_data()
    layers = ([ctx.layer()] if ctx.args.layer
              else leaf_layers(ctx.model, ACTIVATIONS))
    reports, parts = [], []
    for name in layers:
        rep = dead_filters(ctx.model, loader, name, threshold=ctx.args.threshold)
        print(rep)
        reports.append({"layer": name, "channels": len(rep.zero_fraction), "dead": rep.dead.tolist(),
                        "zero_fraction": [round(float(v), 4) for v in rep.zero_fraction],
                        "threshold": rep.threshold, "n_inputs": rep.n_inputs})
        parts.append(f"{name} {len(rep.dead)}/{len(rep.zero_fraction)}")
    p = write_text_atomic(ctx.out_dir / "dead_filters.json", json.dumps(reports, indent=1) + "\n")
    ctx.written.append(p)
    return "dead filters: " + ", ".join(parts)


def run_filters(ctx: VizContext) -> str:
    from cnnlab.viz.filters import filter_smoothness, plot_filters

    convs = leaf_layers(ctx.model, ("Conv2d",))
    if not ctx.args.layer and not convs:
        raise ValueError("the model has no Conv2d layer; give --layer NAME")
    name = ctx.layer(lambda: convs[0])
    plot_filters(ctx.model, ctx.path(f"filters_{name}"), layer=name)
    w = np.asarray(ctx.model.get_submodule(name).weight.data)
    s = np.asarray(filter_smoothness(w), dtype=np.float64).ravel()
    return (f"{name}: {w.shape[0]} filters {tuple(w.shape[1:])}; smoothness mean {s.mean():.3f} "
            f"(min {s.min():.3f}, max {s.max():.3f})")


def run_top_k(ctx: VizContext) -> str:
    from cnnlab.viz.topk import plot_top_k, top_k_activating

    layer = ctx.layer(lambda: activation_after(ctx.model, last_conv(ctx.model)))
    raw, x, y = ctx.test_inputs()
    out_shape = ctx.layer_shape(layer, x[:1])
    if len(out_shape) != 4:
        raise ValueError(f"top-k: layer {layer!r} must give (N, C, H, W) maps, its output is {out_shape}")
    channel = ctx.channel(layer, out_shape[1])
    top = top_k_activating(ctx.model, layer, channel, x, k=ctx.args.k)
    display = model_pipeline(raw, ctx.meta)[0]
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


def run_tsne(ctx: VizContext) -> str:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from cnnlab.viz.embedding import (
        extract_codes,
        penultimate_layer,
        plot_tsne_mosaic,
        plot_tsne_scatter,
        tsne,
    )

    layer = ctx.layer(lambda: penultimate_layer(ctx.model))
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
