"""Distance-weighted average pooling (Deep Learning ch. 9.3's fourth pooling
function): gradcheck, a window computed by hand, equality with average pooling
for a flat profile, and with torch's depthwise convolution by the normalised
weights (count_include_pad=True makes it exactly that)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import _torch

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F

torch = _torch()


def T(a, grad=False):
    return cnnlab.Tensor(np.array(a, dtype=np.float64), requires_grad=grad)


def flat(r):
    return np.ones_like(r)


CASES = [  # kernel, stride, padding, count_include_pad
    (3, 1, 0, True), (3, 2, 1, True), (3, 2, 1, False), ((2, 3), (1, 2), (1, 1), False),
    (5, 3, 2, False), (4, 2, 0, True),
]


@pytest.mark.parametrize("k,s,p,cip", CASES)
def test_gradcheck(k, s, p, cip):
    x = T(np.random.default_rng(0).standard_normal((2, 2, 7, 8)), True)
    cnnlab.gradcheck(lambda t: F.distance_weighted_pool2d(t, k, s, p, sigma=0.8,
                                                          count_include_pad=cip), [x])
    cnnlab.gradcheck(lambda t: F.distance_weighted_pool2d(t, k, s, p, profile=lambda r: 1 / (1 + r),
                                                          count_include_pad=cip), [x])


@pytest.mark.parametrize("k,s,p,cip", CASES)
def test_flat_profile_is_average_pooling(k, s, p, cip):
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8))
    y = F.distance_weighted_pool2d(T(x), k, s, p, profile=flat, count_include_pad=cip).data
    np.testing.assert_allclose(y, F.avg_pool2d(T(x), k, s, p, count_include_pad=cip).data,
                               atol=1e-14)
    ref = torch.nn.functional.avg_pool2d(torch.tensor(x), k, s, p, count_include_pad=cip).numpy()
    np.testing.assert_allclose(y, ref, atol=1e-14)
    # and the gradients: avg pooling's backward
    a, b = T(x, True), T(x, True)
    g = np.random.default_rng(2).standard_normal(y.shape)
    (F.distance_weighted_pool2d(a, k, s, p, profile=flat, count_include_pad=cip) * T(g)).sum().backward()
    (F.avg_pool2d(b, k, s, p, count_include_pad=cip) * T(g)).sum().backward()
    np.testing.assert_allclose(a.grad, b.grad, atol=1e-14)


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 0), ((3, 5), (2, 1), (1, 2))])
def test_equals_torch_depthwise_conv_with_normalised_weights(k, s, p):
    """With padding counted, y = conv2d(x, w / sum w) per channel: torch's numbers
    for the output and the input gradient, in float64."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 9))
    g = rng.standard_normal(F.distance_weighted_pool2d(T(x), k, s, p, sigma=1.3).shape)
    t = T(x, True)
    y = F.distance_weighted_pool2d(t, k, s, p, sigma=1.3)
    (y * T(g)).sum().backward()
    w = F.distance_weights(k, sigma=1.3)
    tx = torch.tensor(x, requires_grad=True)
    kernel = torch.tensor(np.broadcast_to(w, (3, 1, *w.shape)).copy())
    ty = torch.nn.functional.conv2d(tx, kernel, stride=s, padding=p, groups=3)
    (ty * torch.tensor(g)).sum().backward()
    assert np.abs(y.data - ty.detach().numpy()).max() <= 1e-12
    assert np.abs(t.grad - tx.grad.numpy()).max() <= 1e-12


def test_a_window_by_hand():
    # 3x3 window, sigma = 1: centre weight 1, edge neighbours e^-1/2, corners e^-1
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    e, c = math.exp(-0.5), math.exp(-1.0)
    num = 4 * 1 + e * (1 + 3 + 5 + 7) + c * (0 + 2 + 6 + 8)
    den = 1 + 4 * e + 4 * c
    assert F.distance_weighted_pool2d(T(x), 3).item() == pytest.approx(num / den, abs=1e-14)
    # the top-left output of a padded pool: its window covers x[0:2, 0:2] at positions
    # (1, 1) centre, (1, 2) and (2, 1) edges, (2, 2) corner; the rest is padding
    real = 0 * 1 + 1 * e + 3 * e + 4 * c
    with_pad = F.distance_weighted_pool2d(T(x), 3, 1, 1).data[0, 0, 0, 0]
    assert with_pad == pytest.approx(real / den, abs=1e-14)          # padding counts (zeros)
    without = F.distance_weighted_pool2d(T(x), 3, 1, 1, count_include_pad=False).data[0, 0, 0, 0]
    assert without == pytest.approx(real / (1 + 2 * e + c), abs=1e-14)   # renormalised


def test_weights_are_radial_and_normalised():
    w = F.distance_weights(5, sigma=2.0)
    assert w.shape == (5, 5) and w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert w[2, 2] == w.max()
    r = np.hypot(*np.meshgrid(np.arange(5) - 2.0, np.arange(5) - 2.0, indexing="ij"))
    np.testing.assert_allclose(w, np.exp(-r ** 2 / 8) / np.exp(-r ** 2 / 8).sum(), atol=1e-15)
    # an even kernel's centre lies between pixels: the four middle weights are equal
    w4 = F.distance_weights(4, profile=lambda r: np.maximum(0, 3 - r))
    assert w4[1, 1] == w4[1, 2] == w4[2, 1] == w4[2, 2] == w4.max()


def test_module_unbatched_float32_repr_and_errors():
    layer = nn.DistanceWeightedPool2d(3, stride=2, padding=1, sigma=0.5)
    assert repr(layer) == ("DistanceWeightedPool2d(kernel_size=(3, 3), stride=(2, 2), "
                           "padding=(1, 1), sigma=0.5)")
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    x = np.random.default_rng(4).random((2, 6, 6)).astype(np.float32)
    y = layer(cnnlab.Tensor(x))
    assert y.shape == (2, 3, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, F.distance_weighted_pool2d(T(x), 3, 2, 1, sigma=0.5).data,
                               rtol=1e-6)
    assert nn.DistanceWeightedPool2d(2).sigma == 1.0
    assert "profile=flat" in repr(nn.DistanceWeightedPool2d(2, profile=flat))
    with pytest.raises(ValueError, match="sigma must be positive"):
        F.distance_weighted_pool2d(T(x), 3, sigma=0)
    with pytest.raises(ValueError, match=r"DistanceWeightedPool2d.*sigma \(a Gaussian.*not both"):
        nn.DistanceWeightedPool2d(3, sigma=1.0, profile=flat)
    with pytest.raises(ValueError, match="finite and >= 0"):
        nn.DistanceWeightedPool2d(3, profile=lambda r: 1 - r)
    with pytest.raises(ValueError, match="sum to 0"):
        F.distance_weights(3, profile=np.zeros_like)
    with pytest.raises(TypeError, match="profile must be a callable"):
        F.distance_weights(3, profile=[1, 2, 3])
    # only the corners weigh: the padded top-left window still has one real corner
    corners = F.distance_weighted_pool2d(T(x), 3, 1, 1, profile=lambda r: (r > 1.2).astype(float),
                                         count_include_pad=False).data
    np.testing.assert_allclose(corners[:, 0, 0], x[:, 1, 1], rtol=1e-6)
    with pytest.raises(ValueError, match=r"DistanceWeightedPool2d\(.*smaller than the window"):
        nn.DistanceWeightedPool2d(9)(cnnlab.Tensor(x))
