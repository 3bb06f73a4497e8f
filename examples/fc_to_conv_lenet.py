"""Slide a LeNet-5 over a wide image by converting its FC layers to conv layers
(the notes, "Converting FC layers to CONV layers").

Builds a 28 x 196 strip of six Fashion-MNIST test images side by side (4 pixels
between them, zero in the network's input space: the value conv1 pads with),
trains LeNet-5 briefly on 28 x 28 Fashion-MNIST (or loads a model written by
``cnnlab train``), converts it with ``cnnlab.convert.fc_to_conv`` and runs it
*once* on the whole strip.  The result is a 10 x 1 x 43 map of class scores:
cell j is LeNet-5 applied to the 28 x 28 window starting at column 4j (total
stride 4).  It prints the predicted class per position, checks that the cells
aligned with the six images equal the original model on those images (exit
status 1 if not), and saves the strip and the class map as a PNG.

    python examples/fc_to_conv_lenet.py                       # ~400 SGD steps first
    python examples/fc_to_conv_lenet.py --model runs/fashion-mnist-lenet5/model.npz
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import cnnlab
import cnnlab.nn.functional as F
from cnnlab.convert import fc_to_conv, total_stride
from cnnlab.data import FASHION_MNIST_CLASSES, get_dataset, load_fashion_mnist
from cnnlab.models import get_model
from cnnlab.optim import SGD
from cnnlab.plots import save_exact

SHORT = {"T-shirt/top": "top", "Ankle boot": "boot"}


def train_lenet5(steps: int, batch: int = 64, seed: int = 0):
    """LeNet-5 on raw [0, 1] Fashion-MNIST pixels (no standardisation, so a black
    margin is the zero the conv padding adds): SGD + momentum, ``steps`` steps."""
    train = load_fashion_mnist("train")
    cnnlab.manual_seed(seed)
    model = get_model("lenet5", num_classes=10, in_channels=1, input_size=28)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(seed)
    t0, avg = time.perf_counter(), None
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(train.y), batch)
        opt.zero_grad()
        loss = F.cross_entropy(model(cnnlab.Tensor(train.x[idx])), train.y[idx])
        loss.backward()
        opt.step()
        avg = loss.item() if avg is None else 0.95 * avg + 0.05 * loss.item()
        if step % 100 == 0 or step == steps:
            print(f"  step {step:4d}  loss {avg:.3f}  ({time.perf_counter() - t0:.0f} s)")
    return model.eval(), {"dataset": "fashion_mnist", "classes": FASHION_MNIST_CLASSES}


def load_model(path: str):
    from cnnlab.training import load_for_evaluation
    model, meta = load_for_evaluation(path)
    how = (meta["model_spec"].get("input") or {}).get("how")
    if how == "resize":
        raise SystemExit(f"{path}: trained on resized images; sliding needs the native scale")
    return model, meta


def run(model, x: np.ndarray) -> np.ndarray:
    with cnnlab.no_grad():
        return model(cnnlab.Tensor(x.astype(np.float32))).data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a model.npz / checkpoint written by `cnnlab train` "
                                    "(default: train LeNet-5 here)")
    ap.add_argument("--steps", type=int, default=400, help="training steps (default 400)")
    ap.add_argument("--images", type=int, default=6, help="images in the strip (default 6)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).with_suffix(".png")))
    args = ap.parse_args()

    if args.model:
        model, meta = load_model(args.model)
        print(f"loaded {args.model} ({meta['model_spec']['name']} on {meta['dataset']})")
    else:
        print(f"training LeNet-5 on Fashion-MNIST for {args.steps} steps")
        model, meta = train_lenet5(args.steps, seed=args.seed)
    classes = list(meta["classes"])
    names = [SHORT.get(c, c).lower() for c in classes]
    spec = meta.get("model_spec", {})
    test = get_dataset(meta["dataset"], "test")
    C, h, w = test.x.shape[1:]
    pad = 0
    if (spec.get("input") or {}).get("how") == "pad":          # e.g. 28 -> 32 as trained
        pad = (spec["input"]["to"] - spec["input"]["from"]) // 2
    size = (C, h + 2 * pad, w + 2 * pad)                        # the training input size

    if args.model is None:
        n = 2000
        acc = (run(model, test.x[:n]).argmax(1) == test.y[:n]).mean()
        print(f"test accuracy on {n} images: {acc:.3f}")

    # the strip: images of different classes side by side, made in the network's input
    # space (each image padded and standardised as in training) on a background of zeros,
    # the value conv1 pads with, so the windows exactly on an image see what the model sees
    rng = np.random.default_rng(args.seed)
    labels = rng.choice(len(classes), size=min(args.images, len(classes)), replace=False)
    picks = [int(rng.choice(np.flatnonzero(test.y == c))) for c in labels]
    conv = fc_to_conv(model, size)
    s = total_stride(model, size)[1]
    P = next(m for m in conv.children() if hasattr(m, "padding")).padding[1]
    margin = s * -(-max(P, 1) // s)          # a multiple of the stride, at least conv1's padding
    W_in = size[2]
    starts = [margin + k * (W_in + margin) for k in range(len(picks))]

    def prep(x: np.ndarray) -> np.ndarray:
        """As in training: pad in raw pixels (if the model was), then standardise (if it was)."""
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        norm = meta.get("normalize")
        return (x - norm["mean"]) / norm["std"] if norm else x

    net_in = np.zeros((1, C, size[1], margin + len(picks) * (W_in + margin)), dtype=np.float32)
    strip = np.zeros((1, C, h, net_in.shape[3]), dtype=np.float32)    # raw pixels, to draw
    for k, i in enumerate(picks):
        net_in[0, :, :, starts[k]:starts[k] + W_in] = prep(test.x[i][None])[0]
        strip[0, :, :, starts[k] + pad:starts[k] + pad + w] = test.x[i]

    print(f"\nconverted model (total stride {s}):")
    print("  " + " -> ".join(f"{type(m).__name__}{getattr(m, 'kernel_size', '')}"
                             for m in conv.children() if type(m).__name__ != "Identity"))
    t0 = time.perf_counter()
    scores = run(conv, net_in)[0, :, 0, :]                       # (classes, positions)
    t_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    crops = np.concatenate([net_in[..., j * s:j * s + size[2]] for j in range(scores.shape[1])])
    loop = run(model, crops)                                     # the same windows, one by one
    t_loop = time.perf_counter() - t0
    # LeNet-5 pads conv1 by P = 2 (28x28 inputs): the converted net pads the strip's
    # border once, so a cell equals the model on its window exactly when the P-pixel
    # ring around the window is zero -- see cnnlab.convert.fc_to_conv
    ring0 = np.pad(net_in, ((0, 0), (0, 0), (0, 0), (P, P)))
    black = np.array([not np.any(ring0[..., j * s:j * s + P]) and
                      not np.any(ring0[..., j * s + size[2] + P:j * s + size[2] + 2 * P])
                      for j in range(scores.shape[1])])
    diff = np.abs(loop - scores.T).max(1)
    prob = np.exp(scores - scores.max(0))
    prob /= prob.sum(0)
    pred = prob.argmax(0)
    print(f"strip {strip.shape[2:]} -> score map {scores.shape[0]} x 1 x {scores.shape[1]} "
          f"in one pass, {1e3 * t_conv:.0f} ms (the model on the {len(crops)} windows one by "
          f"one: {1e3 * t_loop:.0f} ms)")
    print(f"cells equal the model on their window where its {P}-pixel side ring is zero: "
          f"{black.sum()} windows, max |diff| {diff[black].max() if black.any() else 0:.1e}; "
          f"elsewhere the net sees the neighbouring pixels instead of conv1's zero padding "
          f"(max |diff| {diff[~black].max() if (~black).any() else 0:.1e})\n")

    aligned = {st // s: k for k, st in enumerate(starts) if st % s == 0}
    print(" pos  cols      predicted        p")
    for j in range(scores.shape[1]):
        note = ""
        if j in aligned:
            k = aligned[j]
            alone = run(model, prep(test.x[picks[k]][None]))[0]
            note = (f"  <- image {k} ({classes[labels[k]]}); model on it alone: "
                    f"{classes[alone.argmax()]}, |diff| {np.abs(alone - scores[:, j]).max():.1e}")
        print(f"{j:4d}  {j * s:3d}-{j * s + size[2] - 1:<3d}  {classes[pred[j]]:<12s} "
              f"{prob[pred[j], j]:5.2f}{note}")
    # the check: every window exactly on an image has a zero ring and equals the model on it
    tol = 1e-4 * (1 + np.abs(scores).max())
    on_images = sorted(aligned)
    if len(on_images) != len(picks) or not black[on_images].all() or diff[on_images].max() > tol:
        raise SystemExit(f"fc_to_conv check failed: {len(on_images)} of {len(picks)} images on a "
                         f"window, rings zero {black[on_images].tolist()}, max |diff| "
                         f"{diff[on_images].max() if on_images else float('nan'):.1e} > {tol:.1e}")
    print(f"\nchecked: the {len(on_images)} cells on the images equal the model on each image "
          f"(max |diff| {diff[on_images].max():.1e})")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    W = strip.shape[3]
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(12, 5.6), sharex=True,
                                   gridspec_kw={"height_ratios": [1.15, 2]})
    ax0.imshow(strip[0, 0], cmap="gray", extent=(0, W, h, 0))
    for k, st in enumerate(starts):
        ax0.add_patch(plt.Rectangle((st + pad, 0), w, h, fill=False, ec="tab:orange", lw=1))
        j = st // s
        verdict = names[pred[j]] if st % s == 0 else "?"
        ax0.text(st + pad + w / 2, -1.5, f"{names[labels[k]]}: cell {j} says {verdict}", ha="center",
                 va="bottom", fontsize=9,
                 color="black" if verdict == names[labels[k]] else "tab:red")
    ax0.set_yticks([])
    ax0.set_title(f"Fashion-MNIST strip {h}x{W}; LeNet-5 ({size[1]}x{size[2]}) converted to a "
                  f"fully convolutional net, one pass, stride {s}", fontsize=10, pad=18)
    # column j is the window [j*s, j*s + w): draw it at its centre
    x0 = W_in / 2 - s / 2
    ax1.imshow(prob, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
               extent=(x0, x0 + s * prob.shape[1], len(classes) - 0.5, -0.5))
    ax1.plot(x0 + s * (np.arange(len(pred)) + 0.5), pred, "o", ms=4, mfc="none", mec="tab:red",
             label="argmax")
    for j in aligned:
        ax1.axvline(x0 + s * (j + 0.5), color="tab:orange", lw=0.8, ls="--")
    ax1.set_yticks(range(len(classes)), names, fontsize=8)
    ax1.set_xlabel("column of the window's centre in the strip (one cell per 4 pixels; "
                   "dashed: windows exactly on an image)")
    ax1.set_title("softmax of the score map (class x position); red circles: predicted class",
                  fontsize=10)
    ax1.set_xlim(0, W)
    fig.tight_layout()
    save_exact(fig, args.out, dpi=90)      # atomic: the picture appears whole or not at all
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
