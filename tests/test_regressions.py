"""Regression tests for defects found in review (each reproduced before the fix)."""
import os
import zipfile

import numpy as np
import pytest
from helpers import _torch, check_op

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab import serialization as ser
from cnnlab.kernels import _numba as nb
from cnnlab.models import lenet5

torch = _torch()
TF = torch.nn.functional


@pytest.mark.parametrize("numba_on", [True, False])
def test_max_pool_on_a_batch_one_slice_of_a_channel_major_conv_output(monkeypatch, numba_on):
    if numba_on and not nb.AVAILABLE:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(nb, "AVAILABLE", numba_on)
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(1, 6, 5).double()
    h = conv(cnnlab.Tensor(rng.standard_normal((4, 1, 28, 28))))
    part = h[:1]                                  # channel-major memory, batch 1
    base = part.data.copy()
    for fn, tfn in [(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2)),
                    (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: TF.max_pool2d(t, 3, 2, 1))]:
        xt = cnnlab.Tensor(part.data, requires_grad=True)
        y = fn(xt)
        tx = torch.tensor(base, requires_grad=True)
        ty = tfn(tx)
        np.testing.assert_array_equal(y.data, ty.detach().numpy())
        y.backward(np.ones(y.shape))
        ty.backward(torch.ones(ty.shape, dtype=torch.float64))
        np.testing.assert_array_equal(xt.grad, tx.grad.numpy())


def test_vector_dot_vector_backward():
    rng = np.random.default_rng(1)
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal(3), rng.standard_normal(3)])


def test_transpose_two_axes_swaps_also_in_2d():
    t = cnnlab.Tensor(np.arange(6.0).reshape(2, 3))
    assert t.transpose(0, 1).shape == (3, 2)
    assert t.transpose(0, -1).shape == (3, 2)
    assert t.transpose(1, 1).shape == (2, 3)
    assert cnnlab.Tensor(np.zeros((2, 3, 4))).transpose(0, 2, 1).shape == (2, 4, 3)


def test_comparisons_have_the_right_truth_value():
    assert not bool(cnnlab.Tensor([3.0]) < 2)
    assert bool(cnnlab.Tensor(3.0) > 2)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(cnnlab.Tensor([1.0, 2.0]) > 0)


def test_integer_power_is_not_truncated_and_x_to_the_zero_has_zero_gradient():
    np.testing.assert_allclose(cnnlab.Tensor([4, 9]) ** 0.5, [2.0, 3.0])
    x = cnnlab.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kw", [dict(ceil_mode=True), dict(kernel_size=3, stride=2, ceil_mode=True),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=3, stride=1, dilation=2),
                                dict(kernel_size=2, stride=1, dilation=(2, 1), padding=1)])
def test_max_pool_ceil_mode_and_dilation_match_torch(kw):
    kw = {"kernel_size": 2, **kw}
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 8))
    check_op(lambda t: F.max_pool2d(t, **kw), lambda t: TF.max_pool2d(t, **kw), [x])


def test_max_pool_return_indices_and_nan_match_torch():
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 7))
    x[0, 0, 1, 1] = np.nan
    y, idx = F.max_pool2d(cnnlab.Tensor(x), 3, 2, 1, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y.data, ty.numpy())        # NaN propagates
    np.testing.assert_array_equal(idx.data, tidx.numpy())


@pytest.mark.parametrize("kw", [dict(), dict(ceil_mode=True), dict(padding=1, ceil_mode=True),
                                dict(padding=1, ceil_mode=True, count_include_pad=False),
                                dict(stride=2, divisor_override=3)])
def test_avg_pool_ceil_mode_and_divisor_match_torch(kw):
    x = np.random.default_rng(4).standard_normal((2, 2, 8, 7))
    check_op(lambda t: F.avg_pool2d(t, 3, **kw), lambda t: TF.avg_pool2d(t, 3, **kw), [x])
    # the 5th positional argument is ceil_mode, as in torch
    check_op(lambda t: F.avg_pool2d(t, 3, 1, 1, False), lambda t: TF.avg_pool2d(t, 3, 1, 1, False), [x])


def test_any_damaged_byte_gives_checkpoint_error_or_intact_data(tmp_path):
    arrays = {"model/w": np.arange(40, dtype=np.float32).reshape(5, 8), "model/n": np.array(3)}
    p = ser.save_arrays(tmp_path / "c.npz", arrays, {"epoch": 1})
    data = p.read_bytes()
    bad = tmp_path / "bad.npz"
    for pos in range(0, len(data), max(1, len(data) // 300)):
        for bit in (0x01, 0x80):
            b = bytearray(data)
            b[pos] ^= bit
            bad.write_bytes(bytes(b))
            try:
                got, meta = ser.load_arrays(bad)
            except ser.CheckpointError:
                continue
            # an unchecked header field (e.g. a zip timestamp) may change harmlessly
            assert meta == {"epoch": 1}
            for k, v in arrays.items():
                np.testing.assert_array_equal(got[k], v)


def test_checkpoint_files_get_a_normal_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        p = ser.save_arrays(tmp_path / "c.npz", {"a": np.zeros(2)})
    finally:
        os.umask(umask)
    assert (p.stat().st_mode & 0o777) == 0o644
    assert zipfile.is_zipfile(p)


def test_layer_shape_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"Conv2d\(6, 16, kernel_size=\(5, 5\).*smaller than"):
        lenet5()(cnnlab.Tensor(np.zeros((2, 1, 8, 8), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=\(3, 3\).*smaller than the window"):
        nn.MaxPool2d(3)(cnnlab.Tensor(np.zeros((1, 1, 2, 2))))


def test_buffers_accept_tensors():
    m = nn.Module()
    m.register_buffer("stat", cnnlab.Tensor(np.ones(3)))
    m.stat = cnnlab.Tensor(np.zeros(3))
    assert isinstance(m.state_dict()["stat"], np.ndarray) and m.state_dict()["stat"].dtype == np.float64
    np.testing.assert_array_equal(m.state_dict()["stat"], 0)


def test_batchnorm_cumulative_average_matches_torch():
    ours, theirs = nn.BatchNorm2d(2, momentum=None).double(), torch.nn.BatchNorm2d(2, momentum=None)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.standard_normal((4, 2, 3, 3))
        ours(cnnlab.Tensor(x))
        theirs(torch.tensor(x))
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), atol=1e-12, err_msg=k)
    with pytest.raises(ValueError):
        ours(cnnlab.Tensor(np.zeros((1, 2, 1, 1))))
    assert int(ours.num_batches_tracked) == 3      # a rejected batch is not counted


def test_leaf_gradients_are_private_arrays():
    a = cnnlab.Tensor(np.ones(3), requires_grad=True)
    b = cnnlab.Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad[...] = 0
    assert b.grad.tolist() == [1.0, 1.0, 1.0]
    g = np.ones(3)
    c = cnnlab.Tensor(np.ones(3), requires_grad=True)
    c.backward(g)
    assert c.grad is not g


def test_summary_of_lenet5_1998_strides_macs_and_ceil_mode():
    from cnnlab.models import get_model
    from cnnlab.summary import summary

    s = summary(get_model("lenet5_1998"), (1, 32, 32), verbose=False)
    rows = {r.name: r for r in s.rows}
    assert rows["s2"].rf.jump == (2, 2) and rows["c3"].rf.size == (14, 14)   # subsampling strides
    assert rows["c3"].macs == 10 * 10 * 60 * 25                              # connected maps only
    assert rows["output"].macs == 840
    assert summary(nn.Sequential(nn.MaxPool2d(2, 2, ceil_mode=True)), (1, 5, 5),
                   verbose=False).warnings == []
    t = summary(nn.Sequential(nn.ConvTranspose2d(2, 3, 3, stride=2), nn.Conv2d(3, 3, 3)), (2, 5, 5),
                verbose=False)
    assert t.rows[0].macs == 2 * 5 * 5 * 3 * 9 and "?" in str(t)             # field not modelled


def test_fc_to_conv_refuses_a_partial_ceil_mode_window():
    from cnnlab.convert import fc_to_conv

    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
                      nn.Linear(32, 3))
    with pytest.raises(ValueError, match="ceil_mode"):
        fc_to_conv(m, (1, 9, 9))


def test_evaluation_transform_follows_the_test_images_size():
    from cnnlab.training.run import input_transform

    spec = {"kwargs": {"input_size": 32}, "input": {"from": 28, "to": 32, "how": "pad"}}
    assert input_transform(spec, None, 1)(np.zeros((1, 1, 28, 28))).shape == (1, 1, 32, 32)
    assert input_transform(spec, None, 1, size=8)(np.zeros((1, 1, 8, 8))).shape == (1, 1, 32, 32)
    assert input_transform(spec, None, 1, size=32) is None


def test_a_diverged_step_leaves_the_weights_finite():
    from cnnlab.optim import SGD
    from cnnlab.training.loop import train_one_epoch

    m = nn.Linear(2, 2).double()
    m.weight.data[...] = 2.0                     # a finite input whose logits overflow to inf
    x = cnnlab.Tensor(np.array([[1e308, 1e308]]))  # (a NaN or inf input is named as such instead)
    with pytest.raises(FloatingPointError, match="diverged"), np.errstate(all="ignore"):
        train_one_epoch(m, [(x, cnnlab.Tensor(np.array([0])))], SGD(m.parameters(), lr=0.1))
    assert all(np.all(np.isfinite(p.data)) for p in m.parameters())
