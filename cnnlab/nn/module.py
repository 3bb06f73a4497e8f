"""``Module``: the base class of layers and models, as in PyTorch.

A Module owns three kinds of attributes, registered on assignment:
parameters (:class:`Parameter`, learnable), buffers (ndarrays such as
BatchNorm's running statistics, saved but not learned) and submodules.
``state_dict()`` flattens parameters and buffers into ``{"conv1.weight": array}``
with PyTorch's dotted names, so weights map one to one.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from cnnlab.autograd.device import as_dtype, check_device, parse_to_args
from cnnlab.autograd.tensor import Tensor
from cnnlab.nn.parameter import Parameter


class Module:
    """Base class for every layer and model.

    Subclasses call ``super().__init__()`` first, assign parameters, buffers
    (via :meth:`register_buffer`) and submodules as attributes, and implement
    ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError("call Module.__init__() before assigning attributes")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = None if value is None else np.asarray(_to_numpy(value))
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, value: np.ndarray | None, persistent: bool = True) -> None:
        """A non-learned array (e.g. running statistics), saved in the state dict
        unless ``persistent=False``."""
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)
        skipped = self.__dict__.setdefault("_non_persistent", set())
        if persistent:
            skipped.discard(name)
        else:
            skipped.add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = None if value is None else np.asarray(_to_numpy(value))

    def add_module(self, name: str, module: Module | None) -> None:
        if module is None:
            self._modules[name] = None
        else:
            setattr(self, name, module)

    # ------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_prefix, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    def buffers(self) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # ------------------------------------------------------- transfer learning
    def freeze(self, *targets: str | Module | Parameter) -> Module:
        """Stop training some parameters: set ``requires_grad = False`` (the notes'
        "freeze the early layers" when fine-tuning, 001/002).

        Parameters
        ----------
        *targets : str, Module or Parameter
            Dotted names of submodules (``"features"``, ``"layer1.0"``) or of single
            parameters (``"fc.bias"``), or submodule / parameter objects of this
            module.  No target freezes every parameter of the module.

        Returns
        -------
        Module
            ``self``, so ``model.freeze().unfreeze("fc")`` trains only ``fc``.

        Raises
        ------
        ValueError
            For a name that is neither a submodule nor a parameter (the message
            lists the top-level names), or an object that is not part of this module.

        Notes
        -----
        The engine computes no gradient for a leaf with ``requires_grad=False``, so
        its ``.grad`` stays ``None`` and every optimizer skips it, even one built
        over all of ``model.parameters()``; an old gradient is cleared here, so
        neither a step nor ``clip_grad_norm_`` sees it.  Buffers are not
        parameters: BatchNorm's running mean and variance still update in
        training mode.  To fix them too, put those layers in eval mode after
        ``model.train()`` (``model.get_submodule("features").eval()``).
        """
        for p in self._select_parameters("freeze", targets):
            p.requires_grad = False
            p.grad = None
        return self

    def unfreeze(self, *targets: str | Module | Parameter) -> Module:
        """Make parameters trainable again (``requires_grad = True``); the targets
        are as in :meth:`freeze`, none meaning the whole module.  Returns ``self``."""
        for p in self._select_parameters("unfreeze", targets):
            p.requires_grad = True
        return self

    def _select_parameters(self, caller: str, targets: tuple[Any, ...]) -> list[Parameter]:
        """The parameters named by :meth:`freeze`'s targets, without duplicates."""
        if not targets:
            return list(self.parameters())
        selected: dict[int, Parameter] = {}
        where = f"{type(self).__name__}.{caller}"
        for target in targets:
            if isinstance(target, Parameter):
                if not any(p is target for p in self.parameters()):
                    raise ValueError(f"{where}: the given Parameter {target.shape} is not a "
                                     f"parameter of this {type(self).__name__}")
                params = [target]
            elif isinstance(target, Module):
                if not any(m is target for m in self.modules()):
                    raise ValueError(f"{where}: the given {type(target).__name__} is not a "
                                     f"submodule of this {type(self).__name__}")
                params = list(target.parameters())
            elif isinstance(target, str):
                params = self._parameters_at(where, target)
            else:
                raise TypeError(f"{where}: targets must be dotted names, Modules or Parameters, "
                                f"got {type(target).__name__}")
            for p in params:
                selected[id(p)] = p
        return list(selected.values())

    def _parameters_at(self, where: str, name: str) -> list[Parameter]:
        """The parameters of submodule ``name``, or the single parameter ``name``."""
        try:
            return list(self.get_submodule(name).parameters())
        except AttributeError:
            pass
        owner_path, _, leaf = name.rpartition(".")
        try:
            owner = self.get_submodule(owner_path)
        except AttributeError:
            owner = None
        if owner is not None and owner._parameters.get(leaf) is not None:
            return [owner._parameters[leaf]]
        top = [k for k, v in self._modules.items() if v is not None]
        top += [k for k, v in self._parameters.items() if v is not None]
        raise ValueError(f"{where}: no submodule or parameter named {name!r}; top-level names: "
                         f"{', '.join(top) or 'none'}")

    # ----------------------------------------------------------------- dtype
    def to(self, *args: Any, **kwargs: Any) -> Module:
        """PyTorch's ``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or
        ``to(tensor)``: cast every floating parameter and buffer to the dtype in
        place (``model.to(cnnlab.float64)``; 'float32'/'float64' work too) and
        return the module.  The device must be the CPU (``"cpu"``,
        ``cnnlab.device("cpu")``); ``"cuda"`` raises ``DeviceError``, which says that
        cnnlab runs on the CPU."""
        dtype, _ = parse_to_args(args, kwargs, Tensor, "Module")
        if dtype is None:
            return self
        dt = as_dtype(dtype)
        if not np.issubdtype(dt, np.floating):
            raise TypeError(f"Module.to only accepts floating point dtypes, got {dt}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype != dt:
                    p.data = p.data.astype(dt)
                    if p.grad is not None:
                        p.grad = p.grad.astype(dt)
            for name, b in m._buffers.items():
                if b is not None and np.issubdtype(b.dtype, np.floating) and b.dtype != dt:
                    m._buffers[name] = b.astype(dt)
        return self

    def cpu(self) -> Module:
        return self

    def cuda(self, device: Any = None) -> Module:
        check_device("cuda" if device is None else device)   # always refused
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by dotted name, as copies."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    out[f"{prefix}.{name}" if prefix else name] = p.data.copy()
            for name, b in m._buffers.items():
                if b is not None and name not in m.__dict__.get("_non_persistent", ()):
                    out[f"{prefix}.{name}" if prefix else name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True
                        ) -> tuple[list[str], list[str]]:
        """Copy arrays into parameters and buffers by name.

        Every shape is checked before anything is written, so a mismatched
        state dict leaves the model untouched.  Values may be ndarrays,
        Tensors or anything with ``.numpy()`` (a torch tensor on the CPU).
        Returns ``(missing_keys, unexpected_keys)``; with ``strict`` either
        being non-empty is an error.
        """
        targets: dict[str, tuple[Module, str, bool]] = {}
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    targets[f"{prefix}.{name}" if prefix else name] = (m, name, True)
            for name, b in m._buffers.items():
                if b is not None and name not in m.__dict__.get("_non_persistent", ()):
                    targets[f"{prefix}.{name}" if prefix else name] = (m, name, False)
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for key, (m, name, is_param) in targets.items():
            if key not in state_dict:
                continue
            value = _to_numpy(state_dict[key])
            current = m._parameters[name].data if is_param else m._buffers[name]
            if getattr(value, "dtype", np.dtype(object)).kind not in "biuf":
                raise TypeError(f"load_state_dict: {key} holds {getattr(value, 'dtype', type(value))} "
                                f"values; expected numbers ({current.dtype})")
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: {key} has shape {value.shape} in the state "
                                 f"dict but {current.shape} in the model")
            staged.append((m, name, is_param, value.astype(current.dtype, copy=True)))
        for m, name, is_param, value in staged:
            if is_param:
                m._parameters[name].data[...] = value
            else:
                m._buffers[name][...] = value
        return missing, unexpected

    # ------------------------------------------------------------------- call
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.forward(*args, **kwargs)
        for hook in tuple(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward (PyTorch's
        signature); a non-None return value replaces the output.  Used by
        ``cnnlab.summary`` and the visualisation tools to see inside a model.
        Returns a handle whose ``remove()`` unregisters the hook."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` (``"features.3"``), as PyTorch's;
        ``""`` is the module itself.  Raises ``AttributeError`` naming the missing part
        and the names that exist there."""
        if target == "":
            return self
        mod: Module = self
        walked: list[str] = []
        for part in target.split("."):
            children = mod._modules
            if part not in children or children[part] is None:
                where = ".".join(walked) or type(self).__name__
                names = ", ".join(k for k, v in children.items() if v is not None) or "none"
                raise AttributeError(
                    f"{type(self).__name__} has no submodule {target!r}: {where!r} has no "
                    f"child {part!r} (children: {names})")
            mod = children[part]
            walked.append(part)
        return mod

    # ------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


class RemovableHandle:
    """Returned by :meth:`Module.register_forward_hook`; ``remove()`` unregisters."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):   # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)
