"""Convolution family: Conv1d, Conv2d (strict, 1x1, depthwise, the notes' numbers),
ConvTranspose2d, LocallyConnected1d/2d, ConnectionTable (LeNet-5 C3) and Bouvrie's
LearnedCombination.  Parity with torch in float64 where torch has the layer,
gradcheck and equivalence tests where it does not."""
import numpy as np
import pytest
from helpers import _torch, check_op, leaves, module_parity

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.nn import (
    ConnectionTable,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    LearnedCombination,
    LocallyConnected1d,
    LocallyConnected2d,
    combination_l1_penalty,
    lenet5_c3_table,
)

torch = _torch()
TF = torch.nn.functional


# ------------------------------------------------------------------- Conv1d
def _conv1d_cases(n=6, seed=10):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        g = int(rng.choice([1, 2]))
        C, O = g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
        K, s, d = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, 3))
        L = d * (K - 1) + 1 + int(rng.integers(0, 9))
        cases.append((int(rng.integers(1, 4)), C, L, O, K, s, p, d, g))
    return cases


@pytest.mark.parametrize("case", _conv1d_cases())
def test_conv1d_matches_torch(case):
    N, C, L, O, K, s, p, d, g = case
    rng = np.random.default_rng(sum(case))
    x, w, b = (rng.standard_normal((N, C, L)), rng.standard_normal((O, C // g, K)),
               rng.standard_normal(O))
    check_op(lambda x, w, b: F.conv1d(x, w, b, s, p, d, g),
             lambda x, w, b: TF.conv1d(x, w, b, s, p, d, g), [x, w, b])


@pytest.mark.parametrize("mode", ["valid", "same"])
def test_conv1d_string_padding_and_unbatched_match_torch(mode):
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((3, 10)), rng.standard_normal((4, 3, 4))
    check_op(lambda x, w: F.conv1d(x, w, padding=mode, dilation=2),
             lambda x, w: TF.conv1d(x, w, padding=mode, dilation=2), [x, w])


def test_conv1d_full_padding_is_k_minus_1_each_side():
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((2, 2, 7)), rng.standard_normal((3, 2, 4))
    y = F.conv1d(cnnlab.Tensor(x), cnnlab.Tensor(w), padding="full")
    assert y.shape == (2, 3, 7 + 4 - 1)
    np.testing.assert_allclose(y.data, TF.conv1d(torch.tensor(x), torch.tensor(w),
                                                 padding=3).numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("s,p,d,g", [(1, 0, 1, 1), (2, 2, 1, 2), (3, 1, 2, 4), (1, "same", 3, 1)])
def test_Conv1d_module_matches_torch(s, p, d, g):
    torch.manual_seed(0)
    theirs = torch.nn.Conv1d(4, 8, 3, stride=s, padding=p, dilation=d, groups=g)
    ours = Conv1d(4, 8, 3, stride=s, padding=p, dilation=d, groups=g)
    assert ours.weight.shape == tuple(theirs.weight.shape) and ours.bias.shape == (8,)
    module_parity(ours, theirs, np.random.default_rng(13).standard_normal((2, 4, 15)))


def test_conv1d_errors_name_the_op_and_layer():
    x = cnnlab.Tensor(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=r"conv1d: .*expects input \(N, 2, L\), got \(2, 3, 5\)"):
        F.conv1d(x, cnnlab.Tensor(np.zeros((4, 2, 3))))
    with pytest.raises(ValueError, match="conv1d: input length 5 .* effective kernel size 7"):
        F.conv1d(x, cnnlab.Tensor(np.zeros((4, 3, 7))))
    with pytest.raises(ValueError, match="conv1d: stride and dilation must be >= 1, got 0 and 1"):
        F.conv1d(x, cnnlab.Tensor(np.zeros((4, 3, 3))), stride=0)
    with pytest.raises(ValueError, match=r"Conv1d\(3, 4.*expects input \(N, 3, L\)"):
        Conv1d(3, 4, 3)(cnnlab.Tensor(np.zeros((2, 2, 9), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"Conv1d: in_channels \(3\).*groups \(2\)"):
        Conv1d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Conv1d: padding"):
        Conv1d(3, 4, 3, padding="half")


# ------------------------------------------------------------------- Conv2d
def test_conv2d_strict_accepts_the_notes_settings():
    # AlexNet's first layer: 227x227x3, 96 filters 11x11, stride 4 -> 55x55x96, 34,944 params
    alex = Conv2d(3, 96, 11, stride=4, strict=True)
    assert alex.num_parameters() == 96 * 11 * 11 * 3 + 96 == 34_944
    assert alex.check_setting((227, 227)) == (55, 55)
    x = cnnlab.Tensor(np.zeros((1, 3, 227, 227), dtype=np.float32))
    assert alex(x).shape == (1, 96, 55, 55)
    # the CIFAR example: 32x32x3, 5x5 filters, pad 0: stride 1 -> 28, stride 3 -> 10
    x = cnnlab.Tensor(np.random.default_rng(14).standard_normal((2, 3, 32, 32)))
    assert Conv2d(3, 6, 5, strict=True).double()(x).shape == (2, 6, 28, 28)
    assert Conv2d(3, 6, 5, stride=3, strict=True).double()(x).shape == (2, 6, 10, 10)
    # 'same' at stride 1 keeps W x H for F = 3, 5, 7 (P = (F - 1) / 2)
    for f in (3, 5, 7):
        m = Conv2d(3, 4, f, padding="same", strict=True).double()
        assert m(x).shape == (2, 4, 32, 32)
        assert Conv2d(3, 4, f, padding=(f - 1) // 2, strict=True).check_setting((32, 32)) == (32, 32)


def test_conv2d_strict_refuses_non_integer_settings_naming_layer_and_numbers():
    x = cnnlab.Tensor(np.zeros((1, 3, 32, 32)))
    m = Conv2d(3, 6, 5, stride=2, strict=True).double()      # (32 - 5)/2 + 1 = 14.5
    with pytest.raises(ValueError, match=r"Conv2d\(3, 6, kernel_size=\(5, 5\), stride=\(2, 2\).*"
                                         r"strict=True\) on input height 32.*"
                                         r"\(32 - 5 \+ 2\*0\)/2 \+ 1 = 14\.5"):
        m(x)
    # the same layer without strict floors like PyTorch
    assert Conv2d(3, 6, 5, stride=2).double()(x).shape == (1, 6, 14, 14)
    # AlexNet's first layer on a 224 input is the notes' classic invalid setting
    with pytest.raises(ValueError, match=r"\(224 - 11 \+ 2\*0\)/4 \+ 1 = 54\.25"):
        Conv2d(3, 96, 11, stride=4, strict=True).check_setting((224, 224))
    # width checked too; asymmetric 'same' on a 1x1 strided conv leaves a pixel unvisited
    with pytest.raises(ValueError, match=r"width 10.*\(10 - 3 \+ 2\*0\)/2 \+ 1 = 4\.5"):
        Conv2d(3, 6, 3, stride=(1, 2), strict=True).check_setting((8, 10))
    with pytest.raises(ValueError, match="strict"):
        Conv2d(3, 6, 1, stride=2, padding="same", strict=True).check_setting((8, 8))
    assert Conv2d(3, 6, 3, stride=2, padding="same", strict=True).check_setting((8, 8)) == (4, 4)
    assert "strict=True" in repr(m)


@pytest.mark.parametrize("kind", ["1x1", "depthwise", "depthwise_multiplier"])
def test_conv2d_module_1x1_and_depthwise_match_torch(kind):
    C = 6
    kw = {"1x1": dict(out_channels=10, kernel_size=1),
          "depthwise": dict(out_channels=C, kernel_size=3, padding=1, groups=C),
          "depthwise_multiplier": dict(out_channels=2 * C, kernel_size=3, stride=2, groups=C)}[kind]
    torch.manual_seed(1)
    theirs = torch.nn.Conv2d(C, **kw)
    ours = Conv2d(C, **kw)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    module_parity(ours, theirs, np.random.default_rng(15).standard_normal((2, C, 7, 8)))


# -------------------------------------------------------- ConvTranspose2d
def _convt_cases(n=8, seed=20):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        g = int(rng.choice([1, 2, 3]))
        Cin, Cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        K = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        op = tuple(int(rng.integers(0, max(s[a], d[a]))) for a in range(2))
        H, W = int(rng.integers(2, 6)), int(rng.integers(2, 6))
        # padding small enough that the output is not empty
        p = tuple(int(rng.integers(0, 1 + min(2, ((n_ - 1) * s[a] + d[a] * (K[a] - 1)) // 2)))
                  for a, n_ in enumerate((H, W)))
        cases.append((int(rng.integers(1, 3)), Cin, H, W, Cout, K, s, p, op, d, g))
    return cases


@pytest.mark.parametrize("case", _convt_cases())
def test_conv_transpose2d_matches_torch(case):
    N, Cin, H, W, Cout, K, s, p, op, d, g = case
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x, w, b = (rng.standard_normal((N, Cin, H, W)), rng.standard_normal((Cin, Cout // g, *K)),
               rng.standard_normal(Cout))
    check_op(lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d),
             lambda x, w, b: TF.conv_transpose2d(x, w, b, s, p, op, g, d), [x, w, b])


def test_conv_transpose2d_unbatched_no_bias_and_fortran_input():
    rng = np.random.default_rng(21)
    x, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 2, 3, 3))
    check_op(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
             lambda x, w: TF.conv_transpose2d(x, w, stride=2, padding=1), [x, w])
    xf = np.asfortranarray(rng.standard_normal((2, 3, 4, 5)))
    check_op(lambda x, w: F.conv_transpose2d(x, w, stride=2),
             lambda x, w: TF.conv_transpose2d(x, w, stride=2), [xf, w])


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    # <conv_transpose2d(x, w), z> = <x, conv2d(z, w)>: the "deconvolution" is the
    # conv's data gradient, the notes' full convolution with the rotated kernel.
    rng = np.random.default_rng(22)
    w = rng.standard_normal((4, 3, 3, 3))
    x = rng.standard_normal((2, 4, 5, 5))
    y = F.conv_transpose2d(cnnlab.Tensor(x), cnnlab.Tensor(w), stride=2, padding=1)
    z = rng.standard_normal(y.shape)
    cz = F.conv2d(cnnlab.Tensor(z), cnnlab.Tensor(w), stride=2, padding=1)
    assert cz.shape == x.shape
    np.testing.assert_allclose((y.data * z).sum(), (x * cz.data).sum(), rtol=1e-12)


@pytest.mark.parametrize("s,p,op,d,g", [(1, 0, 0, 1, 1), (2, 1, 1, 1, 2), (3, (1, 2), (2, 0), 1, 1),
                                        (1, 1, 1, 2, 1), (2, 0, 0, (2, 1), 4)])
def test_ConvTranspose2d_module_matches_torch(s, p, op, d, g):
    torch.manual_seed(2)
    theirs = torch.nn.ConvTranspose2d(4, 8, (3, 2), stride=s, padding=p, output_padding=op,
                                      groups=g, dilation=d)
    ours = ConvTranspose2d(4, 8, (3, 2), stride=s, padding=p, output_padding=op, groups=g,
                           dilation=d)
    assert ours.weight.shape == tuple(theirs.weight.shape) == (4, 8 // g, 3, 2)
    module_parity(ours, theirs, np.random.default_rng(23).standard_normal((2, 4, 5, 4)))


def test_ConvTranspose2d_output_size_and_fcn_upsampling():
    torch.manual_seed(3)
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    ours = ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = np.random.default_rng(24).standard_normal((1, 3, 4, 4))
    for size in ((7, 7), (8, 8), (7, 8)):
        module_parity(ours, theirs, x, call=lambda t, size=size: ours(t, output_size=size),
                      tcall=lambda t, size=size: theirs(t, output_size=size))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(3, 2.*output_size \(9, 9\).*7 to 8"):
        ours(cnnlab.Tensor(x), output_size=(9, 9))
    # the inverse of the conv size rule: AlexNet conv1 55x55x96 back to 227x227x3
    up = ConvTranspose2d(96, 3, 11, stride=4)
    assert up(cnnlab.Tensor(np.zeros((1, 96, 55, 55), dtype=np.float32))).shape == (1, 3, 227, 227)


def test_conv_transpose2d_errors():
    x = cnnlab.Tensor(np.zeros((1, 4, 5, 5)))
    w = cnnlab.Tensor(np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"output_padding \(2, 2\) must be smaller.*stride \(2, 2\)"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: weight \(4, 2, 3, 3\).*expects input "
                                         r"\(N, 4, H, W\).*got \(1, 3, 5, 5\)"):
        F.conv_transpose2d(cnnlab.Tensor(np.zeros((1, 3, 5, 5))), w)
    with pytest.raises(ValueError, match="expected bias of shape \\(4,\\), got \\(2,\\)"):
        F.conv_transpose2d(x, w, cnnlab.Tensor(np.zeros(2)), groups=2)
    with pytest.raises(ValueError, match="empty output"):
        F.conv_transpose2d(cnnlab.Tensor(np.zeros((1, 4, 1, 1))), w, padding=2)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_padding \(1, 1\)"):
        ConvTranspose2d(4, 4, 3, output_padding=1)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: in_channels \(4\).*groups \(3\)"):
        ConvTranspose2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(4, 2.*expects input \(N, 4, H, W\)"):
        ConvTranspose2d(4, 2, 3)(cnnlab.Tensor(np.zeros((1, 2, 5, 5), dtype=np.float32)))


# ------------------------------------------------------ LocallyConnected
@pytest.mark.parametrize("s,p,d,bias", [(1, 0, 1, True), (2, 1, 1, True), ((1, 2), (1, 0), 2, False),
                                        (1, "same", 1, True)])
def test_locally_connected2d_gradcheck(s, p, d, bias):
    m = LocallyConnected2d(2, 3, (5, 6), (2, 3), stride=s, padding=p, dilation=d,
                           bias=bias).double()
    x = leaves(np.random.default_rng(30).standard_normal((2, 2, 5, 6)))[0]
    params = [m.weight] + ([m.bias] if bias else [])
    cnnlab.gradcheck(lambda x, *ps: F.locally_connected2d(x, *ps, stride=s, padding=p,
                                                          dilation=d), [x, *params])


def test_locally_connected1d_gradcheck():
    m = LocallyConnected1d(2, 3, 9, 3, stride=2, padding=1).double()
    x = leaves(np.random.default_rng(31).standard_normal((2, 2, 9)))[0]
    cnnlab.gradcheck(lambda x, w, b: F.locally_connected1d(x, w, b, 2, 1), [x, m.weight, m.bias])


@pytest.mark.parametrize("s,p,d", [(1, 0, 1), (2, 1, 1), ((2, 1), (0, 2), (1, 2))])
def test_locally_connected2d_with_shared_filters_equals_conv2d(s, p, d):
    rng = np.random.default_rng(32)
    N, C, O, H, W, K = 2, 3, 4, 7, 8, (3, 2)
    torch.manual_seed(4)
    conv = torch.nn.Conv2d(C, O, K, stride=s, padding=p, dilation=d)
    lc = LocallyConnected2d(C, O, (H, W), K, stride=s, padding=p, dilation=d).double()
    OH, OW = lc.output_size
    wc, bc = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    lc.weight.data[...] = np.broadcast_to(wc, (OH, OW, *wc.shape))
    lc.bias.data[...] = bc[:, None, None]
    x = rng.standard_normal((N, C, H, W))
    xo, xt = cnnlab.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    y, yt = lc(xo), conv(xt)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), atol=1e-12, rtol=0)
    up = rng.standard_normal(y.shape)
    (y * cnnlab.Tensor(up)).sum().backward()
    (yt * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), atol=1e-12, rtol=0)
    # a shared filter's gradient is the sum of the per-position gradients
    np.testing.assert_allclose(lc.weight.grad.sum(axis=(0, 1)), conv.weight.grad.numpy(),
                               atol=1e-10, rtol=0)
    np.testing.assert_allclose(lc.bias.grad.sum(axis=(1, 2)), conv.bias.grad.numpy(),
                               atol=1e-10, rtol=0)


def test_locally_connected1d_with_shared_filters_equals_conv1d():
    rng = np.random.default_rng(33)
    lc = LocallyConnected1d(3, 2, 11, 3, stride=2, padding=1, dilation=2).double()
    w, b = rng.standard_normal((2, 3, 3)), rng.standard_normal(2)
    lc.weight.data[...] = w
    lc.bias.data[...] = b[:, None]
    x = rng.standard_normal((2, 3, 11))
    y = lc(cnnlab.Tensor(x))
    yt = TF.conv1d(torch.tensor(x), torch.tensor(w), torch.tensor(b), 2, 1, 2)
    np.testing.assert_allclose(y.data, yt.numpy(), atol=1e-12, rtol=0)


def test_locally_connected_filters_are_unshared():
    # changing the filter of one output position changes that position only
    rng = np.random.default_rng(34)
    lc = LocallyConnected2d(2, 2, (5, 5), 3).double()
    x = cnnlab.Tensor(rng.standard_normal((1, 2, 5, 5)))
    y0 = lc(x).data.copy()
    lc.weight.data[1, 2] += 1.0
    diff = np.abs(lc(x).data - y0) > 1e-12
    assert diff[:, :, 1, 2].all() and diff.sum() == 2


def test_locally_connected_parameter_count_of_the_notes():
    # small case: the formula equals what the layer actually allocates
    m = LocallyConnected2d(3, 5, (9, 8), 3, stride=2, padding=1)
    assert m.output_size == (5, 4)
    assert m.weight.shape == (5, 4, 5, 3, 3, 3) and m.bias.shape == (5, 5, 4)
    assert m.num_parameters() == LocallyConnected2d.parameter_count(3, 5, (9, 8), 3, 2, 1) \
        == 5 * 4 * 5 * (3 * 9 + 1)
    assert LocallyConnected2d(3, 5, (9, 8), 3, bias=False).num_parameters() == \
        LocallyConnected2d.parameter_count(3, 5, (9, 8), 3, bias=False) == 7 * 6 * 5 * 27
    # AlexNet conv1 unshared: 55*55*96 = 290,400 units of 11*11*3 + 1 = 364 parameters
    n = LocallyConnected2d.parameter_count(3, 96, 227, 11, stride=4)
    assert n == 290_400 * 364 == 105_705_600
    shared = Conv2d(3, 96, 11, stride=4).num_parameters()
    assert shared == 34_944


def test_locally_connected_errors():
    with pytest.raises(ValueError, match=r"LocallyConnected2d: input_size \(2, 2\) padded .* "
                                         r"smaller than the effective kernel size 3"):
        LocallyConnected2d(1, 1, 2, 3)
    with pytest.raises(ValueError, match="LocallyConnected1d: .*kernel_size, stride"):
        LocallyConnected1d(1, 1, 5, 3, stride=0)
    m = LocallyConnected2d(2, 3, (6, 6), 3)
    with pytest.raises(ValueError, match=r"LocallyConnected2d\(2, 3, input_size=\(6, 6\).* "
                                         r"expects input \(N, 2, 6, 6\), got \(1, 2, 7, 6\)"):
        m(cnnlab.Tensor(np.zeros((1, 2, 7, 6), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"gives \(3, 3\) output positions.*filters for \(4, 4\)"):
        F.locally_connected2d(cnnlab.Tensor(np.zeros((1, 2, 5, 5))), cnnlab.Tensor(
            np.zeros((4, 4, 3, 2, 3, 3))))
    with pytest.raises(ValueError, match=r"locally_connected1d: expected bias of shape \(3, 4\)"):
        F.locally_connected1d(cnnlab.Tensor(np.zeros((1, 2, 6))),
                              cnnlab.Tensor(np.zeros((4, 3, 2, 3))), cnnlab.Tensor(np.zeros(3)))


# ------------------------------------------------------- ConnectionTable
def test_lenet5_c3_table_is_the_papers_table_one():
    # LeCun et al. 1998, Table I, row by row (X = connected), columns 0-15
    rows = ["X   XXX  XXXX XX",
            "XX   XXX  XXXX X",
            "XXX   XXX  X XXX",
            " XXX  XXXX  X XX",
            "  XXX  XXXX XX X",
            "   XXX  XXXX XXX"]
    expected = np.array([[ch == "X" for ch in r] for r in rows])
    table = lenet5_c3_table()
    assert table.shape == (6, 16) and table.dtype == bool
    np.testing.assert_array_equal(table, expected)
    assert list(table.sum(axis=0)) == [3] * 6 + [4] * 9 + [6]


def test_connection_table_lenet5_c3_parameter_count():
    c3 = ConnectionTable(lenet5_c3_table(), 5)
    assert (c3.in_channels, c3.out_channels) == (6, 16)
    assert c3.num_connection_parameters() == 60 * 25 + 16 == 1_516
    # disconnected weights start (and, masked, stay) at zero
    assert np.count_nonzero(c3.weight.data) == 1_500
    x = cnnlab.Tensor(np.zeros((1, 6, 14, 14), dtype=np.float32))
    assert c3(x).shape == (1, 16, 10, 10)


def test_connection_table_gradcheck_and_masked_gradient():
    table = [[0, 1], [1, 2], [0, 2], [2]]           # list of input maps per output map
    m = ConnectionTable(table, (3, 2), stride=(1, 2), padding=1).double()
    assert m.table.shape == (3, 4)
    x = leaves(np.random.default_rng(40).standard_normal((2, 3, 5, 6)))[0]
    cnnlab.gradcheck(lambda x, w, b: F.connection_table_conv2d(x, w, m.table, b, (1, 2), 1),
                     [x, m.weight, m.bias])
    m.weight.data[...] = np.random.default_rng(41).standard_normal(m.weight.shape)  # fill all
    y = m(x)
    (y * y).sum().backward()
    mask = m.table.T[:, :, None, None] & np.ones(m.weight.shape, dtype=bool)
    assert np.all(m.weight.grad[~mask] == 0) and np.all(m.weight.grad[mask] != 0)
    # an output map does not see an input map it is not connected to
    x2 = x.data.copy()
    x2[:, 0] += 5.0                  # input 0 feeds outputs 0 and 2 only
    dy = np.abs(m(cnnlab.Tensor(x2)).data - y.data).max(axis=(0, 2, 3))
    assert dy[1] == 0 and dy[3] == 0 and dy[0] > 0 and dy[2] > 0


def test_connection_table_full_table_equals_conv2d():
    torch.manual_seed(5)
    theirs = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    ours = ConnectionTable(np.ones((3, 4), dtype=bool), 3, stride=2, padding=1)
    module_parity(ours, theirs, np.random.default_rng(42).standard_normal((2, 3, 7, 8)))
    # and a partial table equals Conv2d with the masked weight
    table = lenet5_c3_table()
    c3 = ConnectionTable(table, 5).double()
    c3.weight.data[...] = np.random.default_rng(43).standard_normal(c3.weight.shape)
    x = np.random.default_rng(44).standard_normal((1, 6, 9, 9))
    ref = TF.conv2d(torch.tensor(x), torch.tensor(c3.weight.data * table.T[:, :, None, None]),
                    torch.tensor(c3.bias.data))
    np.testing.assert_allclose(c3(cnnlab.Tensor(x)).data, ref.numpy(), atol=1e-12, rtol=0)


def test_connection_table_errors():
    with pytest.raises(ValueError, match="ConnectionTable: output map 1 is connected to no input"):
        ConnectionTable(np.array([[True, False], [True, False]]), 3)
    with pytest.raises(ValueError, match="ConnectionTable: table must be"):
        ConnectionTable([1, 2], 3)
    with pytest.raises(ValueError, match="ConnectionTable: input indices must be >= 0"):
        ConnectionTable([[0, -1]], 3)
    m = ConnectionTable(lenet5_c3_table(), 5)
    with pytest.raises(ValueError, match=r"ConnectionTable\(6, 16, connections=60.*expects input "
                                         r"\(N, 6, H, W\), got \(1, 3, 14, 14\)"):
        m(cnnlab.Tensor(np.zeros((1, 3, 14, 14), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"needs a table of shape .* \(6, 16\), got \(16, 6\)"):
        F.connection_table_conv2d(cnnlab.Tensor(np.zeros((1, 6, 9, 9))),
                                  cnnlab.Tensor(np.zeros((16, 6, 5, 5))), lenet5_c3_table().T)


# ---------------------------------------------------- LearnedCombination
@pytest.mark.parametrize("s,p,d,bias", [(1, 0, 1, True), (2, 1, 1, True), (1, "same", 2, False)])
def test_learned_combination_gradcheck(s, p, d, bias):
    rng = np.random.default_rng(50)
    x, k, c, b = leaves(rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((3, 1, 3, 2)),
                        rng.standard_normal((3, 4)), rng.standard_normal(4))
    inputs = [x, k, c] + ([b] if bias else [])
    cnnlab.gradcheck(lambda *a: F.learned_combination(*a, stride=s, padding=p, dilation=d),
                     inputs)


def test_learned_combination_alpha_columns_sum_to_one_and_equals_a_conv():
    m = LearnedCombination(4, 5, 3, padding=1).double()
    m.c.data[...] = np.random.default_rng(51).standard_normal((4, 5)) * 3
    alpha = m.alpha().data
    assert alpha.shape == (4, 5) and np.all(alpha > 0)
    np.testing.assert_allclose(alpha.sum(axis=0), 1.0, rtol=0, atol=1e-14)
    ref_alpha = torch.softmax(torch.tensor(m.c.data), dim=0).numpy()
    np.testing.assert_allclose(alpha, ref_alpha, rtol=0, atol=1e-15)
    # u_j = sum_i alpha_ij (x_i * k_i) + b_j is a conv with weight W[j, i] = alpha_ij k_i
    x = np.random.default_rng(52).standard_normal((2, 4, 6, 7))
    w_eq = alpha.T[:, :, None, None] * m.weight.data[:, 0][None]
    ref = TF.conv2d(torch.tensor(x), torch.tensor(w_eq), torch.tensor(m.bias.data), padding=1)
    np.testing.assert_allclose(m(cnnlab.Tensor(x)).data, ref.numpy(), atol=1e-12, rtol=0)


def test_learned_combination_c_gradient_is_bouvries_equation_17():
    rng = np.random.default_rng(53)
    m = LearnedCombination(3, 2, 3).double()
    x = rng.standard_normal((2, 3, 6, 6))
    u = m(cnnlab.Tensor(x))
    delta = rng.standard_normal(u.shape)
    (u * cnnlab.Tensor(delta)).sum().backward()
    z = TF.conv2d(torch.tensor(x), torch.tensor(m.weight.data), groups=3).numpy()  # x_i * k_i
    dalpha = np.einsum("nihw,njhw->ij", z, delta)                                   # eq. (16)
    a = m.alpha().data
    dc = a * (dalpha - (dalpha * a).sum(axis=0))                                    # eq. (17)
    np.testing.assert_allclose(m.c.grad, dc, atol=1e-12, rtol=0)
    np.testing.assert_allclose(m.bias.grad, delta.sum(axis=(0, 2, 3)), atol=1e-12, rtol=0)


def test_combination_l1_penalty_value_and_gradient_flow():
    m = LearnedCombination(4, 3, 3).double()
    m.c.data[...] = np.random.default_rng(54).standard_normal((4, 3))
    pen = combination_l1_penalty(m, 0.1)
    assert isinstance(pen, cnnlab.Tensor) and pen.shape == ()
    # lambda sum |alpha|: every softmax column sums to 1, so it is lambda * C_out
    np.testing.assert_allclose(pen.item(), 0.1 * np.abs(m.alpha().data).sum(), rtol=1e-14)
    np.testing.assert_allclose(pen.item(), 0.1 * 3, rtol=1e-14)
    pen.backward()
    assert m.c.grad is not None
    a = m.alpha().data
    eq21 = 0.1 * (np.abs(a) - a * np.abs(a).sum(axis=0))      # eq. (21): zero for a softmax
    np.testing.assert_allclose(m.c.grad, eq21, atol=1e-15, rtol=0)
    c = leaves(m.c.data)[0]
    cnnlab.gradcheck(lambda c: F.combination_l1_penalty(c, 0.1), [c])
    # the softmax Function itself (eq. 15) against finite differences
    cnnlab.gradcheck(lambda c: F.combination_weights(c), [c])
    with pytest.raises(TypeError, match="combination_l1_penalty: expected a LearnedCombination"):
        combination_l1_penalty(Conv2d(1, 1, 1), 0.1)


def test_learned_combination_errors_and_repr():
    m = LearnedCombination(3, 4, 3)
    assert m.weight.shape == (3, 1, 3, 3) and m.c.shape == (3, 4) and m.bias.shape == (4,)
    with pytest.raises(ValueError, match=r"LearnedCombination\(3, 4, kernel_size=\(3, 3\).*expects "
                                         r"input \(N, 3, H, W\), got \(1, 2, 5, 5\)"):
        m(cnnlab.Tensor(np.zeros((1, 2, 5, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="smaller than the effective kernel size 3"):
        m(cnnlab.Tensor(np.zeros((1, 3, 2, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="LearnedCombination: in_channels and out_channels"):
        LearnedCombination(0, 4, 3)
    with pytest.raises(ValueError, match=r"learned_combination: expected c of shape \(3, C_out\)"):
        F.learned_combination(cnnlab.Tensor(np.zeros((1, 3, 5, 5))),
                              cnnlab.Tensor(np.zeros((3, 1, 3, 3))), cnnlab.Tensor(np.zeros((2, 4))))


# ------------------------------------------------------------- float32
@pytest.mark.parametrize("make,shape", [
    (lambda: Conv1d(2, 3, 3), (2, 2, 9)),
    (lambda: ConvTranspose2d(2, 3, 3, stride=2), (2, 2, 4, 4)),
    (lambda: LocallyConnected2d(2, 3, (5, 5), 3), (2, 2, 5, 5)),
    (lambda: LocallyConnected1d(2, 3, 7, 3), (2, 2, 7)),
    (lambda: ConnectionTable(lenet5_c3_table(), 3), (2, 6, 5, 5)),
    (lambda: LearnedCombination(2, 3, 3), (2, 2, 5, 5)),
])
def test_float32_stays_float32(make, shape):
    m = make()
    x = cnnlab.Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)
    y = m(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    for name, p in m.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name
