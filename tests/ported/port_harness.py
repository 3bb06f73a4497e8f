"""Run one PyTorch script's source twice: with ``torch`` and with ``cnnlab`` as torch.

:func:`load_script` executes the file with an ``__import__`` that maps ``torch``
and ``torch.*`` to ``cnnlab`` and ``cnnlab.*`` (the cnnlab run) or leaves them
alone (the torch run), so both runs execute the very same source text: the
only change is the one a user makes, the import.
"""
from __future__ import annotations

import builtins
import importlib
from pathlib import Path
from typing import Any

import numpy as np

SCRIPTS = Path(__file__).parent / "scripts"


def _cnnlab_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                   level: int = 0) -> Any:
    if level == 0 and (name == "torch" or name.startswith("torch.")):
        target = "cnnlab" + name[len("torch"):]
        module = importlib.import_module(target)
        return module if fromlist else importlib.import_module("cnnlab")
    return builtins.__import__(name, globals, locals, fromlist, level)


def load_script(name: str, backend: str) -> dict[str, Any]:
    """Execute ``scripts/<name>.py``; ``backend`` is ``"torch"`` or ``"cnnlab"``."""
    path = SCRIPTS / f"{name}.py"
    namespace: dict[str, Any] = {"__name__": f"ported_{name}_{backend}", "__file__": str(path)}
    if backend == "cnnlab":
        patched = dict(vars(builtins))
        patched["__import__"] = _cnnlab_import
        namespace["__builtins__"] = patched
    elif backend != "torch":
        raise ValueError(f"backend must be 'torch' or 'cnnlab', got {backend!r}")
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def digits(size: int, n_train: int, n_test: int) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits (shipped in its wheel) upsampled by pixel
    repetition to ``size`` x ``size``, scaled to [0, 1], float32 NCHW; labels int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    factor = size // 8
    x = np.kron(d.images / 16.0, np.ones((factor, factor)))[:, None].astype(np.float32)
    y = d.target.astype(np.int64)
    return (x[:n_train], y[:n_train], x[n_train:n_train + n_test], y[n_train:n_train + n_test])


def share_dropout_masks(ours: Any, theirs: Any, cnnlab: Any, torch: Any) -> list[np.ndarray]:
    """Make the torch model's dropout layers apply the masks cnnlab's drew.

    Each cnnlab ``Dropout`` runs for real (cnnlab's own mask, scaling and
    backward).  Around each training-mode call the generator's state is saved,
    and the same draw is replayed on a tensor of ones, which gives that call's
    mask times 1/(1-p); the generator is then left where the real call left it.
    The matching torch ``Dropout`` (same position in ``modules()``) multiplies by
    that mask instead of drawing from torch's generator.  The cnnlab run must go
    first; the returned queue is then empty when both runs have consumed it all.
    """
    queue: list[np.ndarray] = []
    ours_d = [m for m in ours.modules() if type(m).__name__ == "Dropout"]
    theirs_d = [m for m in theirs.modules() if type(m).__name__ == "Dropout"]
    assert len(ours_d) == len(theirs_d) > 0

    def recording(module: Any) -> Any:
        real = module.forward

        def forward(x: Any) -> Any:
            if not module.training:
                return real(x)
            before = cnnlab.get_rng_state()
            out = real(x)
            after = cnnlab.get_rng_state()
            cnnlab.set_rng_state(before)
            queue.append(real(cnnlab.ones_like(x)).numpy().copy())
            cnnlab.set_rng_state(after)
            return out
        return forward

    def replaying(module: Any) -> Any:
        def forward(x: Any) -> Any:
            if not module.training:
                return x
            return x * torch.from_numpy(queue.pop(0))
        return forward

    for m in ours_d:
        m.forward = recording(m)
    for m in theirs_d:
        m.forward = replaying(m)
    return queue
