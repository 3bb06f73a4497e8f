"""Tests for cnnlab.optim: optimizers and schedulers checked step by step against torch."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pytest
from helpers import _torch

from cnnlab import optim
from cnnlab.nn.parameter import Parameter
from cnnlab.optim import SGD, Adam, AdamW, Optimizer, adam_update, sgd_update
from cnnlab.optim import lr_scheduler as sched

torch = _torch()   # the oracle must be there: a missing torch fails, it does not skip

SHAPES = [(3, 4), (5,), (2, 3, 2), ()]
N_STEPS = 10
TOL = 1e-12


def _initial_arrays(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in SHAPES]


def _grad_sequence(seed: int = 1, n_steps: int = N_STEPS) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape) for shape in SHAPES] for _ in range(n_steps)]


def _group(items: list[Any], spec: list[dict[str, Any]] | None) -> list[Any]:
    """Split parameters into groups: ``spec[i]`` holds group i's options and index list."""
    if spec is None:
        return items
    return [
        {**{k: v for k, v in s.items() if k != "idx"}, "params": [items[i] for i in s["idx"]]}
        for s in spec
    ]


def _assert_close(ours: list[Parameter], theirs: list[Any], step: int) -> None:
    for i, (p, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(
            p.data, t.detach().numpy(), rtol=0, atol=TOL, err_msg=f"param {i} after step {step}"
        )


def _run_against_torch(
    ours_cls: type[Optimizer],
    torch_cls: Any,
    kwargs: dict[str, Any],
    spec: list[dict[str, Any]] | None = None,
    no_grad: tuple[int, ...] = (),
) -> list[Parameter]:
    arrays = _initial_arrays()
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = ours_cls(_group(ours, spec), **kwargs)
    topt = torch_cls(_group(theirs, spec), **kwargs)
    for step, grads in enumerate(_grad_sequence(), start=1):
        for i, (p, t, g) in enumerate(zip(ours, theirs, grads)):
            if i not in no_grad:
                p.grad = g.copy()
                t.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
        _assert_close(ours, theirs, step)
    return ours


# --------------------------------------------------------------- optimizers
SGD_CASES = {
    "plain": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.9},
    "dampening": {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    "weight_decay": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
    "nesterov": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    "maximize": {"lr": 0.05, "momentum": 0.5, "maximize": True},
    "default_lr": {},
}

ADAM_CASES = {
    "default": {},
    "lr_betas": {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.1},
    "amsgrad": {"lr": 0.01, "amsgrad": True},
    "amsgrad_wd_maximize": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "maximize": True},
}

ADAMW_CASES = {
    "default": {},
    "weight_decay": {"lr": 0.01, "weight_decay": 0.2},
    "amsgrad": {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1},
}


@pytest.mark.parametrize("kwargs", SGD_CASES.values(), ids=SGD_CASES.keys())
def test_sgd_matches_torch(kwargs: dict[str, Any]) -> None:
    _run_against_torch(SGD, torch.optim.SGD, kwargs)


@pytest.mark.parametrize("kwargs", ADAM_CASES.values(), ids=ADAM_CASES.keys())
def test_adam_matches_torch(kwargs: dict[str, Any]) -> None:
    _run_against_torch(Adam, torch.optim.Adam, kwargs)


@pytest.mark.parametrize("kwargs", ADAMW_CASES.values(), ids=ADAMW_CASES.keys())
def test_adamw_matches_torch(kwargs: dict[str, Any]) -> None:
    _run_against_torch(AdamW, torch.optim.AdamW, kwargs)


def test_adam_decoupled_weight_decay_flag_equals_adamw() -> None:
    _run_against_torch(
        Adam, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}
    )


@pytest.mark.parametrize(
    ("ours_cls", "torch_cls", "kwargs", "spec"),
    [
        (
            SGD,
            "SGD",
            {"lr": 0.1, "momentum": 0.9},
            [{"idx": [0, 2]}, {"idx": [1, 3], "lr": 0.01, "nesterov": True}],
        ),
        (
            Adam,
            "Adam",
            {"lr": 0.01},
            [
                {"idx": [3, 1]},
                {"idx": [0], "lr": 0.1, "betas": (0.5, 0.9)},
                {"idx": [2], "amsgrad": True},
            ],
        ),
        (
            AdamW,
            "AdamW",
            {"lr": 0.01},
            [{"idx": [0, 1]}, {"idx": [2, 3], "lr": 0.003, "weight_decay": 0.5}],
        ),
    ],
    ids=["sgd", "adam", "adamw"],
)
def test_param_groups_match_torch(
    ours_cls: type[Optimizer], torch_cls: str, kwargs: dict[str, Any], spec: Any
) -> None:
    _run_against_torch(ours_cls, getattr(torch.optim, torch_cls), kwargs, spec)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_param_without_grad_is_untouched(cls: type[Optimizer]) -> None:
    kwargs = {"lr": 0.1, "momentum": 0.9} if cls is SGD else {"lr": 0.1}
    torch_cls = getattr(torch.optim, cls.__name__)
    before = _initial_arrays()[1].copy()
    ours = _run_against_torch(cls, torch_cls, kwargs, no_grad=(1,))
    np.testing.assert_array_equal(ours[1].data, before)

    # requires_grad=False is skipped even when a gradient is present.
    frozen = Parameter(np.ones(3), requires_grad=False)
    frozen.grad = np.ones(3)
    live = Parameter(np.ones(3))
    live.grad = np.ones(3)
    opt = cls([frozen, live], **kwargs)
    opt.step()
    np.testing.assert_array_equal(frozen.data, np.ones(3))
    assert not np.array_equal(live.data, np.ones(3))
    assert frozen not in opt.state and live in opt.state


def test_updates_are_in_place_and_state_matches_torch_layout() -> None:
    p = Parameter(np.arange(6.0).reshape(2, 3))
    data, view = p.data, p.data[0]
    p.grad = np.ones((2, 3))
    opt = Adam([p], lr=0.5)
    opt.step()
    opt.step()
    assert p.data is data
    np.testing.assert_array_equal(view, p.data[0])
    assert opt.state[p]["step"] == 2 and isinstance(opt.state[p]["step"], int)

    t = torch.zeros((2, 3), dtype=torch.float64, requires_grad=True)
    t.grad = torch.ones((2, 3), dtype=torch.float64)
    for ours, theirs in [
        (Adam([p], amsgrad=True), torch.optim.Adam([t], amsgrad=True)),
        (SGD([p], momentum=0.9), torch.optim.SGD([t], momentum=0.9)),
        (SGD([p]), torch.optim.SGD([t])),
    ]:
        ours.step()
        theirs.step()
        sd, tsd = ours.state_dict(), theirs.state_dict()
        assert {k: set(v) for k, v in sd["state"].items()} == {
            k: set(v) for k, v in tsd["state"].items()
        }
        assert [g["params"] for g in sd["param_groups"]] == [
            g["params"] for g in tsd["param_groups"]
        ]


def test_float32_params_keep_dtype() -> None:
    p = Parameter(np.ones(4, dtype=np.float32))
    p.grad = np.full(4, 0.5, dtype=np.float32)
    for opt in (SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1), AdamW([p], amsgrad=True)):
        opt.step()
        opt.step()
        assert p.data.dtype == np.float32
        assert all(
            v.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, np.ndarray)
        )


def test_pure_update_functions_do_not_mutate_inputs() -> None:
    param, grad = np.ones(3), np.full(3, 0.5)
    state = {"momentum_buffer": np.full(3, 0.25)}
    new_param, new_state = sgd_update(param, grad, state, lr=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_array_equal(param, np.ones(3))
    np.testing.assert_array_equal(state["momentum_buffer"], np.full(3, 0.25))
    np.testing.assert_allclose(new_state["momentum_buffer"], 0.9 * 0.25 + 0.5)
    np.testing.assert_allclose(new_param, 1 - 0.1 * (0.5 + 0.9 * (0.9 * 0.25 + 0.5)))

    new_param, new_state = adam_update(param, grad, {}, lr=0.1)
    np.testing.assert_array_equal(param, np.ones(3))
    assert new_state["step"] == 1
    # First Adam step moves every coordinate by ~lr * sign(grad).
    np.testing.assert_allclose(new_param, 1 - 0.1, atol=1e-6)


def test_zero_grad() -> None:
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    a.grad = np.ones(2)
    grad_array = a.grad
    opt = SGD([a, b], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad_array
    np.testing.assert_array_equal(grad_array, 0)
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_closure_and_repr() -> None:
    p = Parameter(np.ones(2))
    opt = SGD([p], lr=0.1)

    def closure() -> float:
        p.grad = np.ones(2)
        return 3.0

    assert opt.step(closure) == 3.0
    np.testing.assert_allclose(p.data, 0.9)
    assert "SGD (" in repr(opt) and "lr: 0.1" in repr(opt)


def test_add_param_group_fills_defaults() -> None:
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.9


# --------------------------------------------------------------- state dicts
def _split_for_npz(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray by a reference into ``arrays`` (json for the rest)."""
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        return {str(k): _split_for_npz(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_split_for_npz(v, arrays) for v in obj]
    assert obj is None or isinstance(obj, (bool, int, float, str)), type(obj)
    return obj


def _join_from_npz(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return arrays[obj["__ndarray__"]]
        return {k: _join_from_npz(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_from_npz(v, arrays) for v in obj]
    return obj


def _save_load_without_pickle(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Round trip through np.savez + json, refusing pickle on load."""
    arrays: dict[str, np.ndarray] = {}
    text = json.dumps(_split_for_npz(state_dict, arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded_arrays = {k: npz[k] for k in npz.files}
    return _join_from_npz(json.loads(text), loaded_arrays)


def _to_lists(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: _to_lists(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_lists(v) for v in obj]
    return obj


@pytest.mark.parametrize(
    ("cls", "kwargs", "spec"),
    [
        (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, None),
        (SGD, {"lr": 0.1}, [{"idx": [0, 1]}, {"idx": [2, 3], "lr": 0.2, "momentum": 0.5}]),
        (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}, None),
        (AdamW, {"lr": 0.01, "betas": (0.8, 0.9)}, [{"idx": [3]}, {"idx": [0, 1, 2], "lr": 0.1}]),
    ],
    ids=["sgd_nesterov", "sgd_groups", "adam_amsgrad", "adamw_groups"],
)
def test_state_dict_round_trip(cls: type[Optimizer], kwargs: dict[str, Any], spec: Any) -> None:
    grads = _grad_sequence()

    def run(params: list[Parameter], opt: Optimizer, steps: list[list[np.ndarray]]) -> None:
        for step_grads in steps:
            for p, g in zip(params, step_grads):
                p.grad = g.copy()
            opt.step()

    reference = [Parameter(a) for a in _initial_arrays()]
    run(reference, cls(_group(reference, spec), **kwargs), grads)

    first = [Parameter(a) for a in _initial_arrays()]
    opt = cls(_group(first, spec), **kwargs)
    sched.StepLR(opt, step_size=100)  # adds 'initial_lr' to the groups
    run(first, opt, grads[:5])
    saved = opt.state_dict()
    json.dumps(_to_lists(saved))  # plain data only: no pickle needed
    restored = _save_load_without_pickle(saved)

    resumed = [Parameter(p.data.copy()) for p in first]
    # Fresh optimizer with different hyperparameters: everything comes from the state dict.
    fresh_kwargs = {**kwargs, "lr": 123.0}
    new_opt = cls(_group(resumed, spec), **fresh_kwargs)
    new_opt.load_state_dict(restored)
    assert new_opt.param_groups[0]["initial_lr"] == opt.param_groups[0]["initial_lr"]
    run(resumed, new_opt, grads[5:])
    for p, q in zip(resumed, reference):
        np.testing.assert_array_equal(p.data, q.data)

    # The saved dict is a snapshot: stepping the original does not change it.
    before = _to_lists(saved)
    run(first, opt, grads[5:])
    assert _to_lists(saved) == before


def test_load_state_dict_accepts_lists_from_json_keys() -> None:
    p = Parameter(np.ones(3))
    p.grad = np.ones(3)
    opt = Adam([p], betas=(0.5, 0.6))
    opt.step()
    sd = json.loads(json.dumps(_to_lists(opt.state_dict())))  # int keys -> str, tuple -> list
    sd["state"] = {
        k: {n: np.asarray(v) if isinstance(v, list) else v for n, v in s.items()}
        for k, s in sd["state"].items()
    }
    opt2 = Adam([Parameter(np.ones(3))])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.5, 0.6)
    assert opt2.state_dict()["state"][0]["step"] == 1


def test_load_state_dict_errors() -> None:
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = np.ones(2), np.ones(3)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="has 2 parameters, the optimizer's group has 1"):
        SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="1 parameter groups, the optimizer has 2"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="has shape"):
        SGD([b, a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="exactly the keys"):
        opt.load_state_dict({"state": {}})


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda p: SGD([p], lr=-0.1),
            ValueError,
            r"SGD: invalid learning rate -0\.1 \(must be >= 0\)",
        ),
        (lambda p: SGD([p], lr=float("nan")), ValueError, "SGD: invalid learning rate nan"),
        (lambda p: SGD([p], lr="0.1"), TypeError, "SGD: learning rate must be a real number"),
        (lambda p: SGD([p], momentum=-0.5), ValueError, "SGD: invalid momentum value -0.5"),
        (lambda p: SGD([p], weight_decay=-1), ValueError, "SGD: invalid weight_decay value -1"),
        (
            lambda p: SGD([p], nesterov=True),
            ValueError,
            "SGD: Nesterov momentum requires a momentum > 0",
        ),
        (
            lambda p: SGD([p], momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            "zero dampening",
        ),
        (
            lambda p: SGD([{"params": [p], "lr": -1.0}], lr=0.1),
            ValueError,
            "SGD: invalid learning rate -1.0",
        ),
        (lambda p: Adam([p], lr=-1e-3), ValueError, "Adam: invalid learning rate"),
        (lambda p: Adam([p], eps=-1.0), ValueError, "Adam: invalid epsilon value -1.0"),
        (
            lambda p: Adam([p], betas=(1.0, 0.999)),
            ValueError,
            r"Adam: invalid beta parameter at index 0: 1\.0",
        ),
        (lambda p: Adam([p], betas=(0.9, -0.1)), ValueError, "index 1"),
        (lambda p: Adam([p], betas=(0.9,)), ValueError, "betas must be a pair"),
        (lambda p: AdamW([p], weight_decay=-0.01), ValueError, "AdamW: invalid weight_decay value"),
        (lambda p: SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: SGD(p, lr=0.1), TypeError, "single Parameter; wrap it in a list"),
        (lambda p: SGD({p}, lr=0.1), TypeError, "ordered iterable"),
        (lambda p: SGD([p, np.ones(2)], lr=0.1), TypeError, r"params\[1\] is ndarray"),
        (
            lambda p: SGD([{"params": [p]}, {"params": [p]}]),
            ValueError,
            "more than one parameter group",
        ),
        (lambda p: SGD([p, p]), ValueError, "same parameter more than once"),
        (lambda p: SGD([{"lr": 0.1}]), ValueError, "must have a 'params' entry"),
    ],
)
def test_optimizer_validation(make: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(Parameter(np.ones(2)))


def test_grad_shape_mismatch_is_reported() -> None:
    p = Parameter(np.ones(2))
    p.grad = np.ones(3)
    with pytest.raises(
        ValueError, match=r"SGD: gradient of shape \(3,\) does not match parameter of shape \(2,\)"
    ):
        SGD([p], lr=0.1).step()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda o: sched.StepLR(o, step_size=0), "StepLR: step_size must be an integer >= 1"),
        (lambda o: sched.MultiStepLR(o, milestones=[3, -1]), "MultiStepLR: each milestone"),
        (lambda o: sched.CosineAnnealingLR(o, T_max=0), "T_max must be an integer >= 1"),
        (lambda o: sched.LinearLR(o, start_factor=0.0), r"start_factor must be in \(0, 1\]"),
        (lambda o: sched.LinearLR(o, end_factor=1.5), r"end_factor must be in \[0, 1\]"),
        (
            lambda o: sched.LambdaLR(o, [lambda e: 1.0, lambda e: 1.0]),
            "expected 1 lr_lambdas, got 2",
        ),
        (lambda o: sched.ReduceLROnPlateau(o, factor=1.0), r"factor must be in \[0, 1\)"),
        (lambda o: sched.ReduceLROnPlateau(o, mode="maximum"), "mode must be 'min' or 'max'"),
        (lambda o: sched.ReduceLROnPlateau(o, threshold_mode="relative"), "threshold_mode must be"),
        (lambda o: sched.StepLR(object(), step_size=1), "expected a cnnlab.optim.Optimizer"),
    ],
)
def test_scheduler_validation(make: Any, match: str) -> None:
    opt = SGD([Parameter(np.ones(2))], lr=0.1)
    with pytest.raises((ValueError, TypeError), match=match):
        make(opt)


def test_resuming_scheduler_requires_initial_lr() -> None:
    opt = SGD([Parameter(np.ones(2))], lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(opt, step_size=3, last_epoch=4)


# --------------------------------------------------------------- schedulers
def _two_group_optimizers() -> tuple[Optimizer, Any]:
    ours = SGD(
        [{"params": [Parameter(np.ones(2))]}, {"params": [Parameter(np.ones(2))], "lr": 0.05}],
        lr=0.1,
    )
    theirs = torch.optim.SGD(
        [
            {"params": [torch.ones(2, requires_grad=True)]},
            {"params": [torch.ones(2, requires_grad=True)], "lr": 0.05},
        ],
        lr=0.1,
    )
    return ours, theirs


SCHEDULER_CASES = {
    "step": ("StepLR", {"step_size": 7, "gamma": 0.5}),
    "step_default_gamma": ("StepLR", {"step_size": 4}),
    "multistep": ("MultiStepLR", {"milestones": [3, 8, 8, 20], "gamma": 0.3}),
    "exponential": ("ExponentialLR", {"gamma": 0.9}),
    "linear": ("LinearLR", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 8}),
    "linear_decay": ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 12}),
    "cosine": ("CosineAnnealingLR", {"T_max": 30}),
    "cosine_wraps": ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}),
    "lambda": ("LambdaLR", {"lr_lambda": lambda epoch: 0.95**epoch / (1 + epoch % 3)}),
    "lambda_per_group": (
        "LambdaLR",
        {"lr_lambda": [lambda e: 1.0 / (e + 1), lambda e: min(1.0, (e + 1) / 5)]},
    ),
}


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULER_CASES.values(), ids=SCHEDULER_CASES.keys())
def test_scheduler_matches_torch(name: str, kwargs: dict[str, Any]) -> None:
    opt, topt = _two_group_optimizers()
    ours = getattr(sched, name)(opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    assert [g["initial_lr"] for g in opt.param_groups] == [
        g["initial_lr"] for g in topt.param_groups
    ]
    for epoch in range(31):
        if epoch:
            opt.step()
            topt.step()
            ours.step()
            theirs.step()
        assert ours.last_epoch == theirs.last_epoch == epoch
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=0, atol=TOL)
        np.testing.assert_allclose(
            [g["lr"] for g in opt.param_groups],
            [g["lr"] for g in topt.param_groups],
            rtol=0,
            atol=TOL,
        )


PLATEAU_METRICS = [
    1.0,
    0.9,
    0.85,
    0.86,
    0.85,
    0.849999,
    0.84,
    0.84,
    0.84,
    0.84,
    0.7,
    0.7,
    0.71,
    0.72,
    0.69,
    0.69,
    0.69,
    0.69,
    0.69,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
    0.5,
]

PLATEAU_CASES = {
    "default": {},
    "min_rel": {"patience": 2, "factor": 0.5},
    "min_abs_cooldown": {
        "patience": 1,
        "threshold": 0.02,
        "threshold_mode": "abs",
        "cooldown": 2,
        "factor": 0.3,
    },
    "max_rel": {"mode": "max", "patience": 1, "factor": 0.7},
    "max_abs_min_lr": {
        "mode": "max",
        "patience": 0,
        "threshold_mode": "abs",
        "min_lr": [0.02, 0.001],
        "factor": 0.5,
    },
    "min_lr_scalar": {"patience": 0, "factor": 0.2, "min_lr": 0.004},
}


@pytest.mark.parametrize("kwargs", PLATEAU_CASES.values(), ids=PLATEAU_CASES.keys())
def test_reduce_lr_on_plateau_matches_torch(kwargs: dict[str, Any]) -> None:
    opt, topt = _two_group_optimizers()
    ours = sched.ReduceLROnPlateau(opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    assert "initial_lr" not in opt.param_groups[0]
    for metric in PLATEAU_METRICS:
        ours.step(metric)
        theirs.step(metric)
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=0, atol=TOL)
        assert ours.num_bad_epochs == theirs.num_bad_epochs
        assert ours.cooldown_counter == theirs.cooldown_counter
        assert ours.best == theirs.best


def test_reduce_lr_on_plateau_state_dict_round_trip() -> None:
    opt, _ = _two_group_optimizers()
    ours = sched.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for metric in PLATEAU_METRICS[:12]:
        ours.step(metric)
    sd = json.loads(json.dumps(ours.state_dict()))
    opt2, _ = _two_group_optimizers()
    opt2.load_state_dict(opt.state_dict())
    resumed = sched.ReduceLROnPlateau(opt2)
    resumed.load_state_dict(sd)
    for metric in PLATEAU_METRICS[12:]:
        ours.step(metric)
        resumed.step(np.float64(metric))
        assert resumed.get_last_lr() == ours.get_last_lr()


@pytest.mark.parametrize("name", ["step", "multistep", "cosine_wraps", "linear", "lambda"])
def test_scheduler_state_dict_round_trip(name: str) -> None:
    cls_name, kwargs = SCHEDULER_CASES[name]
    cls = getattr(sched, cls_name)
    opt, _ = _two_group_optimizers()
    full = cls(opt, **kwargs)
    expected = []
    for _ in range(20):
        full.step()
        expected.append(full.get_last_lr())

    opt, _ = _two_group_optimizers()
    first = cls(opt, **kwargs)
    for _ in range(8):
        first.step()
    sched_state = json.loads(json.dumps(first.state_dict()))
    opt_state = opt.state_dict()

    opt2, _ = _two_group_optimizers()
    second = cls(opt2, **kwargs)  # create the scheduler first, then load both states
    opt2.load_state_dict(opt_state)
    second.load_state_dict(sched_state)
    got = expected[:8]
    for _ in range(12):
        second.step()
        got.append(second.get_last_lr())
    assert got == expected


def test_scheduled_sgd_matches_torch() -> None:
    arrays = _initial_arrays()
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = SGD(ours, lr=0.1, momentum=0.9, nesterov=True)
    topt = torch.optim.SGD(theirs, lr=0.1, momentum=0.9, nesterov=True)
    warm, twarm = (
        sched.LinearLR(opt, 0.1, total_iters=3),
        torch.optim.lr_scheduler.LinearLR(topt, 0.1, total_iters=3),
    )
    cos = sched.CosineAnnealingLR(opt, T_max=6, eta_min=0.01)
    tcos = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=6, eta_min=0.01)
    for step, grads in enumerate(_grad_sequence(), start=1):
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
        for s in (warm, cos, twarm, tcos):
            s.step()
        _assert_close(ours, theirs, step)
        assert math.isclose(
            opt.param_groups[0]["lr"], topt.param_groups[0]["lr"], rel_tol=0, abs_tol=TOL
        )


def test_public_api() -> None:
    assert optim.lr_scheduler is sched
    for name in ["Optimizer", "SGD", "Adam", "AdamW", "sgd_update", "adam_update", "lr_scheduler"]:
        assert name in optim.__all__ and hasattr(optim, name)
    for name in [
        "LRScheduler",
        "StepLR",
        "MultiStepLR",
        "CosineAnnealingLR",
        "ExponentialLR",
        "LinearLR",
        "LambdaLR",
        "ReduceLROnPlateau",
    ]:
        assert issubclass(getattr(sched, name), sched.LRScheduler)
