"""``cnnlab viz`` runners for images made by optimising the input: class-model, invert, fgsm."""
from __future__ import annotations

import numpy as np

from cnnlab.viz.commands.context import VizContext


def run_class_model(ctx: VizContext) -> str:
    from cnnlab.viz.image import display_image, save_png, to_unit
    from cnnlab.viz.synthesis import class_model, plot_class_models

    spec = ctx.meta["model_spec"]["kwargs"]
    shape = (int(spec["in_channels"]), int(spec["input_size"]), int(spec["input_size"]))
    mean, std = ctx.norm_stats()
    rng = ((0.0 - mean) / std, (1.0 - mean) / std)
    common = {"steps": ctx.args.steps, "lr": ctx.args.lr, "l2": ctx.args.l2, "jitter": ctx.args.jitter,
              "blur_every": ctx.args.blur_every, "seed": ctx.args.seed, "pixel_range": rng}
    if ctx.args.layer:
        layer = ctx.layer()
        out_shape = ctx.layer_shape(layer, np.zeros((1, *shape), np.float32))
        ch = ctx.channel(layer, out_shape[1])
        img = np.asarray(class_model(ctx.model, None, shape, layer=layer, channel=ch, **common))
        ctx.tag = f"{layer}_ch{ch}"
        scale = max(1, 192 // shape[-1])
        save_png(display_image(img), ctx.path("class_model"), scale=scale)
        return f"unit {layer}[{ch}] maximised; {ctx.prediction_text(img[None])}"
    targets = [ctx.args.target] if ctx.args.target is not None else list(range(len(ctx.classes)))
    imgs, probs = [], []
    for t in targets:
        ctx.args.target = t
        ctx.target()   # range check
        img = np.asarray(class_model(ctx.model, int(t), shape, **common))
        imgs.append(display_image(img))
        probs.append(ctx.predict(img[None])[2][int(t)])
    ctx.args.target = targets[0] if len(targets) == 1 else None
    ctx.tag = f"class{targets[0]}" if len(targets) == 1 else "all"
    labels = [f"{ctx.name(int(t))} (p={p:.2f})" for t, p in zip(targets, probs)]
    plot_class_models([to_unit(im) for im in imgs], labels, ctx.path("class_model"),
                      title=("class model of " + ctx.name(int(targets[0])) if len(targets) == 1
                             else f"class models of the {len(targets)} classes")
                      + " (p: the model's probability of that class)")
    return "p(target | class model): " + ", ".join(f"{ctx.name(int(t))} {p:.3f}"
                                                   for t, p in zip(targets, probs))


def run_invert(ctx: VizContext) -> str:
    from cnnlab.viz.embedding import extract_codes, penultimate_layer
    from cnnlab.viz.image import display_image, save_titled_png, tile
    from cnnlab.viz.synthesis import invert_features

    layer = ctx.layer(lambda: penultimate_layer(ctx.model))
    mean, std = ctx.norm_stats()
    rng = ((0.0 - mean) / std, (1.0 - mean) / std)
    rec = np.asarray(invert_features(ctx.model, layer, ctx.x[0], steps=ctx.args.steps, lr=ctx.args.lr,
                                     tv=ctx.args.tv, seed=ctx.args.seed, pixel_range=rng))
    a = extract_codes(ctx.model, layer, ctx.x).astype(np.float64)
    b = extract_codes(ctx.model, layer, rec[None]).astype(np.float64)
    rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))
    pair = tile(np.stack([display_image(ctx.x[0]), display_image(rec)]), ncols=2, pad=1)
    ctx.tag = f"{ctx.tag}_{layer}"
    save_titled_png(pair, ctx.path("invert"), title=f"original | from {layer}",
                    scale=max(1, 320 // pair.shape[1]), cmap="gray")
    return (f"reconstruction from {layer}: relative code distance {rel:.4f}; "
            f"{ctx.prediction_text(rec[None])} for the reconstruction")


def run_fgsm(ctx: VizContext) -> str:
    from cnnlab.viz.adversarial import accuracy_under_attack, fgsm, iterative_fgsm, plot_adversarial

    m, s = ctx.norm_stats()
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
        eps_list = parse_eps_list(ctx.args.sweep)
        _, loader = ctx.test_data()
        res = accuracy_under_attack(ctx.model, loader, eps_list, pixel_range=(0.0, 1.0), mean=m, std=s)
        text += "; test accuracy under attack: " + ", ".join(f"eps {e:g} {a:.3f}" for e, a in res)
    return text


def parse_eps_list(items: list[str] | str) -> list[float]:
    """The budgets of ``--sweep``: separated by commas, spaces or both
    (``0,0.01 0.05``); a ValueError names a value that is not a number."""
    tokens = [t for item in ([items] if isinstance(items, str) else items)
              for t in item.replace(",", " ").split()]
    try:
        values = [float(t) for t in tokens]
    except ValueError as e:
        raise ValueError(f"--sweep takes numbers separated by commas or spaces, e.g. "
                         f"0,0.01,0.05 or 0 0.01 0.05; got {' '.join(tokens)!r}") from e
    if not values or any(not v >= 0 for v in values):
        raise ValueError(f"--sweep needs one or more eps >= 0, got {' '.join(tokens)!r}")
    return values
