"""Transfer learning: initialising from another run, CNN codes, linear classifiers
on them, and the CLI paths (`train --init-from --freeze`, `features`, `linear`)."""
import numpy as np
import pytest

import cnnlab
from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.cli import main
from cnnlab.data import ArrayDataset, DataLoader
from cnnlab.models import get_model
from cnnlab.training.checkpoint import save_model
from cnnlab.training.features import extract_features, load_codes, save_codes
from cnnlab.training.linear import train_linear
from cnnlab.training.run import TrainConfig, fit
from cnnlab.training.transfer import initialise_from


def quiet(_):
    pass


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """digits_cnn trained on the full digits training split (the 'large, similar' source)."""
    out = tmp_path_factory.mktemp("pre") / "digits"
    fit(TrainConfig(epochs=3, seed=0), out, progress=False, report=quiet)
    return out / "model.npz"


def lenet_file(path, num_classes, input_size, classes):
    cnnlab.manual_seed(1)
    model = get_model("lenet5", num_classes=num_classes, input_size=input_size)
    spec = {"name": "lenet5", "kwargs": {"num_classes": num_classes, "in_channels": 1,
                                         "input_size": input_size}}
    save_model(path, model, {"model_spec": spec, "classes": classes, "dataset": "fashion-mnist",
                             "normalize": None})
    return model


def test_initialise_from_copies_matching_tensors_and_replaces_the_head(tmp_path):
    src = lenet_file(tmp_path / "src.npz", 5, 28, [f"c{i}" for i in range(5)])
    spec = {"name": "lenet5", "kwargs": {"num_classes": 10, "in_channels": 1, "input_size": 28}}
    model, report = initialise_from(tmp_path / "src.npz", spec, [str(i) for i in range(10)])
    s, m = src.state_dict(), model.state_dict()
    assert sorted(report.copied) == sorted(k for k in s if not k.startswith("classifier.4"))
    for k in report.copied:
        np.testing.assert_array_equal(m[k], s[k])
    assert m["classifier.4.weight"].shape == (10, 84)
    assert [n for n, _ in report.skipped] == ["classifier.4.weight", "classifier.4.bias"]
    assert "5 source classes -> 10" in report.head_replaced
    # the result has exactly the structure a fresh 10-class model has (so `evaluate` can rebuild it)
    assert {k: v.shape for k, v in m.items()} == {
        k: v.shape for k, v in get_model("lenet5", num_classes=10, input_size=28).state_dict().items()}
    # another input size changes the first FC's shape: skipped with the reason
    spec20 = {"name": "lenet5", "kwargs": {"num_classes": 5, "in_channels": 1, "input_size": 20}}
    _, rep = initialise_from(tmp_path / "src.npz", spec20, [f"c{i}" for i in range(5)])
    assert dict(rep.skipped)["classifier.0.weight"] == "shape (120, 400) in the source, (120, 144) here"
    assert rep.head_replaced is None and "classifier.4.weight" in rep.copied


def test_extract_features_equals_a_forward_truncated_by_hand():
    cnnlab.manual_seed(0)
    model = get_model("lenet5", input_size=20)
    model.train()
    x = np.random.default_rng(0).normal(size=(7, 1, 20, 20)).astype(np.float32)
    data = ArrayDataset(x, np.arange(7) % 3)
    codes, labels = extract_features(model, "classifier.2", DataLoader(data, 7))
    with no_grad():
        h = model.flatten(model.features(Tensor(x)))
        h = model.classifier[2](model.classifier[1](model.classifier[0](h))).data
    assert codes.shape == (7, 84) and codes.dtype == np.float32
    np.testing.assert_array_equal(codes, h)
    np.testing.assert_array_equal(labels, np.arange(7) % 3)
    relu_codes, _ = extract_features(model, "classifier.2", DataLoader(data, 3), relu=True)
    # other batch sizes: float32 GEMMs that round differently
    np.testing.assert_allclose(relu_codes, np.maximum(h, 0), rtol=0, atol=1e-6)

    conv, _ = extract_features(model, "features", DataLoader(data, 4))
    assert conv.shape == (7, 16 * 3 * 3)
    assert model.training                                   # the mode is restored
    with pytest.raises(ValueError, match="no layer 'fc2'"):
        extract_features(model, "fc2", DataLoader(data, 4))


def test_linear_classifier_separates_separable_codes_with_both_losses(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (4, 30)) * 4
    y = rng.integers(0, 4, 400)
    x = (centres[y] + rng.normal(0, 1, (400, 30)) + 50).astype(np.float32)   # offset: standardised away
    for loss in ("softmax", "svm"):
        clf = train_linear(x[:300], y[:300], loss=loss, epochs=30, seed=0)
        assert clf.score(x[300:], y[300:]) > 0.97, loss
        assert clf.history[-1] < clf.history[0] / 5
        np.testing.assert_allclose(clf.mean, x[:300].mean(axis=0), rtol=1e-5)
        assert clf.predict(x[:5]).shape == (5,)
    save_codes(tmp_path / "c.npz", x, y, "classifier.2", source="m.npz")
    c, lab, layer = load_codes(tmp_path / "c.npz")
    np.testing.assert_array_equal(c, x)
    np.testing.assert_array_equal(lab, y)
    assert layer == "classifier.2"


def test_cli_init_from_freeze_then_features_and_linear(pretrained, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(["train", "--init-from", str(pretrained), "--freeze", "features", "--epochs", "1",
                 "--train-size", "100", "--lr-mult", "classifier.0=0.5", "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "copied 8 tensors, skipped 0" in text and "8,906 trainable" in text
    src = cnnlab.load(pretrained)
    new = cnnlab.load(out / "model.npz")
    for k in src:
        same = np.array_equal(src[k], new[k])
        assert same == k.startswith("features."), k
    tr, te = tmp_path / "tr.npz", tmp_path / "te.npz"
    ckpt = str(out / "model.npz")
    assert main(["features", ckpt, "--layer", "classifier.0", "--relu", "--out", str(tr)]) == 0
    assert main(["features", ckpt, "--layer", "classifier.0", "--relu", "--split", "test",
                 "--out", str(te)]) == 0
    codes, labels, layer = load_codes(te)
    assert codes.shape == (360, 64) and layer == "classifier.0" and codes.min() >= 0
    capsys.readouterr()
    assert main(["linear", str(tr), "--test", str(te), "--loss", "svm", "--epochs", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    train_acc = float(lines[-2].split()[-1])
    test_acc = float(lines[-1].split()[-1])
    assert lines[-1].startswith("test accuracy") and train_acc > 0.9 and test_acc > 0.85
    assert main(["train", "--freeze", "nope", "--epochs", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "no submodule or parameter named 'nope'" in capsys.readouterr().err


def test_fine_tuning_beats_training_from_scratch_on_few_labels(pretrained, tmp_path):
    base = dict(train_size=50, epochs=4, seed=3)
    scratch = fit(TrainConfig(**base), tmp_path / "scratch", progress=False, report=quiet)
    tuned = fit(TrainConfig(**base, init_from=str(pretrained), lr_mult={"features": 0.1}),
                tmp_path / "tuned", progress=False, report=quiet)
    assert tuned.test_accuracy > scratch.test_accuracy + 0.1


def test_linear_classifier_ignores_dimensions_constant_in_training():
    """A code dimension constant on the training codes (a dead ReLU unit) gets std = inf and maps
    to 0, so its untrained weight cannot swamp the scores when the unit fires on test codes."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    x[:, 1] += 3 * y
    x[:, 0] = 0.0
    clf = train_linear(x[:100], y[:100], epochs=100, seed=0)
    assert clf.std[0] == np.inf and np.isfinite(clf.std[1:]).all()
    fired = x[100:].copy()
    fired[:, 0] = 0.5
    np.testing.assert_array_equal(clf.decision_function(fired), clf.decision_function(x[100:]))
    assert clf.score(x[100:], y[100:]) > 0.8
    with pytest.raises(ValueError, match="num_classes=2 but the labels go up to 2"):
        train_linear(x[:100], y[:100], num_classes=2)
