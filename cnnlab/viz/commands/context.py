"""What a ``cnnlab viz`` method works on, and the layer helpers the methods share."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.viz.inputs import (
    MAX_SIDE,
    image_to_model_input,
    load_image_file,
    model_pipeline,
    open_checkpoint,
    sample_photo,
    shrink,
)

__all__ = ["VizContext", "leaf_layers", "last_conv", "activation_after", "ACTIVATIONS"]

ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU")


@dataclass
class VizContext:
    """What a ``cnnlab viz`` method works on: the model, its run, one input image."""

    model: Any
    meta: dict[str, Any]
    run_dir: Path
    out_dir: Path
    args: argparse.Namespace
    _test: Any = None
    _loader: Any = None
    raw: np.ndarray | None = None          # (1, C, S, S) raw pixels at model size
    x: np.ndarray | None = None            # (1, C, S, S) model input
    label: int | None = None               # true class of a test image
    tag: str = ""                          # "test3" or the image file's stem
    original: np.ndarray | None = None     # the photo as loaded (kernels work on it)
    written: list[Path] = field(default_factory=list)

    @classmethod
    def for_photo(cls, args: argparse.Namespace) -> VizContext:
        """No model: ``--image`` or scikit-image's sample ``--photo``, shrunk to ``--max-side``."""
        img = (load_image_file(args.image, max(MAX_SIDE, args.max_side or 0)) if args.image is not None
               else sample_photo(args.photo))
        img = shrink(img, args.max_side)
        out_dir = Path(args.out or "viz")
        tag = Path(args.image).stem if args.image is not None else args.photo
        return cls(None, {}, out_dir, out_dir, args, tag=tag, original=img)

    @classmethod
    def for_checkpoint(cls, args: argparse.Namespace) -> VizContext:
        """The model of ``--checkpoint``; outputs go to ``--out`` or ``RUN/viz``."""
        from cnnlab.training.run import load_for_evaluation

        ckpt, run = open_checkpoint(args.checkpoint)
        model, meta = load_for_evaluation(ckpt)
        ctx = cls(model, meta, run, Path(args.out) if args.out else run / "viz", args)
        if args.layer:
            ctx.layer()   # fail early, listing the layer names
        return ctx

    def choose_input(self) -> None:
        """Set the input image from ``--image PATH`` or test image ``--index N`` (default 0)."""
        args = self.args
        if args.image is not None:
            self.original = load_image_file(args.image)
            notes: list[str] = []
            self.raw, self.x = image_to_model_input(self.original, self.meta, invert=args.invert,
                                                    notes=notes, source=f"--image {args.image}")
            for note in notes:
                print(f"cnnlab viz: warning: {note}", file=sys.stderr)
            self.tag = Path(args.image).stem
            return
        test, _ = self.test_data()
        n = args.index if args.index is not None else 0
        if not -len(test) <= n < len(test):
            raise ValueError(f"--index must be in [0, {len(test) - 1}] for the {len(test)} test "
                             f"images, got {n}")
        n %= len(test)
        self.raw, self.x = model_pipeline(np.asarray(test.x[n:n + 1], dtype=np.float32), self.meta)
        self.label = int(test.y[n])
        self.tag = f"test{n}"

    @property
    def classes(self) -> list[str]:
        names = self.meta.get("classes")
        if names:
            return list(names)
        k = int(self.meta["model_spec"]["kwargs"].get("num_classes", 0))
        return [str(i) for i in range(k)]

    def test_data(self):
        """(test dataset, unshuffled loader with the run's transform)."""
        if self._loader is None:
            from cnnlab.training.run import evaluation_loader

            self._test, self._loader = evaluation_loader(self.meta, self.args.dataset, self.args.data_dir,
                                                         batch_size=500)
        return self._test, self._loader

    def test_inputs(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw images at training size, model inputs, labels) of the test set."""
        test, _ = self.test_data()
        n = len(test) if limit is None else min(limit, len(test))
        raw_small = np.asarray(test.x[:n], dtype=np.float32)
        _, x = model_pipeline(raw_small, self.meta)
        return raw_small, x, np.asarray(test.y[:n]).astype(np.int64)

    def path(self, stem: str) -> Path:
        """``OUT/STEM_TAG.png`` (the folder made), recorded to be listed after the method."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        p = self.out_dir / (f"{stem}_{self.tag}.png" if self.tag else f"{stem}.png")
        self.written.append(p)
        return p

    def predict(self, x: np.ndarray | None = None) -> tuple[int, float, np.ndarray]:
        """(predicted class, its probability, all probabilities) for one input."""
        from cnnlab.autograd.tensor import Tensor, no_grad
        from cnnlab.kernels.activation import softmax_forward
        from cnnlab.training.loop import main_logits

        self.model.eval()
        with no_grad():
            logits = np.asarray(main_logits(self.model(Tensor(self.x if x is None else x))).data, np.float64)
        p = softmax_forward(logits[0], axis=0)
        return int(p.argmax()), float(p.max()), p

    def name(self, k: int) -> str:
        c = self.classes
        return c[k] if 0 <= k < len(c) else str(k)

    def target(self) -> int:
        """--target, else the predicted class of the input."""
        if self.args.target is not None:
            k = int(self.args.target)
            n = len(self.classes)
            if n and not 0 <= k < n:
                raise ValueError(f"--target must be a class index in [0, {n - 1}], got {k}")
            return k
        return self.predict()[0]

    def prediction_text(self, x: np.ndarray | None = None) -> str:
        k, p, _ = self.predict(x)
        truth = f", true {self.name(self.label)}" if self.label is not None and x is None else ""
        return f"predicted {self.name(k)} (p={p:.3f}){truth}"

    def layer(self, default: Callable[[], str] | None = None) -> str:
        """``--layer`` (checked against the model), else ``default()``."""
        from cnnlab.viz.embedding import check_layer

        if self.args.layer:
            return check_layer(self.model, self.args.layer, "--layer")
        if default is None:
            raise ValueError(f"{self.args.method}: give --layer NAME")
        return default()

    def channel(self, layer: str, channels: int) -> int:
        """``--channel`` (default 0), checked against the ``channels`` of ``layer``."""
        k = 0 if self.args.channel is None else int(self.args.channel)
        if not 0 <= k < channels:
            raise ValueError(f"--channel must be in [0, {channels - 1}] for layer {layer!r}, got {k}")
        return k

    def layer_shape(self, layer: str, x: np.ndarray) -> tuple[int, ...]:
        """The output shape of ``layer`` for the input batch ``x``."""
        from cnnlab.autograd.tensor import Tensor, no_grad
        from cnnlab.nn.capture import capture_outputs

        self.model.eval()
        with no_grad(), capture_outputs(self.model, [layer]) as seen:
            self.model(Tensor(x))
        return tuple(seen[layer].shape)

    def norm_stats(self) -> tuple[float, float]:
        """The run's input normalisation ``(mean, std)``; ``(0, 1)`` when it has none."""
        norm = self.meta.get("normalize") or {"mean": 0.0, "std": 1.0}
        return norm["mean"], norm["std"]


def leaf_layers(model, kinds: tuple[str, ...]) -> list[str]:
    """Names of the leaf modules whose class name is one of ``kinds``, in registration order."""
    return [n for n, m in model.named_modules() if n and not m._modules and type(m).__name__ in kinds]


def last_conv(model) -> str:
    """The name of the model's last Conv2d leaf."""
    convs = leaf_layers(model, ("Conv2d",))
    if not convs:
        raise ValueError("the model has no Conv2d layer; give --layer NAME")
    return convs[-1]


def activation_after(model, layer: str, kinds: tuple[str, ...] = ACTIVATIONS) -> str:
    """The first activation leaf registered after ``layer`` (the layer itself if none)."""
    leaves = [(n, type(m).__name__) for n, m in model.named_modules() if n and not m._modules]
    names = [n for n, _ in leaves]
    if layer in names:
        for n, t in leaves[names.index(layer) + 1:]:
            if t in kinds:
                return n
            if t in ("Conv2d", "Linear"):
                break
    return layer
