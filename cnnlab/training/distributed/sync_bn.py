"""Synchronised batch normalisation: batch statistics over every rank's share.

With ``--sync-bn`` each BatchNorm1d/2d layer in training mode normalises by the
mean and variance of the whole global batch, so N ranks compute what one
process computes at the same global batch.  Per channel, with m_r values on
rank r and m = sum_r m_r:

    forward   mu = (sum_r sum x) / m,  var = (sum_r sum (x - mu)^2) / m    (two Allreduces,
              the same two passes as the one-process kernel; sums in float64)
    backward  with g = gamma dy the rank's own gradient (of its mean loss) and
              w_r = m_r / m its weight in the global mean loss,
              S1 = sum_r w_r sum g,  S2 = sum_r w_r sum g x_hat       (one Allreduce)
              dx = inv_std (g - (S1 + x_hat S2) / (m w_r))

which for one rank (w = 1) is the kernel's inv_std (g - mean(g) - x_hat mean(g x_hat)).
dgamma and dbeta stay the rank's own sums: the gradient reduction weights them
like every other parameter's.  The running statistics move as in one process
(unbiased variance over m), so they are equal on every rank.
"""
from __future__ import annotations

import numpy as np

from cnnlab.autograd.tensor import Function, Tensor
from cnnlab.kernels.norm import update_running_stats
from cnnlab.nn.module import Module
from cnnlab.nn.modules.batchnorm import BatchNorm1d, BatchNorm2d, _BatchNorm


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0,) + tuple(range(2, x.ndim))


def _col(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _allreduce_sum(comm, a: np.ndarray) -> np.ndarray:
    from mpi4py import MPI

    comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
    return a


class SyncBatchNormFunction(Function):
    def forward(self, x, gamma, beta, running_mean, running_var, momentum, eps, comm):
        axes, nd, C = _axes(x), x.ndim, x.shape[1]
        s = np.empty(C + 1)
        s[:C] = x.sum(axis=axes, dtype=np.float64)
        s[C] = x.size // C
        _allreduce_sum(comm, s)
        m = s[C]
        if m <= 1:
            raise ValueError(f"expected more than 1 value per channel over all ranks when training, "
                             f"got {int(m)}")
        mean = (s[:C] / m).astype(x.dtype)
        xc = x - _col(mean, nd)
        var = (_allreduce_sum(comm, (xc * xc).sum(axis=axes, dtype=np.float64)) / m).astype(x.dtype)
        update_running_stats(running_mean, running_var, mean, var, m, momentum)
        self.inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        self.x_hat = xc * _col(self.inv_std, nd)
        self.gamma, self.comm, self.m = gamma, comm, m
        self.w = (x.size // C) / m
        y = self.x_hat if gamma is None else self.x_hat * _col(gamma, nd)
        return y if beta is None else y + _col(beta, nd)

    def backward(self, dy):
        axes, nd, C = _axes(dy), dy.ndim, dy.shape[1]
        x_hat = self.x_hat
        dbeta = dy.sum(axis=axes)
        dgamma = (dy * x_hat).sum(axis=axes)
        g = dy if self.gamma is None else dy * _col(self.gamma, nd)
        s = np.empty(2 * C)
        s[:C] = g.sum(axis=axes, dtype=np.float64)
        s[C:] = (g * x_hat).sum(axis=axes, dtype=np.float64)
        s *= self.w
        _allreduce_sum(self.comm, s)
        scale = 1.0 / (self.m * self.w)
        s1 = (s[:C] * scale).astype(dy.dtype)
        s2 = (s[C:] * scale).astype(dy.dtype)
        dx = _col(self.inv_std, nd) * (g - _col(s1, nd) - x_hat * _col(s2, nd))
        return dx, dgamma, dbeta


class SyncBatchNorm(_BatchNorm):
    """A BatchNorm1d/2d whose training-mode statistics are those of the global batch.

    :func:`convert_sync_batchnorm` turns an existing layer into one in place, so
    its parameters, buffers and state-dict names stay, and the optimizer and
    checkpoints see no difference.  In eval mode it is the plain layer.
    """

    comm = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        if x.ndim not in self._expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r} expects input {self._shape_text.format(C=self.num_features)}, "
                             f"got {x.shape}")
        updating = self.track_running_stats
        momentum = self.momentum
        if updating and momentum is None:
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        y = SyncBatchNormFunction.apply(x, self.weight, self.bias, running_mean=self.running_mean,
                                        running_var=self.running_var, momentum=momentum or 0.0,
                                        eps=self.eps, comm=self.comm)
        if updating:
            self.num_batches_tracked[...] += 1
        return y


_SYNC_CLASSES = {kind: type(f"Sync{kind.__name__}", (SyncBatchNorm, kind), {})
                 for kind in (BatchNorm1d, BatchNorm2d)}


def convert_sync_batchnorm(model: Module, comm, skip: list[Module] = ()) -> int:
    """Make every BatchNorm1d/2d layer of ``model`` (except those in ``skip``,
    frozen ones kept in eval mode) synchronised over ``comm``, in place: each
    becomes an instance of a subclass of its own class and :class:`SyncBatchNorm`,
    keeping its parameters, buffers and state-dict names.  Returns how many."""
    count = 0
    for m in model.modules():
        kind = type(m)
        if kind in _SYNC_CLASSES and not any(m is s for s in skip):
            m.__class__ = _SYNC_CLASSES[kind]
            m.comm = comm
            count += 1
    return count
