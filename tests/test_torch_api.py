"""PyTorch's Tensor and module-level API: each new op against torch in float64
(forward and gradient) and by cnnlab.gradcheck; semantics (named tuples, dtypes,
devices, in-place rules) compared with what torch 2.13 does."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import _torch, check_op

import cnnlab
from cnnlab import nn

torch = _torch()
rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 5))
TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0]])

OPS = {
    "view": (lambda x: x.view(x.size(0), -1), [X]),
    "view_as": (lambda x: x.view_as(x.flatten()), [X]),
    "reshape_star": (lambda x: x.reshape(4, 3, 5), [X]),
    "flatten_1": (lambda x: x.flatten(1), [X]),
    "flatten_mid": (lambda x: x.flatten(0, 1), [X]),
    "unsqueeze": (lambda x: x.unsqueeze(-1), [X]),
    "squeeze": (lambda x: x.unsqueeze(1).squeeze(1), [X]),
    "permute": (lambda x: x.permute(2, 0, 1), [X]),
    "transpose": (lambda x: x.transpose(0, 2), [X]),
    "contiguous": (lambda x: x.transpose(1, 2).contiguous(), [X]),
    "t": (lambda x: x.flatten(1).t(), [X]),
    "softmax_method": (lambda x: x.softmax(1), [X]),
    "log_softmax_method": (lambda x: x.log_softmax(dim=-1), [X]),
    "topk": (lambda x: x.topk(3, dim=1)[0], [X]),
    "topk_smallest": (lambda x: x.topk(2, largest=False).values, [X]),
    "sort": (lambda x: x.sort(dim=0)[0], [X]),
    "sort_descending": (lambda x: x.sort(descending=True).values, [X]),
    "clone_detach": (lambda x: x.clone() * 2 + x.detach() * x.clone().detach(), [X]),
    "expand": (lambda x: x[:, :1].expand(-1, 4, -1), [X]),
    "sum_dim": (lambda x: x.sum(dim=1, keepdim=True), [X]),
    "sum_dims": (lambda x: x.sum(dim=(0, 2)), [X]),
    "mean_dim": (lambda x: x.mean(dim=-1), [X]),
    "std": (lambda x: x.std(), [X]),
    "std_dim": (lambda x: x.std(dim=1, keepdim=True), [X]),
    "var_unbiased_false": (lambda x: x.var(2, unbiased=False), [X]),
    "var_correction": (lambda x: x.var(dim=0, correction=0), [X]),
    "max_dim_values": (lambda x: x.max(dim=1)[0], [X]),
    "max_dim_ties": (lambda x: x.max(1).values, [TIES]),
    "min_dim_ties": (lambda x: x.min(dim=1, keepdim=True).values, [TIES]),
    "max_all_ties": (lambda x: x.max(), [TIES]),
    "min_all": (lambda x: x.min(), [X]),
    "amax": (lambda x: x.amax(dim=(0, 1)), [X]),
    "maximum": (lambda a, b: a.max(b), [TIES, TIES[::-1].copy()]),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), [X]),
    "clamp_ties": (lambda x: x.clamp(min=2.0), [TIES]),
    "where": (lambda a, b: cnnlab.where(a > 0, a, b), [X, X[::-1].copy()]),
    "where_scalar": (lambda a: cnnlab.where(a > 0, a, 0.0), [X]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_matches_torch_in_float64(name: str) -> None:
    fn, arrays = OPS[name]
    torch_fn = fn
    if name == "where":
        torch_fn = lambda a, b: torch.where(a > 0, a, b)   # noqa: E731
    if name == "where_scalar":
        torch_fn = lambda a: torch.where(a > 0, a, 0.0)    # noqa: E731
    check_op(fn, torch_fn, arrays)


@pytest.mark.parametrize("name", ["view", "t", "softmax_method", "log_softmax_method", "topk",
                                  "sort_descending", "permute", "expand", "std_dim", "var_correction",
                                  "max_dim_values", "amax", "clamp", "min_all"])
def test_op_gradcheck(name: str) -> None:
    fn, arrays = OPS[name]
    small = [a[:2, :3, :3] if a.ndim == 3 else a for a in arrays]
    cnnlab.gradcheck(fn, [cnnlab.Tensor(np.ascontiguousarray(a), requires_grad=True)
                          for a in small])


def test_size_is_pytorchs_method() -> None:
    x = cnnlab.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) == tuple(torch.zeros(2, 3, 4).size())
    assert x.size(0) == 2 and x.size(-1) == 4 and x.numel() == 24 and x.size().numel() == 24
    assert x.dim() == 3 and x.shape == (2, 3, 4)
    with pytest.raises(IndexError, match="dimension out of range"):
        x.size(3)


def test_max_dim_returns_named_values_and_indices_like_torch() -> None:
    ours = cnnlab.tensor(TIES).max(dim=1)
    theirs = torch.tensor(TIES).max(dim=1)
    values, indices = ours
    np.testing.assert_array_equal(values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), theirs.indices.numpy())   # first max on ties
    assert indices.dtype == np.int64 and ours.indices is indices
    _, pred = cnnlab.max(cnnlab.tensor(TIES), 1)
    np.testing.assert_array_equal(pred.numpy(), torch.max(torch.tensor(TIES), 1)[1].numpy())
    # NumPy's spelling keeps returning the values alone
    np.testing.assert_array_equal(cnnlab.tensor(TIES).max(axis=1).numpy(), TIES.max(axis=1))


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin_like_torch(dim, keepdim) -> None:
    for op in ("argmax", "argmin"):
        ours = getattr(cnnlab.tensor(TIES), op)(dim=dim, keepdim=keepdim)
        theirs = getattr(torch.tensor(TIES), op)(dim=dim, keepdim=keepdim)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_comparisons_casts_and_items() -> None:
    a = cnnlab.tensor([1.0, 2.0, 3.0])
    b = cnnlab.tensor([1.0, 0.0, 3.0])
    assert a.eq(b).tolist() == [True, False, True] and a.ne(b).sum().item() == 1
    assert a.gt(b).tolist() == [False, True, False] and a.le(b).tolist() == [True, False, True]
    assert a.lt(2).tolist() == [True, False, False] and a.ge(2).tolist() == [False, True, True]
    assert a.long().dtype == np.int64 and a.int().dtype == np.int32 and a.bool().dtype == np.bool_
    assert a.double().dtype == np.float64 and a.long().float().dtype == np.float32
    assert isinstance(a.eq(b).sum().item(), int)
    assert (a == b).sum().item() == torch.eq(torch.tensor([1.0, 2, 3]),
                                             torch.tensor([1.0, 0, 3])).sum().item()
    assert a.to(cnnlab.float64).dtype == np.float64 and a.to("cpu", cnnlab.int64).dtype == np.int64
    assert a.to(b) is a and a.cpu() is a and a.device == cnnlab.device("cpu")
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        a.item()
    assert float(a[1]) == 2.0 and int(a.long()[2]) == 3


def test_devices_and_cuda_are_refused_clearly() -> None:
    assert cnnlab.cuda.is_available() is False and str(cnnlab.device("cpu")) == "cpu"
    model = nn.Linear(2, 2)
    for call in (lambda: model.to("cuda"), lambda: cnnlab.zeros(2).to("cuda:0"),
                 lambda: model.cuda(), lambda: cnnlab.device("cuda"),
                 lambda: model.to(torch.device("cuda"))):
        with pytest.raises(cnnlab.DeviceError, match="runs on the CPU"):
            call()
    assert model.to(cnnlab.device("cpu")) is model
    assert model.to("cpu", cnnlab.float64).weight.dtype == np.float64


def test_in_place_ops_follow_torchs_rules() -> None:
    w = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        tw.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with cnnlab.no_grad(), torch.no_grad():
        w.add_(cnnlab.tensor([1.0, 1.0]), alpha=2).mul_(3)
        tw.add_(torch.tensor([1.0, 1.0]), alpha=2).mul_(3)
        np.testing.assert_array_equal(w.numpy(), tw.numpy())
        w.zero_()
        w.fill_(0.5)
        w.copy_(np.array([4.0, 5.0]))
        assert w.tolist() == [4.0, 5.0]
    y = w * 2
    with pytest.raises(RuntimeError, match="part of a recorded graph"):
        y.mul_(2)
    plain = cnnlab.tensor([1, 2])
    plain.add_(1)                      # no gradient involved: allowed anywhere
    assert plain.tolist() == [2, 3]
    with pytest.raises(RuntimeError, match="can't be cast"):
        plain.add_(cnnlab.tensor([0.5, 0.5]))


def test_grad_mode_switches_like_torchs() -> None:
    x = cnnlab.tensor([1.0, 2.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    for ours, theirs in ((cnnlab.set_grad_enabled(False), torch.set_grad_enabled(False)),
                         (cnnlab.inference_mode(), torch.inference_mode())):
        with ours, theirs:
            assert (x * 2).requires_grad == (tx * 2).requires_grad is False
        assert cnnlab.is_grad_enabled() == torch.is_grad_enabled() is True
    cnnlab.set_grad_enabled(False)          # a plain call switches it until told otherwise
    torch.set_grad_enabled(False)
    assert (x * 2).requires_grad == (tx * 2).requires_grad is False
    cnnlab.set_grad_enabled(True)
    torch.set_grad_enabled(True)
    with cnnlab.no_grad(), cnnlab.set_grad_enabled(True):
        assert (x * 2).requires_grad
    y = x.detach().requires_grad_()
    assert y.requires_grad and y.is_leaf and not x.detach().requires_grad
    assert x.clone().grad_fn is not None and x.numel() == x.nelement() == 2
    assert cnnlab.tensor([1.0], device="cpu").tolist() == [1.0]
    with pytest.raises(cnnlab.DeviceError, match="runs on the CPU"):
        cnnlab.tensor([1.0], device="cuda")
    with pytest.raises(RuntimeError, match="<= 2 dimensions"):
        cnnlab.zeros(2, 2, 2).t()


def test_factories_and_seeded_randomness() -> None:
    assert cnnlab.zeros(2, 3).dtype == np.float32 and cnnlab.ones((2,)).shape == (2,)
    assert cnnlab.arange(5).dtype == np.int64 and cnnlab.arange(0, 1, 0.25).dtype == np.float32
    np.testing.assert_allclose(cnnlab.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())
    assert cnnlab.full((2, 2), 7).dtype == torch_dtype_name(torch.full((2, 2), 7).dtype)
    assert cnnlab.full((2,), 1.5).dtype == np.float32
    x = cnnlab.randn(3, 4)
    assert cnnlab.zeros_like(x).dtype == x.dtype and cnnlab.ones_like(x).shape == (3, 4)
    a = np.arange(3.0)
    assert cnnlab.from_numpy(a).numpy() is a
    cnnlab.manual_seed(5)
    first = (cnnlab.rand(4).numpy(), cnnlab.randint(0, 10, (6,)).numpy(), cnnlab.randperm(8).numpy())
    cnnlab.manual_seed(5)
    again = (cnnlab.rand(4).numpy(), cnnlab.randint(0, 10, (6,)).numpy(), cnnlab.randperm(8).numpy())
    for u, v in zip(first, again):
        np.testing.assert_array_equal(u, v)
    assert sorted(first[2].tolist()) == list(range(8)) and first[2].dtype == np.int64


def torch_dtype_name(dt) -> np.dtype:
    return np.dtype(str(dt).replace("torch.", ""))


def test_module_level_functions_match_torch() -> None:
    x = rng.standard_normal((2, 3))
    for name in ("exp", "relu", "sigmoid", "tanh"):
        np.testing.assert_allclose(getattr(cnnlab, name)(cnnlab.tensor(x)).numpy(),
                                   getattr(torch, name)(torch.tensor(x)).numpy(), atol=1e-12)
    for name in ("softmax", "log_softmax"):
        np.testing.assert_allclose(getattr(cnnlab, name)(cnnlab.tensor(x), dim=1).numpy(),
                                   getattr(torch, name)(torch.tensor(x), dim=1).numpy(), atol=1e-12)
    np.testing.assert_allclose(cnnlab.log(cnnlab.tensor(np.abs(x))).numpy(),
                               torch.log(torch.tensor(np.abs(x))).numpy())
    np.testing.assert_allclose(cnnlab.matmul(cnnlab.tensor(x), cnnlab.tensor(x.T)).numpy(),
                               torch.matmul(torch.tensor(x), torch.tensor(x.T)).numpy())
    assert cnnlab.cat([cnnlab.tensor(x)] * 2, dim=1).shape == (2, 6)
    assert cnnlab.stack([cnnlab.tensor(x)] * 2).shape == (2, 2, 3)
    assert cnnlab.sum(cnnlab.tensor(x), 1).shape == (2,) and cnnlab.mean(cnnlab.tensor(x)).ndim == 0
    assert cnnlab.argmax(cnnlab.tensor(x), dim=1).tolist() == torch.argmax(
        torch.tensor(x), dim=1).tolist()
    assert cnnlab.flatten(cnnlab.zeros(2, 3, 4), 1).shape == (2, 12)


def test_sequential_ordered_dict_module_dict_and_traversal() -> None:
    from collections import OrderedDict

    seq = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("relu", nn.ReLU())]))
    blocks = nn.ModuleDict({"a": seq, "b": nn.Linear(2, 2)})
    holder = nn.ModuleList([blocks])
    names = [n for n, _ in holder.named_modules()]
    assert names == ["", "0", "0.a", "0.a.conv", "0.a.relu", "0.b"]
    assert [n for n, _ in blocks.named_children()] == ["a", "b"] and "a" in blocks
    assert sorted(holder.state_dict()) == ["0.a.conv.bias", "0.a.conv.weight", "0.b.bias",
                                           "0.b.weight"]
    seen = []
    holder.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "ModuleList" and seen.count("Linear") == 1
    m = nn.Linear(2, 2)
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    m.register_buffer("kept", np.ones(2))
    assert "scratch" not in m.state_dict() and "kept" in m.state_dict()


def test_save_and_load_with_any_suffix(tmp_path) -> None:
    model = nn.Linear(3, 2)
    for suffix in (".pt", ".pth", ".bin", ""):
        path = tmp_path / f"weights{suffix}"
        cnnlab.save(model.state_dict(), path)
        loaded = cnnlab.load(path, map_location="cpu", weights_only=True)
        np.testing.assert_array_equal(loaded["weight"], model.weight.numpy())
    torch.save({"weight": torch.zeros(2)}, tmp_path / "torch.pt")
    with pytest.raises(cnnlab.CheckpointError, match="cnnlab.interop.load_weights"):
        cnnlab.load(tmp_path / "torch.pt")
    import pickle

    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(cnnlab.CheckpointError, match="PyTorch pickle"):
        cnnlab.load(tmp_path / "legacy.pt")


def test_general_checkpoint_round_trip_resumes_training(tmp_path) -> None:
    """PyTorch's "saving and loading a general checkpoint": a dict with the epoch, the
    model's and the optimizer's state dicts and the last loss, written without pickle;
    the resumed model and optimizer take the very step the original takes."""
    cnnlab.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = cnnlab.optim.Adam(model.parameters(), lr=0.1)
    x = cnnlab.randn(4, 3)

    def step(m, o):
        o.zero_grad()
        loss = (m(x) ** 2).mean()
        loss.backward()
        o.step()
        return loss

    loss = step(model, opt)
    cnnlab.save({"epoch": 5, "model_state_dict": model.state_dict(),
                 "optimizer_state_dict": opt.state_dict(), "loss": loss,
                 "history": [1.5, None, "text", (2, 3)]}, tmp_path / "checkpoint.pt")
    checkpoint = cnnlab.load(tmp_path / "checkpoint.pt", weights_only=True)
    resumed = nn.Linear(3, 2)
    resumed_opt = cnnlab.optim.Adam(resumed.parameters(), lr=0.5)
    resumed.load_state_dict(checkpoint["model_state_dict"])
    resumed_opt.load_state_dict(checkpoint["optimizer_state_dict"])
    assert checkpoint["epoch"] == 5 and checkpoint["history"] == [1.5, None, "text", [2, 3]]
    assert float(checkpoint["loss"]) == loss.item()
    assert resumed_opt.param_groups[0]["lr"] == 0.1
    step(model, opt)
    step(resumed, resumed_opt)
    np.testing.assert_array_equal(resumed.weight.numpy(), model.weight.numpy())
    with pytest.raises(TypeError, match="without pickle"):
        cnnlab.save({"model": model}, tmp_path / "module.pt")


def test_topk_sort_argsort_indices_like_torch() -> None:
    for dim in (0, 1, -1):
        for k in (1, 3):
            ours, theirs = cnnlab.tensor(X).topk(k, dim), torch.tensor(X).topk(k, dim)
            np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        for descending in (False, True):
            np.testing.assert_array_equal(      # ties: stable sort, the same order as torch's
                cnnlab.sort(cnnlab.tensor(TIES), dim, descending=descending).indices.numpy(),
                torch.sort(torch.tensor(TIES), dim=dim, descending=descending, stable=True).indices)
            np.testing.assert_array_equal(
                cnnlab.argsort(cnnlab.tensor(TIES), dim, descending=descending).numpy(),
                torch.argsort(torch.tensor(TIES), dim=dim, descending=descending, stable=True))
    labels = cnnlab.tensor([3, 1, 2], dtype=cnnlab.uint8)
    assert labels.sort(descending=True).values.tolist() == [3, 2, 1]
    with pytest.raises(RuntimeError, match="out of range"):
        cnnlab.zeros(2, 3).topk(4)


def _imagenet_accuracy(torch_module, output, target, topk=(1, 5)):
    """PyTorch's ImageNet example's ``accuracy``, verbatim but for the module name."""
    torch = torch_module
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def test_imagenet_examples_topk_accuracy_runs_unchanged() -> None:
    scores = rng.standard_normal((16, 10))
    target = rng.integers(0, 10, 16)
    ours = _imagenet_accuracy(cnnlab, cnnlab.tensor(scores), cnnlab.tensor(target))
    theirs = _imagenet_accuracy(torch, torch.tensor(scores), torch.tensor(target))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
