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


def test_cli_refuses_a_missing_target(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["explore", str(tmp_path / "nothing" / "model.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["explore", "no_such_model"]) == 2
    assert "not a run folder, a model file or a model name" in capsys.readouterr().err


# ------------------------------------------------------------------ the browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(explorer):
    import uvicorn

    from cnnlab.explore.server import create_app

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(explorer), host="127.0.0.1", port=port,
                                        log_level="warning"))
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

            shot = tmp_path / "explore.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("CNNLAB_EXPLORE_SCREENSHOT"):
                shutil.copy(shot, os.environ["CNNLAB_EXPLORE_SCREENSHOT"])
        finally:
            browser.close()
    assert outside == [] and errors == []
