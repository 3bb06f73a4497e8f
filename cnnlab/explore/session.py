"""The model the explorer shows: loading it, its layers, and one forward with every layer's output.

:class:`Explorer` is what the HTTP layer (:mod:`cnnlab.explore.server`) calls; it knows
nothing about HTTP and is usable from Python::

    ex = Explorer.open("runs/digits-digits_cnn")
    out = ex.predict(np.zeros((280, 280)))       # a blank drawing
    out["prediction"], out["layers"][0]["name"]
"""
from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.viz.inputs import zoo_meta

__all__ = ["Explorer", "LayerInfo", "block_mean", "encode_array", "zoo_meta", "MAP_VALUES", "MAX_CHANNELS"]

#: leaf modules not worth a row of their own (their output equals their input's values)
_SKIP = ("Flatten", "Dropout", "Dropout2d", "Identity")
#: at most this many channels of a layer are sent per request (the page asks for the next page)
MAX_CHANNELS = 64
#: and at most about this many values per layer (fewer channels for large maps)
MAP_VALUES = 16384
#: maps larger than this on a side are sent block-averaged (the page says so)
MAX_SIDE = 64


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """An array as JSON: ``{"shape": [...], "dtype": "float32", "b64": little-endian bytes}``
    (``np.frombuffer(base64.b64decode(b64), "<f4").reshape(shape)`` reads it back)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "dtype": "float32", "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def block_mean(a: np.ndarray, scale: int) -> np.ndarray:
    """(C, H, W) -> (C, ceil(H/scale), ceil(W/scale)): the mean of each ``scale`` x ``scale``
    block (the last row and column of blocks average the pixels they have).  Sums the
    ``scale**2`` strided views of ``a``: a few times faster than a reshaped sum."""
    C, H, W = a.shape
    h, w = -(-H // scale), -(-W // scale)
    sums = np.zeros((C, h, w), dtype=np.float32)
    for i in range(scale):
        for j in range(scale):
            part = a[:, i::scale, j::scale]
            sums[:, :part.shape[1], :part.shape[2]] += part
    rows = np.minimum(scale, H - scale * np.arange(h))
    cols = np.minimum(scale, W - scale * np.arange(w))
    return sums / np.outer(rows, cols).astype(np.float32)


@dataclass
class LayerInfo:
    """One row of the page: a leaf module and its output shape for one image."""

    name: str
    type: str
    shape: tuple[int, ...]             # (C, H, W) for maps, (N,) for vectors
    rf: Any = None                     # cnnlab.summary.ReceptiveField, None for FC

    def as_json(self) -> dict[str, Any]:
        d = {"name": self.name, "type": self.type, "shape": list(self.shape),
             "kind": "map" if len(self.shape) == 3 else "vector"}
        if self.rf is not None and self.rf.size[0] > 0:
            d["rf"] = {"size": list(self.rf.size), "jump": list(self.rf.jump), "start": list(self.rf.start)}
        return d


class Explorer:
    """A model, its metadata, and the forward passes the page asks for.

    Parameters
    ----------
    model : a cnnlab Module in eval mode
    meta : checkpoint metadata (``model_spec``, ``classes``, ``normalize``, ``dataset``)
    source : what was opened (shown on the page)
    run_dir : the run folder, when there is one
    """

    def __init__(self, model, meta: dict[str, Any], source: str, run_dir: Path | None = None) -> None:
        from cnnlab.viz.rasterize import dataset_style

        self.model, self.meta, self.source, self.run_dir = model, meta, source, run_dir
        spec = meta["model_spec"]
        self.channels = int(spec["kwargs"]["in_channels"])
        self.raw_size = int((spec.get("input") or {}).get("from", spec["kwargs"]["input_size"]))
        self.input_size = int((spec.get("input") or {}).get("to", spec["kwargs"]["input_size"]))
        self.style = dataset_style(meta)
        self.lock = threading.Lock()      # one forward at a time: hooks are per model
        self.model.eval()
        self.layers = self._find_layers()
        self._by_name = {layer.name: layer for layer in self.layers}
        self._test = None
        self.in_progress = False          # a run folder with checkpoints but no model.npz yet
        #: (model input, {(layer, after): (layer input, output, output of after)}) of the last
        #: unit requests (cnnlab.explore.units): hovering over one input runs one forward a layer
        self.unit_io: tuple[np.ndarray, dict] | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, target: str) -> Explorer:
        """A run folder, a model file / checkpoint / ``.onnx`` file, or a zoo model name (untrained)."""
        from cnnlab.viz.inputs import open_model

        p = Path(target)
        if p.is_dir() and not (p / "model.npz").is_file():
            from cnnlab.training.folder import find_checkpoints
            from cnnlab.training.run import load_for_evaluation

            found = find_checkpoints(p)
            if found:       # a run still training (or stopped): its newest checkpoint
                model, meta = load_for_evaluation(found[-1][1])
                ex = cls(model, meta, str(found[-1][1]), p)
                ex.in_progress = True
                return ex
        model, meta, source, run = open_model(target)
        return cls(model, meta, source, run)

    # ------------------------------------------------------------------ layers
    def _forward(self, x: np.ndarray, names: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        from cnnlab.autograd.tensor import Tensor, no_grad
        from cnnlab.nn.capture import capture_outputs
        from cnnlab.training.loop import main_logits

        with self.lock, no_grad(), capture_outputs(self.model, names) as seen:
            logits = np.asarray(main_logits(self.model(Tensor(x))).data, dtype=np.float64)
        return logits, dict(seen)

    def _find_layers(self) -> list[LayerInfo]:
        from cnnlab.summary import UNKNOWN, summary

        leaves = [(n, type(m).__name__) for n, m in self.model.named_modules()
                  if n and not m._modules and type(m).__name__ not in _SKIP]
        params = list(self.model.parameters())
        dtype = params[0].data.dtype if params else np.float32
        x = np.zeros((1, self.channels, self.input_size, self.input_size), dtype=dtype)
        _, seen = self._forward(x, [n for n, _ in leaves])
        try:
            rfs = {r.name: r.rf for r in summary(self.model, x.shape[1:], dtype=dtype, verbose=False).rows}
        except Exception:   # a model summary cannot trace: no fields, the maps still show
            rfs = {}
        layers = []
        for name, kind in leaves:
            if name not in seen or seen[name].ndim not in (2, 4):
                continue    # not called in eval mode (auxiliary heads), or not a map / vector
            rf = rfs.get(name)
            layers.append(LayerInfo(name, kind, tuple(seen[name].shape[1:]),
                                    None if rf is None or rf is UNKNOWN else rf))
        return layers

    def copy_weights(self, model) -> None:
        """Load ``model``'s weights (a copy) into the shown model, in eval mode."""
        state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
        with self.lock:
            self.model.load_state_dict(state)
            self.model.eval()
            self.unit_io = None

    def layer(self, name: str) -> LayerInfo:
        if name not in self._by_name:
            raise ValueError(f"no layer {name!r}; layers: {', '.join(self._by_name)}")
        return self._by_name[name]

    # ------------------------------------------------------------------ the API's answers
    def describe(self) -> dict[str, Any]:
        """``GET /api/model``."""
        spec = self.meta["model_spec"]
        return {"name": spec["name"], "source": self.source, "dataset": self.meta.get("dataset"),
                "untrained": bool(self.meta.get("untrained")),
                "input_shape": [self.channels, self.input_size, self.input_size],
                "raw_shape": [self.channels, self.raw_size, self.raw_size],
                "style": self.style, "classes": self.classes(),
                "normalize": self.meta.get("normalize"),
                "test_images": self.test_count(),
                "layers": [layer.as_json() for layer in self.layers]}

    def classes(self) -> list[str]:
        names = self.meta.get("classes")
        n = int(self.meta["model_spec"]["kwargs"]["num_classes"])
        return list(names) if names else [str(i) for i in range(n)]

    def to_input(self, image: np.ndarray, invert: bool = False, source: str = "the image"
                 ) -> tuple[np.ndarray, np.ndarray, list[str], str]:
        """(raw (1, C, S, S), model input x, notes, style) for an image (H, W) / (H, W, 3) /
        (C, H, W) in [0, 1] at any size, made as the dataset's images were."""
        from cnnlab.viz.inputs import model_pipeline
        from cnnlab.viz.rasterize import rasterize

        a = np.asarray(image, dtype=np.float64)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))   # C x H x W -> H x W (x C)
        r = rasterize(a, self.meta, invert=invert, source=source)
        raw, x = model_pipeline(r.image[None].astype(np.float32), self.meta)
        return raw, x, r.notes, r.style

    def predict(self, image: np.ndarray, invert: bool = False, pages: dict[str, int] | None = None,
                source: str = "the image") -> dict[str, Any]:
        """``POST /api/predict``: probabilities, prediction, the input as the network
        receives it, and every layer's output (channel pages of ``MAX_CHANNELS``)."""
        from cnnlab.kernels.activation import softmax_forward

        raw, x, notes, style = self.to_input(image, invert, source)
        logits, seen = self._forward(x, [layer.name for layer in self.layers])
        p = softmax_forward(logits[0], axis=0)
        pages = pages or {}
        layers = [self._layer_payload(layer, seen[layer.name][0], int(pages.get(layer.name, 0)))
                  for layer in self.layers]
        return {"probabilities": p.tolist(), "prediction": int(p.argmax()),
                "classes": self.classes(), "style": style, "warnings": notes,
                "input": encode_array(raw[0]), "model_input": encode_array(x[0]), "layers": layers}

    def _layer_payload(self, layer: LayerInfo, out: np.ndarray, offset: int) -> dict[str, Any]:
        if out.ndim == 1:
            return {"name": layer.name, "type": layer.type, "shape": list(out.shape),
                    "data": encode_array(out)}
        C, H, W = out.shape
        scale = max(1, -(-max(H, W) // MAX_SIDE))
        if scale > 1:   # block-average so the map has at most MAX_SIDE pixels a side
            out = block_mean(out, scale)
        per_page = int(min(MAX_CHANNELS, max(1, MAP_VALUES // (out.shape[1] * out.shape[2]))))
        offset = min(max(0, offset), max(0, C - 1)) // per_page * per_page
        sent = out[offset:offset + per_page]
        return {"name": layer.name, "type": layer.type, "shape": [C, H, W], "scale": scale,
                "channel_offset": offset, "channels_per_page": per_page, "data": encode_array(sent),
                "min": float(out.min()), "max": float(out.max())}

    # ------------------------------------------------------------------ test images
    def _test_set(self):
        if self._test is None:
            from cnnlab.training.run import evaluation_loader

            if self.meta.get("untrained") or not self.meta.get("dataset"):
                raise ValueError("this model has no dataset (an untrained zoo model): draw or upload")
            self._test, _ = evaluation_loader(self.meta, None, None, batch_size=500)
        return self._test

    def test_count(self) -> int:
        try:
            return len(self._test_set())
        except (ValueError, FileNotFoundError, ImportError):
            return 0

    def test_image(self, index: int) -> tuple[np.ndarray, int]:
        """Test image ``index`` as raw pixels (C, h, w) at the training size, and its label."""
        test = self._test_set()
        if not 0 <= index < len(test):
            raise ValueError(f"test image index must be in [0, {len(test) - 1}], got {index}")
        return np.asarray(test.x[index], dtype=np.float32), int(test.y[index])
