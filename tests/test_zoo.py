"""The model zoo: parameter counts against torchvision's, forward and backward on small inputs."""
import numpy as np
import pytest

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.models import get_model, googlenet_loss, list_models

# torchvision's published parameter counts (ImageNet heads, 1000 classes)
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840, "vgg11": 132_863_336, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg16_bn": 138_365_992, "resnet18": 11_689_512, "resnet34": 21_797_672,
    "resnet50": 25_557_032, "resnet101": 44_549_160, "resnet152": 60_192_808,
    "densenet121": 7_978_856, "densenet169": 14_149_480,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_equal_torchvision(name):
    m = get_model(name)
    assert sum(p.numel() for p in m.parameters()) == TORCHVISION_PARAMS[name]


def test_googlenet_count_without_auxiliary_heads():
    m = get_model("googlenet")
    main = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("aux"))
    assert main == 6_624_904


# reduced but honest sizes: each model gets the smallest input its downsampling allows
SMALL = {
    "lenet5": (1, 28), "lenet5_1998": (1, 32), "digits_cnn": (1, 8), "alexnet": (3, 64),
    "alexnet_original": (3, 99),
    "zfnet": (3, 64), "nin": (3, 32), "allconv": (3, 32), "googlenet": (3, 64),
    "resnet18": (3, 32), "resnet34": (3, 32), "resnet50": (3, 32), "resnet20": (3, 32),
    "resnet32": (3, 32), "densenet121": (3, 32), "densenet_bc_100_12": (3, 16),
    "vgg11": (3, 32), "vgg11_bn": (3, 32), "bn_cnn": (1, 28),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_and_backward_on_a_small_batch(name):
    C, S = SMALL[name]
    cnnlab.manual_seed(0)
    m = get_model(name, num_classes=7, in_channels=C, input_size=S)
    x = cnnlab.Tensor(np.random.default_rng(0).standard_normal((2, C, S, S)).astype(np.float32))
    y = np.array([1, 5])
    out = m(x)
    loss = googlenet_loss(out, y) if name == "googlenet" else F.cross_entropy(out, y)
    loss.backward()
    assert np.isfinite(loss.item())
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
    m.eval()
    with cnnlab.no_grad():
        assert m(x).shape == (2, 7)


def test_every_model_is_listed_and_builds():
    names = list_models()
    for n in ["lenet5", "alexnet", "alexnet_original", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19",
              "vgg16_bn", "nin", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101",
              "resnet152", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
              "densenet121", "densenet169", "densenet_bc_100_12", "allconv"]:
        assert n in names


def test_googlenet_returns_auxiliary_logits_only_in_training():
    m = get_model("googlenet", num_classes=5, input_size=64)
    x = cnnlab.Tensor(np.zeros((1, 3, 64, 64), dtype=np.float32))
    out = m(x)
    assert out.logits.shape == out.aux_logits1.shape == out.aux_logits2.shape == (1, 5)
    m.eval()
    assert m(x).shape == (1, 5)


def test_cifar_resnet_depths():
    for depth in (20, 32, 44, 56, 110):
        m = get_model(f"resnet{depth}")
        convs = sum(1 for n, p in m.named_parameters() if p.ndim == 4 and "downsample" not in n)
        assert convs + 1 == depth        # 6n + 1 convs and the FC layer


def test_lenet5_1998_is_the_paper_network():
    m = get_model("lenet5_1998")
    c3 = m.c3
    connected = int(c3.mask().sum()) * 25 + 16
    assert connected == 1_516                                    # the paper's C3 count
    assert m.c1.weight.shape == (6, 1, 5, 5) and m.c5.weight.shape == (120, 16, 5, 5)
    assert m.f6.weight.shape == (84, 120) and m.output.weight.shape == (10, 84)
    assert np.all(c3.weight.data[c3.mask()[..., 0, 0] == 0] == 0)   # unconnected maps start at 0
    x = cnnlab.Tensor(np.zeros((1, 1, 32, 32), dtype=np.float32))
    assert m(x).shape == (1, 10)
    with pytest.raises(ValueError, match="32x32"):
        get_model("lenet5_1998", input_size=28)


def test_vgg_paper_configurations_a_lrn_and_c():
    a = get_model("vgg11_lrn", num_classes=10)
    assert [type(m).__name__ for m in a.features][:3] == ["Conv2d", "ReLU", "LocalResponseNorm"]
    c = get_model("vgg16_c", num_classes=10)
    kernels = [m.kernel_size for m in c.features if type(m).__name__ == "Conv2d"]
    assert kernels.count((1, 1)) == 3 and len(kernels) == 13


@pytest.mark.parametrize("name", ["nin", "allconv", "resnet20", "resnet18", "densenet121",
                                  "lenet5", "digits_cnn", "densenet_bc_100_12", "bn_cnn"])
def test_models_run_at_the_minimum_input_size_training_uses(name):
    from cnnlab.models import MIN_INPUT_SIZE, input_size_for

    size, how = MIN_INPUT_SIZE[name]
    assert input_size_for(name, size) == (size, None)
    assert input_size_for(name, size - 1)[0] == size
    m = get_model(name, num_classes=3, in_channels=1, input_size=size).eval()
    with cnnlab.no_grad():
        assert m(cnnlab.Tensor(np.zeros((1, 1, size, size), dtype=np.float32))).shape == (1, 3)
