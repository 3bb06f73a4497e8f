"""How closely onnxruntime reproduces every zoo model exported by cnnlab.onnx: the
max |cnnlab - onnxruntime| of the outputs, float32, on a random input and on the
astronaut photo (scikit-image), at the smallest input each model takes, opset 17.

    python3 benchmarks/onnx_parity.py [--models lenet5 resnet20 ...] [--opset 17]

Prints a Markdown table (the README's "ONNX" section shows one run of it).  Needs
the onnx and onnxruntime packages (the test extra brings both).  The models over
30M parameters (AlexNet, ZFNet, the VGGs) take several seconds each to export.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def photo(channels: int, size: int) -> np.ndarray:
    """The astronaut photo, resized, grey for one channel, in [0, 1], as (1, C, S, S)."""
    import skimage.data
    from skimage.transform import resize

    img = resize(skimage.data.astronaut(), (size, size), anti_aliasing=True)
    img = img.mean(axis=2, keepdims=True) if channels == 1 else img
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def zoo_model(name: str):
    """(model in eval mode with seed-0 weights, (C, S, S)) at the smallest input it takes."""
    import cnnlab
    from cnnlab.models import MIN_INPUT_SIZE, get_model

    size = MIN_INPUT_SIZE.get(name, (32, None))[0]
    channels = 1 if name in ("lenet5_1998", "lenet5", "digits_cnn", "bn_cnn") else 3
    cnnlab.manual_seed(0)
    model = get_model(name, num_classes=10, in_channels=channels, input_size=size).eval()
    return model, (channels, size, size)


def parity(name: str, opset: int) -> tuple[tuple[int, ...], int, float, float]:
    """(input size, parameter count, max abs difference, max |output|) for one model."""
    import onnxruntime as ort

    import cnnlab
    from cnnlab.onnx import to_onnx

    model, size = zoo_model(name)
    x = np.concatenate([np.random.default_rng(0).random((1, *size), dtype=np.float32),
                        photo(size[0], size[1])])
    want = model(cnnlab.Tensor(x)).numpy()
    proto = to_onnx(model, size, opset)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    params = sum(p.data.size for p in model.parameters())
    return size, params, float(np.abs(got - want).max()), float(np.abs(want).max())


def main() -> None:
    from cnnlab.models import list_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="default: every zoo model")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    print("| model | input | parameters | max \\|cnnlab − onnxruntime\\| | max \\|output\\| |")
    print("|---|---|---:|---:|---:|")
    for name in args.models or list_models():
        t = time.perf_counter()
        size, params, diff, scale = parity(name, args.opset)
        print(f"| {name} | {'x'.join(map(str, size))} | {params:,} | {diff:.1e} | {scale:.2g} |",
              flush=True)
        print(f"  ({time.perf_counter() - t:.1f} s)", flush=True, file=__import__("sys").stderr)


if __name__ == "__main__":
    main()
