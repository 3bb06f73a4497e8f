"""Hostile and corrupt files against every reader: truncations, bit flips, pickles,
wrong shapes, huge headers, bombs, FIFOs and devices.  Each input either loads or
is refused with the reader's documented error, within a time and memory bound.

The fuzzing is Hypothesis with a fixed seed and example budget, so CI is
deterministic; the whole module takes a few seconds.
"""
import io
import json
import os
import pickle
import shlex
import signal
import struct
import tracemalloc
import zipfile
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from tally import count

import cnnlab
from cnnlab.data.idx import IDXFormatError, read_idx, write_idx
from cnnlab.interop import load_weights
from cnnlab.interop.pth import TorchCheckpointError, load_pth
from cnnlab.interop.safetensors import SafetensorsError, load_safetensors, save_safetensors
from cnnlab.serialization import CheckpointError, load_arrays, save_arrays
from cnnlab.training.builders import load_for_evaluation
from cnnlab.training.checkpoint import save_model

MEMORY_BOUND = 32 << 20      # no small input may make a reader allocate more than this
TIME_BOUND = 10              # seconds per input: a hang fails the test instead of stalling CI
FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@contextmanager
def bounded():
    """Fail on a hang (SIGALRM) or on more than MEMORY_BOUND bytes allocated."""
    def hang(*_):
        raise TimeoutError(f"a reader ran past {TIME_BOUND} s")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(TIME_BOUND)
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        assert peak < MEMORY_BOUND, f"allocated {peak} bytes"
    finally:
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def loads_or_refuses(reader, path, errors):
    with bounded():
        try:
            reader(path)
        except errors:
            count("fuzzed file", "refused")
        else:
            count("fuzzed file", "loaded")


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    d = tmp_path_factory.mktemp("orig")
    cnnlab.manual_seed(0)
    model = cnnlab.models.get_model("digits_cnn")
    spec = {"name": "digits_cnn", "kwargs": {"num_classes": 10, "in_channels": 1, "input_size": 8}}
    save_model(d / "model.npz", model, {"model_spec": spec, "dataset": "digits"})
    save_safetensors(d / "w.safetensors", {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                                           "b": np.ones(4, dtype=np.int64)})
    write_idx(d / "x.idx", np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    write_idx(d / "x.idx.gz", np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    torch = pytest.importorskip("torch")
    torch.save({"conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2),
                "fc.bias": torch.zeros(3, dtype=torch.float32)}, d / "w.pth")
    try:
        import onnx  # noqa: F401
    except ImportError:
        pass            # no ONNX original: its fuzzing is skipped
    else:
        from cnnlab.onnx import export
        export(model, d / "m.onnx", (1, 8, 8))
    return {p.name: p.read_bytes() for p in d.iterdir()}


READERS = {
    "model.npz": (load_arrays, CheckpointError),
    "w.safetensors": (load_safetensors, SafetensorsError),
    "x.idx": (read_idx, IDXFormatError),
    "x.idx.gz": (read_idx, IDXFormatError),
    "w.pth": (load_pth, TorchCheckpointError),
    "m.onnx": (lambda p: __import__("cnnlab.onnx").onnx.load(p), ValueError),   # OnnxFileError and
}                                                                 # UnsupportedOperatorError are ValueErrors


def mutations():
    flip = st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 7))
    cut = st.tuples(st.just("cut"), st.floats(0, 1), st.just(0))
    splat = st.tuples(st.just("splat"), st.floats(0, 1), st.integers(0, 255))
    return st.lists(st.one_of(flip, cut, splat), min_size=1, max_size=4)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, where, arg in ops:
        if not b:
            break
        i = min(int(where * len(b)), len(b) - 1)
        if kind == "flip":
            b[i] ^= 1 << arg
        elif kind == "cut":
            del b[i:]
        else:
            b[i:i + 8] = bytes([arg]) * 8
    return bytes(b)


@pytest.mark.parametrize("name", sorted(READERS))
def test_fuzzed_files_load_or_are_refused(originals, tmp_path, name):
    reader, errors = READERS[name]
    if name not in originals:
        pytest.skip(f"no {name} to fuzz (its package is not installed)")
    path = tmp_path / name

    @seed(1234)
    @FUZZ
    @given(mutations())
    def check(ops):
        path.write_bytes(mutate(originals[name], ops))
        loads_or_refuses(reader, path, errors)

    check()


def test_fuzzed_model_files_rebuild_or_are_refused(originals, tmp_path):
    """Through the whole path `cnnlab evaluate` takes: meta, model_spec, weights."""
    path = tmp_path / "model.npz"

    @seed(99)
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutations())
    def check(ops):
        path.write_bytes(mutate(originals["model.npz"], ops))
        loads_or_refuses(load_for_evaluation, path, (CheckpointError, ValueError))

    check()


# ------------------------------------------------------------ crafted attacks
def npz_with(tmp_path, members: dict, meta: dict | None = None, compress=zipfile.ZIP_STORED):
    path = tmp_path / "crafted.npz"
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        if meta is not None:
            zf.writestr("__meta__.json", json.dumps(meta))
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


class Boom:
    """An object whose unpickling would create the file ``marker`` (a test's tmp_path)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


def header(arrays):
    from cnnlab.serialization import _digest
    return {"format": "cnnlab-checkpoint", "version": 1, "meta": {},
            "arrays": {k: {"sha256": _digest(np.asarray(v)) if not isinstance(v, bytes) else "0" * 64,
                           "dtype": "<f4", "shape": [2]} for k, v in arrays.items()}}


def test_a_pickle_in_a_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = np.array([Boom(marker)], dtype=object)
    path = npz_with(tmp_path, {"w.npy": npy_bytes(evil)}, header({"w": b""}))
    with bounded(), pytest.raises(CheckpointError, match="Python objects"):
        load_arrays(path)
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps({"w": Boom(marker)}))
    with pytest.raises(CheckpointError):
        load_arrays(raw)
    assert not marker.exists()
    control = tmp_path / "control"                    # the payload does run when unpickled
    pickle.loads(pickle.dumps(Boom(control)))
    assert control.exists()


def test_a_huge_declared_shape_is_refused_before_allocating(tmp_path):
    lie = npy_bytes(np.zeros(2, np.float32))
    lie = lie.replace(b"(2,)", b"(99999999999,)".ljust(4)[:len(b"(99999999999,)")], 1)
    path = npz_with(tmp_path, {"w.npy": lie}, header({"w": b""}))
    with bounded(), pytest.raises(CheckpointError):
        load_arrays(path)


def test_a_deflate_bomb_is_refused_from_the_zip_directory(tmp_path):
    bomb = npy_bytes(np.zeros(12_000_000, np.float32))        # 48 MB that deflate to 47 KB
    path = npz_with(tmp_path, {"w.npy": bomb}, header({"w": b""}), compress=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 200_000
    with bounded(), pytest.raises(CheckpointError, match="over the 8000000-byte limit"):
        load_arrays(path, max_bytes=8_000_000)


def test_huge_metadata_and_deep_nesting_are_refused(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__meta__.json", deep)
    with bounded(), pytest.raises(CheckpointError):
        load_arrays(path)
    st_path = tmp_path / "deep.safetensors"
    blob = deep.encode()
    st_path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    with bounded(), pytest.raises(SafetensorsError, match="nested too deeply"):
        load_safetensors(st_path)


@pytest.mark.parametrize("shape", [[1] * 65, [0, 10**30], [2**63, 0]])
def test_safetensors_impossible_shapes_are_refused(tmp_path, shape):
    hdr = json.dumps({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
    p = tmp_path / "s.safetensors"
    p.write_bytes(struct.pack("<Q", len(hdr)) + hdr)
    with bounded(), pytest.raises(SafetensorsError):
        load_safetensors(p)


@pytest.mark.parametrize("kwargs", [{"num_classes": 2_000_000}, {"input_size": 10**6},
                                    {"num_classes": "10"}, {"nonsense": 1}, {"num_classes": 1.5}])
def test_a_hostile_model_spec_is_refused_before_the_model_is_built(tmp_path, kwargs):
    spec = {"name": "digits_cnn", "kwargs": {"num_classes": 10, "in_channels": 1, "input_size": 8,
                                             **kwargs}}
    path = tmp_path / "m.npz"
    save_arrays(path, {"model/w": np.zeros(2, np.float32)}, {"kind": "model", "model_spec": spec})
    with bounded(), pytest.raises(CheckpointError, match="model_spec"):
        load_for_evaluation(path)


@pytest.mark.parametrize("special", ["fifo", "dev_zero", "folder"])
def test_loaders_take_only_regular_files(tmp_path, special):
    target = tmp_path / "thing"
    if special == "fifo":
        os.mkfifo(target)
    elif special == "folder":
        target.mkdir()
    for name, (reader, errors) in READERS.items():
        path = tmp_path / name
        if special == "dev_zero":
            path.symlink_to("/dev/zero")
        else:
            path.symlink_to(target)
        with bounded(), pytest.raises(errors, match="not a regular file|is a folder"):
            reader(path)
        with bounded(), pytest.raises(ValueError, match="not a regular file|is a folder"):
            load_weights(cnnlab.nn.Linear(2, 2), path)


def test_a_safetensors_file_named_pth_is_read_by_its_content(tmp_path):
    m = cnnlab.nn.Linear(3, 2)
    p = tmp_path / "weights.pth"
    save_safetensors(p, {k: v for k, v in m.state_dict().items()})
    m2 = cnnlab.nn.Linear(3, 2)
    load_weights(m2, p)
    np.testing.assert_array_equal(m2.weight.data, m.weight.data)
    from cnnlab.interop.pth import load_pth
    with pytest.raises(TorchCheckpointError, match="safetensors file") as e:
        load_pth(p)
    assert "weights_only=False" not in str(e.value)


@pytest.mark.parametrize("make", ["sparse", "quantized"])
def test_sparse_and_quantized_tensors_in_a_pth_are_named(tmp_path, make):
    torch = pytest.importorskip("torch")
    t = torch.eye(3, dtype=torch.float32)      # the suite may have made float64 the default
    t = t.to_sparse() if make == "sparse" else torch.quantize_per_tensor(t, 0.1, 0, torch.qint8)
    p = tmp_path / "m.pth"
    torch.save({"layer.weight": t}, p)
    from cnnlab.interop.pth import load_pth
    with pytest.raises(TorchCheckpointError, match="layer.weight"):
        load_pth(p)


def test_an_idx_gzip_bomb_stops_at_the_limit(tmp_path, monkeypatch):
    import gzip

    import cnnlab.data.idx as idx
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1 << 20)
    p = tmp_path / "bomb.idx.gz"
    p.write_bytes(gzip.compress(b"\0\0\x08\x01" + struct.pack(">I", 50_000_000) + bytes(50_000_000)))
    with bounded(), pytest.raises(IDXFormatError, match="decompresses to more than"):
        read_idx(p)


@pytest.mark.parametrize("kwargs, error", [({"kernel_size": 2.5}, TypeError),
                                           ({"kernel_size": 0}, ValueError),
                                           ({"groups": 0}, ValueError), ({"padding": -1}, ValueError)])
def test_bad_layer_settings_are_refused_at_construction(kwargs, error):
    with pytest.raises(error, match="kernel_size|groups|padding"):
        cnnlab.nn.Conv2d(**{"in_channels": 2, "out_channels": 2, "kernel_size": 3, **kwargs})


@pytest.mark.parametrize("layer", ["MaxPool2d", "AvgPool2d", "MaxPool1d", "AvgPool1d"])
@pytest.mark.parametrize("kwargs, message", [
    ({"kernel_size": 0}, "kernel_size and stride must be >= 1"),
    ({"kernel_size": 2, "stride": 0}, "kernel_size and stride must be >= 1"),
    ({"kernel_size": 2, "padding": -1}, "padding must be non-negative")])
def test_bad_pooling_settings_are_refused_at_construction(layer, kwargs, message):
    with pytest.raises(ValueError, match=f"{layer}: {message}"):
        getattr(cnnlab.nn, layer)(**kwargs)


@pytest.mark.parametrize("bad", [np.array([["a", "b"], ["c", "d"]]),
                                 np.array([[1, None], [1, 1]], dtype=object)])
def test_load_state_dict_names_the_key_of_non_numeric_arrays(bad):
    m = cnnlab.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight holds"):
        m.load_state_dict({"weight": bad, "bias": np.zeros(2)})
