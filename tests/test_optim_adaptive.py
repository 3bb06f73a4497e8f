"""Adadelta, Adagrad and RMSprop against torch.optim in float64, over 12 steps,
with every option and with parameter groups; their state dicts through the
checkpoint format and back (a resumed run equals an uninterrupted one)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import _torch
from test_optim import _assert_close, _grad_sequence, _group, _initial_arrays

from cnnlab import optim
from cnnlab import serialization as ser
from cnnlab.nn.parameter import Parameter

torch = _torch()
N_STEPS = 12

CASES = {
    "Adadelta": {
        "default": {},
        "lr_rho_eps": {"lr": 0.5, "rho": 0.8, "eps": 1e-4},
        "weight_decay_maximize": {"weight_decay": 0.1, "maximize": True},
        "foreach_ignored": {"lr": 2.0, "foreach": True},
    },
    "Adagrad": {
        "default": {},
        "lr_decay": {"lr": 0.1, "lr_decay": 0.05},
        "initial_accumulator": {"lr": 0.1, "initial_accumulator_value": 0.3, "eps": 1e-6},
        "weight_decay_maximize": {"lr": 0.05, "weight_decay": 0.2, "maximize": True},
    },
    "RMSprop": {
        "default": {},
        "momentum": {"lr": 0.01, "momentum": 0.9},
        "centered": {"lr": 0.01, "centered": True, "alpha": 0.9},
        "centered_momentum_wd": {"lr": 0.005, "centered": True, "momentum": 0.5,
                                 "weight_decay": 0.1, "eps": 1e-6},
        "maximize": {"lr": 0.01, "maximize": True, "foreach": False},
    },
}
PARAMS = [(name, case) for name, cases in CASES.items() for case in cases]

GROUPS = {
    "Adadelta": ({"lr": 1.0}, [{"idx": [0, 2]}, {"idx": [1, 3], "lr": 0.3, "rho": 0.5}]),
    "Adagrad": ({"lr": 0.1}, [{"idx": [3, 1]}, {"idx": [0, 2], "lr": 0.02, "lr_decay": 0.1,
                                                 "weight_decay": 0.05}]),
    "RMSprop": ({"lr": 0.01}, [{"idx": [0]}, {"idx": [1, 2], "momentum": 0.9},
                               {"idx": [3], "centered": True, "lr": 0.001}]),
}


def _run(name: str, kwargs: dict[str, Any], spec: Any = None) -> None:
    arrays = _initial_arrays()
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = getattr(optim, name)(_group(ours, spec), **kwargs)
    topt = getattr(torch.optim, name)(_group(theirs, spec), **kwargs)
    for step, grads in enumerate(_grad_sequence(n_steps=N_STEPS), start=1):
        for p, t, g in zip(ours, theirs, grads):
            p.grad = g.copy()
            t.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
        _assert_close(ours, theirs, step)
    # the state holds torch's entries under torch's names, with equal values
    tstate = topt.state_dict()["state"]
    for i, entries in opt.state_dict()["state"].items():
        assert set(entries) == set(tstate[i]), (entries.keys(), tstate[i].keys())
        for key, value in entries.items():
            np.testing.assert_allclose(value, np.asarray(tstate[i][key]), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("name", "case"), PARAMS, ids=[f"{n}-{c}" for n, c in PARAMS])
def test_matches_torch(name: str, case: str) -> None:
    _run(name, CASES[name][case])


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_param_groups_match_torch(name: str) -> None:
    kwargs, spec = GROUPS[name]
    _run(name, kwargs, spec)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_state_dict_resume_through_checkpoint_format(name: str, tmp_path) -> None:
    """Six steps, save the optimizer the way training checkpoints do (pack_tree
    into a pickle-free .npz), load into a fresh optimizer, six more steps: equal,
    bit for bit, to twelve uninterrupted steps."""
    kwargs, spec = GROUPS[name]
    grads = _grad_sequence(n_steps=N_STEPS)

    def fresh():
        params = [Parameter(a.copy()) for a in _initial_arrays()]
        return params, getattr(optim, name)(_group(params, spec), **kwargs)

    def run(params, opt, steps):
        for step_grads in steps:
            for p, g in zip(params, step_grads):
                p.grad = g.copy()
            opt.step()

    straight, opt = fresh()
    run(straight, opt, grads)

    first, opt1 = fresh()
    run(first, opt1, grads[:6])
    arrays: dict[str, np.ndarray] = {}
    tree = ser.pack_tree(opt1.state_dict(), arrays, "optim")
    ser.save_arrays(tmp_path / "opt.npz", arrays, {"optimizer": tree})
    loaded_arrays, meta = ser.load_arrays(tmp_path / "opt.npz")
    second, opt2 = fresh()
    for p, q in zip(second, first):
        p.data[...] = q.data
    opt2.load_state_dict(ser.unpack_tree(meta["optimizer"], loaded_arrays))
    assert opt2.param_groups[1]["lr"] == opt1.param_groups[1]["lr"]
    run(second, opt2, grads[6:])
    for p, q in zip(second, straight):
        np.testing.assert_array_equal(p.data, q.data)


def test_scheduler_drives_adadelta_like_torch() -> None:
    """StepLR over Adadelta, as in PyTorch's MNIST example (gamma 0.7 per epoch)."""
    arrays = _initial_arrays()
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt, topt = optim.Adadelta(ours, lr=1.0), torch.optim.Adadelta(theirs, lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=0.7)
    for step, grads in enumerate(_grad_sequence(n_steps=N_STEPS), start=1):
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.tensor(g.copy())
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        _assert_close(ours, theirs, step)
        assert opt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("Adadelta", {"rho": 1.5}, "rho"),
    ("Adadelta", {"lr": -1.0}, "learning rate"),
    ("Adagrad", {"lr_decay": -0.1}, "lr_decay"),
    ("Adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    ("Adagrad", {"fused": True}, "fused=True is not supported"),
    ("RMSprop", {"alpha": -0.5}, "alpha"),
    ("RMSprop", {"eps": -1e-8}, "epsilon"),
    ("RMSprop", {"capturable": True}, "runs on the CPU"),
    ("Adadelta", {"differentiable": True}, "differentiable=True"),
])
def test_invalid_options_are_refused(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        getattr(optim, name)([Parameter(np.ones(2))], **kwargs)
