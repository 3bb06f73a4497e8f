"""Gradient-based visualisation: ReLU backward modes, saliency, occlusion, guided
backprop / DeconvNet, class models, feature inversion and adversarial examples."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
import cnnlab.nn.functional as F
from cnnlab.autograd import relu_backward_mode
from cnnlab.autograd.relu_modes import get_relu_backward_mode
from cnnlab.data import DataLoader
from cnnlab.data.datasets import ArrayDataset
from cnnlab.viz.adversarial import (
    accuracy_under_attack,
    fgsm,
    iterative_fgsm,
    loader_normalization,
    plot_adversarial,
    to_raw,
)
from cnnlab.viz.attribution import (
    deconvnet,
    guided_backprop,
    input_gradient,
    occlusion,
    plot_guided,
    plot_occlusion,
    plot_saliency,
    saliency,
)
from cnnlab.viz.synthesis import class_model, gaussian_blur, invert_features, total_variation

torch = pytest.importorskip("torch")

# Every (sign of x, sign of g) pair, x == 0 and g == 0 included.
X9 = np.array([-2.0, -2.0, -2.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0])
G9 = np.array([-1.5, 0.0, 2.5, -1.5, 0.0, 2.5, -1.5, 0.0, 2.5])
EXPECTED = {   # written out by hand from the three rules
    "normal": np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.5, 0.0, 2.5]),      # g * (x > 0)
    "deconvnet": np.array([0.0, 0.0, 2.5, 0.0, 0.0, 2.5, 0.0, 0.0, 2.5]),    # g * (g > 0)
    "guided": np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.5]),       # g * (x > 0) * (g > 0)
}


# ------------------------------------------------------------------ ReLU backward modes
def _relu_grad(x: np.ndarray, g: np.ndarray, mode: str, how: str) -> np.ndarray:
    xt = cnnlab.Tensor(x.copy(), requires_grad=True)
    with relu_backward_mode(mode):
        y = {"functional": F.relu, "module": nn.ReLU(), "method": lambda t: t.relu()}[how](xt)
        y.backward(g)
    return xt.grad


@pytest.mark.parametrize("how", ["functional", "module", "method"])
@pytest.mark.parametrize("mode", ["normal", "deconvnet", "guided"])
def test_relu_modes_follow_their_rule_exactly(mode, how):
    np.testing.assert_array_equal(_relu_grad(X9, G9, mode, how), EXPECTED[mode])


def test_guided_is_deconvnet_masked_by_positive_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 5))
    x[0, 0, :2] = 0.0
    g = rng.standard_normal(x.shape)
    g[1, 1, :2] = 0.0
    d = _relu_grad(x, g, "deconvnet", "functional")
    gb = _relu_grad(x, g, "guided", "functional")
    np.testing.assert_array_equal(gb, d * (x > 0))
    np.testing.assert_array_equal(_relu_grad(x, g, "normal", "functional"), g * (x > 0))


def test_relu_mode_context_restores_and_validates():
    assert get_relu_backward_mode() == "normal"
    with pytest.raises(RuntimeError):
        with relu_backward_mode("guided"):
            with relu_backward_mode("deconvnet"):
                assert get_relu_backward_mode() == "deconvnet"
            assert get_relu_backward_mode() == "guided"
            raise RuntimeError("boom")
    assert get_relu_backward_mode() == "normal"
    with pytest.raises(ValueError, match="guided"):
        with relu_backward_mode("guidedd"):
            pass


def test_relu_normal_mode_still_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6))
    x[0, :3] = 0.0
    g = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(g))
    np.testing.assert_array_equal(_relu_grad(x, g, "normal", "module"), xt.grad.numpy())


# ------------------------------------------------------------------ a small model and its torch twin
def _small_model(seed: int = 0, in_ch: int = 2) -> nn.Module:
    cnnlab.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(in_ch, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(24, 16), nn.ReLU(),
                         nn.Linear(16, 3)).double()


def _torch_twin(model: nn.Module, in_ch: int = 2):
    tm = torch.nn.Sequential(torch.nn.Conv2d(in_ch, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                             torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                             torch.nn.Linear(24, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).double()
    tm.load_state_dict({k: torch.tensor(np.array(v)) for k, v in model.state_dict().items()})
    return tm


def _torch_input_grad(tm, x: np.ndarray, target: np.ndarray, mode: str = "normal") -> np.ndarray:
    """The class-logit gradient in torch, with ReLU backward hooks for guided / deconvnet
    (the usual torch recipe, an independent implementation of the rules)."""
    handles = []
    for m in tm.modules():
        if isinstance(m, torch.nn.ReLU) and mode != "normal":
            if mode == "guided":      # grad_input = g * (x > 0); keep its positive part
                hook = lambda mod, gin, gout: (gin[0].clamp(min=0),)  # noqa: E731
            else:                     # deconvnet: ignore x, keep the positive part of g
                hook = lambda mod, gin, gout: (gout[0].clamp(min=0),)  # noqa: E731
            handles.append(m.register_full_backward_hook(hook))
    xt = torch.tensor(x, requires_grad=True)
    out = tm(xt)
    out[torch.arange(len(x)), torch.tensor(target)].sum().backward()
    for h in handles:
        h.remove()
    return xt.grad.numpy()


@pytest.fixture(scope="module")
def small():
    model = _small_model()
    x = np.random.default_rng(2).standard_normal((3, 2, 8, 8))
    target = np.array([0, 2, 1])
    return model, _torch_twin(model), x, target


def test_input_gradient_matches_centred_differences(small):
    model, _, x, target = small
    g = input_gradient(model, x, target)
    eps = 1e-6
    idx = list(np.ndindex(x.shape))
    plus, minus = np.repeat(x[None], len(idx), 0), np.repeat(x[None], len(idx), 0)
    for k, i in enumerate(idx):                # copy k: element i moved by +-eps
        plus[(k, *i)] += eps
        minus[(k, *i)] -= eps
    rows = np.array([i[0] for i in idx])
    with cnnlab.no_grad():                     # one batched forward per sign
        fp = model(cnnlab.Tensor(plus[np.arange(len(idx)), rows])).data[np.arange(len(idx)), target[rows]]
        fm = model(cnnlab.Tensor(minus[np.arange(len(idx)), rows])).data[np.arange(len(idx)), target[rows]]
    num = ((fp - fm) / (2 * eps)).reshape(x.shape)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("mode", ["normal", "guided", "deconvnet"])
def test_input_space_maps_match_torch(small, mode):
    model, tm, x, target = small
    fn = {"normal": input_gradient, "guided": guided_backprop, "deconvnet": deconvnet}[mode]
    ours = fn(model, x, target)
    theirs = _torch_input_grad(tm, x, target, mode)
    assert ours.shape == x.shape
    assert np.abs(theirs).max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    if mode == "normal":
        np.testing.assert_allclose(saliency(model, x, target), np.abs(theirs).max(axis=1),
                                   rtol=1e-10, atol=1e-12)


def test_guided_differs_from_gradient_and_keeps_model_state(small):
    model, _, x, target = small
    model.train()
    model[0].weight.grad = np.full(model[0].weight.shape, 7.0)
    x_before = x.copy()
    g = input_gradient(model, x, target)
    gb, d = guided_backprop(model, x, target), deconvnet(model, x, target)
    assert not np.allclose(g, gb) and not np.allclose(gb, d)
    np.testing.assert_array_equal(x, x_before)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    np.testing.assert_array_equal(model[0].weight.grad, 7.0)
    assert model[3].weight.grad is None
    model[0].weight.grad = None
    model.eval()
    assert get_relu_backward_mode() == "normal"


def test_target_validation(small):
    model, _, x, _ = small
    with pytest.raises(ValueError, match="one target per image"):
        saliency(model, x, [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        saliency(model, x, 5)
    with pytest.raises(ValueError, match="occlusion: size"):
        occlusion(model, x, 0, size=9, stride=1)


# ------------------------------------------------------------------ occlusion
class _QuadrantModel(nn.Module):
    """Logits that depend on the top-left 4x4 quadrant only."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(x[:, 0, :4, :4].reshape(x.shape[0], 16))


def test_occlusion_sees_only_the_quadrant_the_model_uses():
    model = _QuadrantModel().double()
    w = np.zeros((3, 16))
    w[1] = 0.25                     # class 1: a quarter of the quadrant sum
    model.fc.weight.data[...] = w
    model.fc.bias.data[...] = 0.0
    x = np.random.default_rng(3).uniform(0.5, 1.0, (2, 1, 8, 8))
    heat = occlusion(model, x, 1, size=2, stride=2)
    assert heat.shape == (2, 4, 4)
    with cnnlab.no_grad():
        z = model(cnnlab.Tensor(x)).data
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p_clean = e[:, 1] / e.sum(axis=1)
    quad = np.zeros((4, 4), bool)
    quad[:2, :2] = True
    for n in range(2):
        np.testing.assert_array_equal(heat[n][~quad], p_clean[n])   # exactly unchanged elsewhere
        assert np.all(heat[n][quad] < p_clean[n] - 1e-3)             # lowered where the model looks
        # each value equals the probability computed directly for that occluded copy
        xo = x[n:n + 1].copy()
        xo[..., 2:4, 0:2] = 0.0
        zo = model(cnnlab.Tensor(xo)).data[0]
        np.testing.assert_allclose(heat[n, 1, 0], np.exp(zo[1]) / np.exp(zo).sum(), rtol=1e-12)


@pytest.mark.parametrize("H,size,stride", [(8, 3, 1), (8, 3, 2), (9, 4, 2), (8, 8, 3), (7, 2, 5)])
def test_occlusion_map_shape_and_batching(small, H, size, stride):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(2, 3)).double()
    x = np.random.default_rng(4).standard_normal((2, 1, H, H))
    heat = occlusion(model, x, [0, 2], size, stride, fill="mean")
    out = (H - size) // stride + 1
    assert heat.shape == (2, out, out)
    assert np.all((heat > 0) & (heat < 1))
    np.testing.assert_allclose(occlusion(model, x, [0, 2], size, stride, fill="mean", batch_size=1), heat,
                               rtol=1e-12, atol=0)
    xo = x[1:2].copy()
    xo[..., 0:size, stride:stride + size] = x[1].mean()
    if out > 1:
        zo = model(cnnlab.Tensor(xo)).data[0]
        np.testing.assert_allclose(heat[1, 0, 1], np.exp(zo[2]) / np.exp(zo).sum(), rtol=1e-12)


# ------------------------------------------------------------------ synthesis helpers
def test_gaussian_blur_matches_scipy_and_total_variation_gradient():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(5).standard_normal((2, 9, 11))
    ours = gaussian_blur(x, 1.0)
    ref = np.stack([ndimage.gaussian_filter(c, 1.0, mode="mirror", truncate=3.0) for c in x])
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert total_variation(ours)[0] < 0.5 * total_variation(x)[0]
    value, grad = total_variation(x)
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += 1e-6
        xm[idx] -= 1e-6
        num[idx] = (total_variation(xp)[0] - total_variation(xm)[0]) / 2e-6
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ a trained digits model
@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from cnnlab.training.run import TrainConfig, evaluation_loader, fit, load_for_evaluation

    out = tmp_path_factory.mktemp("viz_digits")
    # all the training digits (val_split=0): the figures measured below are this model's
    fit(TrainConfig(dataset="digits", epochs=3, val_split=0.0), out=out, progress=False,
        report=lambda s: None)
    model, meta = load_for_evaluation(out / "model.npz")
    test, full = evaluation_loader(meta, None, None)
    keep = np.arange(0, len(test), 3)                      # 120 images keep the test fast
    loader = DataLoader(ArrayDataset(test.x[keep], test.y[keep], test.classes), 60,
                        transform=full.transform)
    return model, loader


def test_class_model_increases_the_score(digits):
    model, _ = digits
    # plain regularised ascent (no jitter, no blur): the score rises at every step
    img, hist = class_model(model, 3, (1, 8, 8), steps=80, seed=1, jitter=0, blur_every=0,
                            return_history=True)
    s = hist["score"]
    assert img.shape == (1, 8, 8) and s.shape == (80,)
    assert s[-1] > s[0] + 10.0                                 # measured about 0.2 -> 25
    assert np.mean(np.diff(s) > 0) > 0.9
    # the defaults (jitter 1 px, blur every 4 steps) are noisier but rise on average
    img, hist = class_model(model, 3, (1, 8, 8), steps=80, seed=1, return_history=True)
    s = hist["score"]
    assert s[-10:].mean() > s[:10].mean() + 2.0                # measured about 2 -> 5
    assert s[-20:].mean() > s[20:40].mean() > s[:20].mean() - 0.5
    with cnnlab.no_grad():
        z = model(cnnlab.Tensor(img[None])).data[0]
    assert z.argmax() == 3                                     # the class model is seen as a 3


def test_class_model_of_a_unit_and_l2(digits):
    model, _ = digits
    _, hist = class_model(model, None, (1, 8, 8), steps=60, layer="features.4", channel=5,
                          return_history=True, jitter=0, blur_every=0)
    assert hist["score"][-1] > hist["score"][0] + 1.0
    free = class_model(model, 3, (1, 8, 8), steps=60, l2=0.0, jitter=0, blur_every=0)
    tight = class_model(model, 3, (1, 8, 8), steps=60, l2=1e6, jitter=0, blur_every=0)
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(free) > 3.0                                     # 60 steps of 0.1 rms
    assert rms(tight) < 1e-6                                   # bound 1 / (2 l2) = 5e-7
    blurred = class_model(model, 3, (1, 8, 8), steps=60, jitter=0, blur_every=1, blur_sigma=1.0)
    sharp = class_model(model, 3, (1, 8, 8), steps=60, jitter=0, blur_every=0)
    assert total_variation(blurred)[0] < 0.3 * total_variation(sharp)[0]
    with pytest.raises(ValueError, match="without a channel"):
        class_model(model, None, (1, 8, 8), layer="features.4")


def test_invert_features_reconstructs_from_an_early_layer(digits):
    model, loader = digits
    x0 = next(iter(loader))[0].data[0]
    rec, hist = invert_features(model, "features.1", x0, steps=200, return_history=True)
    assert hist["loss"][-1] < 0.01 * hist["loss"][0]
    assert np.corrcoef(rec.ravel(), x0.ravel())[0, 1] > 0.99         # measured 0.99999
    rec4, hist4 = invert_features(model, "features.4", x0, steps=200, return_history=True)
    assert hist4["loss"][-1] < 0.1 * hist4["loss"][0]
    assert np.corrcoef(rec4.ravel(), x0.ravel())[0, 1] > 0.75         # measured 0.86: deeper loses detail


# ------------------------------------------------------------------ adversarial examples
def test_fgsm_is_the_sign_of_the_torch_loss_gradient(small):
    model, tm, x, target = small
    mean, std = 0.3, 0.4
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(tm(xt), torch.tensor(target), reduction="sum").backward()
    adv = fgsm(model, x, target, 0.05, mean=mean, std=std)
    np.testing.assert_allclose(adv, x + 0.05 / std * np.sign(xt.grad.numpy()), rtol=0, atol=1e-12)
    raw_adv = to_raw(fgsm(model, x, target, 0.05, pixel_range=(0.0, 1.0), mean=mean, std=std), mean, std)
    raw = to_raw(x, mean, std)
    inside = (raw >= 0) & (raw <= 1)
    assert raw_adv[inside].min() >= -1e-12 and raw_adv[inside].max() <= 1 + 1e-12
    assert np.abs(raw_adv - raw).max() <= 0.05 + 1e-12


def test_accuracy_under_attack(digits):
    model, loader = digits
    mean, std = loader_normalization(loader)
    assert 0.3 < std[0] < 0.4                                  # the digits' std: eps is in raw pixels
    eps = [0.0, 0.05, 0.1, 0.2, 0.3]
    fg = accuracy_under_attack(model, loader, eps)
    it = accuracy_under_attack(model, loader, eps[1:], method="ifgsm", steps=5)
    correct = total = 0
    with cnnlab.no_grad():
        for xb, yb in loader:
            correct += int((model(xb).data.argmax(1) == yb.data).sum())
            total += len(yb.data)
    assert [e for e, _ in fg] == eps
    accs = [a for _, a in fg]
    assert accs[0] == correct / total and accs[0] > 0.85
    assert all(b <= a for a, b in zip(accs, accs[1:])) and accs[-1] < 0.5 * accs[0]
    for (e, a_fg), (e2, a_it) in zip(fg[1:], it):
        assert e == e2 and a_it <= a_fg

    xb, yb = next(iter(loader))
    x, y = xb.data, yb.data
    for attack in (fgsm, iterative_fgsm):
        adv = attack(model, x, y, 0.1, pixel_range=(0.0, 1.0), mean=mean, std=std)
        assert adv.dtype == x.dtype and adv.shape == x.shape
        assert np.abs(to_raw(adv, mean, std) - to_raw(x, mean, std)).max() <= 0.1 + 1e-5
        assert to_raw(adv, mean, std).min() >= -1e-5 and to_raw(adv, mean, std).max() <= 1 + 1e-5
        np.testing.assert_array_equal(attack(model, x, y, 0.0, pixel_range=(0.0, 1.0), mean=mean, std=std), x)


def test_plots_write_pngs(small, tmp_path):
    import matplotlib.image as mpimg

    model, _, x, target = small
    paths = [
        plot_saliency(x[:, :1], saliency(model, x, target), tmp_path / "s.png"),
        plot_guided(x[0, :1], {"guided": guided_backprop(model, x[:1], 0)[0, :1]}, tmp_path / "g.png"),
        plot_occlusion(x[0, :1], occlusion(model, x[:1], 0, 3, 1)[0], tmp_path / "o.png", size=3, stride=1),
        plot_adversarial(x[0, 0], np.zeros((8, 8)), x[0, 0], 1, 2, tmp_path / "a.png"),
    ]
    for p in paths:
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 50 and img.std() > 0.01
