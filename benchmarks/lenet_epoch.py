"""LeNet-5 on Fashion-MNIST: seconds per training epoch, cnnlab against PyTorch.

Same network (conv 5x5x6 pad 2, max-pool 2, conv 5x5x16, max-pool 2, FC 120,
FC 84, FC 10, ReLU), same batch size, SGD with momentum, float32, both using
every core.  Each measurement runs in a fresh process of its own (OpenBLAS's
spinning threads from one framework would otherwise slow the other), and the
processes alternate between the two frameworks; the output gives the minimum
and the median over them, after the machine (CPU model, AVX-512, OpenBLAS's
kernel, torch's CPU capability: see ``harness.py``).  Each framework trains on
the same first ``--steps`` batches of the shuffled training set; the time is
scaled to a full epoch.  A timing is a ratio measured in one run, never a test.

    python benchmarks/lenet_epoch.py [--steps 300] [--batch-size 64] [--repeats 3]
                                     [--unset-openblas-env]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import harness
import numpy as np


def cnnlab_time(x: np.ndarray, y: np.ndarray, batch: int, steps: int, warmup: int) -> float:
    import cnnlab
    import cnnlab.nn.functional as F
    from cnnlab.models import lenet5
    from cnnlab.optim import SGD

    cnnlab.tune_memory()   # as the cnnlab command does (glibc keeps freed memory for reuse)
    cnnlab.manual_seed(0)
    model = lenet5()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(i: int) -> None:
        xb = cnnlab.Tensor(x[i * batch:(i + 1) * batch])
        opt.zero_grad()
        F.cross_entropy(model(xb), y[i * batch:(i + 1) * batch]).backward()
        opt.step()

    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return time.perf_counter() - t0


def torch_time(x: np.ndarray, y: np.ndarray, batch: int, steps: int, warmup: int) -> float:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step(i: int) -> None:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[i * batch:(i + 1) * batch]),
                                    yt[i * batch:(i + 1) * batch]).backward()
        opt.step()

    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return time.perf_counter() - t0


def load_batches(steps: int, warmup: int, batch: int) -> tuple[np.ndarray, np.ndarray, int]:
    from cnnlab.data import DataLoader, Normalize, dataset_stats, load_fashion_mnist

    train = load_fashion_mnist("train")
    mean, std = dataset_stats("fashion-mnist")
    order = DataLoader(train, batch, shuffle=True, seed=0).order(0)
    n = (steps + warmup) * batch
    x = Normalize([mean], [std])(train.x[order[:n]]).astype(np.float32)
    y = train.y[order[:n]].astype(np.int64)
    return x, y, -(-len(train) // batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3,
                    help="fresh processes per framework, taken in turns (default 3)")
    harness.add_options(ap)
    ap.add_argument("--only", choices=["cnnlab", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if harness.answer_probe(args):
        return
    if args.only:   # child process: one measurement, printed as JSON
        if args.only == "torch":
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
        x, y, per_epoch = load_batches(args.steps, args.warmup, args.batch_size)
        fn = cnnlab_time if args.only == "cnnlab" else torch_time
        secs = fn(x, y, args.batch_size, args.steps, args.warmup)
        print(json.dumps({"epoch_s": secs / args.steps * per_epoch}))
        return
    if min(args.steps, args.batch_size, args.repeats) < 1 or args.warmup < 0:
        ap.error("--steps, --batch-size and --repeats are at least 1, --warmup at least 0")

    env = harness.child_env(args.unset_openblas_env, without_avx512=args.without_avx512)
    info = harness.describe(__file__, env)

    def run(name: str) -> dict:
        return harness.run_json(
            [sys.executable, __file__, "--only", name, "--steps", str(args.steps),
             "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)],
            env, f"the {name} run")

    runs = harness.alternate(run, ("cnnlab", "torch"), args.repeats)
    o_min, o_med = harness.stats(runs["cnnlab"])["epoch_s"]
    t_min, t_med = harness.stats(runs["torch"])["epoch_s"]
    print(f"LeNet-5, Fashion-MNIST, batch {args.batch_size}, SGD momentum, float32\n")
    print(harness.header(info, args.unset_openblas_env,
                         f"timed on {args.steps} steps after {args.warmup} warm-up, scaled to an "
                         f"epoch; min and median of {harness.processes(args.repeats)} per "
                         f"framework, cnnlab's and torch's in turns"))
    print()
    print("| framework | s/epoch, median | s/epoch, min | ratio to torch (medians) | (mins) |")
    print("|---|---|---|---|---|")
    print(f"| cnnlab | {o_med:.2f} | {o_min:.2f} | {o_med / t_med:.2f} | {o_min / t_min:.2f} |")
    print(f"| PyTorch {info['torch']} | {t_med:.2f} | {t_min:.2f} | 1.00 | 1.00 |")
    print(f"\n{harness.footer()}")


if __name__ == "__main__":
    main()
