"""ONNX from the command line and through the rest of cnnlab: `cnnlab export`, and an
.onnx file given to `cnnlab summary`, `cnnlab evaluate`, `cnnlab viz` and the explorer."""
from __future__ import annotations

import numpy as np
import pytest

import cnnlab
from cnnlab.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")
co = pytest.importorskip("cnnlab.onnx")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits_cnn trained for one epoch, and its export."""
    from cnnlab.training.run import TrainConfig, fit

    out = tmp_path_factory.mktemp("onnx_cli") / "run"
    fit(TrainConfig(dataset="digits", epochs=1), out=out, progress=False, report=lambda m: None)
    assert main(["export", str(out), "--format", "onnx", "--output", str(out / "model.onnx")]) == 0
    return out


def test_export_of_a_run_runs_in_onnxruntime_like_the_run(run):
    from cnnlab.training.run import load_for_evaluation

    model, meta = load_for_evaluation(run / "model.npz")
    proto = onnx.load(str(run / "model.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], model(cnnlab.Tensor(x)).numpy(),
                               rtol=1e-4, atol=1e-5)
    props = {p.key: p.value for p in proto.metadata_props}
    assert '"dataset": "digits"' in props["cnnlab.meta"]


def test_evaluate_of_the_export_gives_the_runs_accuracy(run, capsys):
    assert main(["evaluate", str(run / "model.npz")]) == 0
    want = capsys.readouterr().out.splitlines()
    assert main(["evaluate", str(run / "model.onnx")]) == 0
    got = capsys.readouterr().out.splitlines()
    assert got[0] == f"model digits_cnn from {run / 'model.onnx'}"
    assert got[1].startswith("test accuracy") and got[1:] == want[1:]   # accuracy, loss, confusion
    # an .onnx file exports again, keeping the run's metadata
    again = run.parent / "again.onnx"
    assert main(["export", str(run / "model.onnx"), "--output", str(again)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(again)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == want[1:]


def test_summary_of_an_onnx_file(run, capsys):
    assert main(["summary", str(run / "model.onnx")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{run / 'model.onnx'} on 1x8x8, batch 1")
    assert "features_0    Conv2d     16x8x8" in out
    total = sum(p.data.size for p in co.load(run / "model.onnx").parameters())
    assert f"parameters: {total:,}" in out
    assert main(["summary", str(run / "model.onnx"), "--input", "1x9x9"]) == 2
    assert "takes inputs of 1x8x8, not --input 1x9x9" in capsys.readouterr().err
    assert main(["summary", str(run / "model.onnx"), "--num-classes", "3"]) == 2
    assert "--num-classes does not apply" in capsys.readouterr().err


def test_viz_and_explore_open_an_onnx_file(run, tmp_path, capsys):
    from cnnlab.explore.session import Explorer

    assert main(["viz", "filters", "--checkpoint", str(run / "model.onnx"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "filters_features_0.png").stat().st_size > 0
    ex = Explorer.open(str(run / "model.onnx"))
    npz = Explorer.open(str(run))
    # nodes are named by module path ("features.0"); an import names its layers with "_"
    assert [la.name for la in ex.layers] == [la.name.replace(".", "_") for la in npz.layers]
    drawing = np.zeros((280, 280))
    drawing[60:220, 130:150] = 1.0
    a, b = ex.predict(drawing), npz.predict(drawing)
    assert a["prediction"] == b["prediction"]
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], rtol=1e-4, atol=1e-6)


def test_export_of_a_zoo_model_at_a_chosen_input_and_opset(tmp_path, capsys):
    path = tmp_path / "r.onnx"
    assert main(["export", "resnet20", "-o", str(path), "--input", "3x16x16", "--opset", "13"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {path} (")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 13
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 16, 16]
    # an untrained model names no dataset: evaluate asks for one
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "names no dataset it was trained on" in err and "pass --dataset" in err


@pytest.mark.parametrize("argv, message", [
    (["export", "lenet5", "-o", "{tmp}/x.onnx", "--opset", "9"], "--opset must be from 13 to 21, got 9"),
    (["export", "lenet5", "-o", "{tmp}/missing/x.onnx"], "does not exist"),
    (["export", "no_such_model", "-o", "{tmp}/x.onnx"], "is not a run folder, a model file or a model name"),
    (["export", "lenet5", "-o", "{tmp}/x.onnx", "--input", "1x28"], "--input must look like CxHxW"),
    (["summary", "{tmp}/nothing.onnx"], "nothing.onnx does not exist"),
    (["evaluate", "{tmp}/bad.onnx"], "bad.onnx is not a valid ONNX file"),
])
def test_user_mistakes_are_one_line_errors(argv, message, tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


def test_a_layer_onnx_cannot_express_fails_with_exit_1(tmp_path, monkeypatch, capsys):
    from cnnlab.onnx import ExportError
    from cnnlab.viz import inputs

    class SumBatch(cnnlab.nn.Module):
        def forward(self, x):
            return x.sum(axis=0, keepdims=True)

    real = inputs.open_model
    monkeypatch.setattr(inputs, "open_model", lambda t: (SumBatch(), *real("lenet5")[1:]))
    assert issubclass(ExportError, ValueError)    # yet a failure (1), not a usage error (2)
    assert main(["export", "lenet5", "-o", str(tmp_path / "o.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cnnlab export: lenet5 (untrained) cannot be exported: ")
    assert "ReduceSum over the batch dimension" in err
    assert not (tmp_path / "o.onnx").exists()
