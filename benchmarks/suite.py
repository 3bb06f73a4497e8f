"""cnnlab against PyTorch 2.13 on the CPU, side by side: one command, markdown tables.

    python benchmarks/suite.py [--processes 3] [--repeats 5]
                               [--sections conv,layers,lenet,resnet20,infer,memory]
                               [--lenet-steps 300] [--unset-openblas-env]

Both frameworks use every core, float32, the same shapes and a warm-up.  Every
measurement runs in a fresh child process of its own (OpenBLAS's spinning
threads from one framework would slow the other), ``--processes`` of them per
framework and section, cnnlab's and torch's taking turns; each process reports
the median of ``--repeats`` timings, and the tables give the minimum and the
median of those over the processes, with the ratio cnnlab / torch of each.

The output opens with the machine (CPU model, AVX-512, OpenBLAS's kernel from
threadpoolctl, torch's CPU capability: see ``harness.py``), since the ratio
depends on it.  OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are left as they are
unless ``--unset-openblas-env`` removes them from the children's environment,
which the output then says.  Timings on these shared machines are noisy, so
they are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import harness
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
INFER_BATCH = 8
# (model, batch norm folded: cnnlab's fold_batchnorm, as cnnlab evaluate runs it, and torch.fx's fuse)
INFER_RUNS = [("resnet18", False), ("resnet18", True), ("vgg16", False)]


def infer_row(name: str, fold: bool) -> str:
    return f"{name} inference{', BN folded' if fold else ''}, batch {INFER_BATCH} × 3×224×224 (s)"


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

    def inference(self, name: str, x: np.ndarray, fold: bool = False) -> Callable[[], None]:
        from cnnlab.models import get_model
        from cnnlab.nn.utils import fold_batchnorm

        self.cl.manual_seed(0)
        model = get_model(name).eval()
        if fold:   # what cnnlab evaluate runs: batch norm folded into the convolutions
            model = fold_batchnorm(model, x[:1])
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

    def inference(self, name: str, x: np.ndarray, fold: bool = False) -> Callable[[], None]:
        sys.path.insert(0, str(HERE))
        import torch_models
        from torch.fx.experimental.optimization import fuse

        self.t.manual_seed(0)
        model = {"vgg16": torch_models.vgg16, "resnet18": torch_models.ResNet18}[name]().eval()
        if fold:   # torch's own conv + batch norm folding, through torch.fx
            model = fuse(model)
        xt = self.t.from_numpy(x)

        def run() -> None:
            with self.t.no_grad():
                model(xt)
        return run


def child(framework: str, section: str, repeats: int, lenet_steps: int = 300) -> dict:
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

        x, y, per_epoch = lenet_epoch.load_batches(lenet_steps, 20, 64)
        fn = lenet_epoch.cnnlab_time if framework == "cnnlab" else lenet_epoch.torch_time
        out["LeNet-5 epoch, Fashion-MNIST, batch 64 (s)"] = \
            fn(x, y, 64, lenet_steps, 20) / lenet_steps * per_epoch
    elif section == "resnet20":
        x = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 128).astype(np.int64)
        out["ResNet-20 training step, batch 128 × 3×32×32 (s)"] = median_time(
            fw.train_step(fw.resnet20(), x, y), repeats)
    elif section == "infer":
        x = rng.standard_normal((INFER_BATCH, 3, 224, 224)).astype(np.float32)
        for name, fold in INFER_RUNS:
            out[infer_row(name, fold)] = median_time(fw.inference(name, x, fold), repeats, warmup=1)
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
# the performance issue's targets, cnnlab / torch on the medians (inference: time per batch)
TARGETS: dict[str, dict[str, float]] = {
    "conv": {name: 1.2 for name in CONV_SHAPES},
    "layers": {"ReLU": 1.0},
    "lenet": {"LeNet-5 epoch, Fashion-MNIST, batch 64 (s)": 1.0},
    "resnet20": {"ResNet-20 training step, batch 128 × 3×32×32 (s)": 1.0},
    "infer": {infer_row("resnet18", False): 0.8, infer_row("resnet18", True): 0.8,
              infer_row("vgg16", False): 0.7},
    "memory": {"ResNet-20 step: peak RSS (MiB)": 1.1},
}


def fmt(section: str, value: float) -> str:
    if section == "memory":
        return f"{value:.0f} MiB"
    return f"{value:.2f} s" if value >= 1 else f"{value * 1e3:.2f} ms"


def table(section: str, ours: dict[str, tuple[float, float]],
          theirs: dict[str, tuple[float, float]]) -> str:
    """One markdown table: per benchmark, each framework's median and min over the
    processes, the ratios of the medians and of the mins, and the target's verdict."""
    extra = {"conv": " cnnlab GFLOP/s |", "infer": " cnnlab img/s | torch img/s |"}.get(section, "")
    head = (f"| benchmark | cnnlab median | cnnlab min | torch median | torch min | "
            f"cnnlab / torch (medians) | (mins) |{extra} target |")
    rows = [head, "|" + "---|" * head.count(" |")]
    for name, (o_min, o_med) in ours.items():
        t_min, t_med = theirs[name]
        ratio = o_med / t_med
        cells = [fmt(section, v) for v in (o_med, o_min, t_med, t_min)]
        row = (f"| {name.replace(' (s)', '').replace(' (MiB)', '')} | {' | '.join(cells)} | "
               f"{ratio:.2f} | {o_min / t_min:.2f} |")
        if section == "conv":
            row += f" {conv_flops(CONV_SHAPES[name]) / o_med / 1e9:.1f} |"
        elif section == "infer":
            row += f" {INFER_BATCH / o_med:.1f} | {INFER_BATCH / t_med:.1f} |"
        target = TARGETS[section].get(name)
        if target is None:
            row += " |"
        else:
            verdict = "met" if ratio <= target else f"missed by {ratio / target:.2f}×"
            row += f" ≤ {target}: {verdict} |"
        rows.append(row)
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=3,
                    help="fresh processes per framework and section, taken in turns (default 3)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed repeats inside each process, after warm-up; it reports their median")
    ap.add_argument("--sections", default="conv,layers,lenet,resnet20,infer,memory")
    ap.add_argument("--lenet-steps", type=int, default=300,
                    help="training steps timed for the LeNet-5 epoch (scaled to the epoch)")
    harness.add_options(ap)
    ap.add_argument("--child", choices=["cnnlab", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--section", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if harness.answer_probe(args):
        return
    if args.child:
        print(json.dumps(child(args.child, args.section, args.repeats, args.lenet_steps)))
        return
    sections = args.sections.split(",")
    unknown = [s for s in sections if s not in TARGETS]
    if unknown or args.processes < 1 or args.repeats < 1 or args.lenet_steps < 1:
        ap.error(f"sections are {','.join(TARGETS)} (got {args.sections}); --processes, "
                 f"--repeats and --lenet-steps are at least 1")

    env = harness.child_env(args.unset_openblas_env, without_avx512=args.without_avx512)
    info = harness.describe(__file__, env)
    print(f"cnnlab vs PyTorch {info['torch']} on the CPU\n")
    print(harness.header(info, args.unset_openblas_env,
                         f"each figure: min and median over {harness.processes(args.processes)} per "
                         f"framework, cnnlab's and torch's in turns; each process reports the "
                         f"median of {args.repeats} timed repeats after warm-up"))
    for section in sections:
        def run(framework: str, section: str = section) -> dict:
            return harness.run_json(
                [sys.executable, __file__, "--child", framework, "--section", section,
                 "--repeats", str(args.repeats), "--lenet-steps", str(args.lenet_steps)],
                env, f"{framework}/{section}")

        runs = harness.alternate(run, ("cnnlab", "torch"), args.processes)
        print(f"\n#### {section}\n")
        print(table(section, harness.stats(runs["cnnlab"]), harness.stats(runs["torch"])),
              flush=True)
    print(f"\n{harness.footer()}")


if __name__ == "__main__":
    main()
