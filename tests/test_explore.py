"""``cnnlab explore``: the JSON API through Starlette's test client, and the page in a real
browser (Playwright driving Debian's chromium) against a real uvicorn server, on one small
trained digits run."""
from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("sklearn")

from cnnlab.autograd.tensor import Tensor, no_grad  # noqa: E402
from cnnlab.nn.capture import capture_outputs  # noqa: E402
from cnnlab.training.run import TrainConfig, fit  # noqa: E402

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    from cnnlab.explore.session import Explorer

    out = tmp_path_factory.mktemp("explore") / "run"
    # the default 30 epochs: trained on 90% of the digits (10% held out for validation) the
    # drawn 7 is a 7 with p ~ 0.9 (after 8 epochs it was still nearer a 3)
    fit(TrainConfig(dataset="digits"), out=out, progress=False, report=lambda m: None)
    return Explorer.open(str(out))


@pytest.fixture(scope="module")
def client(explorer):
    from starlette.testclient import TestClient

    from cnnlab.explore.server import create_app

    return TestClient(create_app(explorer), base_url="http://127.0.0.1")


def decode(arr: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(arr["b64"]), "<f4").reshape(arr["shape"])


def python_forward(explorer, image: np.ndarray, layers: list[str]):
    """The model's own output, computed directly: (probabilities, {layer: output})."""
    from cnnlab.kernels.activation import softmax_forward

    _, x, _, _ = explorer.to_input(image)
    with no_grad(), capture_outputs(explorer.model, layers) as seen:
        logits = explorer.model(Tensor(x)).data
    return softmax_forward(np.asarray(logits[0], np.float64), axis=0), dict(seen), x


def a_seven(side: int = 140) -> np.ndarray:
    img = np.zeros((side, side))
    img[30:40, 40:100] = 1.0
    for y in range(40, 115):
        x = int(95 - (y - 40) * 0.45)
        img[y, x - 5:x + 5] = 1.0
    return img


# ------------------------------------------------------------------------ API
def test_model_lists_every_layer(client):
    r = client.get("/api/model")
    assert r.status_code == 200
    m = r.json()
    assert m["name"] == "digits_cnn" and m["input_shape"] == [1, 8, 8] and m["style"] == "digits"
    assert m["classes"] == [str(i) for i in range(10)] and m["test_images"] == 360
    assert [(la["name"], la["type"], la["shape"]) for la in m["layers"]][:3] == [
        ("features.0", "Conv2d", [16, 8, 8]), ("features.1", "ReLU", [16, 8, 8]),
        ("features.2", "MaxPool2d", [16, 4, 4])]
    assert m["layers"][-1] == {"name": "classifier.2", "type": "Linear", "shape": [10], "kind": "vector"}


def test_predict_equals_the_model_run_directly(client, explorer):
    img = a_seven()
    r = client.post("/api/predict", json={"image": img.tolist()})
    assert r.status_code == 200
    out = r.json()
    names = [la["name"] for la in out["layers"]]
    p, seen, x = python_forward(explorer, img, names)
    np.testing.assert_allclose(out["probabilities"], p, rtol=1e-6, atol=1e-9)
    assert out["prediction"] == int(p.argmax()) == 7
    np.testing.assert_array_equal(decode(out["model_input"]), x[0])
    for la in out["layers"]:
        np.testing.assert_array_equal(decode(la["data"]), seen[la["name"]][0])
    # the input as the network receives it: the digit counted in 4x4 blocks, values k/16
    raw = decode(out["input"])
    assert raw.shape == (1, 8, 8) and np.array_equal(raw * 16, np.round(raw * 16))


def test_predict_test_image_and_upload(client, explorer):
    raw, label = explorer.test_image(5)
    r = client.post("/api/predict", json={"test_index": 5})
    assert r.status_code == 200 and r.json()["label"] == label and r.json()["style"] == "as-is"
    np.testing.assert_array_equal(decode(r.json()["input"]), raw)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((255 * (1 - a_seven())).astype(np.uint8)).save(buf, "PNG")   # dark ink on white
    r = client.post("/api/predict?invert=1", content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["prediction"] == 7 and r.json()["warnings"] == []
    r = client.post("/api/predict", content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 200 and "looks inverted" in r.json()["warnings"][0]


@pytest.mark.parametrize("shape, scale", [((3, 112, 112), 2), ((2, 75, 130), 3), ((1, 5, 9), 4),
                                          ((1, 4, 4), 1)])
def test_block_mean_equals_the_mean_of_each_block(shape, scale):
    from cnnlab.explore.session import block_mean

    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    C, H, W = shape
    spec = np.array([[[a[c, y:y + scale, x:x + scale].mean() for x in range(0, W, scale)]
                      for y in range(0, H, scale)] for c in range(C)])
    np.testing.assert_allclose(block_mean(a, scale), spec, rtol=1e-5, atol=1e-6)


def test_unit_writes_out_the_arithmetic(client, explorer):
    img = a_seven()
    _, seen, x = python_forward(explorer, img, ["features.0", "features.1", "features.2", "classifier.0"])
    d = client.post("/api/unit", json={"image": img.tolist(), "layer": "features.0", "channel": 3,
                                       "y": 2, "x": 5}).json()
    assert d["value"] == pytest.approx(float(seen["features.0"][0, 3, 2, 5]), abs=1e-6)
    assert d["activation"]["value"] == pytest.approx(float(seen["features.1"][0, 3, 2, 5]), abs=1e-6)
    assert d["field"] == [1, 4, 4, 7] and d["dot"]["count"] == 9
    patch = np.asarray(d["patch"])
    np.testing.assert_array_equal(patch[0], x[0, 0, 1:4, 4:7])
    terms = sum(t["wx"] for t in d["dot"]["terms"])
    assert terms + d["bias"] == pytest.approx(d["pre"]) and d["pre"] == pytest.approx(d["value"], abs=1e-5)
    d = client.post("/api/unit", json={"image": img.tolist(), "layer": "features.2", "channel": 0,
                                       "y": 1, "x": 1}).json()
    window = np.asarray(d["window"])
    assert window.shape == (2, 2) and d["value"] == pytest.approx(window.max())
    assert window[tuple(d["winner"])] == window.max()
    d = client.post("/api/unit", json={"image": img.tolist(), "layer": "classifier.0", "channel": 7}).json()
    assert d["dot"]["count"] == 128 and len(d["dot"]["terms"]) == 12 and d["dot"]["rest_count"] == 116
    assert d["dot"]["sum"] + d["bias"] == pytest.approx(float(seen["classifier.0"][0, 7]), abs=1e-5)


def test_hovering_units_of_one_input_runs_one_forward_until_the_weights_change():
    from cnnlab.explore.session import Explorer
    from cnnlab.explore.units import unit_info
    from cnnlab.training.run import build_model

    ex = Explorer.open("digits_cnn")
    forwards = []
    ex.model.register_forward_hook(lambda m, i, o: forwards.append(1))
    _, x, _, _ = ex.to_input(a_seven())
    first = unit_info(ex, x, "features.0", 3, 2, 5)
    unit_info(ex, x, "features.0", 1, 0, 0)
    assert len(forwards) == 1                           # another unit of that layer: no new forward
    assert unit_info(ex, x, "features.0", 3, 2, 5) == first
    _, other, _, _ = ex.to_input(a_seven()[::-1])
    unit_info(ex, other, "features.0", 3, 2, 5)
    assert len(forwards) == 2                           # another input: a forward
    ex.copy_weights(build_model(ex.meta["model_spec"]))   # fresh random weights
    again = unit_info(ex, x, "features.0", 3, 2, 5)
    assert len(forwards) == 3 and again["value"] != first["value"]
    with no_grad(), capture_outputs(ex.model, ["features.0"]) as seen:
        ex.model(Tensor(x))
    assert again["value"] == pytest.approx(float(seen["features.0"][0, 3, 2, 5]), abs=1e-6)


def test_an_uploaded_file_gets_the_unit_arithmetic_and_the_methods(client):
    from PIL import Image

    img = a_seven()
    buf = io.BytesIO()
    Image.fromarray((255 * img).astype(np.uint8)).save(buf, "PNG")
    png = {"content": buf.getvalue(), "headers": {"content-type": "image/png"}}
    by_json = client.post("/api/unit", json={"image": img.tolist(), "layer": "features.0", "channel": 3,
                                             "y": 2, "x": 5}).json()
    by_file = client.post("/api/unit?layer=features.0&channel=3&y=2&x=5", **png).json()
    assert by_file == by_json
    by_json = client.post("/api/method", json={"image": img.tolist(), "method": "fgsm", "eps": 0.2}).json()
    by_file = client.post("/api/method?method=fgsm&eps=0.2", **png).json()
    assert by_file == by_json and by_file["eps"] == 0.2
    r = client.post("/api/unit?layer=features.0&channel=x", **png)
    assert r.status_code == 400 and "'channel' must be an integer" in r.json()["error"]


@pytest.mark.parametrize("body, status, words", [
    (b"garbage", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b"{}", 400, "needs an 'image'"),
    (b'{"image": [[0.5, "a"]]}', 400, "numbers only"),
    (b'{"image": [[0.5, 0.5], [0.5]]}', 400, "rectangular"),
    (b'{"image": [[NaN, 0.5]]}', 400, "NaN"),
    (b'{"image": [[0.5, 2]]}', 400, "in [0, 1]"),
    (b'{"image": [0.5, 0.5]}', 400, "2-D"),
    (b'{"image": [[[0.5, 0.5]], [[0.5, 0.5]]]}', 400, "channels"),
    (b'{"test_index": 99999}', 400, "test_index"),
    (b'{"test_index": "3"}', 400, "integer"),
    (b'{"image": [[0.5]], "invert": "yes"}', 400, "invert"),
])
def test_bad_bodies_get_a_4xx_naming_the_problem(client, body, status, words):
    r = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and words in r.json()["error"]
    assert client.get("/api/model").status_code == 200      # and the server keeps serving


def test_limits_are_checked_before_decoding(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buf, "PNG")          # 144 M pixels, ~140 KB compressed
    t = time.perf_counter()
    r = client.post("/api/predict", content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 413 and "12000x12000" in r.json()["error"]
    assert time.perf_counter() - t < 1.0
    r = client.post("/api/predict", content=b"x" * (9 * 2**20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = client.post("/api/predict", content=b"not an image", headers={"content-type": "image/png"})
    assert r.status_code == 400 and "not an image file" in r.json()["error"]
    r = client.post("/api/predict", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = client.post("/api/unit", json={"image": [[0.5]], "layer": "nope", "channel": 0})
    assert r.status_code == 400 and "no layer 'nope'" in r.json()["error"]


@pytest.mark.parametrize("path", ["/static/../session.py", "/static/%2e%2e%2fsession.py", "/../../etc/passwd",
                                  "/static/..%2F..%2Fcli.py", "/static/explore.js/../../api.py",
                                  "/api/../explore/session.py", "/etc/passwd"])
def test_traversal_gets_404(client, path):
    assert client.get(path).status_code == 404


def test_page_and_assets_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "explore.js" in r.text and "http" not in r.text.replace("http-equiv", "")
    for name in ("explore.js", "explore.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text


def test_host_and_token_checks(explorer):
    from starlette.testclient import TestClient

    from cnnlab.explore.server import create_app, is_loopback

    local = TestClient(create_app(explorer), base_url="http://127.0.0.1")
    assert local.get("/api/model", headers={"host": "evil.example:8000"}).status_code == 403
    remote = TestClient(create_app(explorer, token="s3cret"), base_url="http://10.1.2.3")
    assert remote.get("/api/model").status_code == 403
    assert remote.get("/api/model?token=wrong").status_code == 403
    r = remote.get("/?token=s3cret")
    assert r.status_code == 200 and "cnnlab_token=s3cret" in r.headers["set-cookie"]
    assert remote.get("/api/model").status_code == 200         # the cookie the page got
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


def test_methods_are_the_viz_functions_on_the_shown_input(client, explorer):
    from cnnlab.viz import attribution as A
    from cnnlab.viz.adversarial import fgsm
    from cnnlab.viz.filters import filter_images
    from cnnlab.viz.topk import top_k_activating

    img = a_seven()
    raw, x, _, _ = explorer.to_input(img)
    post = lambda **f: client.post("/api/method", json={"image": img.tolist(), **f})   # noqa: E731
    d = post(method="saliency").json()
    assert d["target"] == 7 and not d["signed"]
    np.testing.assert_allclose(decode(d["heat"]), A.saliency(explorer.model, x, 7)[0], rtol=1e-5, atol=1e-7)
    d = post(method="guided", target=1).json()
    np.testing.assert_allclose(decode(d["heat"]), A.guided_backprop(explorer.model, x, 1)[0].sum(axis=0),
                               rtol=1e-5, atol=1e-7)
    d = post(method="occlusion").json()
    assert (d["size"], d["stride"]) == (2, 1) and decode(d["heat"]).shape == (7, 7)
    np.testing.assert_allclose(decode(d["heat"]), A.occlusion(explorer.model, x, 7, 2, 1)[0], rtol=1e-5)
    progress = [e for e in sse(client.get("/api/train/events?once=1").text) if e["_event"] == "progress"]
    assert progress and progress[-1]["task"] == "occlusion"
    assert progress[-1]["done"] == progress[-1]["total"] == 49                # 7 x 7 occluded copies
    d = post(method="fgsm", eps=0.25).json()
    norm = explorer.meta["normalize"]                        # the digits run standardises its input
    adv = fgsm(explorer.model, x, 7, 0.25, pixel_range=(0.0, 1.0), mean=norm["mean"], std=norm["std"])
    np.testing.assert_allclose(decode(d["image"]), adv[0] * norm["std"] + norm["mean"], atol=1e-5)
    assert np.abs(decode(d["perturbation"])).max() <= 0.25 + 1e-6 and d["before"]["prediction"] == 7
    assert d["probabilities"][7] < d["before"]["probabilities"][7]
    d = client.post("/api/method", json={"method": "filters"}).json()
    w = explorer.model.get_submodule("features.0").weight.data
    np.testing.assert_allclose(decode(d["images"]), filter_images(w), atol=1e-6)
    d = client.post("/api/method", json={"method": "class_model", "target": 3}).json()
    assert decode(d["image"]).shape == (1, 8, 8) and d["probability"] > 0.5
    last = sse(client.get("/api/train/events?once=1").text)[-1]
    assert (last["task"], last["done"], last["total"]) == ("class_model", 200, 200)
    d = client.post("/api/method", json={"method": "top9", "layer": "features.1", "channel": 2}).json()
    from cnnlab.viz.inputs import model_pipeline

    _, tx = model_pipeline(np.asarray(explorer._test_set().x, np.float32), explorer.meta)
    top = top_k_activating(explorer.model, "features.1", 2, tx, k=9)
    assert d["searched"] == 360 and [it["index"] for it in d["items"]] == top.indices.tolist()
    first = d["items"][0]
    y0, x0, y1, x1 = first["box"]
    patch = explorer.test_image(first["index"])[0][:, y0:y1, x0:x1]
    np.testing.assert_array_equal(decode(first["patch"]), patch)
    values = [it["value"] for it in d["items"]]
    assert values == sorted(values, reverse=True)
    for body, words in [({"method": "nope"}, "'method' must be one of"),
                        ({"method": "saliency"}, "needs an input"),
                        ({"method": "fgsm", "image": [[0.5]], "eps": 3}, "'eps'"),
                        ({"method": "top9", "layer": "classifier.0", "channel": 0}, "vector"),
                        ({"method": "class_model", "target": 10}, "'target'")]:
        r = client.post("/api/method", json=body)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.json())


def sse(text: str) -> list[dict]:
    """The events of a text/event-stream body."""
    import json

    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "data" in fields:
            out.append({**json.loads(fields["data"]), "_event": fields["event"], "_id": int(fields["id"])})
    return out


def wait_for(predicate, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_training_from_the_api_streams_steps_and_is_an_ordinary_run(explorer, tmp_path):
    from starlette.testclient import TestClient

    from cnnlab.explore.server import create_app
    from cnnlab.training.run import load_for_evaluation

    c = TestClient(create_app(explorer, runs_root=tmp_path), base_url="http://127.0.0.1")
    t = c.get("/api/train").json()
    assert t["state"] == "idle" and "digits" in t["datasets"] and "digits_cnn" in t["models"]
    for body, words in [({"lr": -1}, "'lr' must be"), ({"epochs": 0}, "'epochs' must be"),
                        ({"dataset": "nope"}, "nope"), ({"colour": 1}, "unknown training field"),
                        ({"model": "no_such_net"}, "no_such_net")]:
        r = c.post("/api/train", json=body)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.json())
    assert c.post("/api/train/control", json={"action": "pause"}).status_code == 409
    r = c.post("/api/train", json={"dataset": "digits", "epochs": 2, "batch_size": 64, "lr": 0.05})
    assert r.status_code == 200 and r.json()["state"] == "running"
    out = Path(r.json()["out"])
    assert out.parent == tmp_path
    assert c.post("/api/train", json={}).status_code == 409           # one run at a time
    assert c.post("/api/train/control", json={"action": "pause"}).json()["state"] == "paused"
    wait_for(lambda: "snapshot" in [e["_event"] for e in sse(c.get("/api/train/events?once=1").text)])
    paused_at = c.get("/api/train").json()["step"]
    time.sleep(0.3)
    assert c.get("/api/train").json()["step"] == paused_at               # no step while paused
    assert c.post("/api/train/control", json={"action": "lr", "lr": 0.01}).status_code == 200
    assert c.post("/api/train/control", json={"action": "resume"}).json()["state"] == "running"
    wait_for(lambda: c.get("/api/train").json()["state"] in ("done", "failed"))
    events = sse(c.get("/api/train/events?once=1").text)
    assert [e["_id"] for e in events] == sorted(e["_id"] for e in events)
    steps = [e for e in events if e["_event"] == "step"]
    # 1,437 training images less the 10% validation split (144) in batches of 64; lr set
    assert len(steps) == 2 * 21 and steps[-1]["lr"] < 0.0101
    first, last = np.mean([s["loss"] for s in steps[:5]]), np.mean([s["loss"] for s in steps[-5:]])
    assert last < first
    epochs = [e for e in events if e["_event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["val_acc"] > 0.3   # chance is 0.1
    snap = [e for e in events if e["_event"] == "snapshot"][-1]
    assert decode(snap["filters"]["data"]).shape == (16, 1, 3, 3)
    first_layer = snap["layers"][0]
    assert {"weights", "grads"} <= set(first_layer) and sum(first_layer["weights"]["counts"]) == 144
    assert events[-1]["_event"] == "status" and events[-1]["state"] == "done"
    # the page now shows the trained weights, and the run is an ordinary run folder
    model, _ = load_for_evaluation(out / "model.npz")
    img = a_seven()
    ours = c.post("/api/predict", json={"image": img.tolist()}).json()
    x = explorer.to_input(img)[1]
    with no_grad():
        direct = model(Tensor(x)).data
    assert ours["prediction"] == int(direct.argmax())
    assert (out / "checkpoints" / "epoch-002.npz").is_file() and (out / "metrics.jsonl").is_file()
    after = sse(c.get(f"/api/train/events?once=1&after={events[-2]['_id']}").text)
    assert [e["_id"] for e in after] == [events[-1]["_id"]]                # a reconnect resumes


def test_a_run_stopped_from_the_page_resumes_with_cnnlab_train(explorer, tmp_path):
    from starlette.testclient import TestClient

    from cnnlab.cli import main
    from cnnlab.explore.server import create_app

    c = TestClient(create_app(explorer, runs_root=tmp_path), base_url="http://127.0.0.1")
    out = Path(c.post("/api/train", json={"epochs": 6, "batch_size": 64}).json()["out"])
    wait_for(lambda: any(e["_event"] == "epoch" for e in sse(c.get("/api/train/events?once=1").text)))
    c.post("/api/train/control", json={"action": "stop"})
    wait_for(lambda: c.get("/api/train").json()["state"] == "stopped", 30)
    assert f"cnnlab train --resume --out {out}" in c.get("/api/train").json()["message"]
    assert not (out / "model.npz").exists()
    assert main(["train", "--resume", "--out", str(out)]) == 0
    assert (out / "model.npz").is_file() and (out / "checkpoints" / "epoch-006.npz").is_file()


def test_event_streams_end_when_the_server_stops(explorer, tmp_path):
    from starlette.testclient import TestClient

    from cnnlab.explore.server import create_app

    c = TestClient(create_app(explorer, runs_root=tmp_path, stopping=lambda: True), base_url="http://127.0.0.1")
    r = c.get("/api/train/events")              # no ?once: it ends because the server is stopping
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert c.get("/api/train/events", headers={"last-event-id": "x"}).status_code == 400


def test_a_failed_page_run_says_why_and_the_server_keeps_serving(explorer, tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    import cnnlab.training.run as run_mod
    from cnnlab.explore.server import create_app

    def diverges(cfg, out, **kw):
        raise FloatingPointError("training diverged: loss is nan after 64 samples; lower the learning rate")
    monkeypatch.setattr(run_mod, "fit", diverges)
    c = TestClient(create_app(explorer, runs_root=tmp_path), base_url="http://127.0.0.1")
    assert c.post("/api/train", json={"epochs": 1}).status_code == 200
    wait_for(lambda: c.get("/api/train").json()["state"] == "failed", 10)
    assert "diverged" in c.get("/api/train").json()["message"]
    assert c.post("/api/predict", json={"image": a_seven().tolist()}).status_code == 200
    from cnnlab.explore.training import EventLog

    log = EventLog()
    log.add("status", state="idle")
    assert [e["id"] for e in log.after(99)] == [1]          # an id from before a restart: all again


def test_following_a_run_that_is_being_written(tmp_path):
    from cnnlab.explore.server import create_app
    from cnnlab.explore.session import Explorer
    from cnnlab.training.run import Monitor, load_for_evaluation

    class StopAfterTwo(Monitor):
        def epoch(self, run, row):
            if row["epoch"] == 2:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(dataset="digits", epochs=4), run, progress=False, report=lambda m: None,
            monitor=StopAfterTwo())
    ex = Explorer.open(str(run))                        # no model.npz yet: the newest checkpoint
    assert ex.in_progress and ex.source.endswith("epoch-002.npz")
    from starlette.testclient import TestClient

    c = TestClient(create_app(ex, runs_root=tmp_path), base_url="http://127.0.0.1")   # follows by itself
    assert c.get("/api/train").json()["state"] == "following"
    epochs = lambda: [e["epoch"] for e in sse(c.get("/api/train/events?once=1").text)   # noqa: E731
                      if e["_event"] == "epoch"]
    wait_for(lambda: epochs() == [1, 2], 10)
    kinds = [e["_event"] for e in sse(c.get("/api/train/events?once=1").text)]
    assert "snapshot" in kinds and "model" not in kinds   # the checkpoint shown is not loaded again
    fit(TrainConfig(dataset="digits", epochs=4), run, resume=True, progress=False, report=lambda m: None)
    wait_for(lambda: sse(c.get("/api/train/events?once=1").text)[-1].get("state") == "done", 10)
    assert epochs() == [1, 2, 3, 4]
    assert c.get("/api/model").json()["source"].endswith("model.npz")     # the finished weights
    model, _ = load_for_evaluation(run / "model.npz")
    img = a_seven()
    with no_grad():
        direct = model(Tensor(ex.to_input(img)[1])).data
    assert c.post("/api/predict", json={"image": img.tolist()}).json()["prediction"] == int(direct.argmax())


def test_cli_refuses_a_missing_target(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["explore", str(tmp_path / "nothing" / "model.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["explore", "no_such_model"]) == 2
    assert "not a run folder, a model file or a model name" in capsys.readouterr().err


def test_cli_with_no_target_trains_digits_then_serves_it(tmp_path, monkeypatch, capsys):
    import cnnlab.explore.server as server_mod
    from cnnlab.cli import main

    served = []
    monkeypatch.setattr(server_mod, "serve", lambda ex, host, port: served.append((ex, host, port)))
    monkeypatch.chdir(tmp_path)
    assert main(["explore", "--port", "8123"]) == 0
    ex, host, port = served[-1]
    assert (host, port) == ("127.0.0.1", 8123) and (tmp_path / "runs/explore-digits/model.npz").is_file()
    m = ex.describe()
    assert m["name"] == "digits_cnn" and m["test_images"] == 360 and not m["untrained"]
    hits = [ex.predict(ex.test_image(i)[0])["prediction"] == ex.test_image(i)[1] for i in range(40)]
    assert sum(hits) >= 34                                   # a trained model, not a fresh one
    assert ex.predict(a_seven())["prediction"] == 7           # and a drawn digit is read right
    assert "training the default digits model" in capsys.readouterr().out
    assert main(["explore"]) == 0                             # the second time: no training
    assert "using the digits model trained before" in capsys.readouterr().out
    assert served[-1][0].source.endswith("model.npz")


@pytest.mark.parametrize("name, shape", [("lenet5", [1, 28, 28]), ("resnet20", [3, 32, 32])])
def test_cli_with_a_model_name_serves_it_untrained(monkeypatch, name, shape):
    import cnnlab.explore.server as server_mod
    from cnnlab.cli import main

    served = []
    monkeypatch.setattr(server_mod, "serve", lambda ex, host, port: served.append(ex))
    assert main(["explore", name]) == 0
    m = served[0].describe()
    assert m["name"] == name and m["untrained"] and m["input_shape"] == shape and m["test_images"] == 0
    out = served[0].predict(np.full(shape[1:], 0.5))
    assert len(out["probabilities"]) == 10 and len(out["layers"]) == len(m["layers"])


# ------------------------------------------------------------------ the browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(explorer, tmp_path_factory):
    import uvicorn

    from cnnlab.explore.server import create_app

    port = _free_port()
    runs = tmp_path_factory.mktemp("page-runs")
    app = create_app(explorer, runs_root=runs, stopping=lambda: srv.should_exit)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        timeout_graceful_shutdown=2))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_page_in_chromium(server, explorer, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    import json

    outside, errors, sent = [], [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"],
                                     timeout=20000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(15000)

            def route(r):
                if r.request.url.startswith(server):
                    return r.continue_()
                outside.append(r.request.url)
                return r.abort()
            page.route("**/*", route)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda q: sent.append(q.post_data) if q.url.endswith("/api/predict") else None)
            page.goto(server + "/")
            page.wait_for_selector('.layer[data-layer="classifier.2"] canvas')
            page.wait_for_selector('body[data-busy="0"]', state="attached")

            # draw a 7 with the mouse: a bar, then a slanted stroke
            box = page.locator("#draw").bounding_box()
            X = lambda u: box["x"] + u * box["width"]      # noqa: E731
            Y = lambda v: box["y"] + v * box["height"]     # noqa: E731
            page.mouse.move(X(0.3), Y(0.22))
            page.mouse.down()
            for u in np.linspace(0.3, 0.7, 8):
                page.mouse.move(X(u), Y(0.22))
            for t in np.linspace(0, 1, 12):
                page.mouse.move(X(0.7 - 0.3 * t), Y(0.22 + 0.6 * t))
            page.mouse.up()
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            last = np.asarray(json.loads(sent[-1])["image"], dtype=np.float64)
            assert last.shape == (140, 140) and last.max() == 1.0
            p, seen, _ = python_forward(explorer, last, ["features.0"])
            shown = int(page.locator("#prediction").get_attribute("data-k"))
            assert shown == int(p.argmax()) == 7
            top = page.locator(f'.prob[data-class="{shown}"] span').nth(2).inner_text()
            assert top == f"{100 * p.max():.1f}%"

            # hover unit (3, 2, 5) of the first convolution: the value shown is Python's
            c = page.locator('.layer[data-layer="features.0"] canvas[data-channel="3"]')
            cb = c.bounding_box()
            page.mouse.move(cb["x"] + (5.5 / 8) * cb["width"], cb["y"] + (2.5 / 8) * cb["height"])
            page.wait_for_selector("#info .eq")
            value = float(page.locator("#unit-value").get_attribute("data-value"))
            assert np.float32(value) == seen["features.0"][0, 3, 2, 5]
            assert "bias" in page.locator("#info").inner_text()
            page.mouse.click(cb["x"] + (5.5 / 8) * cb["width"], cb["y"] + (2.5 / 8) * cb["height"])
            page.wait_for_url("**layer=features.0&unit=3%2C2%2C5", timeout=5000)   # pinned: in the URL
            page.wait_for_selector("#info .eq")

            # methods: the saliency map over the input, then FGSM from the slider
            page.select_option("#m-method", "saliency")
            page.wait_for_selector('body[data-method="saliency"]', state="attached")
            assert "for class 7" in page.locator("#m-note").inner_text()
            page.select_option("#m-method", "fgsm")
            page.locator("#m-eps").fill("0.3")
            page.wait_for_selector('body[data-method="fgsm"]', state="attached")
            page.wait_for_selector("#fgsm-result", state="attached")
            sync_api.expect(page.locator("#m-eps-val")).to_have_text("0.30")
            from cnnlab.viz.adversarial import fgsm

            norm = explorer.meta["normalize"]
            _, x_last, _, _ = explorer.to_input(last)
            adv = fgsm(explorer.model, x_last, 7, 0.3, pixel_range=(0.0, 1.0), mean=norm["mean"],
                       std=norm["std"])
            with no_grad():
                fooled = int(explorer.model(Tensor(adv)).data.argmax())
            sync_api.expect(page.locator("#fgsm-result")).to_have_attribute("data-k", str(fooled))
            assert "method=fgsm" in page.url and "eps=0.3" in page.url      # the view is shareable
            page.select_option("#m-method", "")

            # start a short training from the page: steps stream in, the loss falls, the layers follow
            page.select_option("#t-dataset", "digits")
            page.fill("#t-epochs", "2")
            page.fill("#t-batch", "32")
            page.fill("#t-lr", "0.05")
            page.click("#t-start")
            page.wait_for_selector('body[data-train="done"]', state="attached", timeout=60000)
            losses = page.evaluate("window.cnnlabTrain.steps.map((s) => s.loss)")
            assert len(losses) == 2 * 41     # 1,437 images less the 144 of validation, by 32, two epochs
            assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 2
            assert "validation accuracy" in page.locator("#t-last").inner_text()
            assert page.locator("#t-filters canvas").count() == 16
            sync_api.expect(page.locator("#model-source")).to_contain_text("model.npz")
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            from cnnlab.training.run import load_for_evaluation

            trained, _ = load_for_evaluation(page.locator("#model-source").inner_text())
            with no_grad():                                   # the page now shows the trained weights
                direct = trained(Tensor(explorer.to_input(last)[1])).data
            assert int(page.locator("#prediction").get_attribute("data-k")) == int(direct.argmax())

            # an uploaded file: predicted, and a hovered unit still gets its arithmetic
            from PIL import Image

            Image.fromarray((255 * a_seven()).astype(np.uint8)).save(tmp_path / "seven.png")
            page.evaluate("window.scrollTo(0, 0)")
            page.set_input_files("#upload", str(tmp_path / "seven.png"))
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            from cnnlab.explore.api import image_from_upload

            upload = image_from_upload((tmp_path / "seven.png").read_bytes())
            with no_grad():                                   # read as the trained model reads it
                read = int(trained(Tensor(explorer.to_input(upload)[1])).data.argmax())
            sync_api.expect(page.locator("#prediction")).to_have_attribute("data-k", str(read))
            c = page.locator('.layer[data-layer="features.0"] canvas[data-channel="1"]')
            cb = c.bounding_box()
            page.mouse.click(cb["x"] + 0.5 * cb["width"], cb["y"] + 0.5 * cb["height"])   # release the pin
            page.mouse.move(cb["x"] + 0.3 * cb["width"], cb["y"] + 0.3 * cb["height"])
            sync_api.expect(page.locator("#info")).to_contain_text("dot product")
            assert "src=upload" in page.url

            shot = tmp_path / "explore.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("CNNLAB_EXPLORE_SCREENSHOT"):
                shutil.copy(shot, os.environ["CNNLAB_EXPLORE_SCREENSHOT"])
        finally:
            browser.close()
    assert outside == [] and errors == []
