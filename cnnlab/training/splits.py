"""Stratified, seeded subsets of a labelled dataset: a validation split held out
of the training set, and a small labelled subset for the "small new dataset"
case of transfer learning.

Both are functions of ``(labels, size, seed)`` only, so a resumed run rebuilds
exactly the same split.
"""
from __future__ import annotations

import numpy as np

from cnnlab.data import ArrayDataset

__all__ = ["stratified_indices", "stratified_split", "subset"]


def stratified_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Pick ``count`` sample indices with the class proportions of ``labels``.

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
    count : int
        How many to pick, ``1 <= count <= N``.
    seed : int
        Seed of ``np.random.default_rng``.

    Returns
    -------
    ndarray of int64, shape (count,), sorted
        Class ``c`` (with ``n_c`` samples) gets ``floor(count * n_c / N)``
        samples, and the ``count`` minus their sum left over go to the classes
        with the largest remainders (ties: lower class first).  Within a class
        the samples are a seeded random choice.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"stratified_indices: labels must be 1-d, got shape {y.shape}")
    n = len(y)
    if isinstance(count, bool) or not 1 <= int(count) <= n:
        raise ValueError(f"stratified_indices: count must be in [1, {n}], got {count!r}")
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (int(count) / n)
    quota = np.floor(exact).astype(np.int64)
    left = int(count) - int(quota.sum())
    order = np.lexsort((np.arange(len(classes)), -(exact - quota)))
    quota[order[:left]] += 1
    rng = np.random.default_rng(int(seed))
    picked = []
    for c, k in zip(classes, quota):
        members = np.flatnonzero(y == c)
        picked.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``round(fraction * N)`` samples, stratified by class.

    Returns
    -------
    (kept, held_out) : two sorted int64 index arrays, disjoint, covering ``range(N)``.
    """
    n = len(labels)
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"stratified_split: fraction must be in (0, 1), got {fraction!r}")
    k = int(round(float(fraction) * n))
    if not 1 <= k < n:
        raise ValueError(f"stratified_split: a fraction of {fraction} of {n} samples holds out {k}; "
                         "it must hold out at least one and keep at least one")
    held = stratified_indices(labels, k, seed)
    mask = np.ones(n, dtype=bool)
    mask[held] = False
    return np.flatnonzero(mask).astype(np.int64), held


def subset(dataset: ArrayDataset, indices: np.ndarray) -> ArrayDataset:
    """The samples ``indices`` of ``dataset`` as a new :class:`ArrayDataset` (copies)."""
    return ArrayDataset(dataset.x[indices], dataset.y[indices], dataset.classes)
