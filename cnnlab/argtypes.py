"""Argument types for the command line: a bad number is refused by argparse with a
one-line message (exit 2), never silently replaced by a default or passed on.

``positive_int`` for sizes, counts and steps (``--size 0`` used to fall back to
the default without a word); ``finite_float`` for rates and weights (``nan`` and
``inf`` parse as floats).
"""
from __future__ import annotations

import argparse
import math

__all__ = ["finite_float", "positive_int"]


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """A finite number (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value
