"""Module machinery: parameters, buffers, state_dict, dtype, repr, errors, models."""
import numpy as np
import pytest
from helpers import _torch

import cnnlab
import cnnlab.nn as nn
from cnnlab.models import get_model, lenet5, list_models

torch = _torch()


def torch_lenet():
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))


def test_named_parameters_follow_pytorch_names_and_shapes():
    m = lenet5()
    names = {k: v.shape for k, v in m.named_parameters()}
    assert names == {
        "features.0.weight": (6, 1, 5, 5), "features.0.bias": (6,),
        "features.3.weight": (16, 6, 5, 5), "features.3.bias": (16,),
        "classifier.0.weight": (120, 400), "classifier.0.bias": (120,),
        "classifier.2.weight": (84, 120), "classifier.2.bias": (84,),
        "classifier.4.weight": (10, 84), "classifier.4.bias": (10,),
    }
    assert sum(p.numel() for p in m.parameters()) == 61706   # the classic LeNet-5 count


def test_torch_weights_load_and_give_the_same_logits_and_gradients():
    tm = torch_lenet()
    m = lenet5().double()
    t_sd = tm.state_dict()
    ours = {}
    for (k, _), tk in zip(m.state_dict().items(), t_sd):
        ours[k] = t_sd[tk]
    m.load_state_dict(ours)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    y = np.array([1, 7, 3])
    logits = m(cnnlab.Tensor(x))
    tlogits = tm(torch.tensor(x))
    np.testing.assert_allclose(logits.data, tlogits.detach().numpy(), atol=1e-10, rtol=0)
    cnnlab.nn.functional.cross_entropy(logits, y).backward()
    torch.nn.functional.cross_entropy(tlogits, torch.tensor(y)).backward()
    for (name, p), tp in zip(m.named_parameters(), tm.parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), atol=1e-10, rtol=0, err_msg=name)


def test_state_dict_round_trip_through_a_file(tmp_path):
    cnnlab.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 6 * 6, 3))
    a(cnnlab.Tensor(np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)))  # moves BN stats
    cnnlab.save(a.state_dict(), tmp_path / "a.npz")
    cnnlab.manual_seed(1)
    b = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4 * 6 * 6, 3))
    b.load_state_dict(cnnlab.load(tmp_path / "a.npz"))
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert "1.running_mean" in sa and "1.num_batches_tracked" in sa
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
        assert sa[k].dtype == sb[k].dtype
    x = cnnlab.Tensor(np.ones((2, 1, 8, 8), dtype=np.float32))
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_checks_everything_before_writing():
    m = nn.Linear(3, 2)
    before = m.state_dict()
    bad = {"weight": np.zeros((2, 3)), "bias": np.zeros(5)}
    with pytest.raises(ValueError, match=r"bias has shape \(5,\).*\(2,\)"):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(m.weight.data, before["weight"])   # untouched
    with pytest.raises(KeyError, match="missing keys"):
        m.load_state_dict({"weight": np.zeros((2, 3))})
    missing, unexpected = m.load_state_dict({"weight": np.zeros((2, 3)), "extra": 1}, strict=False)
    assert missing == ["bias"] and unexpected == ["extra"]


def test_dtype_conversion_and_default_float32():
    m = lenet5()
    assert all(p.dtype == np.float32 for p in m.parameters())
    m.double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    m.to("float32")
    assert all(p.dtype == np.float32 for p in m.parameters())
    bn = nn.BatchNorm2d(3).double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


def test_train_eval_propagate_and_zero_grad():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    m.eval()
    assert not m.training and not m[1].training
    m.train()
    assert m[1].training
    (m(cnnlab.Tensor(np.ones((1, 2), dtype=np.float32))).sum()).backward()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_init_follows_pytorch_bounds():
    cnnlab.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound    # really uniform over the range
    cnnlab.manual_seed(0)
    a = nn.Linear(5, 5).weight.data.copy()
    cnnlab.manual_seed(0)
    np.testing.assert_array_equal(a, nn.Linear(5, 5).weight.data)


def test_repr_reads_like_pytorch():
    r = repr(lenet5())
    assert "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))" in r
    assert "Linear(in_features=400, out_features=120, bias=True)" in r
    assert "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))" in r


def test_layer_errors_name_layer_expected_and_actual_shapes():
    x = cnnlab.Tensor(np.zeros((2, 3, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError,
                       match=r"Conv2d\(1, 6, .*expects input \(N, 1, H, W\), got \(2, 3, 28, 28\)"):
        lenet5()(x)
    with pytest.raises(ValueError, match=r"Linear\(in_features=4.*expects input \(N, 4\), got \(2, 5\)"):
        nn.Linear(4, 2)(cnnlab.Tensor(np.zeros((2, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"MaxPool2d.*expects input \(N, C, H, W\), got \(5,\)"):
        nn.MaxPool2d(2)(cnnlab.Tensor(np.zeros(5)))


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_works_on_28_and_32(size):
    m = lenet5(input_size=size)
    y = m(cnnlab.Tensor(np.zeros((2, 1, size, size), dtype=np.float32)))
    assert y.shape == (2, 10)


def test_model_registry():
    assert {"lenet5", "digits_cnn"} <= set(list_models())
    x = cnnlab.Tensor(np.zeros((1, 1, 8, 8), dtype=np.float32))
    assert get_model("digits-cnn")(x).shape == (1, 10)
    with pytest.raises(ValueError, match="available"):
        get_model("nope")


def test_parameter_shared_twice_is_listed_once_and_gets_summed_gradient():
    lin = nn.Linear(3, 3, bias=False)
    m = nn.Sequential(lin, lin)
    assert len(list(m.parameters())) == 1
    x = cnnlab.Tensor(np.ones((1, 3)))
    m.double()
    m(x).sum().backward()
    W = lin.weight.data
    # d/dW of sum(W W x): grad = 1 (W x)^T + W^T 1 x^T
    expected = np.outer(np.ones(3), W @ np.ones(3)) + np.outer(W.T @ np.ones(3), np.ones(3))
    np.testing.assert_allclose(lin.weight.grad, expected, atol=1e-12)
