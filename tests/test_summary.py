"""cnnlab.summary: the notes' VGG-16 table, LeNet-5, receptive fields, warnings."""
import numpy as np
import pytest

import cnnlab.nn as nn
from cnnlab.models import lenet5
from cnnlab.summary import summary

# The notes' VGG-16 table (001): (output H, W, C) and weights without biases, CONV/POOL/FC rows.
NOTES_VGG16 = [
    ((224, 224, 64), 1_728), ((224, 224, 64), 36_864), ((112, 112, 64), 0),
    ((112, 112, 128), 73_728), ((112, 112, 128), 147_456), ((56, 56, 128), 0),
    ((56, 56, 256), 294_912), ((56, 56, 256), 589_824), ((56, 56, 256), 589_824), ((28, 28, 256), 0),
    ((28, 28, 512), 1_179_648), ((28, 28, 512), 2_359_296), ((28, 28, 512), 2_359_296),
    ((14, 14, 512), 0),
    ((14, 14, 512), 2_359_296), ((14, 14, 512), 2_359_296), ((14, 14, 512), 2_359_296), ((7, 7, 512), 0),
    ((1, 1, 4096), 102_760_448), ((1, 1, 4096), 16_777_216), ((1, 1, 1000), 4_096_000),
]


def vgg16_as_in_the_notes():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


@pytest.fixture(scope="module")
def vgg_summary():
    return summary(vgg16_as_in_the_notes(), (3, 224, 224))


def test_vgg16_rows_reproduce_the_notes_table(vgg_summary):
    rows = [r for r in vgg_summary.rows if r.type in ("Conv2d", "MaxPool2d", "Linear")]
    assert len(rows) == len(NOTES_VGG16)
    for r, ((h, w, c), weights) in zip(rows, NOTES_VGG16):
        values = h * w * c
        assert r.activations == values, r.name
        assert r.weights == weights, r.name
    assert vgg_summary.input_values == 224 * 224 * 3          # the notes' INPUT row, 150K


def test_vgg16_totals(vgg_summary):
    assert vgg_summary.total_params == 138_357_544            # biases included, as torchvision
    # The notes' rows add up to 15.2M activations (about 58 MiB of float32), not the
    # "24M ... ~93MB" printed under the table: the tool counts what the rows say.
    assert vgg_summary.forward_activations == 15_237_608
    assert vgg_summary.forward_bytes == 15_237_608 * 4
    assert vgg_summary.training_bytes == 2 * vgg_summary.forward_bytes
    # most memory in the early convs, most parameters in the first FC (the notes' remark)
    convs = [r for r in vgg_summary.rows if r.type == "Conv2d"]
    fcs = [r for r in vgg_summary.rows if r.type == "Linear"]
    assert max(convs, key=lambda r: r.activations) is convs[0]
    assert max(fcs + convs, key=lambda r: r.weights) is fcs[0]
    assert vgg_summary.total_macs == pytest.approx(15.47e9, rel=0.01)


def test_lenet5_summary_counts_and_receptive_fields():
    s = summary(lenet5(), (1, 28, 28))
    assert s.total_params == s.trainable_params == 61_706
    conv1, conv2 = [r for r in s.rows if r.type == "Conv2d"]
    assert conv1.output_shape == (6, 28, 28) and conv1.weights == 150 and conv1.biases == 6
    assert conv1.macs == 28 * 28 * 6 * 25
    assert conv1.rf.size == (5, 5) and conv1.rf.start == (-2, -2)     # padding 2 reaches outside
    pool2 = [r for r in s.rows if r.type == "MaxPool2d"][1]
    assert pool2.rf.size == (16, 16) and pool2.rf.jump == (4, 4)
    assert "conv1" not in str(s) and "features.0" in str(s)


def test_three_stacked_3x3_convs_see_as_far_as_one_7x7():
    m = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                      nn.Conv2d(8, 8, 3, padding=1))
    big = nn.Conv2d(8, 8, 7, padding=3)
    s3, s7 = summary(m, (8, 16, 16)), summary(big, (8, 16, 16))
    assert s3.rows[-1].rf.size == s7.rows[-1].rf.size == (7, 7)
    w3 = sum(r.weights for r in s3.rows)
    assert w3 == 3 * 9 * 8 * 8 < s7.rows[0].weights == 49 * 8 * 8    # 27 C^2 against 49 C^2


def test_warns_when_the_stride_does_not_tile_the_input():
    s = summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2)), (1, 10, 10))
    assert any("does not tile" in w and "4.5" in w for w in s.warnings)
    assert summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2)), (1, 11, 11)).warnings == []


def test_frozen_parameters_are_reported():
    m = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    m[0].requires_grad_(False)
    s = summary(m, (4,))
    assert (s.total_params, s.trainable_params, s.frozen_params) == (23, 8, 15)


def test_summary_leaves_the_model_as_it_was():
    m = lenet5()
    m.train()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    summary(m, (1, 28, 28))
    assert m.training
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())
    assert all(not mod._forward_hooks for mod in m.modules())


def test_zoo_vgg16_counts_like_the_notes():
    from cnnlab.models import get_model

    s = summary(get_model("vgg16"), (3, 224, 224))
    assert s.total_params == 138_357_544
    assert s.forward_activations == 15_237_608    # the 7x7 adaptive pool is the identity here


def test_summary_prints_the_table_and_returns_the_numbers(capsys):
    s = summary(lenet5(), (1, 28, 28))
    printed = capsys.readouterr().out
    assert printed.strip() == str(s).strip() and "features.3" in printed
    summary(lenet5(), (1, 28, 28), verbose=False)
    assert capsys.readouterr().out == ""


def test_summary_follows_the_model_dtype():
    """A float64 model is summarised with float64 activations (8 bytes each), not refused."""
    from cnnlab.models import get_model

    s32 = summary(get_model("lenet5"), (1, 28, 28), verbose=False)
    s64 = summary(get_model("lenet5").double(), (1, 28, 28), verbose=False)
    assert s64.forward_bytes == 2 * s32.forward_bytes


def test_unseen_pixels_name_the_input_rows_and_skip_padding():
    from cnnlab.summary import grouped_warnings

    # 10 rows, 3x3/2 unpadded: row 9 is never in a window
    s = summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2)), (1, 10, 10), verbose=False)
    assert any("input row 9 of 10 (0-based) are never seen" in w for w in s.warnings)
    # padded 1 each side to 12: the one position left over is the bottom padding, not a pixel
    s = summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1)), (1, 9, 9), verbose=False)
    assert s.warnings == []
    two = summary(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.Conv2d(2, 2, 2, stride=3)),
                  (1, 10, 10), verbose=False)
    grouped = grouped_warnings(two.warnings)
    assert len(two.warnings) == 4 and len(grouped) == 1 and grouped[0].endswith("(also: 1 (Conv2d))")


@pytest.mark.parametrize("name,shape", [("alexnet_original", "3x227x227"), ("zfnet", "3x224x224"),
                                        ("lenet5_1998", "1x32x32"), ("digits_cnn", "1x8x8")])
def test_cli_summary_uses_the_models_own_input_and_warns_on_stderr(name, shape, capsys):
    from cnnlab.cli import main

    assert main(["summary", name]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{name} on {shape}") and "warning" not in out
    assert "MB" not in out.replace("MiB", "") and "KB" not in out.replace("KiB", "")
    assert len(err.splitlines()) == len({line.split(":")[2] for line in err.splitlines()})


def test_totals_agree_connection_table_and_idle_heads():
    """LeNet-5's C3 counts its 60 connections (1,516 parameters, not 2,400); GoogLeNet's
    count with and without the auxiliary heads is labelled; the row sums add up."""
    from cnnlab.models import get_model

    s = summary(get_model("lenet5_1998"), (1, 32, 32), verbose=False)
    c3 = next(r for r in s.rows if r.name == "c3")
    assert c3.weights + c3.biases == 1_516 and s.masked_params == 900
    assert s.total_params == sum(r.weights + r.biases for r in s.rows) == 60_840
    assert "900 connection-table weights outside the table" in str(s)
    frozen = get_model("lenet5_1998")
    frozen.c3.requires_grad_(False)
    f = summary(frozen, (1, 32, 32), verbose=False)
    assert (f.total_params, f.frozen_params) == (60_840, 1_516)
    g = summary(get_model("googlenet"), (3, 64, 64), verbose=False)
    rows = sum(r.weights + r.biases for r in g.rows)
    assert rows == 6_624_904 and set(g.idle_params) == {"aux1", "aux2"}
    assert g.total_params == rows + sum(g.idle_params.values()) == 13_004_888
    text = str(g)
    assert "= 6,624,904 in the layers above (without aux1, aux2)" in text
    assert "13,004,888 with them" in text
