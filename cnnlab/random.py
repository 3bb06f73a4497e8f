"""The library's random number generator (initialisation, dropout, shuffling).

``cnnlab.manual_seed(s)`` makes weight initialisation and dropout masks
reproducible.  The generator's state is plain JSON (``get_rng_state``), so a
checkpoint can store it and a resumed run draws the same numbers as an
uninterrupted one.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator; returns it."""
    global _rng
    _rng = np.random.default_rng(int(seed))
    return _rng


def get_rng() -> np.random.Generator:
    """The global generator used by ``cnnlab.nn.init`` and dropout."""
    return _rng


def get_rng_state() -> dict[str, Any]:
    """The generator's state as a JSON-serialisable dict."""
    return copy.deepcopy(_rng.bit_generator.state)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    if state.get("bit_generator") != type(_rng.bit_generator).__name__:
        raise ValueError(
            f"RNG state is for {state.get('bit_generator')!r}, "
            f"expected {type(_rng.bit_generator).__name__!r}")
    _rng.bit_generator.state = state
