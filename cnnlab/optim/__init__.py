"""Optimizers and learning-rate schedulers, mirroring :mod:`torch.optim`.

Each optimizer is a stateful class (:class:`Optimizer` subclass) over a pure
update function on ndarrays (:func:`sgd_update`, :func:`adam_update`, ...) and
reproduces torch's update formulas exactly.  Schedulers live in the
:mod:`cnnlab.optim.lr_scheduler` submodule, as in torch::

    from cnnlab import optim
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
"""

from __future__ import annotations

from cnnlab.optim import lr_scheduler
from cnnlab.optim.adadelta import Adadelta, adadelta_update
from cnnlab.optim.adagrad import Adagrad, adagrad_update
from cnnlab.optim.adam import Adam, AdamW, adam_update
from cnnlab.optim.optimizer import Optimizer
from cnnlab.optim.rmsprop import RMSprop, rmsprop_update
from cnnlab.optim.sgd import SGD, sgd_update

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "RMSprop",
    "adadelta_update",
    "adagrad_update",
    "rmsprop_update",
    "Adam",
    "AdamW",
    "Optimizer",
    "adam_update",
    "lr_scheduler",
    "sgd_update",
]
