"""``Parameter``: a Tensor that a Module registers as learnable."""
from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires a gradient by default.

    Assigning one as an attribute of a :class:`~cnnlab.nn.Module` registers it,
    so it appears in ``parameters()`` and ``state_dict()``.
    """

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        arr = data.data if isinstance(data, Tensor) else data
        arr = np.asarray(arr)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float32)
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
