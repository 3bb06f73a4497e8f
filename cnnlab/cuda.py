"""``cnnlab.cuda``: present so portable PyTorch code runs; there is no GPU backend.

``device = "cuda" if cnnlab.cuda.is_available() else "cpu"`` picks the CPU.
"""
from __future__ import annotations


def is_available() -> bool:
    """False: cnnlab computes on the CPU with NumPy."""
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """Accepted and ignored (no GPU generator); ``cnnlab.manual_seed`` seeds everything."""


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored, as :func:`manual_seed`."""
