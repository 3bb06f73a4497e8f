"""What the benchmarks share: the machine they ran on, and fresh processes in turn.

A ratio against PyTorch says little without the machine: PyTorch's oneDNN and
OpenBLAS both pick their kernels by instruction set, so the same code can be
faster than torch on one CPU and 1.5x slower on another.  :func:`describe`
collects what decides it, in a child process started exactly like the timed
ones (same interpreter, same environment), so the OpenBLAS kernel it reports is
the one the timed processes load:

* the CPU model (``/proc/cpuinfo``: model name, family and model numbers) and
  LLVM's name for it (what numba compiles cnnlab's loops for);
* whether AVX-512 is present, and which of its extensions;
* every BLAS and OpenMP library threadpoolctl finds once NumPy and torch are
  loaded, with OpenBLAS's kernel (its ``architecture``, e.g. SkylakeX, Haswell,
  Zen) and thread count;
* ``torch.backends.cpu.get_cpu_capability()`` (AVX512, AVX2, ...) and torch's
  thread count, cnnlab's thread count;
* ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``: both change OpenBLAS's kernel
  or blocking.  The benchmarks never set them.  With ``unset_openblas=True``
  (the ``--unset-openblas-env`` option) they remove both from the environment of
  their own child processes, and the header says so; the parent's environment
  is never changed.

:func:`alternate` runs the measurements: one fresh process per measurement,
the frameworks taking turns (cnnlab, torch, torch, cnnlab, cnnlab, torch, ...:
the first one swaps each round, so a slow drift of the machine's load falls on
both alike), and :func:`stats` gives each value's minimum and median over the
processes.  Timings on shared machines are noisy: they are reported, never
asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Callable

import numpy as np

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# --without-avx512: each library's own switch that keeps it to AVX2 kernels, so that one
# AVX-512 machine also shows how both frameworks fare without AVX-512 (an emulation on
# this CPU, said so in the header; caches and clock speeds stay this CPU's)
AVX2_ONLY = {
    "OPENBLAS_CORETYPE": "Haswell",      # OpenBLAS's AVX2 kernels
    "ATEN_CPU_CAPABILITY": "avx2",       # torch's vectorised ATen kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",        # torch's oneDNN convolutions
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",   # MKL, where torch uses it
    "NUMBA_CPU_NAME": "haswell",         # the LLVM target numba compiles cnnlab's loops for
}


def numpy_avx512_targets() -> list[str]:
    """NumPy's dispatch targets that use AVX-512 (for NPY_DISABLE_CPU_FEATURES)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__ as targets
    except ImportError:
        return []
    return [t for t in targets if t.startswith("AVX512") or t == "X86_V4"]
AVX512_FLAGS_SHOWN = 6   # the header names this many AVX-512 extensions, then "+N more"


# ------------------------------------------------------------------ environment
def child_env(unset_openblas: bool, environ: Mapping[str, str] = os.environ,
              without_avx512: bool = False) -> dict[str, str]:
    """The environment of every child process: a copy of the parent's (``environ``),
    without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE if ``unset_openblas``; with
    ``without_avx512``, every library kept to AVX2 (:data:`AVX2_ONLY`, and NumPy's
    AVX-512 targets disabled)."""
    env = dict(environ)
    if unset_openblas:
        for name in OPENBLAS_VARS:
            env.pop(name, None)
    if without_avx512:
        env.update(AVX2_ONLY)
        targets = numpy_avx512_targets()
        if targets:
            env["NPY_DISABLE_CPU_FEATURES"] = " ".join(targets)
    return env


def masked_line(environ: Mapping[str, str]) -> str | None:
    """The header's line for --without-avx512 (None when the children run unmasked)."""
    if any(environ.get(k) != v for k, v in AVX2_ONLY.items()):
        return None
    names = [*AVX2_ONLY, "NPY_DISABLE_CPU_FEATURES"]
    shown = ", ".join(f"{n}={environ[n]}" for n in names if n in environ)
    return ("AVX-512 masked in the child processes (--without-avx512): " + shown
            + ". An AVX2 machine emulated on this CPU, not measured on one")


def openblas_env_line(unset_openblas: bool, environ: Mapping[str, str] = os.environ) -> str:
    """One line: what the children's OpenBLAS environment is, and who decided it."""
    present = {n: environ[n] for n in OPENBLAS_VARS if n in environ}
    shown = ", ".join(f"{n}={v}" for n, v in present.items())
    if unset_openblas:
        return ("OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE: unset in the child processes "
                f"(--unset-openblas-env; the parent's environment has {shown or 'neither'})")
    if present:
        return f"{shown}: set in the environment and inherited by the child processes"
    return "OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE: not set (OpenBLAS chose its kernel itself)"


def add_options(ap) -> None:
    """The options every benchmark takes: ``--unset-openblas-env`` and the hidden
    ``--probe`` that :func:`describe` starts the child with."""
    ap.add_argument("--unset-openblas-env", action="store_true",
                    help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the environment "
                         "of the child processes (never set, never removed otherwise)")
    ap.add_argument("--without-avx512", action="store_true",
                    help="keep OpenBLAS, torch (ATen, oneDNN, MKL), NumPy and numba to AVX2 "
                         "in the child processes: a machine without AVX-512, emulated on "
                         "this one (the header says so)")
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)


def answer_probe(args) -> bool:
    """In the ``--probe`` child: print :func:`probe` as JSON and return True."""
    if args.probe:
        print(json.dumps(probe()))
    return args.probe


# ---------------------------------------------------------------------- machine
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def probe() -> dict:
    """The machine as this process sees it (run in a child: see :func:`describe`)."""
    info: dict = {}
    cpu = _cpuinfo()
    info["cpu"] = cpu.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in cpu and "model" in cpu:
        info["cpu"] += f" (family {cpu['cpu family']}, model {cpu['model']})"
    if "flags" in cpu:
        info["avx512"] = [f for f in cpu["flags"].split() if f.startswith("avx512")]
    else:   # no /proc/cpuinfo: NumPy's own detection of the CPU's features
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            features = {}
        info["avx512"] = sorted(k.lower() for k, v in features.items()
                                if v and k.startswith("AVX512") and "_" not in k)
    try:
        import llvmlite.binding as llvm

        info["llvm_cpu"] = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    except Exception:   # numba absent or unusable: cnnlab runs its NumPy twins
        info["llvm_cpu"] = None
    info["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    info["masked"] = masked_line(os.environ)
    info["python"] = platform.python_version()
    info["numpy"] = np.__version__

    import torch

    import cnnlab

    info["cnnlab_threads"] = cnnlab.get_num_threads()
    info["cnnlab_tree"] = os.path.dirname(os.path.dirname(os.path.abspath(cnnlab.__file__)))
    info["torch"] = torch.__version__
    info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    info["torch_threads"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [
            {"api": p.get("internal_api"), "version": p.get("version"),
             "architecture": p.get("architecture"), "threads": p.get("num_threads"),
             "library": os.path.basename(p.get("filepath", ""))}
            for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    return info


def describe(script: str, env: dict[str, str]) -> dict:
    """:func:`probe` in a child process of ``script`` (started with ``--probe``) under
    ``env``, plus what only the parent knows: the date, the commit, the load."""
    info = run_json([sys.executable, script, "--probe"], env, "describing the machine")
    info["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    info["commit"] = _commit(info["cnnlab_tree"])
    return info


def _commit(tree: str) -> str | None:
    """The short commit of the git tree cnnlab was imported from, "+ changes" if the tree
    differs from it; None outside a git tree."""
    def git(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=tree)
    try:
        head = git("rev-parse", "--short", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:
        return None
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def _blas_line(pools: list[dict] | None) -> str:
    if pools is None:
        return "BLAS: threadpoolctl not installed, kernel unknown"
    if not pools:
        return "BLAS: threadpoolctl found no BLAS or OpenMP library"
    parts = []
    for p in pools:
        text = f"{p['api']} {p['version'] or ''}".strip()
        if p["architecture"]:
            text += f", kernel {p['architecture']}"
        parts.append(f"{text}, {p['threads']} threads ({p['library']})")
    return "BLAS/OpenMP (threadpoolctl): " + "; ".join(parts)


def header(info: dict, unset_openblas: bool, method: str) -> str:
    """The lines that open a benchmark's output: the machine, the software, the method."""
    avx = info["avx512"]
    if avx:
        shown = " ".join(avx[:AVX512_FLAGS_SHOWN])
        more = f" +{len(avx) - AVX512_FLAGS_SHOWN} more" if len(avx) > AVX512_FLAGS_SHOWN else ""
        avx_text = f"AVX-512: yes ({shown}{more})"
    else:
        avx_text = "AVX-512: no"
    lines = [
        f"CPU: {info['cpu']}" + (f", LLVM target {info['llvm_cpu']}" if info["llvm_cpu"] else "")
        + f"; {info['cores']} cores usable; {avx_text}",
        f"torch {info['torch']}, CPU capability {info['torch_capability']}, "
        f"{info['torch_threads']} threads; cnnlab {info['cnnlab_threads']} threads"
        + f" from {info['cnnlab_tree']}"
        + (f" at commit {info['commit']}" if info["commit"] else "")
        + f"; numpy {info['numpy']}; Python {info['python']}",
        _blas_line(info["threadpools"]),
        openblas_env_line(unset_openblas) if not info.get("masked") else info["masked"],
        f"{info['date']}; load average {_load():.2f} at the start",
        method,
    ]
    return "\n".join(f"- {line}" for line in lines)


def _load() -> float:
    """The one-minute load average (nan where the system has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def processes(n: int) -> str:
    """'1 fresh process', '3 fresh processes'."""
    return f"{n} fresh process" + ("es" if n != 1 else "")


def footer() -> str:
    """The line that closes a benchmark's output: the load when it ended."""
    return f"load average {_load():.2f} at the end, {time.strftime('%H:%M %Z')}"


# ---------------------------------------------------------------- measurement
def alternate(run: Callable[[str], dict], frameworks: tuple[str, ...], processes: int,
              ) -> dict[str, list[dict]]:
    """``run(framework)`` (one fresh process, returning {benchmark: value}) ``processes``
    times per framework, the frameworks taking turns and the first swapping each round."""
    results: dict[str, list[dict]] = {fw: [] for fw in frameworks}
    for i in range(processes):
        for fw in (frameworks if i % 2 == 0 else frameworks[::-1]):
            results[fw].append(run(fw))
    return results


def stats(runs: list[dict]) -> dict[str, tuple[float, float]]:
    """{benchmark: (min, median)} over the processes' values."""
    return {name: (float(np.min([r[name] for r in runs])),
                   float(np.median([r[name] for r in runs])))
            for name in runs[0]}


def run_json(argv: list[str], env: dict[str, str], what: str) -> dict:
    """Run ``argv`` as a child process; its last line of output is one JSON object."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
