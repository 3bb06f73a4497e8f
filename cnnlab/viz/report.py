"""``cnnlab report RUN``: one self-contained HTML page about a trained run.

The page holds the run's learning curves, confusion matrix, first-layer filters with
their smoothness, activation grids for a sample, occlusion and saliency maps for a few
test images, the t-SNE map of the CNN codes, and the misclassified examples, under a
header with the model, dataset, accuracy and configuration.  Every picture is a PNG
embedded as a base64 ``data:`` URI and the CSS is inline, so the file can be mailed or
opened anywhere with no other files and no network.

A section whose method fails (a model without conv layers, say) shows the error in
its place instead of stopping the report; the error is also printed on stderr.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.kernels.activation import softmax_forward

__all__ = ["write_report", "render_html", "Figure", "Section", "png_data_uri"]


@dataclass
class Figure:
    """One picture of a section: a PNG file, a one-sentence caption, display options."""

    path: Path
    caption: str
    pixelated: bool = False      # small pixel-art images: keep hard pixel edges when scaled
    wide: bool = False           # span the whole row of the grid


@dataclass
class Section:
    """A titled block of the report: an explanation, figures, optional HTML extras."""

    title: str
    intro: str
    figures: list[Figure] = field(default_factory=list)
    extra_html: str = ""
    error: str | None = None
    columns: int | None = None   # fixed number of figure columns (default: as many as fit 340 px)
    side_html: str = ""          # a grid cell after the figures (tables beside a picture)


def png_data_uri(path: str | os.PathLike) -> str:
    """``data:image/png;base64,...`` for a PNG file."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"png_data_uri: {path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = Path(path).read_bytes()[16:24]
    return int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")


_CSS = """
:root { --ink:#1d2330; --muted:#5b6474; --line:#dde2ea; --card:#ffffff; --bg:#f4f6f9; --accent:#2f6fdf; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
header { background:linear-gradient(135deg,#1f3c73,#2f6fdf); color:#fff; padding:28px 40px 24px; }
header h1 { margin:0 0 4px; font-size:26px; font-weight:600; }
header .sub { opacity:.85; font-size:14px; }
.stats { display:flex; flex-wrap:wrap; gap:12px; margin-top:18px; }
.stat { background:rgba(255,255,255,.14); border-radius:8px; padding:8px 14px; min-width:120px; }
.stat b { display:block; font-size:20px; font-weight:600; }
.stat span { font-size:12px; opacity:.85; text-transform:uppercase; letter-spacing:.04em; }
main { max-width:1240px; margin:0 auto; padding:24px 32px 40px; }
nav { margin:0 0 18px; font-size:13px; color:var(--muted); }
nav a { color:var(--accent); text-decoration:none; margin-right:14px; white-space:nowrap; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
          padding:18px 22px 20px; margin:0 0 22px; }
section h2 { margin:0 0 4px; font-size:19px; font-weight:600; }
section p.intro { margin:0 0 14px; color:var(--muted); max-width:900px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(340px, 1fr)); gap:18px;
        align-items:start; }
figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:10px; background:#fff; }
figure.wide { grid-column:1 / -1; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto; }
figure img.px { image-rendering:pixelated; }
figcaption { font-size:13px; color:var(--muted); margin-top:8px; }
table { border-collapse:collapse; font-size:13px; }
td, th { border-bottom:1px solid var(--line); padding:3px 14px 3px 0; text-align:left; vertical-align:top; }
th { color:var(--muted); font-weight:500; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
.cols { display:flex; flex-wrap:wrap; gap:28px; }
pre { background:#f7f8fa; border:1px solid var(--line); border-radius:6px; padding:10px; font-size:12px;
      overflow-x:auto; }
.side { padding:4px 0; }
.error { color:#a01c1c; background:#fdf0f0; border:1px solid #f1caca; border-radius:6px; padding:8px 12px; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 0 30px; }
"""


def render_html(title: str, subtitle: str, stats: list[tuple[str, str]], sections: list[Section],
                footer: str = "") -> str:
    """The page as one HTML string (images inlined from the figures' PNG files)."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{esc(title)}</h1><div class=\"sub\">{esc(subtitle)}</div><div class=\"stats\">"]
    for label, value in stats:
        out.append(f'<div class="stat"><b>{esc(value)}</b><span>{esc(label)}</span></div>')
    out.append("</div></header><main><nav>")
    for k, s in enumerate(sections, 1):
        out.append(f'<a href="#s{k}">{k}. {esc(s.title)}</a>')
    out.append("</nav>")
    for k, s in enumerate(sections, 1):
        out.append(f'<section id="s{k}"><h2>{k}. {esc(s.title)}</h2><p class="intro">{esc(s.intro)}</p>')
        if s.error:
            out.append(f'<div class="error">This section could not be made: {esc(s.error)}</div>')
        if s.figures or s.side_html:
            cols = f' style="grid-template-columns:repeat({s.columns}, minmax(0, 1fr))"' if s.columns else ""
            out.append(f'<div class="grid"{cols}>')
            for f in s.figures:
                w, h = _png_size(f.path)
                cls = ' class="px"' if f.pixelated else ""
                wide = ' class="wide"' if f.wide else ""
                out.append(f'<figure{wide}><img{cls} src="{png_data_uri(f.path)}" width="{w}" height="{h}" '
                           f'alt="{esc(f.caption)}"><figcaption>{esc(f.caption)}</figcaption></figure>')
            if s.side_html:
                out.append(f'<div class="side">{s.side_html}</div>')
            out.append("</div>")
        out.append(s.extra_html)
        out.append("</section>")
    out.append(f"</main><footer>{esc(footer)}</footer></body></html>")
    return "\n".join(out)


# ------------------------------------------------------------------ the run's report
def _table(rows: list[tuple[str, Any]], head: tuple[str, str] | None = None) -> str:
    esc = html.escape
    out = ["<table>"]
    if head:
        out.append(f"<tr><th>{esc(head[0])}</th><th>{esc(head[1])}</th></tr>")
    for k, v in rows:
        out.append(f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>")
    out.append("</table>")
    return "".join(out)


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
    from cnnlab.training.run import load_for_evaluation
    from cnnlab.viz.inputs import model_pipeline, open_checkpoint
    from cnnlab.viz.training_plots import confusion, read_history

    log = log or (lambda m: print(m, file=sys.stderr))
    if n_examples < 1:
        raise ValueError(f"write_report: n_examples must be >= 1, got {n_examples}")
    ckpt, run = open_checkpoint(run_dir)
    out = Path(out) if out is not None else run / "report.html"
    model, meta = load_for_evaluation(ckpt)
    from cnnlab.training.run import evaluation_loader

    test, loader = evaluation_loader(meta, None, None, batch_size=500)
    classes = list(meta.get("classes") or test.classes or [])
    spec = meta["model_spec"]
    cfg = meta.get("config") or {}
    try:
        history = read_history(run)
    except FileNotFoundError:
        history = list(meta.get("history") or [])
    raw_small = np.asarray(test.x, dtype=np.float32)
    raw, x = model_pipeline(raw_small, meta)
    y = np.asarray(test.y).astype(np.int64)
    cm, preds, targets = confusion(model, loader, num_classes=len(classes) or None)
    acc = float(np.trace(cm) / max(cm.sum(), 1))
    n_params = sum(int(p.size) for p in model.parameters())
    name = lambda k: classes[k] if 0 <= k < len(classes) else str(k)  # noqa: E731

    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-report-") as tmp:
        tmpdir = Path(tmp)

        def section(title: str, intro: str, build: Callable[[Section], None], columns: int | None = None
                    ) -> None:
            s = Section(title, intro, columns=columns)
            t0 = time.perf_counter()
            try:
                build(s)
            except Exception as e:   # one broken method must not sink the page
                s.error = f"{type(e).__name__}: {e}"
                log(f"report: section {title!r} failed: {s.error}")
            log(f"report: {title} ({time.perf_counter() - t0:.1f}s)")
            sections.append(s)

        # 1. curves
        def curves(s: Section) -> None:
            from cnnlab.viz.training_plots import plot_curves

            if not history:
                raise ValueError("no metrics.jsonl and no history in the checkpoint")
            s.figures.append(Figure(plot_curves(history, tmpdir / "curves.png"),
                                    "Loss (left) and accuracy (right) per epoch on the training and test "
                                    "sets; a widening gap between them is overfitting.", wide=True))
            rows = [(h["epoch"], f"{h.get('train_loss', float('nan')):.4f}",
                     f"{h.get('test_loss', float('nan')):.4f}", f"{h.get('train_acc', float('nan')):.4f}",
                     f"{h.get('test_acc', float('nan')):.4f}", f"{h.get('lr', float('nan')):.3g}")
                    for h in history]
            head = "".join(f"<th>{c}</th>" for c in ("epoch", "train loss", "test loss", "train acc",
                                                      "test acc", "lr"))
            body = "".join("<tr>" + "".join(f"<td class=num>{v}</td>" for v in r) + "</tr>" for r in rows)
            s.extra_html = f"<details style='margin-top:12px'><summary>per-epoch numbers</summary>" \
                           f"<table><tr>{head}</tr>{body}</table></details>"

        section("Training curves", "How the loss and accuracy moved during training.", curves)

        # 2. confusion
        def conf(s: Section) -> None:
            from cnnlab.viz.training_plots import plot_confusion

            s.figures.append(Figure(plot_confusion(cm, classes or None, tmpdir / "confusion.png"),
                                    "Rows are the true classes, columns the predictions: the diagonal "
                                    "counts correct answers, every other cell one kind of mistake."))
            recall = [(name(i), f"{cm[i, i] / max(cm[i].sum(), 1):.3f}", int(cm[i].sum()))
                      for i in range(len(cm))]
            off = cm.copy()
            np.fill_diagonal(off, 0)
            pairs = sorted(((int(off[i, j]), i, j) for i in range(len(off)) for j in range(len(off))
                            if off[i, j]), reverse=True)[:5]
            t = "<table><tr><th>class</th><th>recall</th><th>images</th></tr>" + "".join(
                f"<tr><td>{html.escape(c)}</td><td class=num>{r}</td><td class=num>{n}</td></tr>"
                for c, r, n in recall) + "</table>"
            t2 = ("<table><tr><th>true</th><th>predicted as</th><th>count</th></tr>" + "".join(
                f"<tr><td>{html.escape(name(i))}</td><td>{html.escape(name(j))}</td>"
                f"<td class=num>{c}</td></tr>"
                for c, i, j in pairs) + "</table>") if pairs else "<p>No mistakes.</p>"
            s.side_html = (f"<div class='cols'><div><b>Per-class recall</b>{t}</div>"
                           f"<div><b>Most frequent confusions</b>{t2}</div></div>")

        section("Confusion matrix", f"Test accuracy {acc:.4f} ({int(np.trace(cm))} of {int(cm.sum())} "
                "test images).", conf, columns=2)

        # 3. filters
        def filters(s: Section) -> None:
            from cnnlab.viz.filters import filter_smoothness, first_conv_name, plot_filters

            layer = first_conv_name(model)
            w = np.asarray(model.get_submodule(layer).weight.data)
            sm = np.asarray(filter_smoothness(w), dtype=np.float64)
            s.figures.append(Figure(plot_filters(model, tmpdir / "filters.png", layer=layer),
                                    f"The {w.shape[0]} filters of {layer} ({w.shape[2]}x{w.shape[3]}), each "
                                    "scaled to its own range: smooth patterns mean a well-trained layer, "
                                    "speckle means too little training or regularisation.", pixelated=True))
            order = np.argsort(sm)
            s.side_html = ("<p>Smoothness (scale-free total variation: 0 flat, "
                            "about 1.1&ndash;1.2 random noise, 2 a checkerboard): "
                            f"mean <b>{sm.mean():.3f}</b>, "
                            f"smoothest filter {int(order[0])} ({sm[order[0]]:.3f}), roughest "
                            f"{int(order[-1])} ({sm[order[-1]]:.3f}).</p>")

        section("First-layer filters", "What the first convolution looks for in the raw pixels.", filters,
                columns=2)

        examples = _pick_examples(y, preds, n_examples)

        # 4. activations
        def activations(s: Section) -> None:
            from cnnlab.viz.image import save_png
            from cnnlab.viz.maps import activation_maps, dead_filters, plot_activation_grid

            i = examples[0]
            kinds = ("ReLU", "LeakyReLU", "ELU", "ScaledTanh", "Tanh", "Sigmoid")
            acts = {n for n, m in model.named_modules() if n and not m._modules and type(m).__name__ in kinds}
            maps = activation_maps(model, x[i])
            chosen = [n for n in maps if n in acts] or list(maps)
            img = raw[i, 0] if raw.shape[1] == 1 else np.transpose(raw[i], (1, 2, 0))
            scale = max(1, 160 // img.shape[0])
            s.figures.append(Figure(save_png(np.clip(img, 0, 1), tmpdir / "sample.png", scale=scale),
                                    f"The sample: test image {i}, true class {name(int(y[i]))}, "
                                    f"predicted {name(int(preds[i]))}.", pixelated=True))
            rows = []
            for n in chosen[:6]:
                m = maps[n]
                p = plot_activation_grid(m, tmpdir / f"act_{n}.png", title=f"{n}: {m.shape[0]} maps "
                                         f"{m.shape[1]}x{m.shape[2]}")
                s.figures.append(Figure(p, f"The {m.shape[0]} feature maps of {n} for the sample (white = "
                                        f"strongest in the layer, black = 0); {float((m <= 0).mean()):.0%} "
                                        "of the values are zero.", pixelated=True))
                rep = dead_filters(model, x, n)
                rows.append((n, f"{len(rep.dead)} of {len(rep.zero_fraction)}"))
            s.extra_html = ("<p style='margin-top:12px'><b>Dead filters</b> (zero on every one of the "
                            f"{len(x)} test images; many of them suggest too high a learning rate):</p>"
                            + _table(rows, ("layer", "dead channels")))

        section("Activations", "Each layer's response to one test image: early layers keep the image's "
                "layout, later ones are coarser and more selective.", activations)

        # 5. occlusion and saliency
        def attribution(s: Section) -> None:
            from cnnlab.viz.attribution import occlusion, plot_occlusion, plot_saliency, saliency

            S = x.shape[-1]
            size = max(1, round(S / 4))
            stride = max(1, size // 2)
            for i in examples:
                t = int(preds[i])
                heat = np.asarray(occlusion(model, x[i:i + 1], t, size, stride))
                heat = heat.reshape(heat.shape[-2:])
                s.figures.append(Figure(
                    plot_occlusion(raw[i], heat, tmpdir / f"occ_{i}.png", size=size, stride=stride,
                                   title=f"test image {i}: {name(t)}"),
                    f"Occlusion for test image {i} (class {name(int(y[i]))}): the probability of "
                    f"{name(t)} when a {size}x{size} patch at each place is blanked; low values mark the "
                    f"evidence the network relies on (lowest {heat.min():.2f})."))
                sal = np.asarray(saliency(model, x[i:i + 1], t))
                s.figures.append(Figure(
                    plot_saliency(raw[i], sal[0] if sal.ndim >= 3 and len(sal) == 1 else sal,
                                  tmpdir / f"sal_{i}.png"),
                    f"Saliency for test image {i}: |d score({name(t)}) / d pixel|, the pixels whose "
                    "change would move the class score most."))

        section("Occlusion and saliency", "Where the evidence is: Zeiler and Fergus's occlusion maps and "
                "Simonyan et al.'s data gradients for a few correctly classified test images.", attribution,
                columns=2)

        # 6. t-SNE
        def embedding(s: Section) -> None:
            from sklearn.model_selection import cross_val_score
            from sklearn.neighbors import KNeighborsClassifier

            from cnnlab.viz.embedding import (
                extract_codes,
                penultimate_layer,
                plot_tsne_mosaic,
                plot_tsne_scatter,
                tsne,
            )

            n = min(max_tsne, len(x))
            layer = penultimate_layer(model)
            codes = extract_codes(model, layer, x[:n])
            emb = tsne(codes, seed=seed)
            s.figures.append(Figure(plot_tsne_scatter(emb, y[:n], tmpdir / "tsne.png", classes or None,
                                                      title=f"t-SNE of {layer} codes"),
                                    f"The {codes.shape[1]}-d codes of {layer} for {n} test images, placed "
                                    "by t-SNE so that similar codes land close; colour is the true class."))
            side = int(np.ceil(np.sqrt(n * 1.1)))
            thumb = int(np.clip(720 // side, 8, 48))
            s.figures.append(Figure(plot_tsne_mosaic(emb, raw_small[:n], tmpdir / "mosaic.png", size=thumb,
                                                     labels=y[:n]),
                                    "The same map with every image drawn at its place (snapped to a grid); "
                                    "frames show the true class.", pixelated=True))
            folds = int(min(5, np.bincount(y[:n]).min()))
            if folds >= 2:
                knn = cross_val_score(KNeighborsClassifier(5), emb, y[:n], cv=folds).mean()
                s.extra_html = (f"<p style='margin-top:12px'>A 5-nearest-neighbour classifier in the 2-D map "
                                f"reaches <b>{knn:.3f}</b> accuracy ({folds}-fold cross-validation).</p>")

        section("t-SNE of the CNN codes", "The codes before the classifier, embedded in two dimensions: "
                "the network's own notion of which images are alike.", embedding,
                columns=2)

        # 7. mistakes
        def mistakes(s: Section) -> None:
            from cnnlab.autograd.tensor import Tensor, no_grad
            from cnnlab.training.loop import main_logits
            from cnnlab.viz.training_plots import plot_misclassified

            idx = np.flatnonzero(preds != targets)
            if not len(idx):
                s.extra_html = "<p>The model classifies every test image correctly.</p>"
                return
            shown = idx[:32]
            model.eval()
            with no_grad():
                z = np.asarray(main_logits(model(Tensor(x[shown]))).data, dtype=np.float64)
            p = softmax_forward(z, axis=1)
            s.figures.append(Figure(
                plot_misclassified(raw_small[shown], preds[shown], targets[shown], classes or None,
                                   tmpdir / "wrong.png", max_n=32, probs=p.max(1)),
                f"The first {len(shown)} of the {len(idx)} misclassified test images, titled true \u2192 "
                "predicted class and the predicted probability.", wide=True))

        section("Misclassified test images", "What the model gets wrong; confident mistakes are often "
                "ambiguous or mislabelled images.", mistakes)

        epochs = len(history) or meta.get("epochs", "?")
        train_time = sum(h.get("epoch_time_s", 0.0) for h in history)
        stats = [("test accuracy", f"{acc:.4f}"), ("parameters", f"{n_params:,}"), ("epochs", str(epochs)),
                 ("test images", f"{len(test):,}"), ("training time", f"{train_time:.0f} s")]
        if history:
            stats.insert(3, ("final train loss", f"{history[-1].get('train_loss', float('nan')):.4f}"))
        cfg_rows = [(k, v) for k, v in cfg.items() if v is not None]
        inp = spec.get("input") or {}
        side = inp.get("to", spec["kwargs"].get("input_size", "?"))
        cfg_rows.append(("input", f"{spec['kwargs'].get('in_channels')}x{side}x{side}"
                                  + (f" ({inp['how']} from {inp['from']})" if inp.get("how") else "")))
        if meta.get("normalize"):
            cfg_rows.append(("normalize", json.dumps({k: round(v, 4) for k, v in meta["normalize"].items()})))
        try:
            from cnnlab.summary import summary

            C = int(spec["kwargs"]["in_channels"])
            text = str(summary(model, (C, x.shape[-2], x.shape[-1]), verbose=False))
        except Exception as e:   # a summary is a nicety
            text = f"(no summary: {e})"
        sections.insert(0, Section(
            "Model and configuration", f"{spec['name']} trained on {meta.get('dataset')} with these settings "
            "(from the run's config.json).",
            extra_html=("<div class='cols'><div>" + _table(cfg_rows, ("setting", "value")) + "</div>"
                        f"<div style='flex:1;min-width:420px'><pre>{html.escape(text)}</pre></div></div>")))
        page = render_html(
            f"{spec['name']} on {meta.get('dataset')}",
            f"cnnlab report of {run.resolve()} \u00b7 checkpoint {ckpt.name} \u00b7 "
            f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
            stats, sections,
            footer="Made by `cnnlab report`. Each picture can be made on its own with `cnnlab viz METHOD "
                   "--checkpoint RUN/model.npz`.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp")
    tmp_out.write_text(page, encoding="utf-8")
    os.replace(tmp_out, out)
    return out
