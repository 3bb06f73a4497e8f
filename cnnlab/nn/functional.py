"""Functional interface with PyTorch's names and argument order.

``import cnnlab.nn.functional as F`` then ``F.conv2d(x, w, b, stride=2)`` as in
``torch.nn.functional``.  The ops live in one file per family and are all
re-exported here; each normalises and validates its arguments and hands
ndarrays to the autograd adapters in :mod:`cnnlab.autograd`.
"""
from cnnlab.nn._args import IntPair, pair
from cnnlab.nn.functional_activation import *  # noqa: F401,F403
from cnnlab.nn.functional_activation import __all__ as _activation_all
from cnnlab.nn.functional_conv import *  # noqa: F401,F403
from cnnlab.nn.functional_conv import __all__ as _conv_all
from cnnlab.nn.functional_loss import *  # noqa: F401,F403
from cnnlab.nn.functional_loss import __all__ as _loss_all
from cnnlab.nn.functional_norm import *  # noqa: F401,F403
from cnnlab.nn.functional_norm import __all__ as _norm_all
from cnnlab.nn.functional_pad import *  # noqa: F401,F403
from cnnlab.nn.functional_pad import __all__ as _pad_all
from cnnlab.nn.functional_pool import *  # noqa: F401,F403
from cnnlab.nn.functional_pool import __all__ as _pool_all

__all__ = ["IntPair", "pair", *_activation_all, *_conv_all, *_loss_all, *_norm_all, *_pad_all, *_pool_all]
