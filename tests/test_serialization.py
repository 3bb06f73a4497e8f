"""Checkpoint files: atomic writes, no pickle, corrupt files refused."""
import io
import json
import struct
import zipfile

import numpy as np
import pytest

import cnnlab
from cnnlab import serialization as ser


def sample_arrays():
    rng = np.random.default_rng(0)
    return {"model/w": rng.standard_normal((3, 4)).astype(np.float32),
            "model/n": np.array(7, dtype=np.int64),
            "optim/state/0/momentum_buffer": rng.standard_normal(5)}


def test_round_trip_keeps_values_dtypes_and_meta(tmp_path):
    p = ser.save_arrays(tmp_path / "c.npz", sample_arrays(), {"epoch": 3, "name": "x"})
    arrays, meta = ser.load_arrays(p)
    for k, v in sample_arrays().items():
        np.testing.assert_array_equal(arrays[k], v)
        assert arrays[k].dtype == v.dtype
    assert meta == {"epoch": 3, "name": "x"}


def test_pack_tree_round_trip_keeps_int_keys():
    tree = {"state": {0: {"momentum_buffer": np.arange(3.0), "step": 4}},
            "param_groups": [{"lr": 0.1, "params": [0], "betas": (0.9, 0.99)}]}
    arrays = {}
    packed = ser.pack_tree(tree, arrays, "optim")
    json.dumps(packed)                      # plain JSON, nothing pickled
    back = ser.unpack_tree(json.loads(json.dumps(packed)), arrays)
    assert list(back["state"]) == [0]
    np.testing.assert_array_equal(back["state"][0]["momentum_buffer"], np.arange(3.0))
    assert back["param_groups"][0]["betas"] == [0.9, 0.99]


def test_truncated_file_is_refused(tmp_path):
    p = ser.save_arrays(tmp_path / "c.npz", sample_arrays())
    data = p.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ser.CheckpointError, match=str(bad.name)):
            ser.load_arrays(bad)


def test_flipped_byte_is_refused(tmp_path):
    p = ser.save_arrays(tmp_path / "c.npz", sample_arrays())
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("model/w.npy")
    # flip a byte inside the stored array payload: past the local header (30 bytes, the
    # name and the extra field, whose lengths it records) and the 128-byte .npy header
    n_name, n_extra = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    pos = info.header_offset + 30 + n_name + n_extra + 128 + 4
    data[pos] ^= 0xFF
    bad = tmp_path / "flip.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ser.CheckpointError, match="corrupt"):
        ser.load_arrays(bad)


def test_checksum_mismatch_is_refused_even_with_a_valid_zip(tmp_path):
    p = ser.save_arrays(tmp_path / "c.npz", sample_arrays())
    # rewrite the archive with one array replaced but the old checksums kept
    src = zipfile.ZipFile(p)
    out = tmp_path / "tampered.npz"
    with zipfile.ZipFile(out, "w") as zf:
        for name in src.namelist():
            data = src.read(name)
            if name == "model/w.npy":
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.zeros((3, 4), dtype=np.float32))
                data = buf.getvalue()
            zf.writestr(name, data)
    with pytest.raises(ser.CheckpointError, match="SHA-256"):
        ser.load_arrays(out)


def test_pickled_npz_and_foreign_files_are_refused(tmp_path):
    pkl = tmp_path / "pickle.npz"
    np.savez(pkl, a=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ser.CheckpointError):
        ser.load_arrays(pkl)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ser.CheckpointError, match="not a cnnlab checkpoint"):
        ser.load_arrays(plain)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ser.CheckpointError):
        ser.load_arrays(text)
    with pytest.raises(TypeError, match="pickle"):
        ser.save_arrays(tmp_path / "x.npz", {"a": np.array([object()], dtype=object)})


def test_failed_write_leaves_the_previous_file_and_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "c.npz"
    ser.save_arrays(target, sample_arrays(), {"v": 1})
    before = target.read_bytes()
    calls = {"n": 0}
    real = np.lib.format.write_array

    def crash_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        ser.save_arrays(target, sample_arrays(), {"v": 2})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_top_level_save_and_load(tmp_path):
    m = cnnlab.nn.Linear(3, 2)
    cnnlab.save(m.state_dict(), tmp_path / "m.npz")
    sd = cnnlab.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(sd["weight"], m.weight.data)
