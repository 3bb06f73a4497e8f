"""Library pieces for training and transfer learning (the notes' "Training" and
"Transfer learning"): Module.freeze/unfreeze, gradient clipping, SequentialLR and
warm-up, ReduceLROnPlateau, parameter groups, the multiclass SVM loss and
replace_head.  Everything with a torch counterpart is compared to torch in float64."""
from __future__ import annotations

import json
import typing

import numpy as np
import pytest
from helpers import _torch, check_op

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
import cnnlab.nn.init as nn_init
from cnnlab.models import _REGISTRY, MIN_INPUT_SIZE, find_head, get_model, replace_head
from cnnlab.nn.utils import clip_grad_norm_, clip_grad_value_
from cnnlab.optim import SGD, Adam
from cnnlab.optim import lr_scheduler as sched

torch = _torch()
TL = torch.optim.lr_scheduler


def _small_model() -> nn.Module:
    cnnlab.manual_seed(0)
    return nn.Sequential(*[
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 3)]).double()


def _batch(seed: int = 0) -> tuple[cnnlab.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    return cnnlab.Tensor(rng.standard_normal((6, 1, 8, 8))), rng.integers(0, 3, 6)


# ------------------------------------------------------------- freeze / unfreeze
def _trainable(model: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters()}


def test_freeze_targets_by_name_module_and_parameter():
    m = get_model("digits_cnn", num_classes=10)
    assert m.freeze("features") is m
    flags = _trainable(m)
    assert flags == {n: not n.startswith("features.") for n in flags}
    m.unfreeze().freeze()                                    # no target: everything
    assert not any(_trainable(m).values())
    m.unfreeze("classifier.2", m.features[3])                # a dotted name and a module object
    on = {n for n, f in _trainable(m).items() if f}
    assert on == {"classifier.2.weight", "classifier.2.bias", "features.3.weight", "features.3.bias"}
    m.freeze("classifier.2.bias")                            # a single parameter by name
    assert not m.classifier[2].bias.requires_grad and m.classifier[2].weight.requires_grad
    m.freeze(m.classifier[2].weight)                         # a Parameter object
    assert m.num_parameters(trainable_only=True) == m.features[3].weight.numel() + 32


def test_freeze_rejects_unknown_targets():
    m = get_model("digits_cnn", num_classes=10)
    with pytest.raises(ValueError, match=r"DigitsCNN.freeze: no submodule or parameter named "
                                         r"'feature'; top-level names: features, flatten, classifier"):
        m.freeze("feature")
    with pytest.raises(ValueError, match="unfreeze: no submodule or parameter named 'features.99'"):
        m.unfreeze("features.99")
    with pytest.raises(ValueError, match="given Linear is not a submodule"):
        m.freeze(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="targets must be dotted names"):
        m.freeze(3)
    assert all(_trainable(m).values())                       # failed calls changed nothing


def test_frozen_parameters_get_no_grad_and_stay_bit_identical():
    """The engine computes no gradient for requires_grad=False leaves, so an optimizer over
    all of model.parameters() (momentum, weight decay) leaves them exactly as they were."""
    m = _small_model()
    x, y = _batch()
    F.cross_entropy(m(x), y).backward()                      # a stale grad, then freeze clears it
    m.freeze("0", "5")
    assert all(p.grad is None for p in m[0].parameters())
    before = {n: p.data.copy() for n, p in m.named_parameters()}
    for opt in (SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
                Adam(m.parameters(), lr=0.01, weight_decay=0.1)):
        for step in range(3):
            opt.zero_grad()
            x, y = _batch(step)
            F.cross_entropy(m(x), y).backward()
            assert m[0].weight.grad is None and m[5].bias.grad is None
            assert m[7].weight.grad is not None
            opt.step()
    for n, p in m.named_parameters():
        if n.startswith(("0.", "5.")):
            np.testing.assert_array_equal(p.data, before[n], err_msg=n)
        else:
            assert not np.array_equal(p.data, before[n]), n


def test_freezing_does_not_stop_batchnorm_running_stats():
    """Documented behaviour: running statistics are buffers, updated in train mode."""
    m = _small_model()
    m.freeze()
    bn = m[1]
    mean0 = bn.running_mean.copy()
    with cnnlab.no_grad():
        m(_batch()[0])
    assert not np.array_equal(bn.running_mean, mean0)
    bn.eval()
    mean1 = bn.running_mean.copy()
    with cnnlab.no_grad():
        m(_batch(1)[0])
    np.testing.assert_array_equal(bn.running_mean, mean1)


# ---------------------------------------------------------- parameter groups
def test_sgd_parameter_groups_match_torch_and_a_frozen_parameter_is_untouched():
    """Two groups with their own lr / weight decay / nesterov / dampening.  Equal to torch to
    rounding, not bit for bit: torch's CPU ``param.add_(grad, alpha=-lr)`` is a fused
    multiply-add (one rounding), NumPy's ``param - lr * grad`` rounds twice (checked below)."""
    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), (5,), (2, 2)]
    init = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    ours[3].requires_grad = False                           # frozen: never gets a grad
    theirs[3].requires_grad_(False)

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.05, "weight_decay": 0.01},
                {"params": ps[2:], "lr": 0.2, "weight_decay": 0.3, "nesterov": False,
                 "dampening": 0.1}]
    opt = SGD(groups(ours), lr=0.1, momentum=0.9, nesterov=True)
    topt = torch.optim.SGD(groups(theirs), lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(6):
        for p, t in zip(ours[:3], theirs[:3]):
            g = rng.standard_normal(p.shape)
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(ours[3].data, init[3])
    np.testing.assert_array_equal(theirs[3].detach().numpy(), init[3])
    assert ours[3] not in opt.state

    # why not bit for bit: torch's add with alpha is correctly rounded a + alpha * b
    from fractions import Fraction
    a, g = rng.standard_normal(200), rng.standard_normal(200)
    fused = np.array([float(Fraction(x) + Fraction(-0.1) * Fraction(y)) for x, y in zip(a, g)])
    np.testing.assert_array_equal(torch.tensor(a).add_(torch.tensor(g), alpha=-0.1).numpy(), fused)


# ------------------------------------------------------------- gradient clipping
def _param_sets(dtype=np.float64):
    """(our params, torch params) with gradients; one parameter without a gradient."""
    rng = np.random.default_rng(7)
    shapes = [(3, 4), (5,), (2, 2, 2), (6,)]
    ours, theirs = [], []
    for i, s in enumerate(shapes):
        a = rng.standard_normal(s).astype(dtype)
        p, t = nn.Parameter(a.copy()), torch.tensor(a.copy(), requires_grad=True)
        if i != 3:
            g = (rng.standard_normal(s) * (i + 1)).astype(dtype)
            p.grad, t.grad = g.copy(), torch.tensor(g.copy())
        ours.append(p)
        theirs.append(t)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), "inf", 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _param_sets()
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, cnnlab.Tensor) and total.shape == () and total.dtype == np.float64
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-14)
    for p, t in zip(ours, theirs):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-14, atol=0)
    new = clip_grad_norm_(ours, max_norm, norm_type=norm_type).item()   # now within the bound
    assert new <= max_norm * (1 + 1e-12)
    if max_norm > ttotal.item():
        np.testing.assert_allclose(new, ttotal.item(), rtol=1e-14)    # unchanged when below


def test_clip_grad_norm_float32_single_tensor_empty_and_nonfinite():
    ours, theirs = _param_sets(np.float32)
    total = clip_grad_norm_(ours[0], 0.1)                    # a single tensor, as torch allows
    ttotal = torch.nn.utils.clip_grad_norm_(theirs[0], 0.1)
    assert total.dtype == np.float32 and ours[0].grad.dtype == np.float32
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    np.testing.assert_allclose(ours[0].grad, theirs[0].grad.numpy(), rtol=1e-6)

    assert clip_grad_norm_([ours[3]], 1.0).item() == 0.0     # no gradients at all
    assert torch.nn.utils.clip_grad_norm_([theirs[3]], 1.0).item() == 0.0

    ours, theirs = _param_sets()
    ours[0].grad[0, 0] = theirs[0].grad[0, 0] = np.inf
    kept = ours[1].grad.copy()
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* is non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(ours[1].grad, kept)        # the error leaves grads alone
    total = clip_grad_norm_(ours, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.item() == ttotal.item() == np.inf
    np.testing.assert_array_equal(ours[1].grad, theirs[1].grad.numpy())   # scaled by 1/inf = 0


@pytest.mark.parametrize("clip_value", [0.3, 2.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = _param_sets()
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, t in zip(ours, theirs):
        if t.grad is not None:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())
            assert np.abs(p.grad).max() <= clip_value


def test_clip_grad_norm_bounds_a_real_backward():
    m = _small_model()
    x, y = _batch()
    F.cross_entropy(m(x), y).backward()
    grads = [p.grad.copy() for p in m.parameters()]
    total = clip_grad_norm_(m.parameters(), 0.01).item()
    assert total == pytest.approx(np.sqrt(sum((g * g).sum() for g in grads)), rel=1e-12)
    after = np.sqrt(sum((p.grad ** 2).sum() for p in m.parameters()))
    assert after == pytest.approx(0.01, rel=1e-6)
    for g, p in zip(grads, m.parameters()):                 # same direction: one common factor
        np.testing.assert_allclose(p.grad, g * (0.01 / (total + 1e-6)), rtol=1e-12)


# ----------------------------------------------------------------- schedulers
def _optimizers():
    ours = SGD([{"params": [nn.Parameter(np.ones(2))]},
                {"params": [nn.Parameter(np.ones(2))], "lr": 0.03}], lr=0.1)
    theirs = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)]},
                              {"params": [torch.ones(2, requires_grad=True)], "lr": 0.03}], lr=0.1)
    return ours, theirs


def _sequences(mod):
    """Each case builds (list of schedulers, milestones) for optimizer ``o`` in module ``mod``."""
    return {
        "warmup_cosine": lambda o: ([mod.LinearLR(o, 0.1, total_iters=4),
                                     mod.CosineAnnealingLR(o, T_max=12, eta_min=0.002)], [4]),
        "three_phases": lambda o: ([mod.ExponentialLR(o, 0.8), mod.StepLR(o, 3, 0.5),
                                    mod.MultiStepLR(o, [0, 2, 5], 0.3)], [5, 11]),
        "lambda_then_linear_decay": lambda o: ([mod.LambdaLR(o, lambda e: 1 / (e + 1)),
                                                mod.LinearLR(o, 1.0, 0.05, total_iters=6)], [3]),
        "equal_milestones": lambda o: ([mod.StepLR(o, 2), mod.ExponentialLR(o, 0.9),
                                        mod.CosineAnnealingLR(o, 5)], [6, 6]),
    }


@pytest.mark.parametrize("case", list(_sequences(sched)))
def test_sequential_lr_matches_torch(case):
    opt, topt = _optimizers()
    scheds, milestones = _sequences(sched)[case](opt)
    tscheds, _ = _sequences(TL)[case](topt)
    ours = sched.SequentialLR(opt, scheds, milestones)
    theirs = TL.SequentialLR(topt, tscheds, milestones)
    lrs, tlrs = [], []
    for epoch in range(21):
        if epoch:
            opt.step()
            topt.step()
            ours.step()
            theirs.step()
        lrs.append([g["lr"] for g in opt.param_groups] + ours.get_last_lr())
        tlrs.append([g["lr"] for g in topt.param_groups] + theirs.get_last_lr())
    assert lrs == tlrs                                       # bit for bit
    assert ours.last_epoch == theirs.last_epoch == 20


def test_warmup_scheduler_is_linear_then_after():
    opt, topt = _optimizers()
    ours = sched.warmup_scheduler(opt, 5, sched.CosineAnnealingLR(opt, T_max=15))
    theirs = TL.SequentialLR(topt, [TL.LinearLR(topt, 0.1, 1.0, total_iters=5),
                                    TL.CosineAnnealingLR(topt, T_max=15)], milestones=[5])
    assert isinstance(ours, sched.SequentialLR)
    got, want = [], []
    for epoch in range(20):
        if epoch:
            opt.step()
            topt.step()
            ours.step()
            theirs.step()
        got.append(ours.get_last_lr())
        want.append(theirs.get_last_lr())
    assert got == want
    ramp = [0.1 * (0.1 + 0.9 * e / 5) for e in range(5)]   # the documented closed form
    np.testing.assert_allclose([g[0] for g in got[:6]], ramp + [0.1], rtol=1e-12)

    alone = sched.warmup_scheduler(SGD([nn.Parameter(np.ones(1))], lr=1.0), 2, start_factor=0.5)
    assert isinstance(alone, sched.LinearLR) and alone.get_last_lr() == [0.5]
    cos = sched.CosineAnnealingLR(opt, T_max=3)
    assert sched.warmup_scheduler(opt, 0, cos) is cos
    with pytest.raises(ValueError, match="nothing to schedule"):
        sched.warmup_scheduler(opt, 0)


def test_sequential_lr_state_dict_round_trip_through_json():
    def build():
        opt, _ = _optimizers()
        return opt, sched.warmup_scheduler(opt, 3, sched.StepLR(opt, 2, 0.5))
    opt, s = build()
    for _ in range(4):
        s.step()
    saved = json.loads(json.dumps(s.state_dict()))
    saved_opt = opt.state_dict()
    expected = []
    for _ in range(6):
        s.step()
        expected.append(s.get_last_lr())
    opt2, s2 = build()
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved)
    got = []
    for _ in range(6):
        s2.step()
        got.append(s2.get_last_lr())
    assert got == expected


def test_sequential_lr_validation():
    opt, _ = _optimizers()
    other, _ = _optimizers()
    a, b = sched.StepLR(opt, 2), sched.ExponentialLR(opt, 0.9)
    with pytest.raises(ValueError, match="one milestone fewer than schedulers"):
        sched.SequentialLR(opt, [a, b], [2, 3])
    with pytest.raises(ValueError, match="same optimizer"):
        sched.SequentialLR(opt, [a, sched.StepLR(other, 2)], [2])
    with pytest.raises(ValueError, match="does not support ReduceLROnPlateau"):
        sched.SequentialLR(opt, [a, sched.ReduceLROnPlateau(opt)], [2])
    with pytest.raises(ValueError, match="non-decreasing"):
        sched.SequentialLR(opt, [a, b, a], [4, 2])


ACCURACIES = [0.3, 0.5, 0.6, 0.6, 0.61, 0.605, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.71, 0.7, 0.72,
              0.72, 0.72, 0.72, 0.72, 0.72, 0.9, 0.9, 0.9, 0.9, 0.9]


@pytest.mark.parametrize("kwargs", [
    {"mode": "max", "patience": 1, "cooldown": 2, "factor": 0.5},
    {"mode": "max", "patience": 0, "threshold": 0.05, "threshold_mode": "abs", "cooldown": 1,
     "min_lr": [0.01, 0.005]},
    {"mode": "min", "patience": 2, "threshold": 0.01, "cooldown": 3, "min_lr": 0.001},
])
def test_reduce_lr_on_plateau_matches_torch_on_accuracies(kwargs):
    opt, topt = _optimizers()
    ours, theirs = sched.ReduceLROnPlateau(opt, **kwargs), TL.ReduceLROnPlateau(topt, **kwargs)
    for acc in ACCURACIES:
        ours.step(acc)
        theirs.step(acc)
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter) == \
            (theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter)
    assert ours.get_last_lr() != [0.1, 0.03]                 # the sequence did trigger reductions


# ------------------------------------------------------------- multi-margin (SVM)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss_matches_torch(p, reduction, weighted):
    rng = np.random.default_rng(p + 3 * weighted)
    x = rng.standard_normal((6, 5))
    t = rng.integers(0, 5, 6)
    w = rng.uniform(0.5, 2, 5) if weighted else None
    check_op(lambda a: F.multi_margin_loss(a, t, p=p, margin=0.7, weight=w, reduction=reduction),
             lambda a: torch.nn.functional.multi_margin_loss(
                 a, torch.tensor(t), p=p, margin=0.7,
                 weight=None if w is None else torch.tensor(w), reduction=reduction), [x])
    layer = nn.MultiMarginLoss(p=p, margin=0.7, weight=w, reduction=reduction)
    tlayer = torch.nn.MultiMarginLoss(p=p, margin=0.7,
                                      weight=None if w is None else torch.tensor(w),
                                      reduction=reduction)
    np.testing.assert_allclose(layer(cnnlab.Tensor(x), t).data,
                               tlayer(torch.tensor(x), torch.tensor(t)).numpy(), rtol=1e-14)


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_loss_gradcheck(p):
    rng = np.random.default_rng(11)
    x = cnnlab.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = np.array([0, 2, 1, 2])
    w = cnnlab.Tensor(np.array([1.0, 0.5, 2.0]))
    assert cnnlab.gradcheck(lambda a: F.multi_margin_loss(a, t, p=p, margin=1.3, weight=w), (x,))


# ------------------------------------------------------------------ replace_head
# the head of each zoo class; every registered model must map to one of these classes
HEADS = {"LeNet5": "classifier.4", "LeNet5_1998": "output", "DigitsCNN": "classifier.2",
         "BNCNN": "classifier.4", "AlexNet": "classifier.6", "VGG": "classifier.6", "NIN": "features.15",
         "AllConvNet": "features.19", "GoogLeNet": "fc", "ResNet": "fc", "CifarResNet": "fc",
         "DenseNet": "classifier"}
# the cheapest model of each class (building every VGG takes minutes on 2 cores)
REPRESENTATIVES = ["lenet5", "lenet5_1998", "digits_cnn", "bn_cnn", "zfnet", "vgg13", "nin",
                   "allconv", "googlenet", "resnet18", "resnet20", "densenet_bc_100_12"]


def test_every_zoo_model_has_a_tested_head_class():
    classes = {name: typing.get_type_hints(builder)["return"].__name__
               for name, builder in _REGISTRY.items()}
    assert set(classes.values()) <= set(HEADS), set(classes.values()) - set(HEADS)
    assert {classes[n] for n in REPRESENTATIVES} == set(classes.values())


@pytest.fixture
def fast_init(monkeypatch):
    """Constant weights instead of random ones while building big models (structure only)."""
    def constant(tensor, *args, **kwargs):
        tensor.data[...] = 0.01
        return tensor
    monkeypatch.setattr(nn_init, "uniform_", constant)
    monkeypatch.setattr(nn_init, "normal_", constant)


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_replace_head_on_every_zoo_class(name, fast_init):
    C = 1 if name in ("lenet5", "lenet5_1998", "digits_cnn", "bn_cnn") else 3
    S = MIN_INPUT_SIZE[name][0]
    m = get_model(name, num_classes=7, in_channels=C, input_size=S)
    order = [n for n, _ in m.named_modules()]
    old = m.get_submodule(HEADS[type(m).__name__])
    assert find_head(m) == HEADS[type(m).__name__]
    path = replace_head(m, 4)
    assert path == HEADS[type(m).__name__]
    new = m.get_submodule(path)
    assert new is not old and type(new) is type(old) and new.weight.dtype == old.weight.dtype
    assert new.weight.shape == (4,) + old.weight.shape[1:]
    assert [n for n, _ in m.named_modules()] == order        # same place (Sequential order kept)
    x = cnnlab.Tensor(np.random.default_rng(0).standard_normal((2, C, S, S)).astype(np.float32))
    with cnnlab.no_grad():
        if name == "googlenet":                             # the auxiliary heads follow
            out = m.train()(x)
            assert out.logits.shape == out.aux_logits1.shape == out.aux_logits2.shape == (2, 4)
        assert m.eval()(x).shape == (2, 4)


def test_replace_head_float64_fresh_init_and_fine_tuning_only_the_head():
    cnnlab.manual_seed(0)
    m = get_model("digits_cnn", num_classes=10).double()
    old = m.classifier[2]
    cnnlab.manual_seed(1)
    path = replace_head(m, 3)
    head = m.get_submodule(path)
    assert head.weight.dtype == np.float64 and head.weight.shape == (3, old.in_features)
    cnnlab.manual_seed(1)
    ref = nn.Linear(old.in_features, 3, dtype=np.float64)   # the layer's own default init
    np.testing.assert_array_equal(head.weight.data, ref.weight.data)
    np.testing.assert_array_equal(head.bias.data, ref.bias.data)

    m.freeze().unfreeze(path)                                # CNN as a fixed feature extractor
    before = {n: p.data.copy() for n, p in m.named_parameters()}
    opt = SGD(m.parameters(), lr=0.1, momentum=0.9)
    x, y = _batch()
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    changed = {n for n, p in m.named_parameters() if not np.array_equal(p.data, before[n])}
    assert changed == {f"{path}.weight", f"{path}.bias"}


def test_replace_head_errors():
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        replace_head(get_model("digits_cnn"), 0)
    with pytest.raises(ValueError, match="Sequential has no Linear, 1x1 Conv2d or RBFOutput"):
        replace_head(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), 2)
