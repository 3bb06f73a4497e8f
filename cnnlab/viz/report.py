"""``cnnlab report RUN``: one self-contained HTML page about a trained run.

The page holds the run's learning curves, confusion matrix, first-layer filters with
their smoothness, activation grids for a sample, occlusion and saliency maps for a few
test images, the t-SNE map of the CNN codes, and the misclassified examples, under a
header with the model, dataset, accuracy and configuration.  Every picture is a PNG
embedded as a base64 ``data:`` URI and the CSS is inline (:mod:`cnnlab.viz.page`), so
the file can be mailed or opened anywhere with no other files and no network.

A section whose method fails (a model without conv layers, say) shows the error in
its place instead of stopping the report; the error is also printed on stderr.

Each section is a function in :data:`SECTIONS` that fills a :class:`Section` from the
:class:`ReportContext` every section shares; :func:`render_html` turns them into the page.
"""
from __future__ import annotations

import datetime
import errno
import html
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab._files import check_writable_target, write_text_atomic
from cnnlab.kernels.activation import softmax_forward
from cnnlab.viz.inputs import model_pipeline, open_checkpoint
from cnnlab.viz.page import Figure, Section, html_table, png_data_uri, render_html

__all__ = ["write_report", "render_html", "Figure", "Section", "png_data_uri"]


# ------------------------------------------------------------------ what the sections share
def _pick_examples(y: np.ndarray, preds: np.ndarray, n: int) -> list[int]:
    """Up to ``n`` correctly classified test images of different classes (first of each)."""
    chosen, seen = [], set()
    for i in range(len(y)):
        if preds[i] == y[i] and int(y[i]) not in seen:
            chosen.append(i)
            seen.add(int(y[i]))
            if len(chosen) == n:
                break
    return chosen or list(range(min(n, len(y))))


@dataclass
class ReportContext:
    """What every section reads: the run, its model, the whole test set through the
    run's pipeline, the model's predictions on it, and a scratch folder for the PNGs."""

    run: Path
    ckpt: Path
    model: Any
    meta: dict[str, Any]
    test: Any                        # the test dataset
    classes: list[str]
    history: list[dict[str, Any]]    # one row per epoch (metrics.jsonl, else the checkpoint's)
    raw_small: np.ndarray            # (N, C, h, w) raw test images at the training size
    raw: np.ndarray                  # (N, C, S, S) raw pixels at the model's input size
    x: np.ndarray                    # (N, C, S, S) model inputs
    y: np.ndarray                    # (N,) int64 labels
    cm: np.ndarray                   # (K, K) confusion matrix
    preds: np.ndarray                # (N,) predicted classes
    targets: np.ndarray              # (N,) true classes, in loader order
    examples: list[int]              # test images shown with activations, occlusion and saliency
    tmpdir: Path
    seed: int = 0                    # t-SNE seed
    max_tsne: int = 2000             # first N test images in the t-SNE map

    @classmethod
    def load(cls, ckpt: Path, run: Path, tmpdir: Path, n_examples: int = 4, seed: int = 0,
             max_tsne: int = 2000) -> ReportContext:
        """Load the checkpoint, run the model over the test set once, pick the examples."""
        from cnnlab.training.run import evaluation_loader, load_for_evaluation
        from cnnlab.viz.training_plots import confusion, read_history

        model, meta = load_for_evaluation(ckpt)
        test, loader = evaluation_loader(meta, None, None, batch_size=500)
        classes = list(meta.get("classes") or test.classes or [])
        try:
            history = read_history(run)
        except FileNotFoundError:
            history = list(meta.get("history") or [])
        raw_small = np.asarray(test.x, dtype=np.float32)
        raw, x = model_pipeline(raw_small, meta)
        y = np.asarray(test.y).astype(np.int64)
        cm, preds, targets = confusion(model, loader, num_classes=len(classes) or None)
        return cls(run=run, ckpt=ckpt, model=model, meta=meta, test=test, classes=classes, history=history,
                   raw_small=raw_small, raw=raw, x=x, y=y, cm=cm, preds=preds, targets=targets,
                   examples=_pick_examples(y, preds, n_examples), tmpdir=tmpdir, seed=seed,
                   max_tsne=max_tsne)

    @property
    def spec(self) -> dict[str, Any]:
        return self.meta["model_spec"]

    @property
    def correct(self) -> int:
        return int(np.trace(self.cm))

    @property
    def total(self) -> int:
        return int(self.cm.sum())

    @property
    def acc(self) -> float:
        return float(np.trace(self.cm) / max(self.cm.sum(), 1))

    def name(self, k: int) -> str:
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)


# ------------------------------------------------------------------ the sections
def section_curves(ctx: ReportContext, s: Section) -> None:
    from cnnlab.viz.training_plots import plot_curves

    history = ctx.history
    if not history:
        raise ValueError("no metrics.jsonl and no history in the checkpoint")
    held, name = (("val", "validation") if any("val_acc" in h for h in history)
                  else ("test", "test"))
    s.figures.append(Figure(plot_curves(history, ctx.tmpdir / "curves.png",
                                        final_test=ctx.meta.get("test_accuracy")),
                            f"Loss (left) and accuracy (right) per epoch on the training and {name} "
                            "sets; a widening gap between them is overfitting.", wide=True))
    nan = float("nan")
    rows = [(h["epoch"], f"{h.get('train_loss', nan):.4f}", f"{h.get(held + '_loss', nan):.4f}",
             f"{h.get('train_acc', nan):.4f}", f"{h.get(held + '_acc', nan):.4f}",
             f"{h.get('lr', nan):.3g}") for h in history]
    table = html_table(("epoch", "train loss", f"{held} loss", "train acc", f"{held} acc", "lr"), rows,
                       numeric=range(6))
    s.extra_html = f"<details style='margin-top:12px'><summary>per-epoch numbers</summary>{table}</details>"


def section_confusion(ctx: ReportContext, s: Section) -> None:
    from cnnlab.viz.training_plots import plot_confusion

    cm, name = ctx.cm, ctx.name
    s.figures.append(Figure(plot_confusion(cm, ctx.classes or None, ctx.tmpdir / "confusion.png"),
                            "Rows are the true classes, columns the predictions: the diagonal "
                            "counts correct answers, every other cell one kind of mistake."))
    recall = [(name(i), f"{cm[i, i] / max(cm[i].sum(), 1):.3f}", int(cm[i].sum())) for i in range(len(cm))]
    off = cm.copy()
    np.fill_diagonal(off, 0)
    pairs = sorted(((int(off[i, j]), i, j) for i in range(len(off)) for j in range(len(off))
                    if off[i, j]), reverse=True)[:5]
    t = html_table(("class", "recall", "images"), recall, numeric=(1, 2))
    t2 = (html_table(("true", "predicted as", "count"), [(name(i), name(j), c) for c, i, j in pairs],
                     numeric=(2,)) if pairs else "<p>No mistakes.</p>")
    s.side_html = (f"<div class='cols'><div><b>Per-class recall</b>{t}</div>"
                   f"<div><b>Most frequent confusions</b>{t2}</div></div>")


def section_filters(ctx: ReportContext, s: Section) -> None:
    from cnnlab.viz.filters import filter_smoothness, first_conv_name, plot_filters

    layer = first_conv_name(ctx.model)
    w = np.asarray(ctx.model.get_submodule(layer).weight.data)
    sm = np.asarray(filter_smoothness(w), dtype=np.float64)
    s.figures.append(Figure(plot_filters(ctx.model, ctx.tmpdir / "filters.png", layer=layer),
                            f"The {w.shape[0]} filters of {layer} ({w.shape[2]}x{w.shape[3]}), each "
                            "scaled to its own range: smooth patterns mean a well-trained layer, "
                            "speckle means too little training or regularisation.", pixelated=True))
    order = np.argsort(sm)
    s.side_html = ("<p>Smoothness (scale-free total variation: 0 flat, "
                   "about 1.1&ndash;1.2 random noise, 2 a checkerboard): "
                   f"mean <b>{sm.mean():.3f}</b>, "
                   f"smoothest filter {int(order[0])} ({sm[order[0]]:.3f}), roughest "
                   f"{int(order[-1])} ({sm[order[-1]]:.3f}).</p>")


def section_activations(ctx: ReportContext, s: Section) -> None:
    from cnnlab.viz.image import save_png
    from cnnlab.viz.maps import activation_maps, dead_filters, plot_activation_grid

    model, raw, x, name = ctx.model, ctx.raw, ctx.x, ctx.name
    i = ctx.examples[0]
    kinds = ("ReLU", "LeakyReLU", "ELU", "ScaledTanh", "Tanh", "Sigmoid")
    acts = {n for n, m in model.named_modules() if n and not m._modules and type(m).__name__ in kinds}
    maps = activation_maps(model, x[i])
    chosen = [n for n in maps if n in acts] or list(maps)
    img = raw[i, 0] if raw.shape[1] == 1 else np.transpose(raw[i], (1, 2, 0))
    scale = max(1, 160 // img.shape[0])
    s.figures.append(Figure(save_png(np.clip(img, 0, 1), ctx.tmpdir / "sample.png", scale=scale),
                            f"The sample: test image {i}, true class {name(int(ctx.y[i]))}, "
                            f"predicted {name(int(ctx.preds[i]))}.", pixelated=True))
    rows = []
    for n in chosen[:6]:
        m = maps[n]
        p = plot_activation_grid(m, ctx.tmpdir / f"act_{n}.png", title=f"{n}: {m.shape[0]} maps "
                                 f"{m.shape[1]}x{m.shape[2]}")
        s.figures.append(Figure(p, f"The {m.shape[0]} feature maps of {n} for the sample (white = "
                                f"strongest in the layer, black = 0); {float((m <= 0).mean()):.0%} "
                                "of the values are zero.", pixelated=True))
        rep = dead_filters(model, x, n)
        rows.append((n, f"{len(rep.dead)} of {len(rep.zero_fraction)}"))
    s.extra_html = ("<p style='margin-top:12px'><b>Dead filters</b> (zero on every one of the "
                    f"{len(x)} test images; many of them suggest too high a learning rate):</p>"
                    + html_table(("layer", "dead channels"), rows))


def section_attribution(ctx: ReportContext, s: Section) -> None:
    from cnnlab.viz.attribution import occlusion, plot_occlusion, plot_saliency, saliency

    model, raw, x, name = ctx.model, ctx.raw, ctx.x, ctx.name
    S = x.shape[-1]
    size = max(1, round(S / 4))
    stride = max(1, size // 2)
    for i in ctx.examples:
        t = int(ctx.preds[i])
        heat = np.asarray(occlusion(model, x[i:i + 1], t, size, stride))
        heat = heat.reshape(heat.shape[-2:])
        s.figures.append(Figure(
            plot_occlusion(raw[i], heat, ctx.tmpdir / f"occ_{i}.png", size=size, stride=stride,
                           title=f"test image {i}: {name(t)}"),
            f"Occlusion for test image {i} (class {name(int(ctx.y[i]))}): the probability of "
            f"{name(t)} when a {size}x{size} patch at each place is blanked; low values mark the "
            f"evidence the network relies on (lowest {heat.min():.2f})."))
        sal = np.asarray(saliency(model, x[i:i + 1], t))
        s.figures.append(Figure(
            plot_saliency(raw[i], sal[0] if sal.ndim >= 3 and len(sal) == 1 else sal,
                          ctx.tmpdir / f"sal_{i}.png"),
            f"Saliency for test image {i}: |d score({name(t)}) / d pixel|, the pixels whose "
            "change would move the class score most."))


def section_embedding(ctx: ReportContext, s: Section) -> None:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from cnnlab.viz.embedding import (
        extract_codes,
        penultimate_layer,
        plot_tsne_mosaic,
        plot_tsne_scatter,
        tsne,
    )

    y = ctx.y
    n = min(ctx.max_tsne, len(ctx.x))
    layer = penultimate_layer(ctx.model)
    codes = extract_codes(ctx.model, layer, ctx.x[:n])
    emb = tsne(codes, seed=ctx.seed)
    s.figures.append(Figure(plot_tsne_scatter(emb, y[:n], ctx.tmpdir / "tsne.png", ctx.classes or None,
                                              title=f"t-SNE of {layer} codes"),
                            f"The {codes.shape[1]}-d codes of {layer} for {n} test images, placed "
                            "by t-SNE so that similar codes land close; colour is the true class."))
    side = int(np.ceil(np.sqrt(n * 1.1)))
    thumb = int(np.clip(720 // side, 8, 48))
    s.figures.append(Figure(plot_tsne_mosaic(emb, ctx.raw_small[:n], ctx.tmpdir / "mosaic.png", size=thumb,
                                             labels=y[:n]),
                            "The same map with every image drawn at its place (snapped to a grid); "
                            "frames show the true class.", pixelated=True))
    folds = int(min(5, np.bincount(y[:n]).min()))
    if folds >= 2:
        knn = cross_val_score(KNeighborsClassifier(5), emb, y[:n], cv=folds).mean()
        s.extra_html = (f"<p style='margin-top:12px'>A 5-nearest-neighbour classifier in the 2-D map "
                        f"reaches <b>{knn:.3f}</b> accuracy ({folds}-fold cross-validation).</p>")


def section_mistakes(ctx: ReportContext, s: Section) -> None:
    from cnnlab.autograd.tensor import Tensor, no_grad
    from cnnlab.training.loop import main_logits
    from cnnlab.viz.training_plots import plot_misclassified

    preds, targets = ctx.preds, ctx.targets
    idx = np.flatnonzero(preds != targets)
    if not len(idx):
        s.extra_html = "<p>The model classifies every test image correctly.</p>"
        return
    shown = idx[:32]
    ctx.model.eval()
    with no_grad():
        z = np.asarray(main_logits(ctx.model(Tensor(ctx.x[shown]))).data, dtype=np.float64)
    p = softmax_forward(z, axis=1)
    s.figures.append(Figure(
        plot_misclassified(ctx.raw_small[shown], preds[shown], targets[shown], ctx.classes or None,
                           ctx.tmpdir / "wrong.png", max_n=32, probs=p.max(1)),
        f"The first {len(shown)} of the {len(idx)} misclassified test images, titled true \u2192 "
        "predicted class and the predicted probability.", wide=True))


@dataclass(frozen=True)
class ReportSection:
    """One section of the report, as :data:`SECTIONS` lists it.

    Attributes
    ----------
    title : the section's heading (and its entry in the page's navigation)
    intro : one sentence under the heading; ``{c.NAME}`` fields are filled from the
        :class:`ReportContext` (``str.format``)
    build : ``build(ctx, section)`` adds the figures and HTML extras; an exception it
        raises is shown in the section's place
    columns : a fixed number of figure columns (default: as many as fit 340 px)
    """

    title: str
    intro: str
    build: Callable[[ReportContext, Section], None]
    columns: int | None = None


SECTIONS: tuple[ReportSection, ...] = (
    ReportSection("Training curves", "How the loss and accuracy moved during training.", section_curves),
    ReportSection("Confusion matrix", "Test accuracy {c.acc:.4f} ({c.correct} of {c.total} test images).",
                  section_confusion, columns=2),
    ReportSection("First-layer filters", "What the first convolution looks for in the raw pixels.",
                  section_filters, columns=2),
    ReportSection("Activations", "Each layer's response to one test image: early layers keep the image's "
                  "layout, later ones are coarser and more selective.", section_activations),
    ReportSection("Occlusion and saliency", "Where the evidence is: Zeiler and Fergus's occlusion maps and "
                  "Simonyan et al.'s data gradients for a few correctly classified test images.",
                  section_attribution, columns=2),
    ReportSection("t-SNE of the CNN codes", "The codes before the classifier, embedded in two dimensions: "
                  "the network's own notion of which images are alike.", section_embedding, columns=2),
    ReportSection("Misclassified test images", "What the model gets wrong; confident mistakes are often "
                  "ambiguous or mislabelled images.", section_mistakes),
)


# Refusals of the machine, not of a section: no section can be written after them.
MACHINE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO)


def build_section(part: ReportSection, ctx: ReportContext, log: Callable[[str], None]) -> Section:
    """Run one section's ``build``, timed; a failure becomes the section's error message."""
    s = Section(part.title, part.intro.format(c=ctx), columns=part.columns)
    t0 = time.perf_counter()
    try:
        part.build(ctx, s)
    except Exception as e:   # one broken method must not sink the page
        if isinstance(e, OSError) and e.errno in MACHINE_ERRNOS:   # but a full disk sinks them all
            raise
        s.error = f"{type(e).__name__}: {e}"
        log(f"report: section {part.title!r} failed: {s.error}")
    log(f"report: {part.title} ({time.perf_counter() - t0:.1f}s)")
    return s


def model_section(ctx: ReportContext) -> Section:
    """The configuration table and the layer summary (never fails: a summary error is shown as text)."""
    spec, meta = ctx.spec, ctx.meta
    cfg_rows = [(k, v) for k, v in (meta.get("config") or {}).items() if v is not None]
    inp = spec.get("input") or {}
    side = inp.get("to", spec["kwargs"].get("input_size", "?"))
    cfg_rows.append(("input", f"{spec['kwargs'].get('in_channels')}x{side}x{side}"
                              + (f" ({inp['how']} from {inp['from']})" if inp.get("how") else "")))
    if meta.get("normalize"):
        stats = {k: round(v, 4) for k, v in meta["normalize"].items()}
        cfg_rows.append(("normalisation (mean, std)", json.dumps(stats)))
    try:
        from cnnlab.summary import summary

        C = int(spec["kwargs"]["in_channels"])
        text = str(summary(ctx.model, (C, ctx.x.shape[-2], ctx.x.shape[-1]), verbose=False))
    except Exception as e:   # a summary is a nicety
        text = f"(no summary: {e})"
    return Section(
        "Model and configuration", f"{spec['name']} trained on {meta.get('dataset')} with these settings "
        "(from the run's config.json).",
        extra_html=("<div class='cols'><div>" + html_table(("setting", "value"), cfg_rows) + "</div>"
                    f"<div style='flex:1;min-width:420px'><pre>{html.escape(text)}</pre></div></div>"))


def header_stats(ctx: ReportContext) -> list[tuple[str, str]]:
    """(label, value) pairs for the page header."""
    history = ctx.history
    epochs = len(history) or ctx.meta.get("epochs", "?")
    train_time = sum(h.get("epoch_time_s", 0.0) for h in history)
    n_params = sum(p.numel() for p in ctx.model.parameters())
    stats = [("test accuracy", f"{ctx.acc:.4f}"), ("parameters", f"{n_params:,}"), ("epochs", str(epochs)),
             ("test images", f"{len(ctx.test):,}"), ("training time", f"{train_time:.0f} s")]
    if history:
        stats.insert(3, ("final train loss", f"{history[-1].get('train_loss', float('nan')):.4f}"))
    return stats


# ------------------------------------------------------------------ the run's report
def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, n_examples: int = 4,
                 seed: int = 0, max_tsne: int = 2000, log: Callable[[str], None] | None = None) -> Path:
    """Write the run's report as one self-contained HTML file.

    Parameters
    ----------
    run_dir : run folder written by ``cnnlab train`` (or its ``model.npz``)
    out : HTML path, default ``RUN/report.html``
    n_examples : test images shown with occlusion and saliency maps
    seed : t-SNE seed
    max_tsne : at most this many test images (the first ones) in the t-SNE map
    log : progress messages (default: stderr)

    Returns
    -------
    Path of the HTML file.
    """
    log = log or (lambda m: print(m, file=sys.stderr))
    if n_examples < 1:
        raise ValueError(f"write_report: n_examples must be >= 1, got {n_examples}")
    ckpt, run = open_checkpoint(run_dir)
    out_named = out is not None          # a symlink the user named is followed, a planted one refused
    out = Path(out) if out_named else run / "report.html"
    check_writable_target(out, follow_symlinks=out_named)   # before the work, not after it
    with tempfile.TemporaryDirectory(prefix="cnnlab-report-") as tmp:
        ctx = ReportContext.load(ckpt, run, Path(tmp), n_examples=n_examples, seed=seed, max_tsne=max_tsne)
        sections = [build_section(part, ctx, log) for part in SECTIONS]
        # the layer summary runs the model once more, so it is made after the pictures
        sections.insert(0, model_section(ctx))
        page = render_html(
            f"{ctx.spec['name']} on {ctx.meta.get('dataset')}",
            f"cnnlab report of {run.resolve()} \u00b7 checkpoint {ckpt.name} \u00b7 "
            f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
            header_stats(ctx), sections,
            footer="Made by `cnnlab report`. Each picture can be made on its own with `cnnlab viz METHOD "
                   "--checkpoint RUN/model.npz`.")
    return write_text_atomic(out, page, follow_symlinks=out_named)
