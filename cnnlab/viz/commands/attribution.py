"""``cnnlab viz`` runners for where the evidence is: occlusion, saliency, guided, deconvnet."""
from __future__ import annotations

import numpy as np

from cnnlab.viz.commands.context import VizContext


def run_occlusion(ctx: VizContext) -> str:
    from cnnlab.viz.attribution import occlusion, occlusion_size, plot_occlusion

    # Zeiler and Fergus plot p(true class): the label of a test image unless --target is given
    t = ctx.label if ctx.args.target is None and ctx.label is not None else ctx.target()
    size, stride = occlusion_size(ctx.x.shape[-1], ctx.args.size, ctx.args.stride)
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


def run_saliency(ctx: VizContext) -> str:
    return _gradient_method(ctx, "saliency")


def run_guided(ctx: VizContext) -> str:
    return _gradient_method(ctx, "guided")


def run_deconvnet(ctx: VizContext) -> str:
    return _gradient_method(ctx, "deconvnet")
