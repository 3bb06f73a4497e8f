"""The :class:`Optimizer` base class shared by every optimizer in :mod:`cnnlab.optim`.

An optimizer owns a list of *parameter groups* (``param_groups``) and a
per-parameter ``state`` dictionary.  Each group is a dict holding a ``'params'``
list plus that group's hyperparameters (``'lr'``, ``'momentum'``, ...); a
hyperparameter missing from a group falls back to the optimizer's
``defaults``.  This is exactly the layout of :class:`torch.optim.Optimizer`, so
learning-rate schedulers and training loops written for torch work unchanged.

Optimizers duck-type on parameters: anything with a floating point
``.data`` ndarray, a ``.grad`` (ndarray or ``None``) and a ``.requires_grad``
flag can be optimized.  Updates are written into ``.data`` **in place**, so
views and aliases of a parameter's array stay valid.

Subclasses implement :meth:`Optimizer.step` (usually as a loop that calls a pure
update function on ndarrays) and :meth:`Optimizer._prepare_group` (validation of
one group's hyperparameters).

``state_dict()`` uses torch's format::

    {'state': {0: {'momentum_buffer': ndarray}, ...},
     'param_groups': [{'lr': 0.1, ..., 'params': [0, 1]}, ...]}

where parameters are replaced by their position in the concatenation of all
groups' ``'params'``.  Every value is an ndarray, a Python scalar (number,
bool, str, ``None``) or a list/dict of those, so a state dict can be written
with ``np.savez`` + ``json`` and never needs pickle.
"""

from __future__ import annotations

import copy
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np

__all__ = ["Optimizer", "ParameterLike", "ParamsT", "StateDict"]


class ParameterLike(Protocol):
    """What an optimizer needs from a parameter (e.g. ``cnnlab.nn.Parameter``)."""

    data: np.ndarray
    grad: np.ndarray | None
    requires_grad: bool


ParamsT = Iterable[ParameterLike] | Iterable[dict[str, Any]]
StateDict = dict[str, Any]


def _is_parameter_like(obj: Any) -> bool:
    """True when ``obj`` has an ndarray ``.data`` plus ``.grad``/``.requires_grad``."""
    return (
        isinstance(getattr(obj, "data", None), np.ndarray)
        and hasattr(obj, "grad")
        and hasattr(obj, "requires_grad")
    )


def _to_plain(value: Any, where: str) -> Any:
    """Copy ``value`` into ndarrays / Python scalars / lists / dicts (no pickle needed).

    Parameters
    ----------
    value : Any
        A state or hyperparameter value.
    where : str
        Description of the value's location, used in the error message.

    Returns
    -------
    Any
        A deep copy made only of ndarrays, numbers, bools, strings, ``None``,
        lists and dicts.  Tuples become lists and NumPy scalars become Python
        scalars.

    Raises
    ------
    TypeError
        If ``value`` contains anything else (e.g. a function or a Parameter).
    """
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, numbers.Number, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _to_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"cannot put {where} of type {type(value).__name__} in a state_dict: only "
        "ndarrays, numbers, bools, strings, None, lists and dicts are allowed"
    )


def check_non_negative(owner: str, name: str, value: Any) -> None:
    """Raise unless ``value`` is a real number ``>= 0`` (NaN is rejected too).

    Parameters
    ----------
    owner : str
        Class name used as the message prefix, e.g. ``"SGD"``.
    name : str
        Human readable hyperparameter name, e.g. ``"learning rate"``.
    value : Any
        The value to check.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If ``value`` is negative or NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{owner}: invalid {name} {value} (must be >= 0)")


def check_cpu_only_options(owner: str, group: dict[str, Any]) -> None:
    """Refuse PyTorch's implementation switches that have no meaning here.

    ``foreach`` (batched CUDA kernels) is accepted and ignored: there is one
    implementation.  ``capturable`` (CUDA graphs), ``fused`` (fused CUDA/CPU
    kernels) and ``differentiable`` (autograd through the step) must be false.
    """
    for key in ("capturable", "fused", "differentiable"):
        if group.get(key):
            raise ValueError(
                f"{owner}: {key}=True is not supported (cnnlab runs on the CPU with one "
                f"implementation of each optimizer); leave {key} at its default")


class Optimizer:
    """Base class for all optimizers, with torch's ``param_groups``/``state`` layout.

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        The parameters to optimize (e.g. ``model.parameters()``), or a list of
        dicts each with a ``'params'`` entry plus per-group hyperparameters that
        override ``defaults``.
    defaults : dict
        Default hyperparameters, used for any key a group does not specify.

    Attributes
    ----------
    defaults : dict
        The default hyperparameters.
    param_groups : list of dict
        One dict per group: ``'params'`` (list of parameters) and every
        hyperparameter.  Learning-rate schedulers edit ``group['lr']``.
    state : collections.defaultdict
        Per-parameter optimizer state (momentum buffers, moment estimates,
        step counts), keyed by the parameter object itself.

    Raises
    ------
    TypeError
        If ``params`` is a single parameter, a set or a dict, or contains
        something that is not parameter-like.
    ValueError
        If ``params`` is empty, a parameter appears twice, or a hyperparameter
        is invalid.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if _is_parameter_like(params):
            raise TypeError(
                f"{name}: params should be an iterable of parameters or of dicts, "
                f"but got a single {type(params).__name__}; wrap it in a list"
            )
        if isinstance(params, (dict, set, frozenset)):
            raise TypeError(
                f"{name}: params should be an ordered iterable (e.g. a list) of parameters "
                f"or of dicts, but got a {type(params).__name__}"
            )
        self.defaults: dict[str, Any] = dict(defaults)
        self._prepare_group(self.defaults)
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"{name}: optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ------------------------------------------------------------------ groups
    def _prepare_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalise in place) one group's hyperparameters.

        Called on ``defaults`` and on every group added or loaded.  The base
        implementation accepts anything; subclasses raise ``ValueError`` /
        ``TypeError`` with a message naming the optimizer.

        Parameters
        ----------
        group : dict
            A parameter group (or the defaults dict, which has no ``'params'``).
        """

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group, filling missing hyperparameters from ``defaults``.

        Useful for fine-tuning: frozen layers can be made trainable and handed
        to the optimizer later.

        Parameters
        ----------
        param_group : dict
            Must contain ``'params'`` (a parameter or an iterable of them); other
            keys override the defaults for this group.

        Raises
        ------
        TypeError
            If ``param_group`` is not a dict or holds non-parameters.
        ValueError
            If ``'params'`` is missing, a parameter is repeated within the group
            or already belongs to another group, or a hyperparameter is invalid.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{name}: param_group must be a dict, but got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(
                f"{name}: param_group must have a 'params' entry, got keys {sorted(param_group)}"
            )
        group = dict(param_group)
        params = group["params"]
        if _is_parameter_like(params):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{name}: optimizer parameters need to be organized in ordered collections, "
                "but the ordering of parameters in sets changes between runs; use a list instead"
            )
        params = list(params)
        for i, p in enumerate(params):
            if not _is_parameter_like(p):
                raise TypeError(
                    f"{name}: optimizer can only optimize parameters (objects with an ndarray "
                    f"'.data', '.grad' and '.requires_grad'), but params[{i}] is {type(p).__name__}"
                )
            if not np.issubdtype(p.data.dtype, np.floating):
                raise TypeError(
                    f"{name}: optimizer can only optimize floating point parameters, "
                    f"but params[{i}] has dtype {p.data.dtype}"
                )
            if getattr(p, "is_leaf", True) is False:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (params[{i}])")
        group["params"] = params

        for key, default in self.defaults.items():
            group.setdefault(key, copy.deepcopy(default))
        self._prepare_group(group)

        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(
                f"{name}: a parameter group contains the same parameter more than once"
            )
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if not existing.isdisjoint(ids):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -------------------------------------------------------------- gradients
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters.

        Parameters
        ----------
        set_to_none : bool, default True
            Set ``.grad`` to ``None`` (cheaper; such parameters are then skipped
            by :meth:`step`) instead of filling the existing array with zeros in
            place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step (implemented by subclasses).

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss; called (with gradient
            recording enabled) before the update.

        Returns
        -------
        Any
            The closure's loss, or ``None`` without a closure.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def _evaluate_closure(self, closure: Callable[[], Any] | None) -> Any:
        """Call ``closure`` with autograd recording enabled (``None`` -> ``None``)."""
        if closure is None:
            return None
        from cnnlab.autograd.tensor import enable_grad

        with enable_grad():
            return closure()

    def _params_to_update(self, group: dict[str, Any]) -> list[ParameterLike]:
        """The parameters of ``group`` that step() updates: ``requires_grad`` and a grad."""
        name = type(self).__name__
        selected = []
        for p in group["params"]:
            if p.grad is None or not p.requires_grad:
                continue
            if np.shape(p.grad) != p.data.shape:
                raise ValueError(
                    f"{name}: gradient of shape {np.shape(p.grad)} does not match "
                    f"parameter of shape {p.data.shape}"
                )
            selected.append(p)
        return selected

    def _update_group(self, group: dict[str, Any], update: Callable[..., Any],
                      hyper: dict[str, Any]) -> None:
        """Apply a pure ``update(param, grad, state, **hyper) -> (new_param, new_state)``
        to every parameter of ``group`` that has a gradient, in place (an empty
        ``new_state`` leaves the parameter without a state entry)."""
        for p in self._params_to_update(group):
            new_param, new_state = update(p.data, p.grad, self.state.get(p, {}), **hyper)
            p.data[...] = new_param
            if new_state:
                self.state[p].update(new_state)

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> StateDict:
        """Return the optimizer state in torch's format, made of plain values only.

        Returns
        -------
        dict
            ``{'state': {index: {name: value}}, 'param_groups': [group, ...]}``
            where each group's ``'params'`` is a list of integer indices into
            the concatenation of all groups' parameters.  Arrays are copies, so
            the result does not change when the optimizer keeps stepping.
        """
        index_of: dict[int, int] = {}
        groups = []
        for g, group in enumerate(self.param_groups):
            packed = {
                key: _to_plain(value, f"param_groups[{g}][{key!r}]")
                for key, value in group.items()
                if key != "params"
            }
            indices = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                indices.append(index_of[id(p)])
            packed["params"] = indices
            groups.append(packed)
        state = {}
        for p, p_state in self.state.items():
            if id(p) not in index_of:
                raise ValueError(
                    f"{type(self).__name__}: state holds a parameter that is in no parameter group"
                )
            i = index_of[id(p)]
            state[i] = _to_plain(p_state, f"state[{i}]")
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state produced by :meth:`state_dict` (possibly of another instance).

        Parameters are matched by position: the saved groups must have the same
        number of parameters as this optimizer's groups.  Hyperparameters
        (including ``lr`` and ``initial_lr``) are taken from the saved groups;
        arrays are copied and cast to the matching parameter's dtype.  Integer
        state keys that went through JSON (and became strings) are accepted.

        Parameters
        ----------
        state_dict : mapping
            ``{'state': ..., 'param_groups': ...}`` as returned by
            :meth:`state_dict`.

        Raises
        ------
        ValueError
            If the structure does not match this optimizer.
        """
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            keys = (
                sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            )
            raise ValueError(
                f"{name}: state_dict must have exactly the keys 'param_groups' and 'state', got {keys}"
            )
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: loaded state dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        id_map: dict[int, Any] = {}
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if "params" not in saved:
                raise ValueError(f"{name}: loaded param_groups[{g}] has no 'params' entry")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}: loaded param_groups[{g}] has {len(saved['params'])} parameters, "
                    f"the optimizer's group has {len(group['params'])}"
                )
            for index, p in zip(saved["params"], group["params"]):
                id_map[int(index)] = p

        new_state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, p_state in state_dict["state"].items():
            index = int(key)
            if index not in id_map:
                raise ValueError(
                    f"{name}: loaded state refers to parameter {key!r}, which is in no group"
                )
            p = id_map[index]
            new_state[p] = {k: self._cast_state_value(p, index, k, v) for k, v in p_state.items()}

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            for key, default in self.defaults.items():
                saved.setdefault(key, copy.deepcopy(default))
            self._prepare_group(saved)
            new_groups.append(saved)
        self.state = new_state
        self.param_groups = new_groups

    def _cast_state_value(self, param: ParameterLike, index: int, key: str, value: Any) -> Any:
        """Copy one loaded state entry, casting float arrays to the parameter's dtype."""
        if isinstance(value, np.ndarray):
            if value.ndim > 0 and value.shape != param.data.shape:
                raise ValueError(
                    f"{type(self).__name__}: loaded state[{index}][{key!r}] has shape {value.shape}, "
                    f"but the parameter has shape {param.data.shape}"
                )
            if np.issubdtype(value.dtype, np.floating):
                return value.astype(param.data.dtype, copy=True)
            return value.copy()
        return copy.deepcopy(value)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
