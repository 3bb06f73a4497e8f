"""cnnlab.utils.data against torch.utils.data, nn.init's fans and statistics
against torch's, and the functional ops accepting every argument torch's accept."""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from helpers import _torch

import cnnlab
from cnnlab import nn
from cnnlab.nn import functional as F
from cnnlab.utils.data import (
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)

torch = _torch()


class Pairs(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2, 2), i, dtype=np.float32), i, float(i) / 2, {"id": i}


def test_default_collate_matches_torch():
    samples = [Pairs(5)[i] for i in range(3)]
    ours = default_collate(samples)
    theirs = torch.utils.data.default_collate(samples)
    assert isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs)
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert a.dtype == np.dtype(str(b.dtype).replace("torch.", ""))
    np.testing.assert_array_equal(ours[3]["id"].numpy(), theirs[3]["id"].numpy())


@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_batches_like_torch_without_shuffle(drop_last):
    x = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
    y = np.arange(7)
    ours = list(DataLoader(TensorDataset(x, y), batch_size=3, drop_last=drop_last))
    theirs = list(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.from_numpy(x), torch.from_numpy(y)), batch_size=3, drop_last=drop_last))
    assert len(ours) == len(theirs) == len(DataLoader(TensorDataset(x, y), batch_size=3,
                                                      drop_last=drop_last))
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    # a Dataset subclass goes through default_collate and gives the same batches
    generic = list(DataLoader(Pairs(7), batch_size=3, drop_last=drop_last))
    assert [b[1].tolist() for b in generic] == [b[1].tolist() for b in theirs]


def test_shuffle_draws_from_cnnlabs_seeded_generator():
    data = TensorDataset(np.arange(10))
    cnnlab.manual_seed(3)
    first = [b[0].tolist() for b in DataLoader(data, batch_size=4, shuffle=True)]
    cnnlab.manual_seed(3)
    again = [b[0].tolist() for b in DataLoader(data, batch_size=4, shuffle=True)]
    assert first == again and sorted(sum(first, [])) == list(range(10))
    loader = DataLoader(data, batch_size=10, shuffle=True)
    assert next(iter(loader))[0].tolist() != next(iter(loader))[0].tolist()   # a new order per epoch


def test_subset_random_split_and_bad_arguments():
    parts = random_split(TensorDataset(np.arange(10)), [0.7, 0.3])
    assert [len(p) for p in parts] == [7, 3] and isinstance(parts[0], Subset)
    assert sorted(int(p[i][0].item()) for p in parts for i in range(len(p))) == list(range(10))
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Pairs(3), batch_size=0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(Pairs(3), shuffle=True, sampler=[0, 1])
    assert cnnlab.utils.data.DataLoader is DataLoader


@pytest.mark.parametrize("shape", [(16, 8), (8, 4, 3, 3), (6, 2, 5), (4, 3, 2, 2, 2)])
def test_fans_equal_torchs(shape):
    ours = nn.init._calculate_fan_in_and_fan_out(cnnlab.zeros(*shape))
    theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(*shape))
    assert ours == theirs


@pytest.mark.parametrize("nonlinearity,param", [("relu", None), ("leaky_relu", 0.2), ("tanh", None),
                                                ("linear", None), ("conv_transpose3d", None),
                                                ("selu", None), ("sigmoid", None)])
def test_gain_equals_torchs(nonlinearity, param):
    assert math.isclose(nn.init.calculate_gain(nonlinearity, param),
                        torch.nn.init.calculate_gain(nonlinearity, param))


@pytest.mark.parametrize("name,kwargs,std", [
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / (64 * 9))),
    ("kaiming_normal_", {"a": 0.1}, math.sqrt(2 / (1 + 0.01)) / math.sqrt(32 * 9)),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, 1 / math.sqrt(32 * 9) / math.sqrt(3)),
    ("xavier_normal_", {"gain": 2.0}, 2.0 * math.sqrt(2 / (32 * 9 + 64 * 9))),
    ("xavier_uniform_", {}, math.sqrt(6 / (32 * 9 + 64 * 9)) / math.sqrt(3)),
    ("normal_", {"mean": 0.0, "std": 0.02}, 0.02),
    ("uniform_", {"a": -0.5, "b": 0.5}, 1 / math.sqrt(12)),
])
def test_init_statistics(name, kwargs, std):
    """The sample std of a (64, 32, 3, 3) weight against the formula and against torch's draw."""
    cnnlab.manual_seed(0)
    w = getattr(nn.init, name)(nn.Parameter(np.zeros((64, 32, 3, 3), dtype=np.float32)), **kwargs)
    tw = getattr(torch.nn.init, name)(torch.zeros(64, 32, 3, 3), **kwargs)
    assert abs(w.numpy().std() - std) < 0.03 * std
    assert abs(w.numpy().std() - tw.numpy().std()) < 0.04 * std
    assert abs(w.numpy().mean()) < 0.03 * std + 1e-9


def test_constant_zeros_ones():
    w = nn.Parameter(np.empty((2, 3), dtype=np.float32))
    assert (nn.init.constant_(w, 0.3).numpy() == np.float32(0.3)).all()
    assert (nn.init.zeros_(w).numpy() == 0).all() and (nn.init.ones_(w).numpy() == 1).all()


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "dropout",
                                  "relu", "log_softmax", "softmax", "nll_loss", "cross_entropy"])
def test_functional_accepts_every_torch_argument(name):
    ours = inspect.signature(getattr(F, name)).parameters
    # torch's max_pool2d is a dispatch wrapper and avg_pool2d a builtin: their documented arguments
    documented = {
        "max_pool2d": ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                       "return_indices"],
        "avg_pool2d": ["input", "kernel_size", "stride", "padding", "ceil_mode",
                       "count_include_pad", "divisor_override"],
    }
    theirs = documented.get(name) or inspect.signature(getattr(torch.nn.functional, name)).parameters
    missing = [p for p in theirs if p not in ours and p not in ("size_average", "reduce")]
    assert missing == [], f"F.{name} lacks torch's {missing}"
    x = cnnlab.randn(2, 3, 6, 6)
    assert F.max_pool2d(x, 2, 2, 0, 1, False, False).shape == (2, 3, 3, 3)
    assert F.avg_pool2d(x, 3, stride=1, padding=1, ceil_mode=False, count_include_pad=False,
                        divisor_override=None).shape == (2, 3, 6, 6)
    assert F.dropout(x, p=0.5, training=False, inplace=False) is x
    np.testing.assert_array_equal(F.relu(x, inplace=True).numpy(), np.maximum(x.numpy(), 0))
