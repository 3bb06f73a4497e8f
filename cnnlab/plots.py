"""Figures that training and visualisation both draw: the learning curves.

matplotlib is optional: it is imported inside the functions, so importing this
module never needs it, and a caller that can do without a figure catches the
``ImportError``.  Figures are built with :func:`subplots`, outside pyplot: they
need no display, and the caller's own pyplot backend (a notebook's inline plots,
say) is never switched.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_history", "save_exact", "subplots"]


def subplots(nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """``matplotlib.pyplot.subplots`` without pyplot: returns (Figure, axes).

    ``figsize``, ``dpi``, ``facecolor`` and ``layout`` go to the Figure, the rest
    (``squeeze``, ``gridspec_kw``, ...) to ``Figure.subplots``.  The figure belongs to
    no pyplot window and saves through Agg, so drawing one changes nothing in the
    process; it needs no closing."""
    from matplotlib.figure import Figure

    figure_kw = {k: kwargs.pop(k) for k in ("figsize", "dpi", "facecolor", "layout") if k in kwargs}
    fig = Figure(**figure_kw)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_exact(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure at exactly ``figsize * dpi`` pixels.

    No tight bounding box, so sizes are predictable.  Parent folders are
    created, and the file appears whole or not at all (:func:`cnnlab._files.atomic_write`);
    the format follows the suffix (PNG without one).
    """
    from cnnlab._files import atomic_write

    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format=path.suffix[1:] or "png")
    return path


def plot_history(history: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "",
                 figsize: tuple[float, float] = (10, 3.8), dpi: int = 100,
                 final_test: float | None = None) -> Path:
    """Loss and accuracy per epoch, side by side, as a PNG of ``figsize * dpi`` pixels.

    Parameters
    ----------
    history : sequence of dict
        One row per epoch with ``epoch``, ``train_loss``, ``train_acc``, and
        ``val_loss`` / ``val_acc`` (a run with a validation split) or ``test_loss`` /
        ``test_acc`` (a run without); each is drawn when a row has it (an epoch
        without it leaves a gap).
    path : str or os.PathLike
        The image file.
    title : str
        Drawn above both panels when given.
    final_test : float, optional
        The test accuracy scored after training, shown in the accuracy panel's
        title (default: the last row's ``test_acc``, if any).

    Returns
    -------
    Path
        The PNG written.

    Raises
    ------
    ValueError
        If ``history`` is empty.
    ImportError
        If matplotlib is not installed.
    """
    if not history:
        raise ValueError("plot_history: the history is empty (no epoch finished)")
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = subplots(1, 2, figsize=figsize)
    for ax, what, label in ((a1, "loss", "cross-entropy loss"), (a2, "acc", "accuracy")):
        for split, name, style in (("train", "train", "o-"), ("val", "validation", "^-"),
                                   ("test", "test", "s-")):
            key = f"{split}_{what}"
            if any(key in h for h in history):
                ax.plot(ep, [h.get(key, np.nan) for h in history], style, ms=4, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    a1.set_title("loss")
    last = history[-1].get("test_acc") if final_test is None else final_test
    a2.set_title("accuracy" + (f" (final test {last:.4f})" if last is not None else ""))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_exact(fig, path, dpi)
