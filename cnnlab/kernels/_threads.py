"""Run independent pieces of one kernel on all cores, with BLAS kept to one thread each.

Why this exists (measured on the 2-core machines, ResNet-20's 3x3 convolutions,
forward + backward, batch 128): im2col, col2im and the compiled loops are serial,
and OpenBLAS splits each skinny GEMM (16 x 144 by 144 x 131072) over the cores
with little gain.  Splitting the *batch* into cache-sized chunks and giving
each core whole chunks -- im2col, GEMM and col2im of one chunk on one core,
with OpenBLAS limited to one thread -- took 16@32x32 from 69 to 36 ms, 32@16x16
from 48 to 30 ms and 64@8x8 from 33 to 22 ms.

The rules that keep results reproducible and safe:

* The caller decides the pieces from the shapes alone, never from the number of
  threads, so the numbers computed (and their rounding) are the same with 1
  thread or 8; only who computes each piece changes.
* Each piece writes its own slice of an output, or returns a partial result
  that the caller adds up in a fixed order.
* BLAS runs on one thread per piece, even with one thread in all: OpenBLAS's
  multithreaded GEMM rounds differently from its single-threaded one, and its
  idle workers spin and steal cores from the pieces.
* A piece that itself calls :func:`parallel` runs its pieces serially (no
  nested pools), and :func:`parallel` returns only after every piece has
  finished, even when one raised (its first exception is then re-raised).

The pool uses Python threads; the pieces spend their time in NumPy's BLAS or in
numba code compiled with ``nogil=True``, both of which release the GIL.  BLAS
is limited with ``threadpoolctl`` (without it everything runs serially, because
two BLAS calls that each start their own threads would fight for the cores).

``CNNLAB_NUM_THREADS`` (or :func:`set_num_threads`) sets the number of threads;
the default is the number of cores this process may run on.
"""
from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from typing import TypeVar

T = TypeVar("T")

try:
    import threadpoolctl
except ImportError:   # optional: without it the pieces run one after another
    threadpoolctl = None


def _default_threads() -> int:
    env = os.environ.get("CNNLAB_NUM_THREADS")
    if env:
        n = int(env) if env.strip().isdigit() else 0
        if n < 1:
            raise ValueError(f"CNNLAB_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()
_workers: list[_Worker] = []
_pool_lock = threading.Lock()      # guards _workers and _num_threads
_busy = threading.Lock()           # held while one parallel() call uses the workers
_blas_setters: list | None = None   # (get, set) per BLAS library, found on first use
_local = threading.local()


def get_num_threads() -> int:
    """Threads the kernels split their work over (as ``torch.get_num_threads``)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the kernels' parallel pieces (as ``torch.set_num_threads``).

    With ``n = 1`` every kernel runs on the calling thread; its GEMMs still run with
    BLAS on one thread, so results do not depend on ``n``.  Not callable from
    inside a piece."""
    global _num_threads, _workers
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    if getattr(_local, "inside", False):
        raise RuntimeError("set_num_threads cannot be called from inside a parallel piece")
    with _busy, _pool_lock:
        if n != _num_threads:
            for w in _workers:
                w.stop()
            _workers = []
        _num_threads = n


def _blas_libraries() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    """(get, set) of the thread count of every BLAS library loaded in this process,
    found once with threadpoolctl (that takes milliseconds).

    For OpenBLAS with its own threads these are the C functions themselves, called
    through ctypes (a microsecond): threadpoolctl's wrappers look the symbol up on
    every call, and they only obey the first Python thread that ever set a limit,
    while the kernels may be called from any thread."""
    global _blas_setters
    if _blas_setters is None:
        found = []
        for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers:
            pair = None
            if lib.internal_api == "openblas" and getattr(lib, "threading_layer", "") != "openmp":
                for pre in ("", "scipy_"):
                    for suf in ("", "64_", "_64"):
                        get = getattr(lib.dynlib, f"{pre}openblas_get_num_threads{suf}", None)
                        put = getattr(lib.dynlib, f"{pre}openblas_set_num_threads{suf}", None)
                        if get is not None and put is not None and pair is None:
                            get.restype = ctypes.c_int
                            put.argtypes, put.restype = [ctypes.c_int], None
                            pair = (get, put)
            found.append(pair or (lib.get_num_threads, lib.set_num_threads))
        _blas_setters = found
    return _blas_setters


class _BlasOneThread:
    """``with blas_one_thread:`` runs BLAS on one thread, then restores its count.

    Re-entrant and shared by all threads (BLAS's thread count is process-wide): the
    first to enter saves and limits, the last to leave restores.  Why every cnnlab
    GEMM runs inside it: after a GEMM on several threads, OpenBLAS's workers spin
    for about 0.1 s waiting for more, and take a core from the kernels' own
    threads (ResNet-18 inference: 0.47 s with one FC layer per pass on OpenBLAS's
    threads, 0.36 s with none)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._depth = 0
        self._saved: list[int] = []
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if threadpoolctl is None:
            return
        with self._lock:
            if self._depth == 0:
                libs = _blas_libraries()       # may raise: count the entry only after it
                self._saved = [get() for get, _ in libs]
                for _, put in libs:
                    put(1)
            self._depth += 1

    def __exit__(self, *exc) -> None:
        if threadpoolctl is None:
            return
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for (_, put), n in zip(_blas_libraries(), self._saved):
                    put(n)


blas_one_thread = _BlasOneThread()


class _Worker:
    """One kernel thread, handed work through two locks (a futex each way).

    Measured here, a ``parallel()`` of two empty pieces takes about 110 us with these
    locks and 200-250 us with a ThreadPoolExecutor's futures; most of what is left
    is waking an idle core.  Pieces much shorter than that are not worth handing
    over (see MIN_PARALLEL_ELEMENTS and conv_gemm's SPLIT_BYTES)."""

    def __init__(self, index: int) -> None:
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._task: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name=f"cnnlab-kernel-{index}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _local.inside = True
        while True:
            self._go.acquire()
            task, self._task = self._task, None
            if task is None:
                return
            try:
                task()
            finally:
                # drop the task before reporting: an idle worker must not keep the last
                # call's pieces (and the arrays they hold) alive
                task = None
                self._done.release()

    def start(self, task: Callable[[], None]) -> None:
        self._task = task
        self._go.release()

    def wait(self) -> None:
        self._done.acquire()

    def stop(self) -> None:
        self._task = None
        self._go.release()
        self._thread.join()


def _get_workers(n: int) -> list[_Worker]:
    global _workers
    with _pool_lock:
        while len(_workers) < n:
            _workers.append(_Worker(len(_workers)))
        return _workers[:n]


def parallel(pieces: Sequence[Callable[[], T]], blas: bool = True) -> list[T]:
    """Call every piece once, spread over the threads; return their results in order.

    With ``blas`` (pieces that multiply matrices) the pieces always run with BLAS on
    one thread (see :data:`blas_one_thread`), even a single piece or with one thread
    in all (then serially, in order), so every GEMM is computed the same way whatever
    the thread count.  Without threadpoolctl, or when called from inside a piece,
    the pieces run serially on this thread."""
    if threadpoolctl is None or getattr(_local, "inside", False):
        return [p() for p in pieces]
    n = min(_num_threads, len(pieces))
    threaded = n > 1 and _busy.acquire(blocking=False)    # else one thread, or the workers are taken
    try:
        with blas_one_thread if blas else nullcontext():
            return _run_on_workers(pieces, n) if threaded else [p() for p in pieces]
    finally:
        if threaded:
            _busy.release()


def _run_on_workers(pieces: Sequence[Callable[[], T]], n: int) -> list[T]:
    results: list = [None] * len(pieces)
    errors: list[BaseException] = []
    order = iter(range(len(pieces)))
    take = threading.Lock()

    def drain() -> None:
        inside = getattr(_local, "inside", False)
        _local.inside = True
        try:
            while True:
                with take:
                    i = next(order, None)
                if i is None:
                    return
                try:
                    results[i] = pieces[i]()
                except BaseException as e:   # keep draining: nothing may still run on return
                    errors.append(e)
        finally:
            _local.inside = inside

    helpers = _get_workers(n - 1)
    for h in helpers:
        h.start(drain)
    interrupted: BaseException | None = None
    try:
        drain()
    except BaseException as e:          # e.g. Ctrl-C between two pieces: the helpers go on
        interrupted = e
    for h in helpers:                   # every helper must report before we return, or its
        while True:                     # late report would end the next call's wait early
            try:
                h.wait()
                break
            except BaseException as e:  # a Ctrl-C during the wait: keep waiting, raise after
                interrupted = interrupted or e
    if interrupted is not None:
        raise interrupted
    if errors:
        raise errors[0]
    return results


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's kernel threads: start afresh."""
    global _workers, _pool_lock, _busy, _local
    _workers = []
    _pool_lock = threading.Lock()
    _busy = threading.Lock()
    _local = threading.local()
    blas_one_thread._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# Below this many elements an elementwise or per-channel kernel runs as one piece:
# handing a piece to another thread costs about 0.1 ms, and a LeNet-5 step (ReLU
# and pooling on 300k values) measured slower split.
MIN_PARALLEL_ELEMENTS = 1 << 20


def split(total: int, size: int) -> list[tuple[int, int]]:
    """Cut range(total) into contiguous spans, one per thread when the work (``size``
    elements) is large enough, else one span.  Only for pieces whose results do not
    depend on where the cuts fall (independent channels, elementwise ops)."""
    return spans(total, min(_num_threads, total) if size >= MIN_PARALLEL_ELEMENTS else 1)


def spans(total: int, n: int) -> list[tuple[int, int]]:
    """range(total) cut into max(n, 1) contiguous spans of near-equal length."""
    n = max(n, 1)
    return [(total * i // n, total * (i + 1) // n) for i in range(n)]


def chunks(total: int, per_chunk: int) -> list[tuple[int, int]]:
    """[(0, per_chunk), (per_chunk, 2 per_chunk), ..., (.., total)]."""
    per_chunk = max(1, per_chunk)
    return [(a, min(total, a + per_chunk)) for a in range(0, total, per_chunk)]


def map_chunks(total: int, per_chunk: int, fn: Callable[[int, int], T], blas: bool = True) -> list[T]:
    """``[fn(a, b) for (a, b) in chunks(total, per_chunk)]``, the calls spread over the threads.

    The chunks follow from ``total`` and ``per_chunk`` alone, so each result is
    computed the same way whatever the thread count; add partial results up with
    :func:`sum_in_order` to keep the sum bit-identical too."""
    return parallel([partial(fn, a, b) for a, b in chunks(total, per_chunk)], blas=blas)


def sum_in_order(parts: Sequence[T]) -> T:
    """parts[0] + parts[1] + ... in this order (a fixed rounding)."""
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


__all__ = ["blas_one_thread", "chunks", "get_num_threads", "map_chunks", "parallel",
           "set_num_threads", "spans", "split", "sum_in_order"]
