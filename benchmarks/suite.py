"""cnnlab against PyTorch 2.13 on the CPU, side by side: one command, markdown tables.

    python benchmarks/suite.py [--repeats 5] [--sections conv,layers,lenet,resnet20,infer,memory]

Both frameworks use every core, float32, the same shapes, a warm-up and the
median of repeats.  Every measurement of a framework runs in a child process
of its own (OpenBLAS's spinning threads from one framework would slow the
other), and the numbers are ratios measured in the same run: timings on
these shared machines are noisy, so they are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent

# name: (N, C, H, O, K, stride, padding, groups)
CONV_SHAPES = {
    "LeNet conv1 1→6 5×5 @28 (pad 2), N=64": (64, 1, 28, 6, 5, 1, 2, 1),
    "LeNet conv2 6→16 5×5 @14, N=64": (64, 6, 14, 16, 5, 1, 0, 1),
    "AlexNet conv1 3→96 11×11/4 @227, N=8": (8, 3, 227, 96, 11, 4, 0, 1),
    "VGG 64→64 3×3 @112, N=8": (8, 64, 112, 64, 3, 1, 1, 1),
    "VGG 128→128 3×3 @56, N=8": (8, 128, 56, 128, 3, 1, 1, 1),
    "VGG 256→256 3×3 @28, N=8": (8, 256, 28, 256, 3, 1, 1, 1),
    "VGG 512→512 3×3 @14, N=8": (8, 512, 14, 512, 3, 1, 1, 1),
    "ResNet 64→128 3×3/2 @56, N=8": (8, 64, 56, 128, 3, 2, 1, 1),
    "ResNet 64→128 1×1/2 projection @56, N=8": (8, 64, 56, 128, 1, 2, 0, 1),
    "depthwise 128 3×3 @56 (groups=128), N=8": (8, 128, 56, 128, 3, 1, 1, 128),
}
LAYER_SHAPE = (8, 64, 112, 112)


def conv_flops(shape: tuple) -> float:
    """Forward + backward multiply-adds x 2: backward is two products of the forward's size."""
    N, C, H, O, K, s, p, g = shape
    OH = (H + 2 * p - K) // s + 1
    return 3 * 2.0 * N * OH * OH * O * (C // g) * K * K


def median_time(fn: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# ------------------------------------------------------------------ children
class Cnnlab:
    def __init__(self) -> None:
        import cnnlab

        cnnlab.tune_memory()   # as the cnnlab command does (glibc keeps freed memory for reuse)
        self.cl = cnnlab
        self.nn = cnnlab.nn
        self.F = cnnlab.nn.functional

    def tensor(self, a: np.ndarray, grad: bool = False):
        return self.cl.Tensor(a, requires_grad=grad)

    def conv(self, shape):
        N, C, H, O, K, s, p, g = shape
        self.cl.manual_seed(0)
        m = self.nn.Conv2d(C, O, K, stride=s, padding=p, groups=g)
        x = self.tensor(np.random.default_rng(0).random((N, C, H, H), dtype=np.float32), True)
        return m, x

    def fwd_bwd(self, m, x) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            y = m(x)
            y.backward(np.ones(y.shape, dtype=np.float32))
        return run

    def layers(self) -> dict[str, Callable[[], None]]:
        a = np.random.default_rng(0).standard_normal(LAYER_SHAPE).astype(np.float32)
        x = self.tensor(a, True)
        bn = self.nn.BatchNorm2d(LAYER_SHAPE[1])
        return {"max-pool 2×2/2": self.fwd_bwd(self.nn.MaxPool2d(2), x),
                "batch-norm (train)": self.fwd_bwd(bn, x),
                "ReLU": self.fwd_bwd(self.nn.ReLU(), x)}

    def train_step(self, model, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
        from cnnlab.optim import SGD

        opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt = self.tensor(x)

        def step() -> None:
            opt.zero_grad()
            self.F.cross_entropy(model(xt), y).backward()
            opt.step()
        return step

    def resnet20(self):
        from cnnlab.models import get_model

        self.cl.manual_seed(0)
        return get_model("resnet20")

    def inference(self, name: str, x: np.ndarray) -> Callable[[], None]:
        from cnnlab.models import get_model

        self.cl.manual_seed(0)
        model = get_model(name).eval()
        xt = self.tensor(x)

        def run() -> None:
            with self.cl.no_grad():
                model(xt)
        return run


class Torch:
    def __init__(self) -> None:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        self.t = torch
        self.nn = torch.nn

    def tensor(self, a: np.ndarray, grad: bool = False):
        return self.t.tensor(a, requires_grad=grad)

    def conv(self, shape):
        N, C, H, O, K, s, p, g = shape
        self.t.manual_seed(0)
        m = self.nn.Conv2d(C, O, K, stride=s, padding=p, groups=g)
        x = self.tensor(np.random.default_rng(0).random((N, C, H, H), dtype=np.float32), True)
        return m, x

    def fwd_bwd(self, m, x) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            y = m(x)
            y.backward(self.t.ones_like(y))
        return run

    def layers(self) -> dict[str, Callable[[], None]]:
        a = np.random.default_rng(0).standard_normal(LAYER_SHAPE).astype(np.float32)
        x = self.tensor(a, True)
        return {"max-pool 2×2/2": self.fwd_bwd(self.nn.MaxPool2d(2), x),
                "batch-norm (train)": self.fwd_bwd(self.nn.BatchNorm2d(LAYER_SHAPE[1]), x),
                "ReLU": self.fwd_bwd(self.nn.ReLU(), x)}

    def train_step(self, model, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
        opt = self.t.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = self.t.from_numpy(x), self.t.from_numpy(y)

        def step() -> None:
            opt.zero_grad()
            self.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
        return step

    def resnet20(self):
        sys.path.insert(0, str(HERE))
        import torch_models

        self.t.manual_seed(0)
        return torch_models.ResNet20()

    def inference(self, name: str, x: np.ndarray) -> Callable[[], None]:
        sys.path.insert(0, str(HERE))
        import torch_models

        self.t.manual_seed(0)
        model = {"vgg16": torch_models.vgg16, "resnet18": torch_models.ResNet18}[name]().eval()
        xt = self.t.from_numpy(x)

        def run() -> None:
            with self.t.no_grad():
                model(xt)
        return run


def child(framework: str, section: str, repeats: int) -> dict:
    fw = Cnnlab() if framework == "cnnlab" else Torch()
    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    if section == "conv":
        for name, shape in CONV_SHAPES.items():
            m, x = fw.conv(shape)
            out[name] = median_time(fw.fwd_bwd(m, x), repeats)
    elif section == "layers":
        for name, fn in fw.layers().items():
            out[name] = median_time(fn, repeats)
    elif section == "lenet":
        sys.path.insert(0, str(HERE))
        import lenet_epoch

        x, y, per_epoch = lenet_epoch.load_batches(300, 20, 64)
        fn = lenet_epoch.cnnlab_time if framework == "cnnlab" else lenet_epoch.torch_time
        out["LeNet-5 epoch, Fashion-MNIST, batch 64 (s)"] = fn(x, y, 64, 300, 20) / 300 * per_epoch
    elif section == "resnet20":
        x = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 128).astype(np.int64)
        out["ResNet-20 training step, batch 128 × 3×32×32 (s)"] = median_time(
            fw.train_step(fw.resnet20(), x, y), repeats)
    elif section == "infer":
        x = rng.standard_normal((8, 3, 224, 224)).astype(np.float32)
        for name in ("resnet18", "vgg16"):
            out[f"{name} inference, batch 8 × 3×224×224 (s)"] = median_time(
                fw.inference(name, x), repeats, warmup=1)
    elif section == "memory":
        x = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 128).astype(np.int64)
        step = fw.train_step(fw.resnet20(), x, y)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["ResNet-20 step: peak RSS (MiB)"] = peak / 1024
        out["ResNet-20 step: peak RSS above the built model (MiB)"] = (peak - base) / 1024
    return out


# -------------------------------------------------------------------- parent
# the targets, as cnnlab / torch (for inference: time per batch, i.e. throughput >= torch)
TARGETS = {"conv": 1.5, "layers": None, "lenet": 1.0, "resnet20": 1.3, "infer": 1.0, "memory": 1.3}


def run_child(framework: str, section: str, repeats: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", framework, "--section", section,
                           "--repeats", str(repeats)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{framework}/{section} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(section: str, ours: dict, theirs: dict) -> str:
    target = TARGETS[section]
    head = "| benchmark | cnnlab | torch | cnnlab / torch |"
    sep = "|---|---|---|---|"
    if section == "conv":
        head += " cnnlab GFLOP/s | target ≤ 1.5 |"
        sep += "---|---|"
    elif target is not None:
        head += f" target ≤ {target} |"
        sep += "---|"
    rows = [head, sep]
    for name, o in ours.items():
        t = theirs[name]
        ratio = o / t
        if section == "infer":   # throughput: report images/s, target ratio >= 1 on resnet18
            row = f"| {name.replace(' (s)', '')} | {8 / o:.1f} img/s | {8 / t:.1f} img/s | {ratio:.2f} |"
        elif section == "memory":
            row = f"| {name} | {o:.0f} | {t:.0f} | {ratio:.2f} |"
        else:
            unit = "s" if o > 1 else "ms"
            scale = 1 if unit == "s" else 1e3
            row = f"| {name} | {o * scale:.2f} {unit} | {t * scale:.2f} {unit} | {ratio:.2f} |"
        if section == "conv":
            shape = CONV_SHAPES[name]
            verdict = "met" if ratio <= 1.5 else f"missed by {ratio / 1.5:.2f}×"
            row += f" {conv_flops(shape) / o / 1e9:.1f} | {verdict} |"
        elif target is not None:
            if section == "infer" and "resnet18" not in name:
                row += " (no target) |"
            else:
                verdict = "met" if ratio <= target else f"missed by {ratio / target:.2f}×"
                row += f" {verdict} |"
        rows.append(row)
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sections", default="conv,layers,lenet,resnet20,infer,memory")
    ap.add_argument("--child", choices=["cnnlab", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--section", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.section, args.repeats)))
        return

    import torch

    print(f"cnnlab vs PyTorch {torch.__version__} — {platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, {time.strftime('%Y-%m-%d')}; median of {args.repeats}")
    for section in args.sections.split(","):
        ours = run_child("cnnlab", section, args.repeats)
        theirs = run_child("torch", section, args.repeats)
        print(f"\n### {section}\n")
        print(table(section, ours, theirs), flush=True)


if __name__ == "__main__":
    main()
