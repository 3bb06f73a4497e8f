"""The kernels' thread pool: order, errors, nesting, BLAS limits, and results that do
not depend on the number of threads."""
import threading
import time

import numpy as np
import pytest

import cnnlab
from cnnlab.kernels import _numba, _threads, conv_gemm
from cnnlab.kernels import activation as act_k
from cnnlab.kernels import conv as conv_k
from cnnlab.kernels import norm as norm_k
from cnnlab.kernels import winograd as winograd_k

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def two_threads():
    before = _threads.get_num_threads()
    _threads.set_num_threads(2)
    yield
    _threads.set_num_threads(before)


def test_parallel_returns_results_in_order_and_calls_each_piece_once(two_threads):
    calls = []
    lock = threading.Lock()

    def piece(i):
        with lock:
            calls.append(i)
        time.sleep(0.001 * (i % 3))
        return i * i

    out = _threads.parallel([lambda i=i: piece(i) for i in range(20)])
    assert out == [i * i for i in range(20)]
    assert sorted(calls) == list(range(20))


def test_parallel_uses_another_thread_and_limits_blas_to_one(two_threads):
    seen = []

    def numpy_blas():     # the BLAS that NumPy (and so cnnlab) calls; scipy may load another
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas" and "numpy" in i["filepath"]]

    blas_before = numpy_blas()
    if not blas_before:
        pytest.skip("NumPy's BLAS is not a library of its own in this installation")

    def piece():
        seen.append((threading.current_thread().name, numpy_blas()))
        time.sleep(0.05)

    _threads.parallel([piece, piece])
    names = {name for name, _ in seen}
    assert len(names) == 2                               # both threads took a piece
    assert all(b == [1] * len(blas_before) for _, b in seen)   # BLAS on one thread inside
    # and restored afterwards
    assert numpy_blas() == blas_before


def test_parallel_waits_for_every_piece_then_raises_the_first_error(two_threads):
    finished = []

    def slow():
        time.sleep(0.1)
        finished.append("slow")

    def bad():
        raise ValueError("piece failed")

    with pytest.raises(ValueError, match="piece failed"):
        _threads.parallel([bad, slow, slow])
    assert finished == ["slow", "slow"]                  # nothing still running on return


def test_nested_parallel_runs_serially_without_deadlock(two_threads):
    def outer(i):
        inner = _threads.parallel([lambda j=j: (i, j, threading.current_thread().name)
                                   for j in range(3)])
        return {name for _, _, name in inner}

    names = _threads.parallel([lambda i=i: outer(i) for i in range(4)])
    assert all(len(s) == 1 for s in names)              # each inner ran on one thread


def test_set_num_threads_validates():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="positive integer"):
            _threads.set_num_threads(bad)
    assert cnnlab.get_num_threads() == _threads.get_num_threads()


def test_split_and_chunks_cover_the_range():
    assert _threads.chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert _threads.split(5, 10) == [(0, 5)]                      # too small to split
    spans = _threads.split(7, 1 << 20)
    assert spans[0][0] == 0 and spans[-1][1] == 7
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_map_chunks_calls_every_chunk_and_sums_in_order(two_threads):
    assert _threads.map_chunks(10, 4, lambda a, b: (a, b)) == [(0, 4), (4, 8), (8, 10)]
    assert _threads.sum_in_order([1.0, 1e16, -1e16]) == 0.0     # (1 + 1e16) - 1e16, not 1


@pytest.fixture
def split_small(monkeypatch):
    """Split even small work, so the tests exercise the pieces."""
    monkeypatch.setattr(_threads, "MIN_PARALLEL_ELEMENTS", 1000)
    monkeypatch.setattr(conv_gemm, "SPLIT_BYTES", 0)
    monkeypatch.setattr(conv_gemm, "CHUNK_BYTES", 64 << 10)
    monkeypatch.setattr(winograd_k, "CHUNK_BYTES", 64 << 10)


@pytest.mark.parametrize("layout", ["cols", "winograd"])
def test_conv_results_do_not_depend_on_the_thread_count(layout, split_small):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32, 16, 16)).astype(np.float32)   # several batch chunks
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    dy = rng.standard_normal((16, 32, 16, 16)).astype(np.float32)
    before = _threads.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            _threads.set_num_threads(n)
            y, cache = conv_k.conv2d_forward(x, w, b, (1, 1), (1, 1, 1, 1), layout=layout)
            assert cache.chunk < 16
            results.append((y.copy(), *conv_k.conv2d_backward(dy, cache)))
    finally:
        _threads.set_num_threads(before)
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


def test_batch_norm_and_relu_do_not_depend_on_the_thread_count(split_small, two_threads):
    assert len(_threads.split(24, 64 * 24 * 16 * 16)) == 2
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 24, 16, 16)).astype(np.float32)   # above the split size
    dy = rng.standard_normal(x.shape).astype(np.float32)
    g, b = rng.standard_normal(24).astype(np.float32), rng.standard_normal(24).astype(np.float32)
    before = _threads.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            _threads.set_num_threads(n)
            y, cache = norm_k.batch_norm_forward(x, np.zeros(24, np.float32),
                                                 np.ones(24, np.float32), g, b, True, 0.1, 1e-5)
            r = act_k.relu_forward(y)
            outs.append((y, r, act_k.relu_backward(dy, r), *norm_k.batch_norm_backward(dy, cache)))
    finally:
        _threads.set_num_threads(before)
    for a, c in zip(*outs):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool_split_over_threads_equals_one_thread(k, s, p, split_small):
    from cnnlab.kernels import pool as pool_k
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, size=(16, 8, 32, 32)).astype(np.float32)   # ties everywhere
    x[3, 2, 5, 7] = np.nan
    dy = rng.standard_normal(pool_k.max_pool2d_forward(x, (k, k), (s, s), (p, p))[0].shape)
    before = _threads.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            _threads.set_num_threads(n)
            y, cache = pool_k.max_pool2d_forward(x, (k, k), (s, s), (p, p))
            outs.append((y, cache.argmax, pool_k.max_pool2d_backward(dy.astype(np.float32), cache)))
    finally:
        _threads.set_num_threads(before)
    for a, c in zip(*outs):
        np.testing.assert_array_equal(a, c)
    assert np.isnan(outs[0][0]).any()


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_split_by_input_maps_matches_torch_and_one_thread(multiplier, split_small):
    torch = pytest.importorskip("torch")
    if not _numba.AVAILABLE:
        pytest.skip("the split depthwise loops are compiled ones (without numba: im2col)")
    rng = np.random.default_rng(5)
    C = 6
    x = rng.standard_normal((3, C, 9, 8))
    w = rng.standard_normal((C * multiplier, 1, 3, 3))
    dy = rng.standard_normal((3, C * multiplier, 5, 4))
    before = _threads.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            _threads.set_num_threads(n)
            y, cache = conv_k.conv2d_forward(x, w, None, (2, 2), (1, 1, 1, 1), (1, 1), C)
            assert cache.layout == "depthwise"
            assert len(_threads.split(C, y.size * 9)) == n          # split with two threads
            outs.append((y, *conv_k.conv2d_backward(dy, cache)[:2]))
    finally:
        _threads.set_num_threads(before)
    for a, c in zip(*outs):
        np.testing.assert_array_equal(a, c)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, stride=2, padding=1, groups=C)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(outs[0][0], yt.detach().numpy(), atol=1e-12, rtol=0)
    np.testing.assert_allclose(outs[0][1], xt.grad.numpy(), atol=1e-12, rtol=0)
    np.testing.assert_allclose(outs[0][2], wt.grad.numpy(), atol=1e-12, rtol=0)


def test_an_interrupted_wait_still_waits_for_the_helpers(two_threads, monkeypatch):
    # a Ctrl-C while the caller waits for a helper: the call waits for it anyway and
    # then raises, so the helper's late report cannot end the next call's wait early
    real_wait = _threads._Worker.wait
    state = {"interrupted": False}

    def wait_once_interrupted(self):
        if not state["interrupted"]:
            state["interrupted"] = True
            raise KeyboardInterrupt
        real_wait(self)

    monkeypatch.setattr(_threads._Worker, "wait", wait_once_interrupted)

    def slow(i):
        time.sleep(0.05)
        return i

    with pytest.raises(KeyboardInterrupt):
        _threads.parallel([lambda i=i: slow(i) for i in range(4)])
    monkeypatch.setattr(_threads._Worker, "wait", real_wait)
    for _ in range(3):
        assert _threads.parallel([lambda i=i: slow(i) for i in range(4)]) == [0, 1, 2, 3]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_fresh_kernel_threads(two_threads):
    import os
    _threads.parallel([lambda: time.sleep(0.01)] * 2)           # workers exist in the parent
    pid = os.fork()
    if pid == 0:                                                 # child: must not hang
        try:
            ok = _threads.parallel([lambda i=i: i for i in range(4)]) == [0, 1, 2, 3]
        finally:
            os._exit(0 if ok else 1)
    deadline = time.time() + 20
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WEXITSTATUS(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child hung in parallel()")


def test_set_num_threads_inside_a_piece_is_refused(two_threads):
    with pytest.raises(RuntimeError, match="inside a parallel piece"):
        _threads.parallel([lambda: _threads.set_num_threads(1), lambda: None])


@pytest.mark.parametrize("value,ok", [("3", True), ("0", False), ("two", False), ("-1", False)])
def test_the_environment_variable_is_checked(value, ok):
    import subprocess
    import sys
    code = "import cnnlab; print(cnnlab.get_num_threads())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "CNNLAB_NUM_THREADS": value})
    if ok:
        assert proc.returncode == 0 and proc.stdout.strip() == value
    else:
        assert proc.returncode != 0
        assert "CNNLAB_NUM_THREADS must be a positive integer" in proc.stderr
