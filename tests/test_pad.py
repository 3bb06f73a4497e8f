"""F.pad and the convolutions' padding_mode against torch in float64 (forward and
every gradient) and by gradcheck: constant (with a fill value and with negative
widths, which crop), reflect, replicate and circular; unbatched inputs; the errors."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import _torch, check_op, module_parity

import cnnlab
import cnnlab.nn.functional as F
from cnnlab import nn

torch = _torch()
TF = torch.nn.functional
rng = np.random.default_rng(0)
X4 = rng.standard_normal((2, 3, 4, 5))
X3 = rng.standard_normal((3, 4, 5))

CASES = [
    ("constant", (1, 2, 0, 3), 0.0, X4),
    ("constant", (-1, 2, 1, -2), 1.5, X4),          # negative widths crop
    ("constant", (1, 1, 2, 0, 1, 1), None, X4),     # three axes
    ("reflect", (1, 3, 2, 3), None, X4),            # widths up to length - 1
    ("reflect", (2, 1), None, X3),
    ("replicate", (4, 1, 0, 5), None, X4),          # wider than the axis
    ("replicate", (1, 2, 3, 0), None, X3),          # unbatched
    ("circular", (5, 2, 1, 4), None, X4),           # widths up to the length
    ("circular", (0, 3), None, X3),
]


@pytest.mark.parametrize("mode,pad,value,x", CASES,
                         ids=[f"{m}-{'_'.join(map(str, p))}" for m, p, _, _ in CASES])
def test_pad_matches_torch(mode, pad, value, x) -> None:
    check_op(lambda a: F.pad(a, pad, mode=mode, value=value),
             lambda a: TF.pad(a, pad, mode=mode, value=value), [x])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode) -> None:
    x = cnnlab.Tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    cnnlab.gradcheck(lambda a: F.pad(a, (3, 2, 2, 1), mode=mode), [x])


def test_pad_refuses_what_torch_refuses() -> None:
    x = cnnlab.zeros(1, 2, 3, 4)
    for pad, mode, match in [((0, 0, 3, 0), "reflect", "must be < 3"),
                             ((4, 0, 0, 0), "reflect", "must be < 4"),
                             ((0, 5, 0, 0), "circular", "must be <= 4"),
                             ((-1, 0, 0, 0), "replicate", "must be >= 0"),
                             ((1, 1), "wrap", "mode must be one of"),
                             ((1,), "constant", "pairs"),
                             ((0, -5), "constant", "below zero"),
                             ((1, 1) * 5, "constant", "only 4"),
                             ((1, 1), "reflect", "covers 1"),        # one axis of a 4-d input
                             ((1, 1) * 4, "replicate", "covers 4")]:
        with pytest.raises(ValueError, match=match):
            F.pad(x, pad, mode=mode)
    for pad, mode in [((0, 0, 3, 0), "reflect"), ((0, -5), "constant")]:
        with pytest.raises(RuntimeError):
            TF.pad(torch.zeros(1, 2, 3, 4), pad, mode=mode)
    with pytest.raises(NotImplementedError):
        TF.pad(torch.zeros(1, 2, 3, 4), (1, 1), mode="reflect")
    with pytest.raises(ValueError, match="takes no value"):
        F.pad(x, (1, 1, 1, 1), mode="reflect", value=2.0)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "zeros"])
@pytest.mark.parametrize("setting", [dict(padding=1), dict(padding=2, stride=2),
                                     dict(padding="same", dilation=2), dict(padding=(2, 1))])
def test_conv2d_padding_mode_matches_torch(mode, setting) -> None:
    ours = nn.Conv2d(3, 4, 3, padding_mode=mode, **setting)
    theirs = torch.nn.Conv2d(3, 4, 3, padding_mode=mode, dtype=torch.float64, **setting)
    module_parity(ours, theirs, rng.standard_normal((2, 3, 7, 6)))
    assert ("padding_mode" in repr(ours)) == (mode != "zeros")


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_conv1d_padding_mode_and_unbatched_input(mode) -> None:
    module_parity(nn.Conv1d(2, 3, 3, padding=2, padding_mode=mode),
                  torch.nn.Conv1d(2, 3, 3, padding=2, padding_mode=mode, dtype=torch.float64),
                  rng.standard_normal((2, 2, 6)))
    module_parity(nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode),
                  torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode, dtype=torch.float64),
                  rng.standard_normal((2, 5, 4)))


def test_conv_padding_mode_gradcheck() -> None:
    """The layer is F.pad followed by an unpadded convolution; that composition's
    gradients against centred differences."""
    conv = nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="circular").double()
    x = cnnlab.Tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    np.testing.assert_array_equal(
        conv(x).numpy(),
        F.conv2d(F.pad(x, (2, 2, 1, 1), mode="circular"), conv.weight, conv.bias).numpy())
    cnnlab.gradcheck(lambda a, w, b: F.conv2d(F.pad(a, (2, 2, 1, 1), mode="circular"), w, b),
                     [x, conv.weight, conv.bias])


def test_padding_mode_and_device_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of \['zeros', 'reflect'"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"ConvTranspose2d: padding_mode must be one of \['zeros'\]"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError):
        torch.nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
    for layer in (lambda d: nn.Linear(2, 2, device=d), lambda d: nn.Conv2d(1, 1, 3, device=d),
                  lambda d: nn.Conv1d(1, 1, 3, device=d), lambda d: nn.BatchNorm2d(2, device=d),
                  lambda d: nn.BatchNorm1d(2, device=d), lambda d: nn.LayerNorm(2, device=d),
                  lambda d: nn.GroupNorm(1, 2, device=d),
                  lambda d: nn.ConvTranspose2d(1, 1, 3, device=d)):
        layer("cpu")
        layer(cnnlab.device("cpu"))
        with pytest.raises(cnnlab.DeviceError, match="runs on the CPU"):
            layer("cuda")
