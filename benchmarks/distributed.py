"""Data-parallel training on MPI: measured throughput here, projected scaling on a cluster.

    python benchmarks/distributed.py [--lenet-steps 40] [--resnet-steps 4]

Part 1 measures, on this machine, training throughput (images per second) of

* a LeNet-5 epoch (60,000 28x28 images, global batch 64; timed on
  ``--lenet-steps`` steps after a warm-up and scaled to the epoch) and
* a ResNet-20 step (global batch 128 of 3x32x32 images),

run two ways: one process using 2 threads, and ``mpiexec -n 2`` with 1 thread
per rank, each rank taking half of every global batch and the gradients summed
by cnnlab's own bucketed ``Allreduce`` (:mod:`cnnlab.training.distributed.buckets`).
It also measures the Allreduce time and bytes per step and the fraction of the
step the Allreduce takes (the time includes waiting for the slower rank, so on
an oversubscribed or loaded machine it holds load imbalance too).  The images
are random (throughput does not depend on their values), so no dataset is needed.

Part 2 projects scaling to N nodes from measured inputs:

* compute time per image: ResNet-20's measured above (one process, 2 threads);
  ResNet-18 and VGG-16 (224x224) are too slow to time here in a short run, so
  theirs is ResNet-20's scaled by their multiply-accumulates per image
  (:func:`cnnlab.summary.summary`), which assumes the same achieved MAC rate;
* gradient bytes per step: the float32 parameters of each model, counted;

and assumed ones: link bandwidths of 10, 25 and 100 Gb/s at line rate,
``--latency-us`` per message, a node as fast as this machine (or
``--node-speedup`` times faster), and no overlap of
the reduction with the backward pass (cnnlab reduces after it).  A ring
Allreduce of ``b`` bytes over N nodes takes 2(N-1)/N * b / bandwidth +
2(N-1) * latency.  At a per-node batch ``--node-batch`` the step takes
compute + allreduce, and the scaling efficiency is compute / (compute +
allreduce).  A global batch B spread over N nodes keeps an efficiency of at
least 50% only while each node's compute, B/N images, takes at least as long as
the Allreduce; below B_min = N * allreduce / (time per image) adding nodes buys
less than half of their compute: the model stops scaling there.  The last
table gives the compute speed-up (a faster CPU, a GPU) at which the largest N
becomes communication-bound.

Timings on a shared machine are noisy: they are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import harness
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LENET_EPOCH = 60_000
WORKLOADS = {   # name: (model builder, input shape, global batch)
    "lenet5": ("lenet5", (1, 28, 28), 64),
    "resnet20": ("resnet20", (3, 32, 32), 128),
}
PROJECTED = {"ResNet-20": ("resnet20", (3, 32, 32)), "ResNet-18": ("resnet18", (3, 224, 224)),
             "VGG-16": ("vgg16", (3, 224, 224))}


# ------------------------------------------------------------------ worker
def measure(name: str, steps: int, warmup: int, comm) -> dict:
    """Time ``steps`` training steps of workload ``name`` on this rank's share."""
    import cnnlab
    import cnnlab.models as models
    import cnnlab.nn.functional as F
    from cnnlab.optim import SGD
    from cnnlab.training.distributed.buckets import GradientBuckets
    from cnnlab.training.distributed.data import share_bounds

    builder, shape, batch = WORKLOADS[name]
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    cnnlab.manual_seed(0)
    model = getattr(models, builder)()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    buckets = GradientBuckets([p for p in model.parameters() if p.requires_grad], 16 * 2 ** 20,
                              comm) if comm is not None else None
    rng = np.random.default_rng(rank)
    lo, hi = share_bounds(batch, rank, size)
    x = rng.standard_normal((hi - lo, *shape)).astype(np.float32)
    y = rng.integers(0, 10, hi - lo)
    reduce_s = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if comm is not None:
                comm.Barrier()
            t0, reduce_s = time.perf_counter(), 0.0
        opt.zero_grad()
        F.cross_entropy(model(cnnlab.Tensor(x)), y).backward()
        if buckets is not None:
            t = time.perf_counter()
            buckets.allreduce(hi - lo)
            reduce_s += time.perf_counter() - t
        opt.step()
    step_s = (time.perf_counter() - t0) / steps
    return {"workload": name, "ranks": size, "step_s": step_s, "images_per_s": batch / step_s,
            "allreduce_s": reduce_s / steps, "bytes": buckets.nbytes if buckets else 0}


def worker(args: argparse.Namespace) -> None:
    comm = None
    if args.worker == "mpi":
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rows = [measure("lenet5", args.lenet_steps, 3, comm), measure("resnet20", args.resnet_steps, 1, comm)]
    if comm is not None:   # the slowest rank sets the pace
        for row in rows:
            for key in ("step_s", "allreduce_s"):
                row[key] = comm.allreduce(row[key], op=MPI.MAX)
            row["images_per_s"] = WORKLOADS[row["workload"]][2] / row["step_s"]
    if comm is None or comm.Get_rank() == 0:
        print(json.dumps(rows), flush=True)


def launch(args: argparse.Namespace, ranks: int) -> list[dict]:
    threads = str(max(1, (os.cpu_count() or 2) // ranks))
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**harness.child_env(args.unset_openblas_env, without_avx512=args.without_avx512),
           "PYTHONPATH": path, "CNNLAB_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    cmd = [sys.executable, __file__, "--lenet-steps", str(args.lenet_steps),
           "--resnet-steps", str(args.resnet_steps)]
    if ranks == 1:
        cmd += ["--worker", "local"]
    else:
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            sys.exit("benchmarks/distributed.py: no mpiexec on PATH (pip install -e '.[distributed]')")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        cmd = [mpiexec, "--oversubscribe", "-n", str(ranks), "-x", "PYTHONPATH", *cmd, "--worker", "mpi"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    found = [line for line in out.stdout.splitlines() if line.startswith("[{")]
    if out.returncode != 0 or not found:
        sys.exit(f"benchmarks/distributed.py: {' '.join(cmd[:4])}... failed:\n"
                 f"{out.stdout[-1000:]}\n{out.stderr[-2000:]}")
    rows = json.loads(found[-1])
    for row in rows:
        row["threads"] = int(threads)
    return rows


# -------------------------------------------------------------- projection
def model_inputs(name: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """(multiply-accumulates per image, float32 gradient bytes) of a zoo model."""
    import cnnlab.models as models
    from cnnlab.summary import summary

    model = getattr(models, name)()
    grad_bytes = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    return summary(model, shape, verbose=False).total_macs, grad_bytes


def ring_allreduce_s(nbytes: float, nodes: int, gbps: float, latency_s: float) -> float:
    return 2 * (nodes - 1) / nodes * nbytes * 8 / (gbps * 1e9) + 2 * (nodes - 1) * latency_s


def projection(image_s: float, args: argparse.Namespace, inputs: dict[str, tuple[int, int]]
               ) -> list[str]:
    """The projected-scaling tables, given the first model's measured compute time per
    image and {model: (MACs per image, gradient bytes)} (:func:`model_inputs`)."""
    base_macs = next(iter(inputs.values()))[0]
    nodes, links = args.nodes, args.links
    lat = args.latency_us * 1e-6
    lines = [f"Projected scaling efficiency, weak scaling at {args.node_batch} images per node "
             f"(global batch {args.node_batch} x N):", "",
             "| model | MACs/image | gradient MB/step | compute s/image | link | "
             + " | ".join(f"N={n}" for n in nodes) + " |",
             "|---|---|---|---|---|" + "---|" * len(nodes)]
    stops = ["", "Global batch below which N nodes run at under 50% efficiency "
                 "(N x allreduce / compute per image):", "",
             "| model | link | " + " | ".join(f"N={n}" for n in nodes) + " |",
             "|---|---|" + "---|" * len(nodes)]
    faster = ["", f"How many times faster than the nodes assumed a node must compute for N={nodes[-1]} "
                  f"at {args.node_batch} images per node to fall to 50% efficiency:", "",
              "| model | " + " | ".join(f"{g:g} Gb/s" for g in links) + " |",
              "|---|" + "---|" * len(links)]
    for label, (macs, nbytes) in inputs.items():
        t_img = image_s * macs / base_macs / args.node_speedup
        for gbps in links:
            eff, bmin = [], []
            for n in nodes:
                ar = ring_allreduce_s(nbytes, n, gbps, lat)
                compute = args.node_batch * t_img
                eff.append(f"{compute / (compute + ar):.0%}")
                bmin.append(f"{max(n, int(np.ceil(n * ar / t_img))):,}")
            lines.append(f"| {label} | {macs / 1e6:,.0f} M | {nbytes / 1e6:,.1f} | {t_img:.4f} | "
                         f"{gbps:g} Gb/s | " + " | ".join(eff) + " |")
            stops.append(f"| {label} | {gbps:g} Gb/s | " + " | ".join(bmin) + " |")
        speedups = [args.node_batch * t_img / ring_allreduce_s(nbytes, nodes[-1], g, lat) for g in links]
        faster.append(f"| {label} | " + " | ".join(f"{v:,.0f}x" if v >= 10 else f"{v:.2g}x"
                                                   for v in speedups) + " |")
    return lines + stops + faster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lenet-steps", type=int, default=40, help="timed LeNet-5 steps (default 40)")
    ap.add_argument("--resnet-steps", type=int, default=4, help="timed ResNet-20 steps (default 4)")
    ap.add_argument("--nodes", type=lambda s: [int(v) for v in s.split(",")],
                    default=[2, 4, 8, 16, 32, 64], help="node counts projected (default 2,...,64)")
    ap.add_argument("--links", type=lambda s: [float(v) for v in s.split(",")], default=[10, 25, 100],
                    help="link bandwidths in Gb/s (default 10,25,100)")
    ap.add_argument("--latency-us", type=float, default=20.0,
                    help="assumed latency per message of the ring, microseconds (default 20)")
    ap.add_argument("--node-batch", type=int, default=32, help="images per node per step (default 32)")
    ap.add_argument("--node-speedup", type=float, default=1.0,
                    help="assume nodes that compute this many times faster than this machine (default 1)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed per launch")
    harness.add_options(ap)
    ap.add_argument("--worker", choices=["local", "mpi"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if harness.answer_probe(args):
        return
    if args.worker:
        worker(args)
        return
    if min(args.lenet_steps, args.resnet_steps, args.node_batch) < 1 or args.node_speedup <= 0:
        ap.error("--lenet-steps, --resnet-steps and --node-batch are at least 1, --node-speedup > 0")

    info = harness.describe(__file__, harness.child_env(args.unset_openblas_env,
                                                        without_avx512=args.without_avx512))
    rows = launch(args, 1) + launch(args, 2)
    print("Data-parallel training on MPI: 1 process x 2 threads against 2 ranks x 1 thread\n")
    print(harness.header(info, args.unset_openblas_env,
                         f"LeNet-5: global batch 64, timed on {args.lenet_steps} steps after 3 warm-up "
                         f"(an epoch of {LENET_EPOCH:,} images scaled from them); ResNet-20: global "
                         f"batch 128, timed on {args.resnet_steps} steps after 1; one fresh launch each"))
    print()
    print("| workload | processes x threads | images/s | step ms | allreduce ms/step | "
          "allreduce KiB/step | allreduce share |")
    print("|---|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["workload"], r["ranks"])):
        label = ("LeNet-5 epoch" if row["workload"] == "lenet5" else "ResNet-20 step")
        if row["workload"] == "lenet5":
            label += f" ({LENET_EPOCH / row['images_per_s']:.0f} s)"
        share = f"{row['allreduce_s'] / row['step_s']:.0%}" if row["ranks"] > 1 else "-"
        ar = f"{row['allreduce_s'] * 1e3:.1f}" if row["ranks"] > 1 else "-"
        kib = f"{row['bytes'] / 2 ** 10:,.0f}" if row["ranks"] > 1 else "-"
        print(f"| {label} | {row['ranks']} x {row['threads']} | {row['images_per_s']:,.0f} | "
              f"{row['step_s'] * 1e3:.0f} | {ar} | {kib} | {share} |")
    print()
    single = next(r for r in rows if r["workload"] == "resnet20" and r["ranks"] == 1)
    inputs = {label: model_inputs(name, shape) for label, (name, shape) in PROJECTED.items()}
    for line in projection(single["step_s"] / WORKLOADS["resnet20"][2], args, inputs):
        print(line)
    print()
    print(harness.footer())


if __name__ == "__main__":
    main()
