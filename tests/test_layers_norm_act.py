"""Layer/instance/group norm, LRN, BatchNorm variants, LeakyReLU, ELU, scaled tanh,
Softmax modules and Dropout2d: torch parity in float64, gradcheck, errors."""
import warnings

import numpy as np
import pytest
from helpers import _torch, check_op, leaves

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab.nn.modules.activation import ELU, LeakyReLU, ScaledTanh
from cnnlab.nn.modules.batchnorm import InstanceNorm2d
from cnnlab.nn.modules.dropout import Dropout2d
from cnnlab.nn.modules.normalization import GroupNorm, LayerNorm, LocalResponseNorm

torch = _torch()
TF = torch.nn.functional
rng = np.random.default_rng(1234)


def _shape(lo, hi, n):
    return tuple(int(d) for d in rng.integers(lo, hi, n))


def _maybe(a, flag):
    return a if flag else None


def check_module(ours, theirs, shapes, steps_eval=True, scale=3.0):
    """Names and initial values of parameters/buffers equal; then, with random
    weights copied from torch, several training steps comparing the output, the
    input gradient, every parameter gradient and every buffer; then the same in
    eval mode."""
    ours.double()
    sd_t = theirs.state_dict()
    sd_o = ours.state_dict()
    assert set(sd_o) == set(sd_t), (sorted(sd_o), sorted(sd_t))
    for k, v in sd_t.items():
        assert sd_o[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(sd_o[k], v.numpy(), err_msg=f"initial {k}")
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    modes = [True, False] if steps_eval else [True]
    for training in modes:
        ours.train(training)
        theirs.train(training)
        for shape in shapes:
            x = rng.standard_normal(shape) * scale + 0.5
            xo = cnnlab.Tensor(x.copy(), requires_grad=True)
            xt = torch.tensor(x.copy(), requires_grad=True)
            y, yt = ours(xo), theirs(xt)
            assert y.shape == tuple(yt.shape)
            np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=0, atol=1e-9,
                                       err_msg=f"forward (training={training})")
            up = rng.standard_normal(y.shape)
            ours.zero_grad()
            theirs.zero_grad()
            (y * cnnlab.Tensor(up)).sum().backward()
            (yt * torch.tensor(up)).sum().backward()
            np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=0, atol=1e-9,
                                       err_msg=f"input gradient (training={training})")
            tp = dict(theirs.named_parameters())
            for name, p in ours.named_parameters():
                np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=0, atol=1e-9,
                                           err_msg=f"gradient of {name} (training={training})")
            for k, v in theirs.state_dict().items():
                np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=0, atol=1e-12,
                                           err_msg=f"{k} (training={training})")


# ------------------------------------------------------------------ layer norm
@pytest.mark.parametrize("trial", range(6))
def test_layer_norm_matches_torch(trial):
    k = int(rng.integers(1, 4))
    lead = _shape(1, 4, int(rng.integers(1, 3)))
    norm = _shape(2, 5, k)
    eps = float(rng.choice([1e-5, 1e-3, 0.1]))
    x = rng.standard_normal(lead + norm) * 2 + 1
    w, b = rng.standard_normal(norm), rng.standard_normal(norm)
    check_op(lambda x, w, b: F.layer_norm(x, norm, w, b, eps),
             lambda x, w, b: TF.layer_norm(x, norm, w, b, eps), [x, w, b])
    check_op(lambda x, w: F.layer_norm(x, list(norm), w, eps=eps),
             lambda x, w: TF.layer_norm(x, norm, w, eps=eps), [x, w])
    check_op(lambda x: F.layer_norm(x, norm, eps=eps), lambda x: TF.layer_norm(x, norm, eps=eps),
             [x])


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, True)])
def test_layer_norm_module_matches_torch(affine, bias):
    check_module(LayerNorm((4, 5), eps=1e-4, elementwise_affine=affine, bias=bias),
                 torch.nn.LayerNorm((4, 5), eps=1e-4, elementwise_affine=affine, bias=bias),
                 [(3, 4, 5), (2, 3, 4, 5)])
    check_module(LayerNorm(6), torch.nn.LayerNorm(6), [(5, 6), (2, 3, 6)])
    assert repr(LayerNorm(6)) == repr(torch.nn.LayerNorm(6))


# --------------------------------------------------------------- instance norm
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 2, 3), (1, 3, 2, 2)])
def test_instance_norm_input_stats_match_torch_and_update_running_stats(shape):
    c = shape[1]
    x = rng.standard_normal(shape) * 2 - 1
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    rm_c, rv_c, rm_t, rv_t = rm.copy(), rv.copy(), torch.tensor(rm), torch.tensor(rv)
    m = float(rng.uniform(0.05, 0.9))
    check_op(lambda x, w, b: F.instance_norm(x, rm_c, rv_c, w, b, True, m, 1e-3),
             lambda x, w, b: TF.instance_norm(x, rm_t, rv_t, w, b, True, m, 1e-3), [x, w, b])
    np.testing.assert_allclose(rm_c, rm_t.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rv_c, rv_t.numpy(), rtol=0, atol=1e-12)
    assert not np.allclose(rv_c, rv)   # the update did happen
    check_op(lambda x: F.instance_norm(x), lambda x: TF.instance_norm(x), [x])


def test_instance_norm_running_stats_mode_matches_torch():
    x = rng.standard_normal((3, 4, 3, 5))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    check_op(lambda x, w, b: F.instance_norm(x, rm, rv, w, b, use_input_stats=False),
             lambda x, w, b: TF.instance_norm(x, torch.tensor(rm), torch.tensor(rv), w, b,
                                              use_input_stats=False), [x, w, b])


@pytest.mark.parametrize("affine,track", [(False, False), (True, False), (False, True),
                                          (True, True)])
def test_instance_norm_module_matches_torch(affine, track):
    ours = InstanceNorm2d(3, eps=1e-4, momentum=0.3, affine=affine, track_running_stats=track)
    theirs = torch.nn.InstanceNorm2d(3, eps=1e-4, momentum=0.3, affine=affine,
                                     track_running_stats=track)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, [(4, 3, 5, 6), (2, 3, 4, 4), (3, 4, 5), (5, 3, 3, 2)])


def test_instance_norm_module_momentum_none_matches_torch():
    check_module(InstanceNorm2d(2, momentum=None, track_running_stats=True),
                 torch.nn.InstanceNorm2d(2, momentum=None, track_running_stats=True),
                 [(3, 2, 4, 4), (2, 2, 3, 3)])


# ------------------------------------------------------------------ group norm
@pytest.mark.parametrize("trial", range(6))
def test_group_norm_matches_torch(trial):
    g = int(rng.integers(1, 4))
    c = g * int(rng.integers(1, 4))
    shape = (int(rng.integers(1, 4)), c) + _shape(2, 5, int(rng.integers(0, 3)))
    x = rng.standard_normal(shape) * 3
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    eps = float(rng.choice([1e-5, 0.01]))
    if x.size // (shape[0] * g) > 1:   # torch needs more than one value per group
        check_op(lambda x, w, b: F.group_norm(x, g, w, b, eps),
                 lambda x, w, b: TF.group_norm(x, g, w, b, eps), [x, w, b])
    x = rng.standard_normal((2, c, 3))
    check_op(lambda x: F.group_norm(x, g), lambda x: TF.group_norm(x, g), [x])


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_module_matches_torch(affine):
    ours, theirs = GroupNorm(3, 6, eps=1e-3, affine=affine), torch.nn.GroupNorm(3, 6, 1e-3, affine)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, [(4, 6, 5, 3), (2, 6, 4), (3, 6)])


def test_affine_without_bias_matches_torch():
    check_module(GroupNorm(2, 4, bias=False), torch.nn.GroupNorm(2, 4, bias=False), [(3, 4, 3)])
    check_module(InstanceNorm2d(3, affine=True, track_running_stats=True, bias=False),
                 torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True, bias=False),
                 [(2, 3, 4, 4), (3, 3, 2, 3)])
    check_module(nn.BatchNorm2d(3, bias=False), torch.nn.BatchNorm2d(3, bias=False),
                 [(2, 3, 4, 4), (3, 3, 2, 3)])
    for ours, theirs in [(GroupNorm(2, 4, affine=False), torch.nn.GroupNorm(2, 4, affine=False)),
                         (nn.BatchNorm1d(3, bias=False), torch.nn.BatchNorm1d(3, bias=False))]:
        assert repr(ours) == repr(theirs)


def test_group_norm_extremes_equal_layer_and_instance_norm():
    x = rng.standard_normal((2, 4, 3, 3))
    g1 = F.group_norm(cnnlab.Tensor(x), 1).data
    np.testing.assert_allclose(g1, F.layer_norm(cnnlab.Tensor(x), (4, 3, 3)).data, atol=1e-12)
    gc = F.group_norm(cnnlab.Tensor(x), 4).data
    np.testing.assert_allclose(gc, F.instance_norm(cnnlab.Tensor(x)).data, atol=1e-12)


# --------------------------------------------------------- local response norm
@pytest.mark.parametrize("trial", range(6))
def test_local_response_norm_matches_torch(trial):
    c = int(rng.integers(1, 9))
    size = int(rng.integers(1, 8))
    shape = (int(rng.integers(1, 3)), c) + _shape(1, 4, int(rng.integers(1, 4)))
    alpha, beta, k = float(rng.uniform(0.01, 2)), float(rng.uniform(0.3, 1.5)), \
        float(rng.uniform(0.5, 2.5))
    x = rng.standard_normal(shape) * 2
    check_op(lambda x: F.local_response_norm(x, size, alpha, beta, k),
             lambda x: TF.local_response_norm(x, size, alpha, beta, k), [x])


def test_local_response_norm_alexnet_settings_and_module():
    x = rng.standard_normal((2, 16, 5, 5)) * 10
    check_op(lambda x: F.local_response_norm(x, 5, 5e-4, 0.75, 2.0),
             lambda x: TF.local_response_norm(x, 5, 5e-4, 0.75, 2.0), [x])
    for size in (6, 7):   # window wider than the 3 channels, even and odd
        check_op(lambda x, size=size: F.local_response_norm(x, size, 0.7, 0.8, 1.2),
                 lambda x, size=size: TF.local_response_norm(x, size, 0.7, 0.8, 1.2),
                 [rng.standard_normal((2, 3, 2, 2))])
    ours, theirs = LocalResponseNorm(4, 0.3, 0.9, 1.5), torch.nn.LocalResponseNorm(4, 0.3, 0.9, 1.5)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, [(2, 6, 3, 3), (3, 6, 4)])


def test_local_response_norm_formula_by_hand():
    """size 3: channel c sees c-1, c, c+1 (zeros outside), alpha divided by size."""
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    y = F.local_response_norm(cnnlab.Tensor(x), 3, alpha=0.3, beta=0.5, k=1.0).data.ravel()
    sums = np.array([1 + 4, 1 + 4 + 9, 4 + 9 + 16, 9 + 16])
    np.testing.assert_allclose(y, x.ravel() / np.sqrt(1.0 + 0.1 * sums), rtol=1e-14)


# --------------------------------------------------------------- batch norm 1d
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False),
                                          (False, False)])
@pytest.mark.parametrize("dims", [2, 3])
def test_batchnorm1d_variants_match_torch(affine, track, dims):
    shapes = [(5, 4), (3, 4), (6, 4)] if dims == 2 else [(4, 4, 6), (2, 4, 3), (3, 4, 5)]
    ours = nn.BatchNorm1d(4, eps=1e-3, momentum=0.2, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm1d(4, eps=1e-3, momentum=0.2, affine=affine,
                                  track_running_stats=track)
    assert repr(ours) == repr(theirs)
    check_module(ours, theirs, shapes)


@pytest.mark.parametrize("affine,track", [(False, True), (True, False), (False, False)])
def test_batchnorm2d_variants_match_torch(affine, track):
    ours = nn.BatchNorm2d(3, momentum=None, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm2d(3, momentum=None, affine=affine, track_running_stats=track)
    check_module(ours, theirs, [(4, 3, 3, 3), (2, 3, 4, 2), (3, 3, 2, 2)])


def test_batchnorm1d_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4.*expects input \(N, 4\) or "
                                         r"\(N, 4, L\), got \(2, 4, 3, 3\)"):
        nn.BatchNorm1d(4)(cnnlab.Tensor(np.zeros((2, 4, 3, 3))))


# ----------------------------------------------------------------- activations
def with_zeros(shape):
    a = rng.standard_normal(shape) * 3
    a.reshape(-1)[::4] = 0.0
    return a


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5, 1.7])
def test_leaky_relu_matches_torch_including_zero(slope):
    x = with_zeros((3, 5, 4))
    check_op(lambda x: F.leaky_relu(x, slope), lambda x: TF.leaky_relu(x, slope), [x])
    check_op(LeakyReLU(slope), torch.nn.LeakyReLU(slope), [x])
    check_op(F.leaky_relu, TF.leaky_relu, [x])
    assert repr(LeakyReLU(slope)) == repr(torch.nn.LeakyReLU(slope))


@pytest.mark.parametrize("alpha", [1.0, 0.3, 2.5])
def test_elu_matches_torch_including_zero_and_large_inputs(alpha):
    x = with_zeros((4, 6))
    x[0, 1], x[1, 2] = 800.0, -800.0
    check_op(lambda x: F.elu(x, alpha), lambda x: TF.elu(x, alpha), [x])
    check_op(ELU(alpha), torch.nn.ELU(alpha), [x])
    check_op(F.elu, TF.elu, [x])
    assert repr(ELU(alpha)) == repr(torch.nn.ELU(alpha))


def test_scaled_tanh_values_and_equivalence():
    y = F.scaled_tanh(cnnlab.Tensor(np.array([-1.0, 0.0, 1.0]))).data
    a = 1.7159 * np.tanh(2.0 / 3.0)
    np.testing.assert_allclose(y, [-a, 0.0, a], rtol=1e-15)
    assert abs(y[2] - 1.0) < 1e-3 and abs(y[0] + 1.0) < 1e-3   # LeCun's f(+-1) ~ +-1
    big = F.scaled_tanh(cnnlab.Tensor(np.array([-50.0, 50.0]))).data
    np.testing.assert_allclose(big, [-1.7159, 1.7159], rtol=1e-15)
    x = with_zeros((3, 7))
    check_op(F.scaled_tanh, lambda x: 1.7159 * torch.tanh(x * (2.0 / 3.0)), [x])
    check_op(ScaledTanh(), lambda x: 1.7159 * torch.tanh(x * (2.0 / 3.0)), [x])


@pytest.mark.parametrize("shape,dim", [((3, 5), None), ((2, 3, 4), None), ((2, 3, 4, 2), None),
                                       ((5,), None), ((2, 3, 4), -1), ((2, 3, 4, 2), 2)])
def test_softmax_modules_match_torch(shape, dim):
    x = rng.standard_normal(shape) * 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch's implicit-dim deprecation warning
        check_op(nn.Softmax(dim), torch.nn.Softmax(dim), [x])
        check_op(nn.LogSoftmax(dim), torch.nn.LogSoftmax(dim), [x])
    assert repr(nn.Softmax(dim)) == repr(torch.nn.Softmax(dim))
    assert repr(nn.LogSoftmax(dim)) == repr(torch.nn.LogSoftmax(dim))


# -------------------------------------------------------------------- dropout2d
def test_dropout2d_mask_is_per_channel_and_scaled():
    cnnlab.manual_seed(3)
    x = cnnlab.Tensor(np.ones((8, 50, 3, 4)), requires_grad=True)
    p = 0.3
    y = F.dropout2d(x, p)
    ratio = y.data   # x is all ones
    per_channel = ratio.reshape(8, 50, -1)
    assert np.all(per_channel == per_channel[..., :1])           # constant per channel
    vals = set(np.unique(per_channel).tolist())
    assert vals == {0.0, 1 / (1 - p)}
    dropped = float((per_channel[..., 0] == 0).mean())
    assert 0.2 < dropped < 0.4
    up = rng.standard_normal(y.shape)
    (y * cnnlab.Tensor(up)).sum().backward()
    np.testing.assert_array_equal(x.grad, up * ratio)             # same mask in backward


def test_dropout2d_unbatched_eval_edges_and_dtype():
    cnnlab.manual_seed(0)
    x = cnnlab.Tensor(np.ones((40, 2, 3), dtype=np.float32))
    y = F.dropout2d(x, 0.5)
    assert y.dtype == np.float32
    per = y.data.reshape(40, -1)
    assert np.all(per == per[:, :1]) and set(np.unique(per).tolist()) == {0.0, 2.0}
    assert F.dropout2d(x, 0.5, training=False) is x
    assert F.dropout2d(x, 0.0) is x
    assert np.all(F.dropout2d(x, 1.0).data == 0)
    m = Dropout2d(0.4)
    assert repr(m) == "Dropout2d(p=0.4)"
    m.eval()
    assert m(x) is x
    m.train()
    assert not np.array_equal(m(x).data, x.data)


def test_dropout2d_is_reproducible_with_manual_seed():
    x = cnnlab.Tensor(rng.standard_normal((4, 16, 2, 2)))
    cnnlab.manual_seed(7)
    a = Dropout2d(0.5)(x).data
    cnnlab.manual_seed(7)
    b = F.dropout2d(x, 0.5).data
    c = F.dropout2d(x, 0.5).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout2d_gradcheck_with_fixed_mask():
    x, = leaves(rng.standard_normal((2, 3, 2, 2)))

    def fn(x):
        cnnlab.manual_seed(11)
        return F.dropout2d(x, 0.4)
    cnnlab.gradcheck(fn, [x])


# ------------------------------------------------------------------- gradcheck
def _gc(fn, *arrays):
    cnnlab.gradcheck(fn, leaves(*arrays))


def test_gradcheck_norm_layers():
    x = rng.standard_normal((2, 4, 3)) * 2
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    _gc(lambda x, w, b: F.layer_norm(x, (4, 3), w.reshape(4, 1) * cnnlab.Tensor(np.ones((4, 3))),
                                     b.reshape(4, 1) * cnnlab.Tensor(np.ones((4, 3)))), x, w, b)
    _gc(lambda x: F.layer_norm(x, 3), x)
    _gc(lambda x, w, b: F.instance_norm(x, None, None, w, b), x, w, b)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    _gc(lambda x, w, b: F.instance_norm(x, rm, rv, w, b, use_input_stats=False), x, w, b)
    _gc(lambda x, w, b: F.group_norm(x, 2, w, b), x, w, b)
    _gc(lambda x: F.local_response_norm(x, 3, 0.5, 0.75, 1.0), x)
    _gc(lambda x: F.local_response_norm(x, 4, 1.0, 1.2, 0.7), rng.standard_normal((1, 5, 2, 2)))


def test_gradcheck_activations():
    x = rng.standard_normal((3, 5))
    x[np.abs(x) < 1e-3] = 0.5   # keep away from the kinks
    _gc(lambda x: F.leaky_relu(x, 0.1), x)
    _gc(lambda x: F.elu(x, 1.3), x)
    _gc(F.scaled_tanh, x * 2)


# ------------------------------------------------------------------- dtype
def test_float32_stays_float32():
    x = cnnlab.Tensor(rng.standard_normal((2, 4, 3, 3)).astype(np.float32), requires_grad=True)
    outs = [F.layer_norm(x, (3, 3)), F.instance_norm(x), F.group_norm(x, 2),
            F.local_response_norm(x, 3), F.leaky_relu(x), F.elu(x), F.scaled_tanh(x),
            F.dropout2d(x), InstanceNorm2d(4, affine=True, track_running_stats=True)(x),
            GroupNorm(2, 4)(x), LayerNorm(3)(x)]
    for y in outs:
        assert y.dtype == np.float32
        x.grad = None
        y.sum().backward()
        assert x.grad.dtype == np.float32


# ------------------------------------------------------------------- errors
def test_errors_name_the_layer_and_values():
    z = cnnlab.Tensor(np.zeros((2, 6, 4, 4)))
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(10\) must be divisible by "
                                         r"num_groups \(3\)"):
        GroupNorm(3, 10)
    with pytest.raises(ValueError, match=r"group_norm: the number of channels \(6\) must be "
                                         r"divisible by num_groups \(4\)"):
        F.group_norm(z, 4)
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4.*expects input \(N, 4, \*\), "
                                         r"got \(2, 6, 4, 4\)"):
        GroupNorm(2, 4)(z)
    with pytest.raises(ValueError, match=r"LayerNorm\(\(5,\).*expects input \(\*, 5\), "
                                         r"got \(2, 6, 4, 4\)"):
        LayerNorm(5)(z)
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape=\[6, 3\]"):
        F.layer_norm(z, (6, 3))
    with pytest.raises(ValueError, match=r"layer_norm: expected weight of shape \(4,\), got \(3,\)"):
        F.layer_norm(z, 4, cnnlab.Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(4.*expects input \(N, 4, H, W\) or "
                                         r"\(4, H, W\), got \(2, 6, 4, 4\)"):
        InstanceNorm2d(4, affine=True)(z)
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(4.*got \(2, 4\)"):
        InstanceNorm2d(4)(cnnlab.Tensor(np.zeros((2, 4))))
    with pytest.warns(UserWarning, match="InstanceNorm2d"):
        InstanceNorm2d(4)(z)
    with pytest.raises(ValueError, match=r"instance_norm: expected more than 1 spatial element"):
        F.instance_norm(cnnlab.Tensor(np.zeros((2, 3, 1, 1))))
    with pytest.raises(ValueError, match=r"instance_norm: use_input_stats=False needs"):
        F.instance_norm(z, use_input_stats=False)
    with pytest.raises(ValueError, match=r"LocalResponseNorm: size must be a positive int, got 0"):
        LocalResponseNorm(0)
    with pytest.raises(ValueError, match=r"local_response_norm: expected input \(N, C, \*\)"):
        F.local_response_norm(cnnlab.Tensor(np.zeros((2, 6))), 3)
    with pytest.raises(ValueError, match=r"Dropout2d: probability has to be between 0 and 1, "
                                         r"got 1.5"):
        Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"dropout2d: probability .* got -0.1"):
        F.dropout2d(z, -0.1)
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5\) expects input \(N, C, H, W\) or "
                                         r"\(C, H, W\), got \(2, 6\)"):
        Dropout2d()(cnnlab.Tensor(np.zeros((2, 6))))


def test_new_layers_are_exported():
    for name in ["dropout2d", "elu", "leaky_relu", "scaled_tanh", "group_norm", "instance_norm",
                 "layer_norm", "local_response_norm"]:
        assert callable(getattr(F, name)), name
    for name in ["ELU", "LeakyReLU", "ScaledTanh", "InstanceNorm2d", "Dropout2d"]:
        assert hasattr(nn, name), name
