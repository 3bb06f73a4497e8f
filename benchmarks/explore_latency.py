"""How fast `cnnlab explore` answers: the server's time for POST /api/predict with every
layer's activations, and the time from the end of a stroke to the page's repaint in
headless chromium.

    python3 benchmarks/explore_latency.py [--model lenet5] [--repeats 30] [--no-browser]

The model is a zoo model with its initial weights (the time does not depend on them):
LeNet-5 on 28x28 by default; `--model resnet18` measures ResNet-18 at 224x224.  Prints
the median and the 90th percentile of each figure.  Targets (issue 13): server <= 20 ms for
LeNet-5; stroke-to-repaint <= 100 ms for LeNet-5 and <= 500 ms for ResNet-18.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import threading
import time

import numpy as np


def percentiles(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1e3:.1f} ms, p90 {xs[int(0.9 * (len(xs) - 1))] * 1e3:.1f} ms"


def server_time(explorer, repeats: int) -> list[float]:
    """Time of the whole request in Starlette's test client (JSON parsing, rasterising,
    the forward with every layer captured, encoding), without the network."""
    from starlette.testclient import TestClient

    from cnnlab.explore.server import create_app

    client = TestClient(create_app(explorer), base_url="http://127.0.0.1")
    img = np.zeros((140, 140))
    img[30:110, 60:75] = 1.0
    body = json.dumps({"image": np.round(img, 3).tolist()})
    times = []
    for i in range(repeats + 3):
        t = time.perf_counter()
        r = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
        dt = time.perf_counter() - t
        assert r.status_code == 200, r.text
        if i >= 3:
            times.append(dt)
    return times


def stroke_time(explorer, repeats: int) -> list[float]:
    """End of a mouse stroke -> the page has repainted every layer (body[data-busy=0] again
    after the prediction for the finished stroke)."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from cnnlab.explore.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(explorer), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    times = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                         args=["--no-sandbox", "--disable-gpu"], timeout=30000)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            box = page.locator("#draw").bounding_box()
            for i in range(repeats):
                page.click("#clear")
                page.wait_for_selector('body[data-busy="0"]', state="attached")
                x = box["x"] + box["width"] * (0.3 + 0.4 * (i % 5) / 5)
                page.mouse.move(x, box["y"] + 0.2 * box["height"])
                page.mouse.down()
                for t in np.linspace(0.2, 0.8, 6):
                    page.mouse.move(x, box["y"] + t * box["height"])
                page.wait_for_selector('body[data-busy="0"]', state="attached")
                before = page.locator("body").get_attribute("data-predictions")
                t0 = time.perf_counter()
                page.mouse.up()      # the end of the stroke: one more prediction and repaint
                _wait_changed(page, before)
                times.append(time.perf_counter() - t0)
            browser.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
    return times


def _wait_changed(page, before: str | None) -> None:
    """Poll (the page's CSP forbids evaluated predicates) until a new repaint finished."""
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        body = page.locator("body")
        if body.get_attribute("data-predictions") != before and body.get_attribute("data-busy") == "0":
            return
        time.sleep(0.002)
    raise TimeoutError("the page did not repaint within 30 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    import cnnlab
    from cnnlab.explore.session import Explorer

    cnnlab.tune_memory()
    explorer = Explorer.open(args.model)
    shape = "x".join(map(str, explorer.describe()["input_shape"]))
    print(f"{explorer.meta['model_spec']['name']} at {shape}, {len(explorer.layers)} layers")
    print(f"server, POST /api/predict with every layer: {percentiles(server_time(explorer, args.repeats))}")
    if not args.no_browser:
        n = max(5, args.repeats // 3)
        print(f"stroke end -> repaint in headless chromium: {percentiles(stroke_time(explorer, n))}")


if __name__ == "__main__":
    main()
