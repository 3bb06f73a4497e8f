"""Batch norm folded into the layer before it (cnnlab.nn.utils.fold_batchnorm).

Tolerances: the folded and unfolded models compute the same function in a
different order of floating-point operations, so their outputs differ by rounding
only.  Measured on every BN model of the zoo with the random statistics below, the
largest difference was 2e-6 of the largest output in float32 and 6e-15 in float64;
the tests allow 2e-5 (float32, about 170 float32 epsilons of the output's scale)
and 1e-10 (float64).
"""
import numpy as np
import pytest
import torch

import cnnlab
import cnnlab.nn as nn
from cnnlab.cli import main
from cnnlab.models import MIN_INPUT_SIZE, get_model, list_models
from cnnlab.models.vgg import CFGS, make_features
from cnnlab.nn.fold import LAYOUT, NO_RUNNING_STATS, NOT_AFTER_CONV, OUTPUT_SHARED, SHARED_MODULE
from cnnlab.nn.utils import FoldError, fold_batchnorm, fuse_conv_bn_eval, fuse_linear_bn_eval, has_batchnorm
from cnnlab.training.loop import evaluate
from cnnlab.training.tta import predict_tta

TOL = {np.float32: 2e-5, np.float64: 1e-10}

# The zoo's models with batch norm; test_the_list_is_every_bn_model_of_the_zoo keeps it whole.
BN_MODELS = ["bn_cnn", "densenet121", "densenet169", "densenet_bc_100_12", "googlenet",
             "resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50", "resnet56",
             "resnet101", "resnet110", "resnet152", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
# A VGG's 120M classifier parameters hold no BN and take seconds to initialise, so the
# VGG-BN models are tested through their BN part: the zoo's own make_features, with a
# small head (test_the_list_is_every_bn_model_of_the_zoo holds them equal to the zoo's).
VGG_CFG = {"vgg11_bn": "A", "vgg13_bn": "B", "vgg16_bn": "D", "vgg19_bn": "E"}


def bn_layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]


def randomize_bn(model, seed=1):
    """Non-trivial running statistics and affine parameters in every BN layer."""
    rng = np.random.default_rng(seed)
    for bn in bn_layers(model):
        c = bn.num_features
        if bn.running_mean is not None:
            bn.running_mean[...] = rng.normal(0, 0.3, c)
            bn.running_var[...] = rng.uniform(0.3, 2.0, c)
        if bn.weight is not None:
            bn.weight.data[...] = rng.uniform(0.5, 1.5, c)
        if bn.bias is not None:
            bn.bias.data[...] = rng.normal(0, 0.3, c)
    return model


def outputs(model, x):
    with cnnlab.no_grad():
        return model.eval()(cnnlab.Tensor(x)).data


def assert_same(folded, model, x, dtype):
    ref, got = outputs(model, x.astype(dtype)), outputs(folded, x.astype(dtype))
    assert got.shape == ref.shape and got.dtype == dtype
    scale = np.abs(ref).max()
    assert np.isfinite(scale) and scale > 0
    err = np.abs(got - ref).max() / scale
    assert err <= TOL[dtype], f"relative difference {err:.3g} in {np.dtype(dtype).name}"


def zoo_model(name):
    cnnlab.manual_seed(0)
    # the ResNets and DenseNets run at any size with their small-input stem; 16 keeps them quick
    size = min(MIN_INPUT_SIZE[name][0], 16) if name.startswith(("res", "dense")) else \
        MIN_INPUT_SIZE[name][0]
    if name in VGG_CFG:
        net = nn.Sequential(make_features(CFGS[VGG_CFG[name]], 1, batch_norm=True),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 3))
    else:
        net = get_model(name, num_classes=3, in_channels=1, input_size=size)
    return randomize_bn(net), size


def test_the_list_is_every_bn_model_of_the_zoo(monkeypatch):
    # building is cheap without the random initialisation (only the structure matters here)
    for fn in ("kaiming_uniform_", "kaiming_normal_", "normal_", "uniform_", "ones_", "zeros_"):
        monkeypatch.setattr(nn.init, fn, lambda t, *a, **k: t)
    with_bn = set()
    for name in list_models():
        m = get_model(name, num_classes=3, in_channels=1, input_size=MIN_INPUT_SIZE[name][0])
        if has_batchnorm(m):
            with_bn.add(name)
        if name in VGG_CFG:
            assert repr(m.features) == repr(make_features(CFGS[VGG_CFG[name]], 1, batch_norm=True))
    assert with_bn == set(BN_MODELS)


@pytest.mark.parametrize("name", BN_MODELS)
def test_every_bn_model_of_the_zoo_folds_to_the_same_outputs(name):
    model, size = zoo_model(name)
    x = np.random.default_rng(2).standard_normal((2, 1, size, size))
    for dtype in (np.float32, np.float64):
        model.to(dtype).eval()
        before = {k: v.copy() for k, v in model.state_dict().items()}
        folded = fold_batchnorm(model, x[:1].astype(dtype), check=False)
        assert_same(folded, model, x, dtype)
        report = folded.fold_report
        assert len(bn_layers(folded)) == len(bn_layers(model)) - len(report.folded)
        assert len(report.folded) + len(report.kept) == len(bn_layers(model))
        # the folded BN parameters are gone; a conv without bias gained one
        gained = sum(folded.get_submodule(conv).bias.numel()
                     for conv, _ in report.folded if model.get_submodule(conv).bias is None)
        lost = sum(model.get_submodule(bn).weight.numel() + model.get_submodule(bn).bias.numel()
                   for _, bn in report.folded)
        assert folded.num_parameters() == model.num_parameters() - lost + gained
        after = model.state_dict()
        assert after.keys() == before.keys()
        assert all(np.array_equal(after[k], before[k]) for k in before)   # original untouched
    if name.startswith(("resnet", "vgg", "bn_cnn")):
        assert not report.kept                        # conv -> BN everywhere
    if name.startswith("densenet"):                   # pre-activation BNs after a concatenation
        assert report.folded and {r for _, r, _ in report.kept} == {NOT_AFTER_CONV}
    if name == "googlenet":                           # only the auxiliary heads, not run in eval
        assert sorted(bn for bn, _, _ in report.kept) == ["aux1.conv.bn", "aux2.conv.bn"]


class Mixed(nn.Module):
    """Every kind of layer that can take a BN, each followed by one."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)                       # with bias
        self.b1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding="same", groups=8, bias=False)   # depthwise
        self.b2 = nn.BatchNorm2d(8, affine=False)
        self.g = nn.Conv2d(8, 6, 1, groups=2, bias=False)             # grouped
        self.b3 = nn.BatchNorm2d(6, bias=False)                       # gamma only
        self.t = nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2)      # transposed, grouped
        self.b4 = nn.BatchNorm2d(4)
        self.c1d = nn.Conv1d(4, 5, 3, padding=1, bias=False)
        self.b5 = nn.BatchNorm1d(5)
        self.fc = nn.Linear(5 * 64, 7, bias=False)
        self.b6 = nn.BatchNorm1d(7)

    def forward(self, x):
        x = self.b4(self.t(self.b3(self.g(self.b2(self.dw(self.b1(self.c1(x))))))))
        x = self.b5(self.c1d(x.reshape(x.shape[0], 4, 64)))
        return self.b6(self.fc(x.reshape(x.shape[0], -1)))


def test_every_foldable_layer_kind_folds_exactly_in_float64():
    cnnlab.manual_seed(0)
    model = randomize_bn(Mixed()).double().eval()
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8))
    folded = fold_batchnorm(model, x[:1])
    assert folded.fold_report.folded == [("c1", "b1"), ("dw", "b2"), ("g", "b3"), ("t", "b4"),
                                         ("c1d", "b5"), ("fc", "b6")]
    assert not bn_layers(folded) and isinstance(folded.b1, nn.Identity)
    assert folded.dw.bias is not None and folded.dw.bias.shape == (8,)
    assert_same(folded, model, x, np.float64)
    assert_same(fold_batchnorm(model.float(), x[:1].astype(np.float32)), model, x, np.float32)


def test_single_pair_fusion_matches_torch():
    from torch.nn.utils.fusion import fuse_conv_bn_eval as torch_conv_bn
    from torch.nn.utils.fusion import fuse_linear_bn_eval as torch_linear_bn

    cnnlab.manual_seed(0)
    for ours, theirs, obn, tbn in [
        (nn.Conv2d(4, 6, 3, groups=2, bias=False), torch.nn.Conv2d(4, 6, 3, groups=2, bias=False),
         nn.BatchNorm2d(6), torch.nn.BatchNorm2d(6)),
        (nn.Linear(5, 3), torch.nn.Linear(5, 3), nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)),
    ]:
        ours.double()
        randomize_bn(obn.double())
        ours.eval(), obn.eval(), theirs.double().eval(), tbn.double().eval()
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        tbn.load_state_dict({k: torch.tensor(v) for k, v in obn.state_dict().items()})
        fuse = fuse_linear_bn_eval if isinstance(ours, nn.Linear) else fuse_conv_bn_eval
        tfuse = torch_linear_bn if isinstance(ours, nn.Linear) else torch_conv_bn
        a, b = fuse(ours, obn), tfuse(theirs, tbn)
        np.testing.assert_allclose(a.weight.data, b.weight.detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.bias.data, b.bias.detach().numpy(), rtol=0, atol=1e-12)
        assert ours.bias is None or ours.bias is not a.bias       # a copy: the input is kept
    with pytest.raises(ValueError, match="training mode"):
        fuse_conv_bn_eval(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        fuse_conv_bn_eval(nn.Conv2d(1, 2, 1).eval(), nn.BatchNorm2d(2, track_running_stats=False).eval())


class Unfoldable(nn.Module):
    """BNs that must stay: after a ReLU, on a conv output a shortcut also reads,
    without running statistics, shared by two calls, on a Linear's last axis."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pre = nn.BatchNorm2d(4)                              # BN after a ReLU
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.res = nn.BatchNorm2d(4)                              # conv2's output also added
        self.conv3 = nn.Conv2d(4, 4, 1)
        self.batch = nn.BatchNorm2d(4, track_running_stats=False)
        self.conv4 = nn.Conv2d(4, 4, 1)
        self.twice = nn.BatchNorm2d(4)                            # called on two tensors
        self.fc = nn.Linear(4, 4)
        self.seq = nn.BatchNorm1d(4)                              # (N, L, F): F is not axis 1

    def forward(self, x):
        y = self.pre(self.relu(self.conv(x)))
        z = self.conv2(y)
        y = self.res(z) + z
        y = self.batch(self.conv3(y))
        y = self.twice(self.conv4(y)) + self.twice(y)
        return self.seq(self.fc(y.reshape(y.shape[0], 4, -1).transpose(1, 2)))


def test_bn_that_cannot_fold_is_kept_and_the_model_stays_correct():
    cnnlab.manual_seed(0)
    model = randomize_bn(Unfoldable()).double().eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 2, 2))
    folded = fold_batchnorm(model, x[:1])
    report = folded.fold_report
    assert report.folded == []
    assert {bn: reason for bn, reason, _ in report.kept} == {
        "pre": NOT_AFTER_CONV, "res": OUTPUT_SHARED, "batch": NO_RUNNING_STATS,
        "twice": SHARED_MODULE, "seq": LAYOUT}
    assert "relu (ReLU)" in dict((bn, d) for bn, _, d in report.kept)["pre"]
    assert report.summary().startswith("batch norm: folded 0 of 5 layers")
    assert_same(folded, model, x, np.float64)


def test_a_model_without_bn_and_the_eval_only_copy():
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    x = np.zeros((1, 1, 4, 4), np.float32)
    folded = fold_batchnorm(plain, x)
    assert folded is not plain and not folded.training and plain.training
    assert folded.fold_report.summary() == "batch norm: the model has no batch norm layer to fold"
    with pytest.raises(RuntimeError, match="for inference only"):
        folded.train()
    folded.eval()
    with pytest.raises(TypeError, match="cnnlab Module"):
        fold_batchnorm(x, x)


class ReadsData(nn.Module):
    """Reads the conv's output through .data, outside the graph the tracer walks."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)

    def forward(self, x):
        z = self.conv(x)
        return (self.bn(z) + cnnlab.Tensor(z.data)).reshape(x.shape[0], -1)


def test_the_self_check_catches_a_dependency_outside_the_graph():
    model = randomize_bn(ReadsData())
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 3)).astype(np.float32)
    with pytest.raises(FoldError, match="does not reproduce the original"):
        fold_batchnorm(model, x)
    # evaluation then runs the model as it is, with a warning, rather than failing
    loader = [(cnnlab.Tensor(np.concatenate([x, -x])), cnnlab.Tensor(np.array([0, 1])))]
    with pytest.warns(RuntimeWarning, match="unfolded"):
        res = evaluate(model, loader, loss_fn=lambda out, y: out.sum())
    plain = evaluate(model, loader, loss_fn=lambda out, y: out.sum(), fold_bn=False)
    assert res.loss == plain.loss
    np.testing.assert_array_equal(res.predictions, plain.predictions)


def test_evaluate_and_tta_fold_by_default_with_the_same_predictions():
    cnnlab.manual_seed(0)
    model = randomize_bn(get_model("bn_cnn", input_size=8)).train()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 40)
    loader = [(cnnlab.Tensor(x[i:i + 16]), cnnlab.Tensor(y[i:i + 16])) for i in range(0, 40, 16)]
    before = model.state_dict()
    a, b = evaluate(model, loader), evaluate(model, loader, fold_bn=False)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert abs(a.loss - b.loss) <= 1e-5 * abs(b.loss)
    assert model.training and all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    p, q = predict_tta(model, x, batch_size=16), predict_tta(model, x, batch_size=16, fold_bn=False)
    np.testing.assert_allclose(p, q, rtol=0, atol=1e-5)


def test_cli_evaluate_folds_by_default_and_no_fold_gives_the_same_accuracy(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "bn_cnn", "--epochs", "1", "--train-size", "300",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz")]) == 0
    folded = capsys.readouterr().out.splitlines()
    assert main(["evaluate", str(out / "model.npz"), "--no-fold"]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert folded[1] == ("batch norm: folded 6 of 6 layers into the conv or linear layer before "
                         "them (--no-fold keeps them)")
    assert not any("batch norm" in line for line in plain)
    assert folded[2].startswith("test accuracy") and folded[2:] == plain[1:]
