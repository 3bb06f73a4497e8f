"""What the visualisations look at: photos, image files, a run's test images and its checkpoint.

Shared by ``cnnlab viz`` (:mod:`cnnlab.viz.cli`) and ``cnnlab report``
(:mod:`cnnlab.viz.report`):

* :func:`sample_photo` / :func:`shrink` -- scikit-image's bundled photos, downscaled;
* :func:`load_image_file` -- a PNG / JPG as float64 in [0, 1];
* :func:`image_to_model_input` -- a photo or drawing brought to the run's channels,
  made as the dataset's images were (:mod:`cnnlab.viz.rasterize`), normalised;
* :func:`model_pipeline` -- training-size raw pixels through the run's own input pipeline;
* :func:`open_checkpoint` -- the checkpoint file and run folder for ``RUN`` or ``RUN/model.npz``;
* :func:`open_model` -- the model of a run, a model file, a ``.onnx`` file or a zoo name
  (:func:`zoo_meta`: untrained, at its usual input).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab._files import check_readable_file

__all__ = ["PHOTOS", "MAX_PIXELS", "MAX_SIDE", "sample_photo", "shrink", "load_image_file",
           "image_to_model_input", "model_pipeline", "open_checkpoint", "open_model", "zoo_meta"]

PHOTOS = ("camera", "chelsea", "astronaut", "coffee", "coins", "moon")


def sample_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos (no download) as float64 in [0, 1]."""
    if name not in PHOTOS:
        raise ValueError(f"--photo must be one of {', '.join(PHOTOS)}, got {name!r}")
    from skimage import data

    a = np.asarray(getattr(data, name)())
    return a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)


def shrink(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Anti-aliased downscale so the longer side is at most ``max_side`` (unchanged if smaller)."""
    if not max_side or max(img.shape[:2]) <= max_side:
        return img
    from skimage.transform import resize

    f = max_side / max(img.shape[:2])
    shape = (max(1, round(img.shape[0] * f)), max(1, round(img.shape[1] * f))) + img.shape[2:]
    return resize(img, shape, anti_aliasing=True)


MAX_PIXELS = 50_000_000     # a 50-megapixel photo; a decompression bomb declares far more


def check_pixel_count(path: Path) -> None:
    """Refuse an image whose header declares more than :data:`MAX_PIXELS`, before decoding."""
    try:
        from PIL import Image
    except ImportError:   # pragma: no cover - Pillow comes with matplotlib
        return
    try:
        with warnings.catch_warnings():     # the header is all that is read: no bomb yet
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError as e:   # Pillow's own refusal, far over ours
        raise ValueError(f"--image: {path} is over the limit of {MAX_PIXELS:,} pixels ({e})") from e
    except Exception:    # noqa: BLE001 -- not an image Pillow knows: the decoder will say so
        return
    if w * h > MAX_PIXELS:
        raise ValueError(f"--image: {path} is {w}x{h} = {w * h:,} pixels, over the limit of "
                         f"{MAX_PIXELS:,}; downscale it first")


MAX_SIDE = 2048     # a photo is decoded at most this long (longer side): the models see far less


def decode_downscaled(path: Path, max_side: int) -> np.ndarray | None:
    """A photo whose longer side passes ``max_side`` as 8-bit pixels of at most
    ``max_side``, never whole in floating point (a JPEG is decoded straight at
    1/2 to 1/8 scale); None for a smaller image or one Pillow cannot shrink in 8 bit."""
    try:
        from PIL import Image
    except ImportError:   # pragma: no cover - Pillow comes with matplotlib
        return None
    with Image.open(path) as im:
        if max(im.size) <= max_side or im.mode not in ("1", "L", "P", "LA", "PA", "RGB", "RGBA",
                                                       "CMYK", "YCbCr"):
            return None
        im.draft("RGB" if im.mode in ("RGB", "YCbCr", "CMYK") else None, (max_side, max_side))
        alpha = im.mode in ("LA", "PA", "RGBA") or "transparency" in im.info
        im = im.convert("RGBA" if alpha else "L" if im.mode in ("1", "L") else "RGB")
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return np.asarray(im)


def load_image_file(path: str | os.PathLike, max_side: int = MAX_SIDE) -> np.ndarray:
    """Read a PNG / JPG as float64 in [0, 1]: (H, W) grey or (H, W, 3) colour
    (an alpha channel is dropped).  Refused above :data:`MAX_PIXELS` from the
    header, before decoding; a photo longer than ``max_side`` is downscaled while
    it is decoded (:func:`decode_downscaled`).  Uses scikit-image, else matplotlib."""
    path = check_readable_file(path, "--image")
    check_pixel_count(path)
    try:
        from skimage.io import imread
    except ImportError:   # pragma: no cover - scikit-image is installed with the viz extra
        from matplotlib.image import imread
    try:
        a = decode_downscaled(path, max_side)
        a = np.asarray(imread(str(path))) if a is None else a
    except Exception as e:   # any decoder error, reported with the file name
        raise ValueError(f"--image: cannot read {path} as an image: {e}") from e
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    elif a.dtype == np.bool_:
        a = a.astype(np.float64)
    else:
        a = a.astype(np.float64)
        if a.size and a.max() > 1.0:
            a = a / 255.0
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise ValueError(f"--image: {path} has shape {a.shape}; expected (H, W) grey or (H, W, 3) colour")
    return np.clip(a, 0.0, 1.0)


def image_to_model_input(img: np.ndarray, meta: dict[str, Any], invert: bool = False,
                         notes: list[str] | None = None, source: str = "--image"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Bring a photo or drawing (H, W) / (H, W, 3) in [0, 1] to what the run's model takes.

    Converts to the model's channel count (luminance 0.2125 R + 0.7154 G + 0.0721 B
    for grey), optionally inverts (``1 - x``: dark ink on white paper -> the datasets'
    light ink on black), makes it the way the dataset's images were made
    (:func:`cnnlab.viz.rasterize.rasterize`: digits counted in 4x4 blocks, MNIST fitted
    in 20x20 and centred by mass, others centre-cropped and resized; an image already of
    the training size is kept), then applies the run's pipeline
    (:func:`cnnlab.training.run.input_transform`).  Warnings (an image that looks
    inverted) are appended to ``notes`` when it is given.

    Returns
    -------
    raw : (1, C, S, S) float32, the image at the model's input size in raw pixels
    x : (1, C, S, S) float32, ``raw`` standardised as in training (the model's input)
    """
    from cnnlab.viz.rasterize import rasterize

    r = rasterize(img, meta, invert=invert, source=source)
    if notes is not None:
        notes.extend(r.notes)
    return model_pipeline(r.image[None].astype(np.float32), meta)


def model_pipeline(raw_small: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Training-size raw pixels through the run's input pipeline.

    Parameters
    ----------
    raw_small : (N, C, h, w) float32, raw pixels at the training images' size
    meta : the checkpoint's metadata (``model_spec``, optional ``normalize``)

    Returns
    -------
    raw : (N, C, S, S) float32, the pixels at the model's input size (resized or padded
        as in training)
    x : (N, C, S, S) float32, ``raw`` standardised as in training (the model's input)
    """
    from cnnlab.training.run import input_transform

    spec, norm = meta["model_spec"], meta.get("normalize")
    C, h = raw_small.shape[1], raw_small.shape[-1]
    geometry = input_transform(spec, None, C, size=h)
    raw = np.asarray(geometry(raw_small) if geometry is not None else raw_small, dtype=np.float32)
    x = raw if not norm else ((raw - norm["mean"]) / norm["std"]).astype(np.float32)
    return raw, x


def open_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint file, run folder) for ``RUN``, ``RUN/model.npz`` or
    ``RUN/checkpoints/epoch-NNN.npz``."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.npz"
    try:
        p = check_readable_file(p, "checkpoint")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e} (pass RUN/model.npz written by `cnnlab train`)") from None
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return p, run


def zoo_meta(name: str) -> dict[str, Any]:
    """Metadata for a zoo model shown untrained: its usual input (8x8 digits for
    digits_cnn, 28x28 grey for LeNet-5, 32x32 for LeNet-5 (1998) and the CIFAR
    ResNets, 224x224 RGB for the ImageNet models) and 10 classes."""
    from cnnlab.models import get_model, list_models

    key = name.lower().replace("-", "_")
    if key not in list_models():
        raise ValueError(f"{name!r} is not a run folder, a model file or a model name; "
                         f"model names: {', '.join(list_models())}")
    grey = {"digits_cnn": (8, "digits"), "lenet5": (28, "mnist"), "lenet5_1998": (32, None),
            "bn_cnn": (28, "fashion-mnist")}
    if key in grey:
        size, dataset, C = *grey[key], 1
    else:
        C = 3
        size = 32 if key.startswith(("resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                                     "densenet_bc")) else 224
        dataset = None
    spec = {"name": key, "kwargs": {"num_classes": 10, "in_channels": C, "input_size": size},
            "input": {"from": size, "to": size, "how": None}}
    get_model(key, **spec["kwargs"])   # fails early for a model that cannot take this input
    return {"model_spec": spec, "dataset": dataset, "classes": [str(i) for i in range(10)],
            "normalize": None, "untrained": True}


def open_model(target: str) -> tuple[Any, dict[str, Any], str, Path | None]:
    """(model in eval mode, metadata, what was opened, run folder or None) for a run
    folder, a model file / checkpoint / ``.onnx`` file, or a zoo model name (untrained)."""
    from cnnlab.training.run import build_model, load_for_evaluation

    p = Path(target)
    if p.exists():
        ckpt, run = open_checkpoint(p)
        model, meta = load_for_evaluation(ckpt)
        return model, meta, str(ckpt), run
    if "/" in target or target.endswith((".npz", ".onnx")):
        raise FileNotFoundError(f"{target} does not exist (give a run folder, its model.npz, "
                                "an .onnx file, or a model name from `cnnlab models`)")
    meta = zoo_meta(target)
    return build_model(meta["model_spec"]).eval(), meta, f"{target} (untrained)", None
