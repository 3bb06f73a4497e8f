"""LeNet-5's connection table: a convolution whose output maps each see only some
of the input maps (LeCun et al. 1998, Table I)."""
from __future__ import annotations

import numpy as np

from cnnlab.autograd.tensor import DEFAULT_DTYPE, Tensor
from cnnlab.nn import functional as F
from cnnlab.nn import init
from cnnlab.nn._args import check_padding, check_sizes, errors_naming
from cnnlab.nn.functional_conv import _conv, _masked_weight
from cnnlab.nn.module import Module
from cnnlab.nn.modules.conv import _add_bias, _checked_input, _conv_repr
from cnnlab.nn.parameter import Parameter

# LeCun et al. 1998, Table I: the S2 maps (0-5) each C3 map (0-15) is connected to.
_LENET5_C3 = [
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),            # 3 consecutive
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),                                   # non-consecutive
    (0, 1, 2, 3, 4, 5),                                                         # all six
]


def lenet5_c3_table() -> np.ndarray:
    """LeNet-5's C3 connection table (LeCun et al. 1998, Table I) as a boolean
    (6, 16) array, table[i, j] = S2 map i feeds C3 map j: maps 0-5 see 3
    consecutive inputs, 6-11 see 4 consecutive, 12-14 see 4 non-consecutive and
    15 sees all 6 (60 connections; with 5x5 kernels 60 * 25 + 16 = 1,516 parameters)."""
    table = np.zeros((6, 16), dtype=bool)
    for j, inputs in enumerate(_LENET5_C3):
        table[list(inputs), j] = True
    return table


class ConnectionTable(Module):
    """A conv layer whose output map j sees only the input maps i with table[i, j]
    (LeNet-5's C3; the notes' fixed form of Bouvrie's learned combinations, 002).

    ``table``: boolean (in_channels, out_channels) array, or a list with one
    list of input indices per output map.  Implemented as a masked Conv2d:
    weight (out_channels, in_channels, KH, KW) is multiplied by the mask in the
    forward, so disconnected weights never affect the output and get zero
    gradient.  Init: U(-1/sqrt(fan_in_j), 1/sqrt(fan_in_j)) with fan_in_j =
    (inputs of map j) * KH * KW; disconnected entries are zero.
    :meth:`num_connection_parameters` counts only the connected weights and biases.
    """

    def __init__(self, table, kernel_size: F.IntPair, stride: F.IntPair = 1,
                 padding: F.IntPair | str = 0, bias: bool = True, dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        self.table = self._as_table(table)
        self.in_channels, self.out_channels = self.table.shape
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        check_padding("ConnectionTable", self.padding, 2)
        check_sizes("ConnectionTable", 1, kernel_size=self.kernel_size, stride=self.stride)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        _add_bias(self, self.out_channels, bias, dtype)
        self.reset_parameters()

    @staticmethod
    def _as_table(table) -> np.ndarray:
        arr = None
        if isinstance(table, np.ndarray) and table.ndim == 2:
            arr = table.astype(bool)
        elif isinstance(table, (list, tuple)) and all(isinstance(r, (list, tuple)) for r in table):
            lists = [list(r) for r in table]
            if lists and all(isinstance(v, (bool, np.bool_)) for r in lists for v in r):
                arr = np.array(lists, dtype=bool)          # a boolean matrix as lists
            elif lists and all(isinstance(v, (int, np.integer)) for r in lists for v in r):
                n_in = 1 + max((v for r in lists for v in r), default=-1)
                if any(v < 0 for r in lists for v in r):
                    raise ValueError(f"ConnectionTable: input indices must be >= 0, got {table}")
                arr = np.zeros((n_in, len(lists)), dtype=bool)
                for j, r in enumerate(lists):
                    arr[r, j] = True
        if arr is None or arr.ndim != 2 or arr.size == 0:
            raise ValueError("ConnectionTable: table must be a boolean (in_channels, out_channels) "
                             "array or one list of input indices per output map, got "
                             f"{table!r}")
        for j in np.flatnonzero(~arr.any(axis=0)):
            raise ValueError(f"ConnectionTable: output map {j} is connected to no input map")
        return arr

    def reset_parameters(self) -> None:
        k = self.kernel_size[0] * self.kernel_size[1]
        fan_in = self.table.sum(axis=0) * k                              # per output map
        bound = (1 / np.sqrt(fan_in)).astype(self.weight.dtype)           # (out_channels,)
        init.uniform_(self.weight, -1.0, 1.0)
        self.weight.data *= bound[:, None, None, None] * self.mask()
        if self.bias is not None:
            init.uniform_(self.bias, -1.0, 1.0)
            self.bias.data *= bound

    def mask(self) -> np.ndarray:
        """(out_channels, in_channels, 1, 1) 0/1 mask of the weight."""
        return self.table.T[:, :, None, None].astype(self.weight.dtype)

    def num_connection_parameters(self) -> int:
        """Connected weights plus biases: table.sum() * KH * KW + out_channels."""
        k = self.kernel_size[0] * self.kernel_size[1]
        return int(self.table.sum()) * k + (self.out_channels if self.bias is not None else 0)

    def forward(self, x: Tensor) -> Tensor:
        x = _checked_input(self, x, 2)
        with errors_naming(self):
            return _conv(x, _masked_weight(self.weight, self.table), self.bias, self.stride,
                         self.padding, (1, 1), 1, "connection_table_conv2d")

    def extra_repr(self) -> str:
        return _conv_repr(f"{self.in_channels}, {self.out_channels}, "
                          f"connections={int(self.table.sum())}, kernel_size={self.kernel_size}, "
                          f"stride={self.stride}", self.bias, padding=(self.padding, (0, 0)))


__all__ = ["ConnectionTable", "lenet5_c3_table"]
