"""cnnlab.convert: FC layers -> conv layers (the notes 000/001), exact in float64."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
from cnnlab.convert import fc_to_conv, total_stride
from cnnlab.models import get_model
from cnnlab.random import get_rng_state

TOL = 1e-10


def run(model, x):
    with cnnlab.no_grad():
        return model(cnnlab.Tensor(x)).data


def make(name, **kw):
    cnnlab.manual_seed(0)
    return get_model(name, **kw).double().eval()


def vgg_like(pool: int, num_classes: int = 7):
    """A small VGG: 3x3 'same' convs, 2x2 pools, adaptive pool, dropout classifier."""
    cnnlab.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
        nn.Linear(16 * pool * pool, 32), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(32, 32), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(32, num_classes)).double().eval()


def unpadded_net(head):
    """No layer pads, so the crop equality is exact everywhere; ``head`` ends it."""
    cnnlab.manual_seed(2)
    return nn.Sequential(nn.Conv2d(2, 6, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 5, 3), nn.Tanh(), *head).double().eval()


@pytest.fixture(scope="module")
def alexnet64():
    return make("alexnet", num_classes=10, input_size=64)


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_same_scores_at_training_size(size):
    model = make("lenet5", input_size=size)
    conv = fc_to_conv(model, (1, size, size))
    x = np.random.default_rng(0).standard_normal((3, 1, size, size))
    out = run(conv, x)
    assert out.shape == (3, 10, 1, 1)
    np.testing.assert_allclose(out[:, :, 0, 0], run(model, x), rtol=0, atol=TOL)
    convs = [m for m in conv.children() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size for m in convs] == [(5, 5), (5, 5), (5, 5), (1, 1), (1, 1)]
    assert not any(isinstance(m, (nn.Linear, nn.Flatten)) for m in conv.modules())
    fc1 = model.classifier[0]
    np.testing.assert_array_equal(convs[2].weight.data.reshape(120, -1), fc1.weight.data)
    np.testing.assert_array_equal(convs[2].bias.data, fc1.bias.data)


@pytest.mark.parametrize("pool", [4, 2, 1])   # identity at 16x16 input, folded, global
def test_vgg_like_sequential_with_adaptive_pool(pool):
    model = vgg_like(pool)
    conv = fc_to_conv(model, (3, 16, 16))
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16))
    out = run(conv, x)
    assert out.shape == (2, 7, 1, 1)
    np.testing.assert_allclose(out[:, :, 0, 0], run(model, x), rtol=0, atol=TOL)
    assert not any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.Linear)) for m in conv.modules())
    assert sum(isinstance(m, nn.Dropout) for m in conv.modules()) == 2
    first = [m for m in conv.children() if isinstance(m, nn.Conv2d)][2]
    assert first.kernel_size == ((1, 1) if pool == 1 else (4, 4))   # 4x4 maps before the pool


def test_alexnet64_same_scores_and_pool_folded(alexnet64):
    model = alexnet64
    conv = fc_to_conv(model, (3, 64, 64))
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 64))
    out = run(conv, x)
    assert out.shape == (2, 10, 1, 1)
    np.testing.assert_allclose(out[:, :, 0, 0], run(model, x), rtol=0, atol=TOL)
    # at 64x64 the features are 1x1x256, which AdaptiveAvgPool2d(6) copies to 6x6:
    # the first FC becomes a 1x1 conv whose weight sums the 36 copies
    fc6 = [m for m in conv.children() if isinstance(m, nn.Conv2d)][5]
    assert fc6.weight.shape == (4096, 256, 1, 1)
    w = model.classifier[1].weight.data.reshape(4096, 256, 36).sum(axis=2)
    np.testing.assert_allclose(fc6.weight.data[:, :, 0, 0], w, rtol=1e-12, atol=1e-15)
    assert total_stride(model, (3, 64, 64)) == (32, 32)


def test_unpadded_lenet5_sliding_equals_model_on_every_crop():
    model = make("lenet5", input_size=32)               # conv1 unpadded
    conv = fc_to_conv(model, (1, 32, 32))
    s, _ = total_stride(model, (1, 32, 32))
    assert s == 4
    x = np.random.default_rng(3).standard_normal((2, 1, 45, 66))
    out = run(conv, x)
    assert out.shape == (2, 10, (45 - 32) // s + 1, (66 - 32) // s + 1)    # (2, 10, 4, 9)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            crop = x[:, :, i * s:i * s + 32, j * s:j * s + 32]
            np.testing.assert_allclose(out[:, :, i, j], run(model, crop), rtol=0, atol=TOL)


def test_padded_lenet5_sliding_rule():
    """LeNet5 at 28x28 pads conv1 by P = 2.  The converted net pads the whole
    image once, so cell (i, j) is the model *with conv1's padding disabled* on the
    32x32 window at (4i, 4j) of the zero-padded image -- exactly, for every cell.
    That equals the model on the 28x28 crop at (4i, 4j) exactly when the 2-pixel
    ring around the crop in the padded image is zero."""
    model = make("lenet5", input_size=28)
    conv = fc_to_conv(model, (1, 28, 28))
    s, P = 4, 2
    assert total_stride(model, (1, 28, 28)) == (s, s)
    unpadded = copy.deepcopy(model)
    unpadded.features[0].padding = (0, 0)

    rng = np.random.default_rng(4)
    x = np.zeros((1, 1, 44, 60))
    x[..., 10:30, 6:26] = rng.random((20, 20))            # two objects on a zero background
    x[..., 12:32, 38:58] = rng.random((20, 20))
    x[..., 40, 2] = 1.0                                   # and a stray pixel
    out = run(conv, x)
    assert out.shape == (1, 10, 5, 9)
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    n_equal = n_differ = 0
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = xp[:, :, i * s:i * s + 28 + 2 * P, j * s:j * s + 28 + 2 * P]
            np.testing.assert_allclose(out[:, :, i, j], run(unpadded, window), rtol=0, atol=TOL)
            ring = window.copy()
            ring[:, :, P:-P, P:-P] = 0
            crop = x[:, :, i * s:i * s + 28, j * s:j * s + 28]
            close = np.allclose(out[:, :, i, j], run(model, crop), rtol=0, atol=TOL)
            if not ring.any():
                assert close, (i, j)
                n_equal += 1
            else:
                n_differ += not close
    assert n_equal == 7 and n_differ == 45 - 7       # both cases occur; the ring rule is tight


@pytest.mark.parametrize("head", [
    [nn.AdaptiveAvgPool2d(1), nn.Flatten()],                                  # NIN-style, no FC
    [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(5, 3)],
    [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(), nn.Linear(20, 6), nn.ReLU(),
     nn.Linear(6, 3)],                                                        # folded
], ids=["global-avg", "global-max", "fold"])
def test_adaptive_pool_rules_slide_exactly(head):
    model = unpadded_net(head)                  # 14x14 -> 12 -> 6 -> 4x4 maps of 5
    conv = fc_to_conv(model, (2, 14, 14))
    assert not any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
                   for m in conv.modules())
    s, _ = total_stride(model, (2, 14, 14))
    assert s == 2
    x = np.random.default_rng(5).standard_normal((2, 2, 21, 18))
    out = run(conv, x)
    assert out.shape[2:] == ((21 - 14) // s + 1, (18 - 14) // s + 1)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            crop = x[:, :, i * s:i * s + 14, j * s:j * s + 14]
            np.testing.assert_allclose(out[:, :, i, j], run(model, crop), rtol=0, atol=TOL)


def test_vector_layers_batchnorm1d_and_log_softmax():
    cnnlab.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 12),
                          nn.BatchNorm1d(12), nn.ELU(), nn.Linear(12, 5),
                          nn.LogSoftmax(dim=1)).double()
    bn = model[4]
    bn.running_mean = np.linspace(-1, 1, 12)
    bn.running_var = np.linspace(0.5, 2, 12)
    bn.weight.data[:] = np.linspace(0.5, 1.5, 12)
    model.eval()
    conv = fc_to_conv(model, (1, 8, 8))
    assert isinstance(conv[4], nn.BatchNorm2d) and conv[7].dim == 1
    x = np.random.default_rng(6).standard_normal((3, 1, 8, 8))
    np.testing.assert_allclose(run(conv, x)[:, :, 0, 0], run(model, x), rtol=0, atol=TOL)
    big = run(conv, np.random.default_rng(7).standard_normal((3, 1, 12, 10)))
    assert big.shape == (3, 5, 5, 3)
    np.testing.assert_allclose(np.exp(big).sum(axis=1), 1.0, rtol=1e-12)  # softmax over classes


def test_original_untouched_and_parameters_copied():
    model = make("lenet5", input_size=28).train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    params = [id(p) for p in model.parameters()]
    rng_before = get_rng_state()
    conv = fc_to_conv(model, (1, 28, 28))
    assert get_rng_state() == rng_before              # conversion draws no random numbers
    after = model.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    assert [id(p) for p in model.parameters()] == params
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training and conv.training           # modes kept (dropout, batch norm)
    assert all(m.training for m in conv.modules())
    for p in conv.parameters():
        assert not any(np.shares_memory(p.data, q.data) for q in model.parameters())
    for p in conv.parameters():
        p.data[...] = 0.0
    for k in before:
        np.testing.assert_array_equal(model.state_dict()[k], before[k])
    assert isinstance(model.classifier[0], nn.Linear)
    assert fc_to_conv(model.eval(), (1, 28, 28))[0].training is False


def test_converting_a_converted_net_is_a_no_op():
    model = make("lenet5", input_size=28)
    once = fc_to_conv(model, (1, 28, 28))
    twice = fc_to_conv(once, (1, 28, 28))
    x = np.random.default_rng(8).standard_normal((1, 1, 40, 36))
    np.testing.assert_array_equal(run(twice, x), run(once, x))
    assert total_stride(once, (1, 28, 28)) == (4, 4)


def test_non_chain_models_get_a_clear_error():
    model = get_model("resnet20", num_classes=10).eval()
    with pytest.raises(ValueError, match=r"not a plain chain.*input of 'layer1\.0\.relu'.*"
                                         r"residual addition"):
        fc_to_conv(model, (3, 32, 32))

    class Scaled(nn.Module):            # computes its output outside any layer
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))

        def forward(self, x):
            return self.body(x) * 2.0

    with pytest.raises(ValueError, match="output is not the output of its last layer"):
        fc_to_conv(Scaled(), (1, 4, 4))


def test_unconvertible_layers_are_refused():
    cnnlab.manual_seed(4)
    with pytest.raises(ValueError, match="neither the identity nor global"):
        fc_to_conv(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d(2), nn.Flatten(),
                                 nn.Linear(8, 2)), (1, 6, 6))
    with pytest.raises(ValueError, match="not by a Linear"):
        fc_to_conv(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(2), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(8, 2)), (1, 6, 6))
    with pytest.raises(NotImplementedError, match="LayerNorm"):
        fc_to_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.LayerNorm(3)), (1, 2, 2))
    with pytest.raises(ValueError, match="input_size must be"):
        fc_to_conv(nn.Sequential(nn.Flatten()), 28)
