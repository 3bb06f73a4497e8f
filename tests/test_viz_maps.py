"""cnnlab.viz kernels, activation maps, dead filters, filter images / smoothness and
top-k activating images with receptive fields: numbers checked against scipy, hand
loops, truncated forwards, brute-force searches and the receptive-field formula."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate2d

import cnnlab
import cnnlab.nn as nn
from cnnlab.autograd.tensor import Tensor, no_grad
from cnnlab.models import get_model
from cnnlab.summary import summary
from cnnlab.viz.filters import filter_images, filter_smoothness, first_conv_name, plot_filters
from cnnlab.viz.kernels import CLASSIC_KERNELS, apply_kernels, plot_kernels, to_grey
from cnnlab.viz.maps import DeadFilterReport, activation_maps, dead_filters, plot_activation_grid
from cnnlab.viz.topk import crop_patches, field_box, plot_top_k, receptive_field, top_k_activating

plt_image = pytest.importorskip("matplotlib.image")


def png_shape(path) -> tuple[int, int]:
    return plt_image.imread(str(path)).shape[:2]


def forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with no_grad():
        return module(Tensor(x)).numpy()


def digits_model(seed: int = 0) -> nn.Module:
    cnnlab.manual_seed(seed)
    return get_model("digits_cnn", num_classes=10, in_channels=1, input_size=8).double().eval()


# ------------------------------------------------------------------ kernels
def hand_correlate(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """out[i, j] = sum_{u,v} k[u, v] img[i + u - cy, j + v - cx], zero outside."""
    H, W = img.shape
    kh, kw = k.shape
    cy, cx = kh // 2, kw // 2
    out = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            for u in range(kh):
                for v in range(kw):
                    y, x = i + u - cy, j + v - cx
                    if 0 <= y < H and 0 <= x < W:
                        out[i, j] += k[u, v] * img[y, x]
    return out


def test_kernels_are_cross_correlation_with_zero_padding():
    img = np.random.default_rng(0).random((9, 11))
    res = apply_kernels(img)
    assert list(res) == list(CLASSIC_KERNELS)
    for name, k in CLASSIC_KERNELS.items():
        assert res[name].shape == img.shape
        np.testing.assert_allclose(res[name], correlate2d(img, k, mode="same", boundary="fill"),
                                   rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(res["sobel_x"], hand_correlate(img, CLASSIC_KERNELS["sobel_x"]), atol=1e-12)
    np.testing.assert_allclose(res["gaussian_blur"], hand_correlate(img, CLASSIC_KERNELS["gaussian_blur"]),
                               atol=1e-12)
    np.testing.assert_array_equal(res["identity"], img)


def test_kernel_values_on_simple_images():
    ramp = np.tile(0.5 * np.arange(10.0), (7, 1)) + 1.0        # increases left -> right by 0.5
    r = apply_kernels(ramp)
    np.testing.assert_allclose(r["sobel_x"][1:-1, 1:-1], 8 * 0.5, atol=1e-12)   # (1+2+1) * 2 steps
    np.testing.assert_allclose(r["sobel_y"][1:-1, 1:-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(r["edge"][1:-1, 1:-1], 0.0, atol=1e-12)         # Laplacian of a plane
    np.testing.assert_allclose(r["sharpen"][1:-1, 1:-1], ramp[1:-1, 1:-1], atol=1e-12)
    const = np.full((8, 9), 0.3)
    c = apply_kernels(const)
    np.testing.assert_allclose(c["box_blur"][1:-1, 1:-1], 0.3, atol=1e-12)
    np.testing.assert_allclose(c["gaussian_blur"][2:-2, 2:-2], 0.3, atol=1e-12)
    # zero padding: an edge pixel sees 6 of 9, a corner 4 of 9
    assert c["box_blur"][0, 4] == pytest.approx(0.3 * 6 / 9)
    assert c["box_blur"][0, 0] == pytest.approx(0.3 * 4 / 9)


def test_kernels_colour_and_integer_images():
    rgb = np.random.default_rng(1).integers(0, 256, (6, 7, 3)).astype(np.uint8)
    x = rgb / 255.0
    grey = x @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(to_grey(rgb), grey, atol=1e-12)
    k = {"sobel_y": CLASSIC_KERNELS["sobel_y"]}
    np.testing.assert_allclose(apply_kernels(rgb, k)["sobel_y"], correlate2d(grey, k["sobel_y"], mode="same"),
                               atol=1e-12)
    per = apply_kernels(rgb, k, per_channel=True)["sobel_y"]
    assert per.shape == (6, 7, 3)
    for ch in range(3):
        np.testing.assert_allclose(per[..., ch], correlate2d(x[..., ch], k["sobel_y"], mode="same"),
                                   atol=1e-12)
    with pytest.raises(ValueError, match="odd"):
        apply_kernels(x, {"bad": np.ones((2, 2))})
    with pytest.raises(ValueError, match="expected an image"):
        apply_kernels(np.zeros((2, 3, 4, 5)))


def test_plot_kernels_writes_png(tmp_path):
    from skimage import data

    subset = {n: CLASSIC_KERNELS[n] for n in ("sobel_x", "gaussian_blur")}
    p = plot_kernels(data.camera()[::8, ::8], tmp_path / "k.png", kernels=subset)
    h, w = png_shape(p)
    assert h > 200 and w > 200


# ---------------------------------------------------------- activation maps
def test_activation_maps_equal_truncated_forward():
    model = digits_model()
    model.train()
    x = np.random.default_rng(2).standard_normal((1, 8, 8))
    maps = activation_maps(model, x)
    assert model.training                      # the mode is restored
    assert list(maps) == [f"features.{i}" for i in range(6)]
    model.eval()
    for i in range(6):
        expect = forward(model.features[:i + 1], x[None])[0]
        assert maps[f"features.{i}"].shape == expect.shape
        np.testing.assert_allclose(maps[f"features.{i}"], expect, rtol=0, atol=1e-12)
    only = activation_maps(model, Tensor(x[None]), layers=["features.4", "features.1"])
    assert list(only) == ["features.4", "features.1"]
    np.testing.assert_array_equal(only["features.4"], maps["features.4"])
    with pytest.raises(ValueError, match="4-D"):
        activation_maps(model, x, layers=["classifier.0"])
    with pytest.raises(AttributeError, match="nope"):
        activation_maps(model, x, layers=["nope"])
    with pytest.raises(ValueError, match="one image"):
        activation_maps(model, np.zeros((2, 1, 8, 8)))


def dead_model() -> nn.Sequential:
    """conv 1 -> 4 (1x1) + ReLU: channel 0 = x + 5 (alive), 1 = x (dead on negative
    images), 2 = x - 100 (dead on every input in [-1, 1]), 3 = -x + 5 (alive)."""
    conv = nn.Conv2d(1, 4, 1)
    conv.weight.data[...] = np.array([1.0, 1.0, 1.0, -1.0]).reshape(4, 1, 1, 1)
    conv.bias.data[...] = np.array([5.0, 0.0, -100.0, 5.0])
    return nn.Sequential(conv, nn.ReLU()).double()


def test_dead_filters_reports_the_dead_channel():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0.1, 1.0, (30, 1, 5, 5))
    x = np.concatenate([pos, -pos])                        # half the images all negative
    model = dead_model()
    rep = dead_filters(model, x, "1", batch_size=7)
    assert isinstance(rep, DeadFilterReport)
    np.testing.assert_allclose(rep.zero_fraction, [0.0, 0.5, 1.0, 0.0])
    assert rep.dead.tolist() == [2] and rep.alive.tolist() == [0, 1, 3] and rep.n_inputs == 60
    assert dead_filters(model, x, "1", threshold=0.5).dead.tolist() == [1, 2]
    # the conv's own output (before the ReLU) gives the same verdict: <= 0 everywhere
    np.testing.assert_allclose(dead_filters(model, x, "0").zero_fraction, rep.zero_fraction)
    # a loader of (x, y) batches gives the same numbers as the array
    loader = [(Tensor(x[i:i + 16]), Tensor(np.zeros(len(x[i:i + 16])))) for i in range(0, 60, 16)]
    np.testing.assert_array_equal(dead_filters(model, loader, "1").zero_fraction, rep.zero_fraction)
    text = str(rep)
    assert "1 of 4" in text and "dead: 2" in text and "1 (50%)" in text
    with pytest.raises(ValueError, match="threshold"):
        dead_filters(model, x, "1", threshold=0.0)


def test_plot_activation_grid_pixel_size(tmp_path):
    maps = np.random.default_rng(4).random((16, 8, 8))
    side = 4 * (8 + 1) + 1                                  # 4x4 grid of 8x8 with 1-pixel gaps
    assert png_shape(plot_activation_grid(maps, tmp_path / "a.png", scale=5)) == (5 * side, 5 * side)
    assert png_shape(plot_activation_grid(maps, tmp_path / "b.png", title="features.1", scale=5)) == (
        5 * side + 24, 5 * side)
    auto = png_shape(plot_activation_grid(maps[:6], tmp_path / "c.png", normalize="map"))
    # 6 maps -> 3 columns, 2 rows: 19 x 28 pixels, scaled by ceil(256 / 28) = 10
    assert auto == (190, 280)
    with pytest.raises(ValueError, match="normalize"):
        plot_activation_grid(maps, tmp_path / "d.png", normalize="x")


# ------------------------------------------------------------------ filters
def test_filter_images_shapes_and_scaling():
    w = np.random.default_rng(5).standard_normal((4, 3, 5, 5))
    rgb = filter_images(w)
    assert rgb.shape == (4, 5, 5, 3)
    for o in range(4):
        np.testing.assert_allclose(rgb[o], np.transpose((w[o] - w[o].min()) / np.ptp(w[o]), (1, 2, 0)))
    assert filter_images(w[:, :1]).shape == (4, 5, 5)
    deep = filter_images(np.random.default_rng(6).standard_normal((3, 4, 3, 3)))
    assert deep.shape == (12, 3, 3)
    w2 = np.random.default_rng(6).standard_normal((3, 4, 3, 3))
    np.testing.assert_allclose(deep[1 * 4 + 2], (w2[1, 2] - w2[1].min()) / np.ptp(w2[1]))
    np.testing.assert_array_equal(filter_images(np.ones((2, 1, 3, 3))), 0.5)
    with pytest.raises(ValueError, match="O, I, kh, kw"):
        filter_images(np.zeros((3, 3)))


def hand_tv(f: np.ndarray) -> float:
    I, kh, kw = f.shape
    total = 0.0
    for i in range(I):
        s = sum(abs(f[i, r, c + 1] - f[i, r, c]) for r in range(kh) for c in range(kw - 1))
        s += sum(abs(f[i, r + 1, c] - f[i, r, c]) for r in range(kh - 1) for c in range(kw))
        total += s / (kh * (kw - 1) + (kh - 1) * kw)
    return total / I / f.std()


def test_filter_smoothness_values():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((5, 3, 4, 3))
    np.testing.assert_allclose(filter_smoothness(w), [hand_tv(f) for f in w], rtol=1e-12)
    np.testing.assert_allclose(filter_smoothness(-3.0 * w + 2.0), filter_smoothness(w), rtol=1e-12)
    assert filter_smoothness(np.full((1, 2, 3, 3), 0.7)).tolist() == [0.0]
    board4 = np.indices((4, 4)).sum(axis=0) % 2 * 2.0 - 1.0               # +-1 checkerboard
    assert filter_smoothness(board4[None, None])[0] == pytest.approx(2.0, abs=1e-12)
    board3 = np.indices((3, 3)).sum(axis=0) % 2 * 2.0 - 1.0
    assert filter_smoothness(board3[None, None])[0] == pytest.approx(2.0 / board3.std(), abs=1e-12)
    noise = filter_smoothness(rng.standard_normal((500, 1, 4, 4)))
    assert noise.max() < 2.0                                              # nothing rougher than the board
    noise5 = filter_smoothness(rng.standard_normal((2000, 1, 5, 5)))
    assert 1.10 < noise5.mean() < 1.22                                    # ~2/sqrt(pi), see the docstring
    gauss = filter_smoothness(CLASSIC_KERNELS["gaussian_blur"][None, None])[0]
    assert gauss == pytest.approx(0.838, abs=1e-3) and gauss < noise5.min() + 0.2
    assert gauss < np.percentile(noise5, 1)
    with pytest.raises(ValueError, match="1x1"):
        filter_smoothness(np.ones((2, 2, 1, 1)))


def test_plot_filters_pixel_size(tmp_path):
    w = np.random.default_rng(8).standard_normal((6, 1, 5, 5))
    # 3 columns x 2 rows of 5x5 with 1-pixel gaps: 13 x 19
    assert png_shape(plot_filters(w, tmp_path / "w.png", scale=4)) == (52, 76)
    model = digits_model()
    assert first_conv_name(model) == "features.0"
    # 16 filters 3x3: 4x4 grid of 17 x 17, shorter side to 256 -> scale 16, plus the title band
    assert png_shape(plot_filters(model, tmp_path / "m.png")) == (17 * 16 + 24, 17 * 16)
    # deeper layer: 32 rows (filters) x 16 columns (input channels)
    assert png_shape(plot_filters(model, tmp_path / "d.png", layer="features.3", scale=2, title="")) == (
        2 * (32 * 4 + 1), 2 * (16 * 4 + 1))


# -------------------------------------------------------------------- top k
def test_top_k_is_the_brute_force_top_k():
    model = digits_model(1)
    x = np.random.default_rng(9).standard_normal((40, 1, 8, 8))
    top = top_k_activating(model, "features.4", 5, x, k=7, batch_size=9)
    maps = forward(model.features[:5], x)[:, 5]                      # (40, 4, 4)
    best = maps.reshape(40, -1).max(axis=1)
    order = np.argsort(-best, kind="stable")[:7]
    np.testing.assert_array_equal(top.indices, order)
    np.testing.assert_allclose(top.values, best[order], rtol=0, atol=1e-12)
    for i, (r, c) in zip(top.indices, top.positions):
        assert maps[i, r, c] == best[i]
    fixed = top_k_activating(model, "features.4", 5, x, k=40, position=(2, 1))
    np.testing.assert_array_equal(fixed.indices, np.argsort(-maps[:, 2, 1], kind="stable"))
    assert (fixed.positions == [2, 1]).all()
    with pytest.raises(ValueError, match="channel"):
        top_k_activating(model, "features.4", 32, x)
    with pytest.raises(ValueError, match="whole input"):
        top_k_activating(model, "classifier.0", 0, x)


def test_receptive_field_formula_for_stride_2_conv_and_pool():
    cnnlab.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(2, 3, 3, padding=1)).double()
    rf = receptive_field(model, "3", (1, 16, 16))
    # conv s2: size 3, jump 2, start -1; pool 2: size 3 + 1*2 = 5, jump 4, start -1;
    # conv 3x3 pad 1: size 5 + 2*4 = 13, jump 4, start -1 - 1*4 = -5
    assert tuple(rf.size) == (13, 13) and tuple(rf.jump) == (4, 4) and tuple(rf.start) == (-5, -5)
    assert field_box(rf, (1, 2)) == (-1, 3, 12, 16)
    assert field_box(rf, (1, 2), (16, 16)) == (0, 3, 12, 16)
    assert field_box(rf, (3, 3), (16, 16)) == (7, 7, 16, 16)
    # changing pixels outside the box leaves the unit unchanged, inside it changes it
    x = np.random.default_rng(10).standard_normal((1, 1, 16, 16))
    y0, x0, y1, x1 = field_box(rf, (1, 2), (16, 16))
    outside = x.copy()
    mask = np.ones((16, 16), bool)
    mask[y0:y1, x0:x1] = False
    outside[0, 0][mask] += 5.0
    assert forward(model, outside)[0, :, 1, 2] == pytest.approx(forward(model, x)[0, :, 1, 2], abs=1e-12)
    # ... and the box is no larger than needed: its first and last rows and columns each reach the unit
    base = forward(model, x)[0, :, 1, 2]
    for rows, cols in (((y0,), range(x0, x1)), ((y1 - 1,), range(x0, x1)), (range(y0, y1), (x0,)),
                       (range(y0, y1), (x1 - 1,))):
        moved = False
        for r in rows:
            for c in cols:
                for delta in (50.0, -50.0):
                    inside = x.copy()
                    inside[0, 0, r, c] += delta
                    moved |= bool(np.abs(forward(model, inside)[0, :, 1, 2] - base).max() > 1e-9)
        assert moved, (rows, cols)
    # top-k boxes follow the formula and are clipped at the border
    imgs = np.random.default_rng(11).standard_normal((12, 1, 16, 16))
    top = top_k_activating(model, "3", 1, imgs, k=12)
    for (r, c), box, field in zip(top.positions, top.boxes, top.fields):
        assert tuple(field) == (-5 + 4 * r, -5 + 4 * c, 8 + 4 * r, 8 + 4 * c)
        assert tuple(box) == field_box(rf, (r, c), (16, 16))
        assert 0 <= box[0] < box[2] <= 16 and 0 <= box[1] < box[3] <= 16


def test_crop_is_the_receptive_field_for_an_interior_unit():
    cnnlab.manual_seed(0)
    model = get_model("lenet5", num_classes=10, in_channels=1, input_size=28).double()
    imgs = np.random.default_rng(12).random((5, 1, 28, 28))
    rows = {r.name: r.rf for r in summary(model, (1, 28, 28), dtype=np.float64, verbose=False).rows}
    rf = receptive_field(model, "features.3", (1, 28, 28))
    assert rf == rows["features.3"] and tuple(rf.size) == (14, 14)      # 5 -> 6 -> 6 + 4*2
    assert receptive_field(model, "features", (1, 28, 28)) == rows["features.5"]
    top = top_k_activating(model, "features.3", 0, imgs, k=3, position=(4, 4))
    patches = crop_patches(imgs, top)
    for i, p in zip(top.indices, patches):
        assert p.shape == (1, 14, 14)
        np.testing.assert_array_equal(p, imgs[i][:, 6:20, 6:20])        # -2 + 4*2 = 6
    # an edge unit: clipped, or padded back to the full field with `fill`
    edge = top_k_activating(model, "features.3", 0, imgs, k=2, position=(0, 9))
    assert tuple(edge.fields[0]) == (-2, 16, 12, 30) and tuple(edge.boxes[0]) == (0, 16, 12, 28)
    assert crop_patches(imgs, edge)[0].shape == (1, 12, 12)
    full = crop_patches(imgs, edge, fill=-1.0)[0]
    assert full.shape == (1, 14, 14)
    np.testing.assert_array_equal(full[:, 2:, :12], imgs[edge.indices[0]][:, 0:12, 16:28])
    assert (full[:, :2] == -1).all() and (full[:, :, 12:] == -1).all()


def test_top_k_ties_keep_input_order_and_plot(tmp_path):
    model = digits_model(2)
    one = np.random.default_rng(13).standard_normal((1, 1, 8, 8))
    same = np.repeat(one, 6, axis=0)
    top = top_k_activating(model, "features.1", 3, same, k=4)
    assert top.indices.tolist() == [0, 1, 2, 3] and np.ptp(top.values) == 0
    p = plot_top_k(same[:, 0], top, tmp_path / "t.png")
    h, w = png_shape(p)
    assert h > 100 and w > 100
