"""Bad values that used to pass silently or under the wrong name: a NaN pixel and an
empty batch are named as such (not "lower the learning rate"); an image is measured
from its header before it is decoded, and a large photo is decoded small."""
import struct
import zlib

import numpy as np
import pytest
from tally import count

import cnnlab
from cnnlab import nn, optim
from cnnlab.data import DataLoader
from cnnlab.data.datasets import ArrayDataset
from cnnlab.training.checkpoint import TrainingDivergedError
from cnnlab.training.loop import train_one_epoch
from cnnlab.viz.inputs import MAX_PIXELS, load_image_file


def tiny_model():
    cnnlab.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_nan_pixel_is_named_by_its_dataset_index(shuffle):
    x = np.random.default_rng(0).random((12, 1, 4, 4)).astype(np.float32)
    x[7, 0, 2, 1] = np.nan
    loader = DataLoader(ArrayDataset(x, np.arange(12) % 3), batch_size=4, shuffle=shuffle, seed=3)
    model = tiny_model()
    named = r"non-finite input: sample \d+ of the epoch \(dataset index 7\)"
    with pytest.raises(ValueError, match=named) as e:
        train_one_epoch(model, loader, optim.SGD(model.parameters(), lr=0.1))
    assert not isinstance(e.value, TrainingDivergedError) and "not a learning-rate problem" in str(e.value)
    # the bad batch took no step: the weights are still finite
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_an_empty_batch_is_named():
    empty = [(cnnlab.tensor(np.zeros((0, 1, 4, 4), np.float32)), cnnlab.tensor(np.zeros(0, np.int64)))]
    model = tiny_model()
    with pytest.raises(ValueError, match="an empty batch after 0 samples"):
        train_one_epoch(model, empty, optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="produced no batches"):
        train_one_epoch(model, [], optim.SGD(model.parameters(), lr=0.1))


def png_header_only(path, width, height):
    """A PNG whose header declares width x height and whose pixels are missing: a
    decoder would allocate the declared size; the header check must stop first."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    p = png_header_only(tmp_path / "huge.png", 12000, 12000)
    assert 12000 * 12000 > MAX_PIXELS
    with pytest.raises(ValueError, match=r"12000x12000 = 144,000,000 pixels, over the limit"):
        load_image_file(p)
    p = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)      # past Pillow's own refusal
    with pytest.raises(ValueError, match="over the limit"):
        load_image_file(p)


@pytest.mark.parametrize("mode, ext", [("RGB", "jpg"), ("L", "png"), ("RGBA", "png")])
def test_a_large_photo_is_decoded_downscaled(tmp_path, mode, ext):
    from PIL import Image

    shape = {"RGB": (1200, 1600, 3), "L": (900, 1800), "RGBA": (1000, 1000, 4)}[mode]
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    a = ((xx / shape[1]) * 255).astype(np.uint8)                       # a horizontal ramp
    a = np.stack([a] * shape[2], -1) if len(shape) == 3 else a
    if mode == "RGBA":
        a[..., 3] = 255
    Image.fromarray(a, mode).save(tmp_path / f"big.{ext}")
    small = load_image_file(tmp_path / f"big.{ext}", max_side=400)
    full = load_image_file(tmp_path / f"big.{ext}", max_side=10**6)
    count("bad value", "loaded")
    assert max(small.shape[:2]) == 400 and full.shape[:2] == shape[:2]
    assert small.shape[2:] == full.shape[2:] == ((3,) if len(shape) == 3 else ())
    assert small.shape[0] / small.shape[1] == pytest.approx(shape[0] / shape[1], abs=0.01)
    # the same picture: column means of the ramp agree after resampling
    cols = np.linspace(0, 1, small.shape[1])
    assert np.allclose(small.mean(axis=tuple(i for i in range(small.ndim) if i != 1)),
                       np.interp(cols, np.linspace(0, 1, full.shape[1]),
                                 full.mean(axis=tuple(i for i in range(full.ndim) if i != 1))), atol=0.03)
