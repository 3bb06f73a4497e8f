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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from cnnlab.argtypes import finite_float, positive_int
from cnnlab.data.datasets import DATASET_NAMES
from cnnlab.viz.commands.attribution import run_deconvnet, run_guided, run_occlusion, run_saliency
from cnnlab.viz.commands.context import VizContext
from cnnlab.viz.commands.features import (
    run_activations,
    run_dead_filters,
    run_filters,
    run_kernels,
    run_top_k,
    run_tsne,
)
from cnnlab.viz.commands.synthesis import run_class_model, run_fgsm, run_invert
from cnnlab.viz.commands.training import run_confusion, run_curves, run_misclassified
from cnnlab.viz.inputs import (
    PHOTOS,
    image_to_model_input,
    load_image_file,
    open_checkpoint,
    sample_photo,
    shrink,
)

__all__ = ["add_viz_commands", "METHODS", "VIZ_METHODS", "VizMethod", "option", "load_image_file",
           "image_to_model_input", "VizContext", "open_checkpoint", "sample_photo", "shrink"]


class Option(NamedTuple):
    """One ``parser.add_argument(*flags, **kwargs)`` call, made when the parser is built."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any]


def option(*flags: str, **kwargs: Any) -> Option:
    """A method's own command-line option, in ``add_argument``'s words."""
    return Option(flags, kwargs)


@dataclass(frozen=True)
class VizMethod:
    """One ``cnnlab viz`` method, declared once in :data:`VIZ_METHODS`.

    Attributes
    ----------
    name : the METHOD word on the command line
    help : one line, for ``cnnlab viz --help`` and as the method's description
    run : ``run(ctx) -> summary``; writes its PNGs to ``ctx.path(stem)`` and returns the
        one-line numeric summary printed last
    needs_input : it looks at one input image (``--image PATH`` or test image ``--index N``)
    needs_checkpoint : False when, without ``--checkpoint``, it works on ``--image`` or a
        sample ``--photo`` alone
    options : its own options, after the ones every method shares
    """

    name: str
    help: str
    run: Callable[[VizContext], str]
    needs_input: bool = False
    needs_checkpoint: bool = True
    options: tuple[Option, ...] = ()


VIZ_METHODS: tuple[VizMethod, ...] = (
    VizMethod("kernels", "classic image kernels (edges, sharpen, blur, Sobel, Gaussian) applied to the image",
              run_kernels, needs_input=True, needs_checkpoint=False, options=(
                  option("--photo", choices=PHOTOS, default="camera",
                         help="without --image: scikit-image's sample photo to filter (default camera)"),
                  option("--max-side", type=positive_int, default=256,
                         help="shrink the photo so its longer side is at most this (default 256)"))),
    VizMethod("activations", "feature maps of every conv / pool / ReLU layer (or --layer) for the image",
              run_activations, needs_input=True, options=(
                  option("--normalize", choices=["layer", "map"], default="layer",
                         help="grey levels shared by the layer's maps (default) or per map"),)),
    VizMethod("dead-filters", "channels that are zero for (almost) all test images, per ReLU layer",
              run_dead_filters, options=(
                  option("--threshold", type=finite_float, default=0.99,
                         help="dead when zero on at least this fraction of test images"),)),
    VizMethod("filters", "a conv layer's filters as images (default: the first) with smoothness scores",
              run_filters),
    VizMethod("top-k", "test images that most activate --channel of --layer, with its receptive field",
              run_top_k, options=(option("--k", type=positive_int, default=9),)),
    VizMethod("tsne", "t-SNE map of the CNN codes of the test set: scatter and image mosaic", run_tsne,
              options=(option("--perplexity", type=finite_float, default=30.0),
                       option("--max-images", type=positive_int, default=2000, help="first N test images"),
                       option("--thumb", type=positive_int, default=24,
                              help="mosaic thumbnail side in pixels"))),
    VizMethod("occlusion", "class probability as a grey square slides over the image (Zeiler & Fergus)",
              run_occlusion, needs_input=True, options=(
                  option("--size", type=positive_int,
                         help="occluder side in pixels (default: input side / 4)"),
                  option("--stride", type=positive_int, help="occluder step (default: size / 2)"),
                  option("--fill", type=finite_float, default=0.0,
                         help="occluder value in model units (0 = the training mean)"))),
    VizMethod("saliency", "|d score / d pixel|, the data gradient (Simonyan et al.)", run_saliency,
              needs_input=True),
    VizMethod("guided", "guided backpropagation (Springenberg et al.)", run_guided, needs_input=True),
    VizMethod("deconvnet", "DeconvNet reconstruction (Zeiler & Fergus)", run_deconvnet, needs_input=True),
    # the defaults of cnnlab.viz.synthesis.class_model (tuned on digits_cnn)
    VizMethod("class-model", "the image that maximises a class score (all classes, or --target) or a unit",
              run_class_model, options=(
                  option("--steps", type=positive_int, default=200),
                  option("--lr", type=finite_float, default=0.1),
                  option("--l2", type=finite_float, default=0.3, help="L2 decay weight (default 0.3)"),
                  option("--jitter", type=int, default=1, help="random shift in pixels (default 1)"),
                  option("--blur-every", type=positive_int, default=4,
                         help="Gaussian blur every N steps, 0 = never (default 4)"))),
    VizMethod("invert", "reconstruct the image from its code at --layer (Mahendran & Vedaldi)", run_invert,
              needs_input=True, options=(
                  option("--steps", type=positive_int, default=200),
                  option("--lr", type=finite_float, default=0.05),
                  option("--tv", type=finite_float, default=0.0, help="total-variation weight"))),
    VizMethod("fgsm", "fool the network: fast gradient sign adversarial example", run_fgsm,
              needs_input=True, options=(
                  option("--eps", type=finite_float, default=0.1,
                         help="budget in raw pixel units ([0, 1] images)"),
                  option("--steps", type=positive_int, default=1, help="> 1: iterative FGSM"),
                  option("--sweep", metavar="EPS", nargs="+",
                         help="also the test accuracy under attack for these eps, separated by "
                              "commas or spaces (0,0.01,0.05 or 0 0.01 0.05)"))),
    VizMethod("curves", "loss and accuracy per epoch", run_curves),
    VizMethod("confusion", "test confusion matrix with counts", run_confusion),
    VizMethod("misclassified", "the test images the model gets wrong", run_misclassified,
              options=(option("--max-n", type=positive_int, default=32),)),
)
METHODS = tuple(m.name for m in VIZ_METHODS)
_BY_NAME = {m.name: m for m in VIZ_METHODS}


# ----------------------------------------------------------------- commands
def cmd_viz(args: argparse.Namespace) -> int:
    method = _BY_NAME[args.method]
    if args.checkpoint is None:
        if method.needs_checkpoint:
            raise ValueError(f"{method.name}: --checkpoint RUN/model.npz is required")
        ctx = VizContext.for_photo(args)
    else:
        ctx = VizContext.for_checkpoint(args)
        if method.needs_input:
            ctx.choose_input()
    summary = method.run(ctx)
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
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   help="test set to use (default: the run's)")
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    return p


def _add_viz(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("viz", help="see inside a trained model (saliency, occlusion, t-SNE, ...)",
                       description="Visualise a trained model; each METHOD writes PNGs and prints a summary.")
    methods = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    parent = _common_parent()
    for method in VIZ_METHODS:
        m = methods.add_parser(method.name, parents=[parent], help=method.help, description=method.help)
        for opt in method.options:
            m.add_argument(*opt.flags, **opt.kwargs)
        m.set_defaults(func=cmd_viz, method=method.name)


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
    p.add_argument("--examples", type=positive_int, default=4,
                   help="test images shown with occlusion / saliency")
    p.add_argument("--max-tsne", type=positive_int, default=2000, help="first N test images in the t-SNE map")
    p.add_argument("--seed", type=int, default=0, help="t-SNE seed")
    p.set_defaults(func=cmd_report)


def add_viz_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``viz`` and ``report`` on the ``cnnlab`` command's subparsers."""
    _add_viz(sub)
    _add_report(sub)
