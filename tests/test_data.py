"""Tests for cnnlab.data: IDX I/O, datasets, DataLoader and transforms."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from cnnlab.autograd.tensor import Tensor
from cnnlab.data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    ArrayDataset,
    Compose,
    DataLoader,
    IDXFormatError,
    Normalize,
    Pad,
    Resize,
    dataset_stats,
    get_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    write_idx,
)
from cnnlab.data import datasets as datasets_mod

HAVE_FASHION = os.path.isdir(FASHION_MNIST_DIR)


# ======================================================================== IDX
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        arr = rng.standard_normal(shape).astype(dtype)
    path = tmp_path / f"a{suffix}"
    write_idx(path, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    assert out.shape == shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, np.array([[1, 2, 3], [4, 5, 256]], dtype=np.int16))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[12:14] == b"\x00\x01" and raw[-2:] == b"\x01\x00"


def test_idx_gzip_detected_by_magic_not_extension(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz = tmp_path / "a.gz"
    write_idx(gz, arr)
    renamed = tmp_path / "no-extension"
    renamed.write_bytes(gz.read_bytes())
    np.testing.assert_array_equal(read_idx(renamed), arr)
    raw_named_gz = tmp_path / "raw.gz"
    write_idx(tmp_path / "raw", arr)
    raw_named_gz.write_bytes((tmp_path / "raw").read_bytes())
    np.testing.assert_array_equal(read_idx(raw_named_gz), arr)


def _valid_bytes() -> bytes:
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    header = bytes([0, 0, 0x0C, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") \
        + (4).to_bytes(4, "big")
    return header + arr.astype(">i4").tobytes()


def test_idx_truncated_payload(tmp_path):
    path = tmp_path / "trunc.idx"
    path.write_bytes(_valid_bytes()[:-5])
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg and "96" in msg and "91" in msg
    assert info.value.expected == 96 and info.value.actual == 91
    assert isinstance(info.value, ValueError)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "trail.idx.gz"
    path.write_bytes(gzip.compress(_valid_bytes() + b"xyz"))
    with pytest.raises(IDXFormatError, match="trailing") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert (info.value.expected, info.value.actual) == (96, 99)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "hdr.idx"
    path.write_bytes(_valid_bytes()[:9])  # magic + 1.25 dims
    with pytest.raises(IDXFormatError, match="header") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(IDXFormatError, match="too short"):
        read_idx(path)


@pytest.mark.parametrize(
    "magic, what",
    [(b"\x01\x00\x0c\x03", "zero"), (b"\x00\x00\x07\x03", "dtype code"),
     (b"\x00\x00\x0c\x00", "dimensions")],
)
def test_idx_wrong_magic(tmp_path, magic, what):
    path = tmp_path / "magic.idx"
    path.write_bytes(magic + _valid_bytes()[4:])
    with pytest.raises(IDXFormatError, match=what) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(_valid_bytes() * 50)  # bigger payload -> gzip body of some size
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(good[: len(good) // 2])
    bad_crc = bytearray(good)
    bad_crc[-6] ^= 0xFF  # inside the CRC32 trailer
    crc = tmp_path / "crc.gz"
    crc.write_bytes(bytes(bad_crc))
    for path in (truncated, crc):
        with pytest.raises(IDXFormatError, match="gzip") as info:
            read_idx(path)
        assert str(path) in str(info.value)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


def test_write_idx_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="ndim=0"):
        write_idx(tmp_path / "a", np.array(3, dtype=np.uint8))


# ==================================================================== datasets
def test_array_dataset():
    x = np.arange(24, dtype=np.float32).reshape(6, 1, 2, 2)
    y = np.arange(6)
    ds = ArrayDataset(x, y, classes=["a", "b"])
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, x[4])
    assert yi == 4
    assert ds.x is x and ds.classes == ["a", "b"]
    assert ArrayDataset(x, y).classes is None
    with pytest.raises(ValueError, match="len\\(x\\)=6 and len\\(y\\)=5"):
        ArrayDataset(x, y[:5])


def test_digits_split():
    tr, te = load_digits("train"), load_digits("test")
    assert len(tr) + len(te) == 1797
    assert len(te) == 360  # ceil(0.2 * 1797)
    for ds in (tr, te):
        assert ds.x.dtype == np.float32 and ds.x.shape[1:] == (1, 8, 8)
        assert ds.y.dtype == np.int64
        assert ds.x.min() == 0.0 and ds.x.max() == 1.0
        assert ds.classes == [str(i) for i in range(10)]
    # Deterministic.
    tr2 = load_digits("train")
    np.testing.assert_array_equal(tr.x, tr2.x)
    np.testing.assert_array_equal(tr.y, tr2.y)
    # A different seed gives a different split.
    assert not np.array_equal(load_digits("train", seed=1).y, tr.y)
    # Train and test are disjoint and cover everything: compare as row multisets.
    from sklearn.datasets import load_digits as sk_digits

    def sorted_rows(a):
        return a[np.lexsort(a.T[::-1])]

    ours = np.rint(np.concatenate([tr.x, te.x]).reshape(-1, 64) * 16).astype(np.int64)
    np.testing.assert_array_equal(sorted_rows(ours), sorted_rows(sk_digits().data.astype(np.int64)))
    # Stratified: class proportions of the test split match the full set within one sample.
    full = np.bincount(np.concatenate([tr.y, te.y]), minlength=10)
    np.testing.assert_allclose(np.bincount(te.y, minlength=10), full * 0.2, atol=1.0)
    np.testing.assert_allclose(np.bincount(tr.y, minlength=10), full * 0.8, atol=1.0)
    # test_fraction is honoured.
    assert len(load_digits("test", test_fraction=0.5)) in (898, 899)


def test_digits_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits("train", test_fraction=1.0)


def test_get_dataset_dispatch_and_errors(tmp_path):
    ds = get_dataset("digits", "test")
    np.testing.assert_array_equal(ds.y, load_digits("test").y)
    with pytest.raises(ValueError, match="digits, fashion-mnist, mnist"):
        get_dataset("cifar10")
    with pytest.raises(ValueError, match="root"):
        get_dataset("mnist", "train")


def _write_fake_mnist(root, n_train=6, n_test=4, gz=True, labels=None):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lbls = rng.integers(0, 10, size=n).astype(np.uint8) if labels is None else labels
        write_idx(root / f"{prefix}-images-idx3-ubyte{sfx}", imgs)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{sfx}", lbls)
        arrays[prefix] = (imgs, lbls)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_idx_files(tmp_path, gz):
    arrays = _write_fake_mnist(tmp_path / "mnist", gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = get_dataset("mnist", split, root=tmp_path / "mnist")
        imgs, lbls = arrays[prefix]
        assert ds.x.shape == (len(imgs), 1, 28, 28) and ds.x.dtype == np.float32
        np.testing.assert_array_equal(ds.x[:, 0], imgs.astype(np.float32) / 255)
        np.testing.assert_array_equal(ds.y, lbls)
        assert ds.y.dtype == np.int64
        assert ds.classes == [str(i) for i in range(10)]
    # fashion_mnist with an explicit root reads the same layout.
    ds = get_dataset("fashion_mnist", "train", root=tmp_path / "mnist")
    assert ds.classes == FASHION_MNIST_CLASSES


def test_load_mnist_count_mismatch(tmp_path):
    _write_fake_mnist(tmp_path, labels=np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match="6 images.*5 labels"):
        load_mnist("train", tmp_path)


def test_load_mnist_label_out_of_range(tmp_path):
    _write_fake_mnist(tmp_path, n_train=3, labels=np.array([1, 10, 2], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\].*first: 10"):
        load_mnist("train", tmp_path)


def test_missing_files_message(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test", tmp_path / "absent")
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "does not exist" in msg
    assert "apt-get" not in msg
    # Only the labels are missing.
    (tmp_path / "partial").mkdir()
    write_idx(tmp_path / "partial" / "train-images-idx3-ubyte", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist("train", tmp_path / "partial")
    # Default Fashion-MNIST location: the message names the Debian package.
    missing = tmp_path / "fashion"
    monkeypatch.setattr(datasets_mod, "FASHION_MNIST_DIR", str(missing))
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("train")
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert str(missing / "train-images-idx3-ubyte") in msg


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist("train"), load_fashion_mnist("test")


@pytest.mark.skipif(not HAVE_FASHION, reason=f"{FASHION_MNIST_DIR} absent "
                    "(apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_real_files(fashion):
    train, test = fashion
    assert train.x.shape == (60000, 1, 28, 28) and test.x.shape == (10000, 1, 28, 28)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.x.min() == 0.0 and train.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(train.y, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.y, minlength=10), [1000] * 10)
    assert train.classes == FASHION_MNIST_CLASSES and len(train.classes) == 10
    mean, std = dataset_stats("fashion-mnist")
    assert dataset_stats("fashion_mnist") == (mean, std)
    assert train.x.mean(dtype=np.float64) == pytest.approx(mean, abs=5e-4)
    assert train.x.std(dtype=np.float64) == pytest.approx(std, abs=5e-4)


def test_digits_stats_match_data():
    mean, std = dataset_stats("digits")
    x = load_digits("train").x.astype(np.float64)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert std == pytest.approx(x.std(), rel=1e-12)
    assert 0.2 < mean < 0.4 and 0.3 < std < 0.45
    with pytest.raises(ValueError, match="valid names"):
        dataset_stats("imagenet")


# ================================================================== DataLoader
def _toy(n=10):
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)
    y = np.arange(n, dtype=np.int64)
    return ArrayDataset(x, y)


@pytest.mark.parametrize("n, bs, drop_last, expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3),
    (2, 5, False, 1), (2, 5, True, 0), (10, 1, False, 10),
])
def test_loader_batch_counts(n, bs, drop_last, expected):
    loader = DataLoader(_toy(n), batch_size=bs, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == expected == len(batches)
    sizes = [len(yb.data) for _, yb in batches]
    if drop_last:
        assert all(s == bs for s in sizes)
    else:
        assert sum(sizes) == n and all(s == bs for s in sizes[:-1])


def test_loader_yields_tensors_in_order():
    ds = _toy(5)
    ds.y = ds.y.astype(np.uint8)  # labels are cast to int64
    (xb, yb), (xb2, _) = list(DataLoader(ds, batch_size=3))
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.data.dtype == np.float32 and xb.data.shape == (3, 1, 2, 2)
    assert yb.data.dtype == np.int64 and yb.data.shape == (3,)
    np.testing.assert_array_equal(xb.data, ds.x[:3])
    np.testing.assert_array_equal(xb2.data, ds.x[3:])
    xb.data[...] = -1  # batches are copies, never views of the dataset
    assert ds.x.min() >= 0


def _epoch_order(loader):
    return np.concatenate([yb.data for _, yb in loader])


def test_loader_shuffle_reproducible():
    ds = _toy(50)
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    a0, a1, a2 = _epoch_order(a), _epoch_order(a), _epoch_order(a)
    assert a.epoch == 3
    # Every sample exactly once per epoch.
    for order in (a0, a1, a2):
        np.testing.assert_array_equal(np.sort(order), np.arange(50))
    # Same seed and epoch -> same order; different epochs -> different orders.
    np.testing.assert_array_equal(_epoch_order(b), a0)
    assert not np.array_equal(a0, a1) and not np.array_equal(a1, a2)
    # Resuming at epoch 2 gives the uninterrupted run's epoch-2 order.
    c = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    c.set_epoch(2)
    np.testing.assert_array_equal(_epoch_order(c), a2)
    c.epoch = 1
    np.testing.assert_array_equal(_epoch_order(c), a1)
    assert c.epoch == 2
    # A different seed gives a different order; no shuffle gives arange.
    assert not np.array_equal(_epoch_order(DataLoader(ds, 8, shuffle=True, seed=124)), a0)
    np.testing.assert_array_equal(_epoch_order(DataLoader(ds, 8)), np.arange(50))


def test_loader_epoch_advances_on_iter_and_drop_last_visits_prefix():
    ds = _toy(10)
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0, drop_last=True)
    it = iter(loader)
    assert loader.epoch == 1  # consumed at iter(), even if abandoned
    next(it)
    seen = _epoch_order(loader)
    assert len(seen) == 8 and len(np.unique(seen)) == 8
    np.testing.assert_array_equal(seen, loader.order(1)[:8])


def test_loader_seed_none_is_reproducible_per_instance():
    loader = DataLoader(_toy(30), batch_size=5, shuffle=True)
    first = _epoch_order(loader)
    assert not np.array_equal(first, np.arange(30))   # it really shuffled
    loader.set_epoch(0)
    np.testing.assert_array_equal(_epoch_order(loader), first)


def test_loader_fallback_stacking_matches_fast_path():
    ds = _toy(7)

    class Plain:
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds.x[i], int(ds.y[i])

    fast = list(DataLoader(ds, batch_size=3, shuffle=True, seed=5))
    slow = list(DataLoader(Plain(), batch_size=3, shuffle=True, seed=5))
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(xf.data, xs.data)
        np.testing.assert_array_equal(yf.data, ys.data)
        assert ys.data.dtype == np.int64 and xs.data.dtype == np.float32


def test_loader_transform_applied_to_batch():
    ds = _toy(4)
    loader = DataLoader(ds, batch_size=4, transform=Compose([Pad(1), Normalize(2.0, 4.0)]))
    (xb, _), = list(loader)
    assert xb.data.shape == (4, 1, 4, 4) and xb.data.dtype == np.float32
    np.testing.assert_allclose(xb.data[:, :, 1:-1, 1:-1], (ds.x - 2.0) / 4.0, rtol=1e-6)
    np.testing.assert_allclose(xb.data[:, :, 0, :], -0.5)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                      ("4", TypeError), (True, TypeError), (None, TypeError)])
def test_loader_rejects_bad_batch_size(bad, exc):
    with pytest.raises(exc, match="batch_size must be a positive int"):
        DataLoader(_toy(), batch_size=bad)


# ================================================================== transforms
def test_normalize_values_and_dtypes():
    rng = np.random.default_rng(0)
    x = rng.random((5, 3, 4, 4))
    norm = Normalize([0.1, 0.2, 0.3], [0.5, 0.25, 2.0])
    out = norm(x)
    assert out.dtype == np.float64
    mean = np.array([0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)
    std = np.array([0.5, 0.25, 2.0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(out, (x - mean) / std, rtol=1e-12)
    single = norm(x[2])
    np.testing.assert_allclose(single, out[2], rtol=1e-12)
    out32 = norm(x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-5, atol=1e-6)
    assert Normalize(0.5, 0.5)(np.full((2, 1, 2, 2), 255, np.uint8)).dtype == np.float32
    x_before = x.copy()
    norm(x)
    np.testing.assert_array_equal(x, x_before)  # input untouched


def test_normalize_errors():
    with pytest.raises(ValueError, match="3 mean/std values for 1 channels"):
        Normalize([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])(np.zeros((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        Normalize(0.0, 1.0)(np.zeros((3, 3)))


def test_pad():
    x = np.ones((2, 1, 28, 28), dtype=np.float32)
    out = Pad(2)(x)
    assert out.shape == (2, 1, 32, 32) and out.dtype == np.float32
    assert out.sum() == x.sum()
    np.testing.assert_array_equal(out[:, :, 2:30, 2:30], x)
    np.testing.assert_array_equal(
        Pad((1, 2, 3, 4), fill=7)(np.zeros((1, 1), np.int16)),
        np.pad(np.zeros((1, 1), np.int16), ((2, 4), (1, 3)), constant_values=7),
    )
    np.testing.assert_array_equal(Pad((1, 0))(np.ones((3, 1, 1))),
                                  np.array([[[0, 1, 0]]] * 3, dtype=float))
    with pytest.raises(ValueError, match="non-negative"):
        Pad(-1)


@pytest.mark.parametrize("in_hw, out_hw", [
    ((8, 8), (32, 32)), ((8, 8), (28, 28)), ((28, 28), (13, 13)), ((5, 7), (11, 3)),
    ((6, 6), (6, 6)), ((1, 4), (3, 9)), ((9, 9), (1, 1)),
])
def test_resize_matches_torch_bilinear(in_hw, out_hw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2) + in_hw)
    ours = Resize(out_hw)(x)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=out_hw, mode="bilinear", align_corners=False
    ).numpy()
    assert ours.shape == ref.shape and ours.dtype == np.float64
    assert np.max(np.abs(ours - ref)) <= 1e-9
    single = Resize(out_hw)(x[0])
    np.testing.assert_allclose(single, ref[0], atol=1e-9, rtol=0)
    out32 = Resize(out_hw)(x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, atol=1e-5)


def test_resize_basic_properties():
    const = np.full((2, 1, 8, 8), 3.0)
    np.testing.assert_allclose(Resize(32)(const), 3.0)
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(Resize((4, 4))(x), x)
    with pytest.raises(ValueError, match="positive"):
        Resize(0)


def test_digits_pipeline_to_32x32():
    ds = load_digits("test")
    mean, std = dataset_stats("digits")
    loader = DataLoader(ds, batch_size=64, transform=Compose([Resize(32), Normalize(mean, std)]))
    xb, yb = next(iter(loader))
    assert xb.data.shape == (64, 1, 32, 32) and xb.data.dtype == np.float32
    assert yb.data.shape == (64,) and yb.data.dtype == np.int64
