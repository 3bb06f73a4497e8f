"""See inside a model: record the outputs of named submodules during a forward.

Used by the visualisation toolkit (activation maps, top-k search, t-SNE codes)
and by transfer learning (``extract_features``), so "the output of layer
``features.3``" means the same thing everywhere::

    with capture_outputs(model, ["features.3", "fc2"]) as seen:
        model(x)
    seen["fc2"]          # ndarray, the output of model.fc2 for x
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.module import Module

__all__ = ["capture_outputs", "forward_hooks", "layer_names", "leaf_modules"]


def layer_names(model: Module) -> list[str]:
    """Dotted names of every submodule, in registration order (the model itself excluded)."""
    return [name for name, _ in model.named_modules() if name]


def leaf_modules(model: Module) -> list[Module]:
    """The modules of ``model`` (itself included) that have no submodules: its layers."""
    return [m for m in model.modules() if not any(True for _ in m.children())]


@contextmanager
def forward_hooks(modules: Iterable[Module], hook: Callable[[Module, tuple, Any], Any]
                  ) -> Iterator[None]:
    """``hook`` registered as a forward hook on each of ``modules`` for the block, and
    removed after it, also when the block raises."""
    handles = []
    try:
        for m in modules:
            handles.append(m.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def capture_outputs(model: Module, names: Sequence[str], keep_tensor: bool = False
                    ) -> Iterator[dict[str, np.ndarray | Tensor]]:
    """Record the output of each named submodule for the forwards run inside the block.

    Parameters
    ----------
    model : Module
    names : sequence of str
        Dotted submodule names (see :func:`layer_names`, ``Module.get_submodule``).
    keep_tensor : bool
        Store the output Tensor itself (still attached to the graph, for gradients
        with respect to a hidden layer) instead of a copy of its array.

    Yields
    ------
    dict name -> ndarray (or Tensor), filled in by the forward; a module called
    twice keeps its last output.
    """
    seen: dict[str, np.ndarray | Tensor] = {}
    handles = []
    try:
        for name in names:
            module = model.get_submodule(name)

            def hook(mod: Module, inputs: tuple, out, _name: str = name) -> None:
                if keep_tensor:
                    seen[_name] = out
                else:
                    seen[_name] = np.array(out.data if isinstance(out, Tensor) else out, copy=True)

            handles.append(module.register_forward_hook(hook))
        yield seen
    finally:
        for h in handles:
            h.remove()
