"""``cnnlab viz`` runners for the training pictures: curves, confusion, misclassified."""
from __future__ import annotations

import numpy as np

from cnnlab.viz.commands.context import VizContext


def run_curves(ctx: VizContext) -> str:
    from cnnlab.viz.training_plots import plot_curves, read_history

    try:
        hist = read_history(ctx.run_dir)
    except FileNotFoundError:
        hist = list(ctx.meta.get("history") or [])
    if not hist:
        raise ValueError(f"no training history in {ctx.run_dir} or the checkpoint")
    spec = ctx.meta["model_spec"]["name"]
    final_test = ctx.meta.get("test_accuracy")
    plot_curves(hist, ctx.path("curves"), title=f"{spec} on {ctx.meta.get('dataset')}",
                final_test=final_test)
    held = "val" if any("val_acc" in h for h in hist) else "test"   # what each epoch was scored on
    key = f"{held}_acc"
    best = max(hist, key=lambda h: h.get(key, -1))
    nan = float("nan")
    text = (f"{len(hist)} epochs; final train loss {hist[-1].get('train_loss', nan):.4f}, {held} acc "
            f"{hist[-1].get(key, nan):.4f}; best {held} acc {best.get(key, nan):.4f} "
            f"at epoch {best['epoch']}")
    if held == "val" and final_test is not None:
        text += f"; test acc {final_test:.4f} (scored once, after training)"
    return text


def run_confusion(ctx: VizContext) -> str:
    from cnnlab.viz.training_plots import confusion, plot_confusion

    _, loader = ctx.test_data()
    cm, _, _ = confusion(ctx.model, loader, num_classes=len(ctx.classes) or None)
    plot_confusion(cm, ctx.classes or None, ctx.path("confusion"))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    worst = f"; most confused: {ctx.name(i)} as {ctx.name(j)} ({int(off[i, j])}x)" if off.max() else ""
    return f"test accuracy {np.trace(cm) / cm.sum():.4f} ({int(np.trace(cm))}/{int(cm.sum())}){worst}"


def run_misclassified(ctx: VizContext) -> str:
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
                       ctx.path("misclassified"), max_n=ctx.args.max_n, probs=probs,
                       total_wrong=len(idx))
    return (f"{len(idx):,} of {len(test):,} test images misclassified; {shown} shown of "
            f"{len(idx):,} wrong: indices " + ", ".join(map(str, idx[:shown].tolist())))
