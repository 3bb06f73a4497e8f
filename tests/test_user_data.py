"""A user's own data: ``folder:PATH`` (an ImageFolder tree of PNG/JPEG files) and
``cifar10:PATH`` (CIFAR-10's binary batches), on small files written here;
evaluating a model on a dataset that does not match it."""
from __future__ import annotations

import pickle
import zlib

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import get_dataset
from cnnlab.data.user_data import CIFAR10_CLASSES, load_cifar10, load_image_folder
from cnnlab.training import TrainConfig, fit
from cnnlab.training.config import ConfigError


def write_tree(root, colour=False, per_class=6, sizes=((10, 12), (16, 16), (9, 7))):
    """Three classes told apart by where the bright square is."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(["circle", "square", "tri"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            a = (rng.random((h, w)) * 40).astype(np.uint8)
            a[:, k * w // 3:(k + 1) * w // 3] = 230
            img = Image.fromarray(np.stack([a, a // 2, 255 - a], -1) if colour else a)
            img.save(root / name / f"{i}.{'jpg' if i % 2 else 'png'}")
        (root / name / "notes.txt").write_text("not an image")        # ignored, as torchvision does


def test_image_folder_reads_resizes_and_splits(tmp_path):
    write_tree(tmp_path / "pets", per_class=5)
    tr = load_image_folder(tmp_path / "pets", "train", size=8)
    te = load_image_folder(tmp_path / "pets", "test", size=8)
    assert tr.classes == ["circle", "square", "tri"] and te.classes == tr.classes
    assert tr.x.shape == (12, 1, 8, 8) and te.x.shape == (3, 1, 8, 8) and tr.x.dtype == np.float32
    assert np.bincount(te.y).tolist() == [1, 1, 1]                    # stratified 80/20
    assert 0 <= tr.x.min() and tr.x.max() <= 1
    # the bright third of each image lands in its column band after the resize
    cols = tr.x[:, 0].mean(axis=1)
    assert (cols.argmax(axis=1) // 3 == tr.y).all()
    # an explicit train/test layout, colour images
    write_tree(tmp_path / "rgb" / "train", colour=True)
    write_tree(tmp_path / "rgb" / "test", colour=True, per_class=2)
    ds = get_dataset(f"folder:{tmp_path / 'rgb'}", "test", size=6)
    assert ds.x.shape == (6, 3, 6, 6)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "none")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no PNG or JPEG"):
        load_image_folder(tmp_path / "empty")
    bad = tmp_path / "bad" / "cat"
    bad.mkdir(parents=True)
    (bad / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ValueError, match="x.png: not a readable PNG or JPEG"):
        load_image_folder(tmp_path / "bad")
    gif = tmp_path / "gif" / "cat"
    gif.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(gif / "a.png", format="GIF")
    with pytest.raises(ValueError, match="a GIF image; only PNG and JPEG"):
        load_image_folder(tmp_path / "gif")
    # a header claiming a huge image is refused before it is decoded
    huge = tmp_path / "huge" / "cat"
    huge.mkdir(parents=True)
    Image.new("L", (1, 1)).save(huge / "a.png")
    raw = bytearray((huge / "a.png").read_bytes())
    raw[16:24] = (8000).to_bytes(4, "big") * 2                        # IHDR width and height
    raw[29:33] = zlib.crc32(bytes(raw[12:29])).to_bytes(4, "big")      # and its checksum
    (huge / "a.png").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="header says 8000x8000 pixels"):
        load_image_folder(tmp_path / "huge")
    Image.new("L", (3, 3)).save(bad / "x.png")
    with pytest.raises(ValueError, match="too few to hold out a stratified 20% test split"):
        load_image_folder(tmp_path / "bad")
    with pytest.raises(ValueError, match="choose a smaller --input-size"):
        write_tree(tmp_path / "ok")
        load_image_folder(tmp_path / "ok", size=200_000)


def cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    pixels = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
    return labels, pixels, np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1)


def test_cifar10_binary_batches(tmp_path):
    where = tmp_path / "cifar-10-batches-bin"
    where.mkdir()
    l1, p1, r1 = cifar_records(7, 1)
    l2, p2, r2 = cifar_records(5, 2)
    lt, pt, rt = cifar_records(4, 3)
    r1.tofile(where / "data_batch_1.bin")
    r2.tofile(where / "data_batch_2.bin")
    rt.tofile(where / "test_batch.bin")
    tr = load_cifar10(tmp_path, "train")                              # finds the subfolder
    assert tr.x.shape == (12, 3, 32, 32) and tr.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(tr.y, np.concatenate([l1, l2]))
    np.testing.assert_array_equal(tr.x[8], p2[1] / np.float32(255))   # red, green, blue planes
    (where / "batches.meta.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n\n")
    te = get_dataset(f"cifar10:{where}", "test")
    assert te.classes[3] == "c3" and te.y.tolist() == lt.tolist()
    # errors: a truncated batch, CIFAR-100 labels, the pickled python version
    (where / "data_batch_3.bin").write_bytes(r1.tobytes()[:-1])
    with pytest.raises(ValueError, match="data_batch_3.bin: 21,510 bytes is not a CIFAR-10 binary"):
        load_cifar10(where)
    r1[2, 0] = 42
    r1.tofile(where / "data_batch_3.bin")
    with pytest.raises(ValueError, match="labels must be 0..9, found 42"):
        load_cifar10(where)
    py = tmp_path / "py" / "cifar-10-batches-py"
    py.mkdir(parents=True)
    (py / "data_batch_1").write_bytes(pickle.dumps({"data": [1]}))
    with pytest.raises(ValueError, match="python version, whose batches are pickled; cnnlab never "
                                         "unpickles"):
        load_cifar10(tmp_path / "py")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 binary batches"):
        load_cifar10(tmp_path / "nothing")


def test_train_and_evaluate_on_a_folder(tmp_path, capsys):
    write_tree(tmp_path / "shapes", per_class=10)
    out = tmp_path / "run"
    res = fit(TrainConfig(dataset=f"folder:{tmp_path / 'shapes'}", input_size=20, epochs=2,
                          batch_size=8, val_split=0), out, progress=False, report=lambda _: None)
    assert res.model(__import__("cnnlab").Tensor(np.zeros((1, 1, 20, 20), np.float32))).shape == (1, 3)
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "circle" in text and "test accuracy" in text
    with pytest.raises(ConfigError, match="data_dir does not apply"):
        TrainConfig(dataset=f"folder:{tmp_path}", data_dir=str(tmp_path)).resolved()
    with pytest.raises(ConfigError, match="unknown dataset kind 'imagenet'"):
        TrainConfig(dataset="imagenet:/x").resolved()
    assert main(["train", "--dataset", "cifar10:", "--out", str(tmp_path / "x")]) == 2
    assert "needs a path" in capsys.readouterr().err


def test_evaluating_on_a_mismatched_dataset_warns(tmp_path, capsys):
    digits = tmp_path / "digits"
    fit(TrainConfig(epochs=1, train_size=100), digits, progress=False, report=lambda _: None)
    write_tree(tmp_path / "three")
    assert main(["evaluate", str(digits), "--dataset", f"folder:{tmp_path / 'three'}"]) == 0
    err = capsys.readouterr().err
    assert "warning: the dataset has 3 classes but the model predicts 10" in err
    write_tree(tmp_path / "rgb", colour=True)
    assert main(["evaluate", str(digits), "--dataset", f"folder:{tmp_path / 'rgb'}"]) == 2
    assert "takes 1-channel images" in capsys.readouterr().err


def test_pixel_stats_sums_in_blocks_without_a_float64_copy():
    import tracemalloc

    from cnnlab.data.user_data import pixel_stats

    x = (np.random.default_rng(0).random((6000, 3, 32, 32)) * 255).astype(np.uint8)   # 18 MB
    want = (float(x.astype(np.float64).mean()), float(x.astype(np.float64).std()))
    tracemalloc.start()
    got = pixel_stats(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert peak < 32 << 20          # a float64 copy would be 147 MB
    assert all(np.isnan(pixel_stats(np.zeros((0, 3, 4, 4), np.uint8))))      # no images
