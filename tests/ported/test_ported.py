"""PyTorch scripts ported by changing only the import (the README's promise).

Each test executes the same script source (``scripts/``) with ``torch`` bound
to PyTorch and to cnnlab, copies the torch model's initial weights into the
cnnlab one with ``load_state_dict``, feeds both the same digits, and requires the
same loss at every step (within 1e-5) and the same test-loop counts.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch  # the oracle must be there: a missing torch fails, it does not skip
from port_harness import digits, load_script, share_dropout_masks

import cnnlab

TOL = 1e-5


@pytest.fixture(autouse=True)
def _float32_torch():
    """The scripts run as a user would, in float32 (other tests switch torch's default)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


def _pair(name: str, build: str, *args):
    ours_ns, theirs_ns = load_script(name, "cnnlab"), load_script(name, "torch")
    torch.manual_seed(0)
    cnnlab.manual_seed(0)
    theirs = theirs_ns[build](*args)
    ours = ours_ns[build](*args)
    ours.load_state_dict(theirs.state_dict())
    return ours_ns, theirs_ns, ours, theirs


def test_mnist_example_shape():
    """Two 3x3 convs, dropout, torch.flatten(x, 1), log_softmax + nll_loss, Adadelta +
    StepLR over two epochs, and the example's test loop (argmax(dim=1, keepdim=True),
    pred.eq(target.view_as(pred)).sum().item(), reduction='sum').

    Dropout is kept on in training, with p = 0.25 and 0.5 as in the example.  The two
    libraries' generators cannot draw the same numbers, so the masks are shared
    (``share_dropout_masks``): cnnlab's dropout runs for real and the torch model
    multiplies by the very mask cnnlab drew.  The losses therefore compare the whole
    forward and backward, dropout included; that the masks are real dropout masks
    (zero fraction near p, kept values scaled by 1/(1-p)) is checked here too."""
    data = digits(16, 256, 300)
    ours_ns, theirs_ns, ours, theirs = _pair("mnist_example", "Net")
    masks = share_dropout_masks(ours, theirs, cnnlab, torch)
    ours_losses, theirs_losses = [], []
    ours_results = ours_ns["run"](ours, *ours_ns["make_loaders"](*data), 2, ours_losses)
    seen = [m.copy() for m in masks]              # what the torch run is about to consume
    theirs_results = theirs_ns["run"](theirs, *theirs_ns["make_loaders"](*data), 2, theirs_losses)
    assert masks == []                           # every mask drawn was used once
    assert len(ours_losses) == len(theirs_losses) == 8
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=0, atol=TOL)
    for (loss_c, correct_c), (loss_t, correct_t) in zip(ours_results, theirs_results):
        assert correct_c == correct_t
        assert abs(loss_c - loss_t) < TOL
    assert ours_results[-1][1] > 30 * 3          # it learned something (chance: 30 of 300)
    first, second = seen[0], seen[1]             # dropout1 (p=0.25) and dropout2 (p=0.5)
    assert set(np.unique(first)) <= {0, np.float32(1 / 0.75)}
    assert abs((first == 0).mean() - 0.25) < 0.05 and abs((second == 0).mean() - 0.5) < 0.05


def test_classifier_tutorial_shape():
    """A Dataset subclass through DataLoader's default collate, CrossEntropyLoss,
    SGD with momentum, torch.max(outputs.data, 1) and (predicted == labels).sum().item()."""
    data = digits(32, 320, 200)
    ours_ns, theirs_ns, ours, theirs = _pair("classifier_tutorial", "Net")
    ours_losses, theirs_losses = [], []
    correct_c, total_c = ours_ns["run"](ours, *ours_ns["make_loaders"](*data), 2, ours_losses)
    correct_t, total_t = theirs_ns["run"](theirs, *theirs_ns["make_loaders"](*data), 2,
                                          theirs_losses)
    assert len(ours_losses) == 20
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=0, atol=TOL)
    assert (correct_c, total_c) == (correct_t, total_t) and total_c == 200


def test_resnet_definition(tmp_path):
    """torchvision's ResNet idioms: the self.modules() init loop (kaiming_normal_
    with mode='fan_out', constant_ for BatchNorm), ReLU(inplace=True), out += identity,
    torch.cat, x.view(x.size(0), -1); BatchNorm in training and eval; SGD with weight
    decay; torch.save/torch.load of the state dict (a .pt file either way)."""
    data = digits(16, 256, 200)
    ours_ns, theirs_ns, ours, theirs = _pair("resnet_small", "resnet_small")
    # the init loop ran in cnnlab too: He's fan_out std for every conv, BN at (1, 0)
    fresh = ours_ns["resnet_small"]()
    conv = fresh.layer2[0].conv1.weight.numpy()
    fan_out = conv.shape[0] * conv.shape[2] * conv.shape[3]
    assert abs(conv.std() - np.sqrt(2.0 / fan_out)) < 0.15 * np.sqrt(2.0 / fan_out)
    assert (fresh.bn1.weight.numpy() == 1).all() and (fresh.bn1.bias.numpy() == 0).all()

    ours_losses, theirs_losses = [], []
    ours_model, correct_c = ours_ns["run"](ours, *data, 6, ours_losses, tmp_path / "ours.pt")
    theirs_model, correct_t = theirs_ns["run"](theirs, *data, 6, theirs_losses,
                                               tmp_path / "theirs.pt")
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=0, atol=TOL)
    assert correct_c == correct_t
    theirs_state = theirs_model.state_dict()
    for key, value in ours_model.state_dict().items():   # running statistics included
        np.testing.assert_allclose(value, theirs_state[key].numpy(), rtol=0, atol=1e-4,
                                   err_msg=key)
    with pytest.raises(cnnlab.CheckpointError, match="load_weights"):
        cnnlab.load(tmp_path / "theirs.pt")               # torch's pickle is refused, by name
