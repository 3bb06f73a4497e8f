"""Tests for cnnlab.data.augment (random augmentation), its DataLoader seeding, and training.tta.

torchvision is not installed, so the colour transforms are compared with its
formulas written out by hand, sample by sample.
"""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
import cnnlab.nn as nn
from cnnlab.data import (
    AUGMENTATION_NAMES,
    ArrayDataset,
    CenterCrop,
    ColorJitter,
    Compose,
    DataLoader,
    Lighting,
    Normalize,
    PCALighting,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    build_augmentation,
    pca_lighting_basis,
)
from cnnlab.data.augment import crop_windows
from cnnlab.training.tta import evaluate_tta, predict_tta, tta_views

GREY = np.array([0.2989, 0.587, 0.114])


def _images(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def _all_transforms():
    return [RandomHorizontalFlip(0.5, seed=1), RandomCrop(6, padding=2, seed=1), CenterCrop(4),
            ColorJitter(0.4, 0.4, 0.4, seed=1), Lighting(0.1, seed=1), RandomErasing(1.0, seed=1)]


# ================================================================== generic contract
@pytest.mark.parametrize("t", _all_transforms(), ids=lambda t: type(t).__name__)
def test_batch_and_single_image_shapes_and_input_untouched(t):
    x = _images((5, 3, 6, 6), dtype=np.float32)
    before = x.copy()
    out = t(x)
    want = (5, 3, 4, 4) if isinstance(t, CenterCrop) else x.shape
    assert out.shape == want and out.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    if getattr(t, "random", False):
        # A single image draws exactly what a batch of one draws.
        one = t(x[2], rng=np.random.default_rng(7))
        np.testing.assert_array_equal(one, t(x[2:3], rng=np.random.default_rng(7))[0])
        assert not np.shares_memory(one, x)
    else:
        np.testing.assert_array_equal(t(x[2]), out[2])
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match=type(t).__name__):
        t(np.zeros(6))


def test_seed_at_construction_and_rng_argument():
    x = _images((20, 1, 8, 8))
    a, b = RandomCrop(8, padding=2, seed=3), RandomCrop(8, padding=2, seed=3)
    np.testing.assert_array_equal(a(x), b(x))             # same seed, same draws
    assert not np.array_equal(a(x), RandomCrop(8, padding=2, seed=4)(x))
    # With rng given, the transform's own generator is not used and not advanced.
    c = RandomCrop(8, padding=2, seed=3)
    r1 = c(x, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(r1, c(x, rng=np.random.default_rng(9)))
    np.testing.assert_array_equal(c(x), RandomCrop(8, padding=2, seed=3)(x))
    with pytest.raises(TypeError, match="Generator"):
        c(x, rng=5)


# ================================================================== flips
def test_horizontal_flip_flips_about_p_of_samples_exactly():
    x = _images((4000, 2, 3, 5))
    out = RandomHorizontalFlip(0.3)(x, rng=np.random.default_rng(0))
    flipped = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped ^ kept)                          # every sample is one or the other, exactly
    np.testing.assert_array_equal(flipped, np.random.default_rng(0).random(4000) < 0.3)
    assert abs(flipped.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 4000)
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    with pytest.raises(ValueError, match="p must be in"):
        RandomHorizontalFlip(1.5)


# ================================================================== crops
def _find_offsets(out, padded):
    """For each sample, every (top, left) where ``out`` is a window of ``padded``."""
    h, w = out.shape[-2:]
    H, W = padded.shape[-2:]
    found = []
    for b in range(len(out)):
        found.append([(i, j) for i in range(H - h + 1) for j in range(W - w + 1)
                      if np.array_equal(padded[b, :, i:i + h, j:j + w], out[b])])
    return found


def test_random_crop_with_padding_is_a_window_of_the_zero_padded_input():
    x = _images((300, 2, 7, 7)) + 0.5              # no zeros inside the image
    out = RandomCrop(7, padding=2)(x, rng=np.random.default_rng(1))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    found = _find_offsets(out, padded)
    assert all(len(f) == 1 for f in found)          # exactly one window matches each output
    offsets = {f[0] for f in found}
    assert offsets == {(i, j) for i in range(5) for j in range(5)}  # every offset in range occurs
    # Non-square crop without padding (AlexNet's 224-of-256 in miniature), 4-tuple padding, modes.
    out = RandomCrop((3, 5))(x[:20], rng=np.random.default_rng(2))
    assert out.shape == (20, 2, 3, 5) and all(len(f) == 1 for f in _find_offsets(out, x[:20]))
    out = RandomCrop(7, padding=(1, 0, 2, 3), fill=-1.0)(x[:20], rng=np.random.default_rng(2))
    padded = np.pad(x[:20], ((0, 0), (0, 0), (0, 3), (1, 2)), constant_values=-1.0)
    assert all(len(f) == 1 for f in _find_offsets(out, padded))
    for mode in ("edge", "reflect", "symmetric"):
        out = RandomCrop(7, padding=3, padding_mode=mode)(x[:20], rng=np.random.default_rng(3))
        padded = np.pad(x[:20], ((0, 0), (0, 0), (3, 3), (3, 3)), mode=mode)
        assert all(len(f) >= 1 for f in _find_offsets(out, padded)), mode
    with pytest.raises(ValueError, match="larger than the padded input"):
        RandomCrop(9, padding=0)(x)
    with pytest.raises(ValueError, match="padding_mode"):
        RandomCrop(7, padding_mode="wrap")


def test_crop_windows_gather_matches_a_loop_of_slices():
    x = _images((9, 3, 10, 8))
    rng = np.random.default_rng(4)
    top, left = rng.integers(0, 5, 9), rng.integers(0, 4, 9)
    loop = np.stack([x[b, :, top[b]:top[b] + 6, left[b]:left[b] + 5] for b in range(9)])
    np.testing.assert_array_equal(crop_windows(x, top, left, (6, 5)), loop)


def test_center_crop_exact():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 1, 5, 6)
    np.testing.assert_array_equal(CenterCrop(3)(x), x[..., 1:4, 2:5])      # round(1.0), round(1.5)=2
    np.testing.assert_array_equal(CenterCrop((2, 4))(x), x[..., 2:4, 1:5])  # round(1.5)=2, round(1.0)
    np.testing.assert_array_equal(CenterCrop((5, 6))(x), x)
    with pytest.raises(ValueError, match="larger than the input"):
        CenterCrop(7)(x)


# ================================================================== colour
def _tv_grey(img):
    return img if img.shape[0] == 1 else np.tensordot(GREY, img, axes=1)[None]


def _tv_jitter(img, fb, fc, fs):
    """torchvision's adjust_brightness / adjust_contrast / adjust_saturation on one float image."""
    img = np.clip(fb * img + (1 - fb) * 0.0, 0, 1)
    img = np.clip(fc * img + (1 - fc) * _tv_grey(img).mean(), 0, 1)
    if img.shape[0] == 3:
        img = np.clip(fs * img + (1 - fs) * _tv_grey(img), 0, 1)
    return img


@pytest.mark.parametrize("channels", [1, 3])
def test_color_jitter_matches_torchvision_formulas(channels):
    x = _images((6, channels, 5, 4))
    cj = ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5)
    # Fixed factors, one per sample, including ones that push values past 1 (clamped).
    fb = np.array([0.5, 1.0, 1.5, 1.2, 0.8, 1.4])
    fc = np.array([1.0, 0.5, 1.5, 0.7, 1.3, 1.1])
    fs = np.array([1.0, 1.5, 0.5, 0.6, 1.4, 0.9])
    out = cj.apply(x, fb, fc, fs)
    for b in range(6):
        np.testing.assert_allclose(out[b], _tv_jitter(x[b], fb[b], fc[b], fs[b]), rtol=0, atol=1e-12)
    # Each adjustment alone.
    np.testing.assert_allclose(cj.apply(x, brightness=fb), np.clip(fb[:, None, None, None] * x, 0, 1))
    only_c = cj.apply(x, contrast=fc)
    for b in range(6):
        m = _tv_grey(x[b]).mean()
        np.testing.assert_allclose(only_c[b], np.clip(fc[b] * x[b] + (1 - fc[b]) * m, 0, 1), atol=1e-12)
    only_s = cj.apply(x, saturation=fs)
    if channels == 1:
        np.testing.assert_array_equal(only_s, x)           # saturation is a no-op on grey images
    else:
        g = np.tensordot(GREY, x, axes=([0], [1]))[:, None]
        np.testing.assert_allclose(only_s, np.clip(fs[:, None, None, None] * (x - g) + g, 0, 1), atol=1e-12)
    # The random call draws U[max(0, 1 - v), 1 + v] factors from the rng in the order b, c, s.
    rng = np.random.default_rng(11)
    want = cj.apply(x, *(rng.uniform(0.5, 1.5, 6) for _ in range(3)))
    np.testing.assert_array_equal(cj(x, rng=np.random.default_rng(11)), want)
    assert np.all((cj(x) >= 0) & (cj(x) <= 1))


def test_color_jitter_arguments():
    fb, fc, fs = ColorJitter(brightness=0.4).draw_factors(1000, np.random.default_rng(0))
    assert fc is None and fs is None and 0.6 <= fb.min() and fb.max() <= 1.4 and fb.std() > 0.2
    fb, _, _ = ColorJitter(brightness=(0.9, 1.0)).draw_factors(100)
    assert 0.9 <= fb.min() and fb.max() <= 1.0
    np.testing.assert_array_equal(ColorJitter()(_images((2, 3, 2, 2))), _images((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="brightness"):
        ColorJitter(brightness=-0.1)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ColorJitter(contrast=0.2)(_images((2, 2, 3, 3)))
    with pytest.raises(TypeError, match="float pixels"):
        ColorJitter(0.2)(np.zeros((1, 1, 2, 2), np.uint8))


# ================================================================== PCA lighting
def test_pca_lighting_basis_is_the_pixel_covariance_eigensystem():
    rng = np.random.default_rng(5)
    mix = np.array([[1.0, 0.2, 0.1], [0.5, 1.0, 0.0], [0.3, 0.3, 0.4]])
    x = np.einsum("dc,nchw->ndhw", mix, rng.random((50, 3, 6, 6)))
    val, vec = pca_lighting_basis(x, chunk=7)
    cov = np.cov(x.transpose(1, 0, 2, 3).reshape(3, -1), bias=True)
    np.testing.assert_allclose(cov @ vec, vec * val, atol=1e-12)   # cov p_i = lambda_i p_i
    np.testing.assert_allclose(vec.T @ vec, np.eye(3), atol=1e-12)
    assert np.all(np.diff(val) <= 0) and val[-1] >= 0
    np.testing.assert_allclose(np.sort(val), np.linalg.eigvalsh(cov), atol=1e-12)
    val1, vec1 = pca_lighting_basis(x, chunk=1000)
    np.testing.assert_allclose(val1, val, atol=1e-13)
    np.testing.assert_allclose(vec1, vec, atol=1e-10)
    g = x[:, :1]
    gv, gp = pca_lighting_basis(g)
    np.testing.assert_allclose(gv, [g.var()], rtol=1e-10)
    np.testing.assert_array_equal(gp, [[1.0]])


def test_lighting_adds_the_per_sample_alpha_lambda_p_vector():
    x = _images((8, 3, 4, 5))
    val, vec = np.array([0.5, 0.2, 0.05]), np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    out = Lighting(0.1, val, vec)(x, rng=np.random.default_rng(3))
    alpha = np.random.default_rng(3).normal(0.0, 0.1, size=(8, 3))
    for b in range(8):
        shift = sum(alpha[b, i] * val[i] * vec[:, i] for i in range(3))       # AlexNet: sum_i a_i l_i p_i
        np.testing.assert_allclose(out[b] - x[b], np.broadcast_to(shift[:, None, None], (3, 4, 5)),
                                   rtol=0, atol=1e-12)
    # Defaults are ImageNet's RGB basis; grey images get brightness noise alpha * Var.
    assert PCALighting is Lighting and Lighting().eigval.shape == (3,)
    g = _images((6, 1, 3, 3))
    out = Lighting(0.1, [0.25], [[1.0]])(g, rng=np.random.default_rng(4))
    a = np.random.default_rng(4).normal(0.0, 0.1, size=(6, 1))
    np.testing.assert_allclose(out - g, np.broadcast_to((a * 0.25)[:, :, None, None], g.shape), atol=1e-12)
    with pytest.raises(ValueError, match="basis for 3 channels"):
        Lighting()(g)
    with pytest.raises(ValueError, match="eigval must be"):
        Lighting(0.1, [1.0, 2.0], [[1.0]])


# ================================================================== random erasing
def test_random_erasing_writes_one_rectangle_of_allowed_area_and_ratio():
    H = W = 32
    x = _images((500, 2, H, W))
    scale, ratio = (0.05, 0.3), (0.5, 2.0)
    out = RandomErasing(0.6, scale, ratio, value=-1.0)(x, rng=np.random.default_rng(0))
    erased = 0
    for b in range(500):
        mask = out[b, 0] == -1.0
        np.testing.assert_array_equal(out[b, 1] == -1.0, mask)            # both channels
        np.testing.assert_array_equal(out[b][:, ~mask], x[b][:, ~mask])   # the rest untouched
        if not mask.any():
            continue
        erased += 1
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert mask.sum() == h * w                                         # one filled rectangle
        # h = round(sqrt(A r)), w = round(sqrt(A / r)) with A / (H W) in scale and r in ratio, so
        # A is in [(h - .5)(w - .5), (h + .5)(w + .5)] and r in [(h - .5)/(w + .5), (h + .5)/(w - .5)].
        assert h < H and w < W
        assert scale[0] * H * W <= (h + 0.5) * (w + 0.5) and (h - 0.5) * (w - 0.5) <= scale[1] * H * W
        assert ratio[0] <= (h + 0.5) / (w - 0.5) and (h - 0.5) / (w + 0.5) <= ratio[1]
    assert abs(erased / 500 - 0.6) < 4 * np.sqrt(0.6 * 0.4 / 500)
    # Per-channel values and noise.
    out = RandomErasing(1.0, value=(-1.0, -2.0))(x[:10])
    assert np.array_equal(out[:, 0] == -1.0, out[:, 1] == -2.0) and (out[:, 0] == -1.0).any(axis=(1, 2)).all()
    noisy = RandomErasing(1.0, value="random")(x[:10], rng=np.random.default_rng(1))
    changed = noisy != x[:10]
    assert changed.any(axis=(1, 2, 3)).all() and (noisy[changed] < 0).any()
    with pytest.raises(ValueError, match="scale"):
        RandomErasing(scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="fill values"):
        RandomErasing(1.0, value=(1.0, 2.0, 3.0))(x[:2])


# ================================================================== Compose and DataLoader seeding
class _Recorder:
    random = False

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x


def test_compose_forwards_rng_to_random_transforms_only():
    x = _images((16, 1, 6, 6))
    flip, crop, rec = RandomHorizontalFlip(), RandomCrop(6, padding=1), _Recorder()
    pipe = Compose([Normalize(0.5, 0.25), flip, rec, crop])
    assert pipe.random and not Compose([Normalize(0.5, 0.25), rec]).random
    got = pipe(x, rng=np.random.default_rng(8))
    g = np.random.default_rng(8)
    want = crop(flip(Normalize(0.5, 0.25)(x), rng=g), rng=g)
    np.testing.assert_array_equal(got, want)
    assert rec.calls == 1
    np.testing.assert_array_equal(pipe(x, rng=np.random.default_rng(8)), got)
    assert Compose([pipe]).random                        # nested Compose is random too
    np.testing.assert_array_equal(Compose([pipe])(x, rng=np.random.default_rng(8)), got)


def _epoch(loader):
    return [(xb.data.copy(), yb.data.copy()) for xb, yb in loader]


def test_loader_augmentation_depends_only_on_seed_epoch_and_batch():
    ds = ArrayDataset(_images((50, 1, 8, 8), dtype=np.float32) + 0.1, np.arange(50) % 10)
    pipe = Compose(build_augmentation("erasing", 8, 1, seed=123))
    make = lambda: DataLoader(ds, 16, shuffle=True, seed=3, transform=pipe)   # noqa: E731
    full = make()
    e0, e1, e2 = _epoch(full), _epoch(full), _epoch(full)
    # Re-created loader, same (seed, epoch) -> identical batches; resumed at epoch 2 -> the same.
    for (a, ya), (b, yb) in zip(e0, _epoch(make())):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    resumed = make()
    resumed.set_epoch(2)
    for (a, _), (b, _) in zip(e2, _epoch(resumed)):
        np.testing.assert_array_equal(a, b)
    # The generator is default_rng([seed, epoch, batch, 1]), whatever the transform's own seed.
    plain = DataLoader(ds, 16, shuffle=True, seed=3)
    plain.set_epoch(1)
    for b, ((xa, ya), (xp, yp)) in enumerate(zip(e1, _epoch(plain))):
        np.testing.assert_array_equal(ya, yp)                                     # labels kept
        np.testing.assert_array_equal(xa, pipe(xp, rng=np.random.default_rng([3, 1, b, 1])))
    # Different epochs augment differently even for the same samples.
    order0, order1 = full.order(0), full.order(1)
    pos0 = {int(i): k for k, i in enumerate(order0)}
    x0 = np.concatenate([a for a, _ in e0])
    x1 = np.concatenate([a for a, _ in e1])
    assert not np.array_equal(x0[[pos0[int(i)] for i in order1]], x1)
    # Another loader seed -> other augmentations for the same order of samples.
    other = DataLoader(ds, 16, shuffle=False, seed=4, transform=pipe)
    same = DataLoader(ds, 16, shuffle=False, seed=3, transform=pipe)
    assert not np.array_equal(_epoch(other)[0][0], _epoch(same)[0][0])


def test_flip_crop_through_the_loader_is_a_shifted_or_mirrored_window_of_each_sample():
    ds = ArrayDataset(_images((40, 1, 8, 8)) + 0.5, np.arange(40) % 10)
    pipe = Compose(build_augmentation("flip-crop", 8, 1))
    loader = DataLoader(ds, 16, shuffle=True, seed=0, transform=pipe)
    order = loader.order(0)
    batches = _epoch(loader)
    xs = np.concatenate([xb for xb, _ in batches])
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), ds.y[order])
    padded = np.pad(ds.x[order], ((0, 0), (0, 0), (1, 1), (1, 1)))      # padding 8 // 8 = 1
    for k in range(len(xs)):
        plain = _find_offsets(xs[k:k + 1], padded[k:k + 1])[0]
        mirrored = _find_offsets(xs[k:k + 1, ..., ::-1], padded[k:k + 1])[0]
        assert len(plain) + len(mirrored) == 1


def test_build_augmentation_presets():
    assert AUGMENTATION_NAMES == ("none", "crop", "flip-crop", "alexnet", "erasing")
    assert build_augmentation("none", 28, 1) == []
    kinds = {n: [type(t) for t in build_augmentation(n, 28, 1, images=_images((4, 1, 28, 28)))]
             for n in AUGMENTATION_NAMES}
    assert kinds["crop"] == [RandomCrop]
    assert kinds["flip-crop"] == [RandomCrop, RandomHorizontalFlip]
    assert kinds["alexnet"] == [RandomCrop, RandomHorizontalFlip, Lighting]
    assert kinds["erasing"] == [RandomCrop, RandomHorizontalFlip, RandomErasing]
    assert build_augmentation("crop", 28, 1)[0].padding == (3, 3, 3, 3)
    assert build_augmentation("crop", 32, 3)[0].padding == (4, 4, 4, 4)
    assert build_augmentation("crop", 8, 1)[0].padding == (1, 1, 1, 1)
    imgs = _images((10, 1, 8, 8))
    light = build_augmentation("alexnet", 8, 1, images=imgs)[2]
    np.testing.assert_allclose(light.eigval, [imgs.var()], rtol=1e-10)
    np.testing.assert_allclose(build_augmentation("alexnet", 32, 3)[2].eigval, [0.2175, 0.0188, 0.0045])
    with pytest.raises(ValueError, match="images="):
        build_augmentation("alexnet", 28, 1)
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'"):
        build_augmentation("mixup", 28, 1)


# ================================================================== test-time augmentation
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_tta_flip_on_a_flip_invariant_model_equals_the_plain_prediction():
    cnnlab.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).double()
    w = conv.weight.data
    conv.weight.data[...] = (w + w[..., ::-1]) / 2          # mirror-symmetric kernels
    x = _images((7, 2, 6, 6))
    model.train()
    probs = predict_tta(model, x, flips=True, batch_size=3)
    assert model.training                                       # mode restored
    with cnnlab.no_grad():
        plain = _softmax(model(cnnlab.Tensor(x)).data)
    np.testing.assert_allclose(probs, plain, rtol=0, atol=1e-12)
    assert not np.allclose(plain[0], plain[1])                  # the test is not vacuous


def test_tta_equals_the_hand_averaged_softmax_on_a_toy_model():
    cnnlab.manual_seed(1)
    lin = nn.Linear(1 * 5 * 5, 4)
    model = nn.Sequential(nn.Flatten(), lin).double()
    x = _images((9, 1, 5, 5))
    W, b = lin.weight.data, lin.bias.data
    p = lambda v: _softmax(v.reshape(len(v), -1) @ W.T + b)    # noqa: E731
    np.testing.assert_allclose(predict_tta(model, x, flips=False), p(x), atol=1e-12)
    np.testing.assert_allclose(predict_tta(model, x), (p(x) + p(x[..., ::-1])) / 2, atol=1e-12)
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    shifted = [x] + [xp[..., t:t + 5, s:s + 5] for t in (0, 4) for s in (0, 4)]
    five = sum(p(v) for v in shifted) / 5
    ten = sum(p(v) + p(v[..., ::-1]) for v in shifted) / 10
    np.testing.assert_allclose(predict_tta(model, x, flips=False, crops="five", padding=2), five, atol=1e-12)
    np.testing.assert_allclose(predict_tta(model, x, flips=False, crops="ten", padding=2), ten, atol=1e-12)
    np.testing.assert_allclose(predict_tta(model, x, crops="five", batch_size=4), ten, atol=1e-12)
    assert len(tta_views(x, flips=True, crops="five")) == 10
    # evaluate_tta: accuracy of the averaged prediction over a loader's batches.
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0])
    loader = DataLoader(ArrayDataset(x, y), batch_size=4)
    assert evaluate_tta(model, loader, crops="five") == pytest.approx(float((ten.argmax(1) == y).mean()))
    assert evaluate_tta(model, loader, flips=False) == pytest.approx(float((p(x).argmax(1) == y).mean()))
    with pytest.raises(ValueError, match="crops must be"):
        predict_tta(model, x, crops="six")
    with pytest.raises(ValueError, match="positive int padding"):
        predict_tta(model, x, crops="five", padding=0)
