"""The explorer's ASGI app (Starlette) and the uvicorn server that runs it.

Routes::

    GET  /                  the page (static/index.html)
    GET  /static/NAME       its script and style (a fixed list: nothing else is served)
    GET  /api/model         the model: name, input shape, classes, layers (name, type, shape)
    POST /api/predict       {"image": H x W or C x H x W list in [0, 1]} | {"test_index": k}
                            | an image file body (Content-Type image/png, image/jpeg, ...;
                            the other fields then go in the query: ?layer=features.0&channel=3)
                            -> probabilities, prediction, the input as the network receives
                            it, every layer's output
    POST /api/unit          the same input plus {"layer", "channel", "y", "x"} -> the infobox
    POST /api/method        the same input plus {"method", "target", "eps", "layer", "channel"}
                            -> a viz method's result (cnnlab.explore.methods)
    GET  /api/train         the training state, the models and datasets the page may train
    POST /api/train         {"model", "dataset", "lr", "batch_size", "epochs"} (all optional):
                            start a run in a new folder under the runs root
    POST /api/train/control {"action": "pause" | "resume" | "stop" | "lr", "lr": ...}
    GET  /api/train/events  server-sent events: status, step, epoch, snapshot, model
                            (cnnlab.explore.training); ``?once=1`` sends those so far and ends

Bound to 127.0.0.1 by default.  On another host every request needs the token printed
in the URL (``?token=...``, kept in a same-site cookie by the page), as Jupyter does;
on loopback the Host header must name a loopback host (no DNS rebinding).
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import json
import secrets
import socket
from importlib import resources
from pathlib import Path
from typing import Any

from cnnlab.explore.api import (
    IMAGE_TYPES,
    MAX_JSON_BYTES,
    MAX_UPLOAD_BYTES,
    ApiError,
    image_from_json,
    image_from_upload,
    int_field,
    parse_json,
    read_body,
)

__all__ = ["create_app", "serve", "bind", "is_loopback", "STATIC_FILES"]

#: the only files served under /static/ (name -> content type)
STATIC_FILES = {"explore.js": "text/javascript; charset=utf-8", "explore.css": "text/css; charset=utf-8"}
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]", "testserver")
_SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                     "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                                "style-src 'self'; script-src 'self'; connect-src 'self'"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.cache
def _static(name: str) -> bytes:
    """A file of ``static/``, read once (only names in :data:`STATIC_FILES` and index.html reach here)."""
    return resources.files("cnnlab.explore").joinpath("static", name).read_bytes()


class _Shown:
    """The explorer the page shows: replaced when a run trains (or is followed)."""

    def __init__(self, explorer) -> None:
        self.explorer = explorer


def create_app(explorer, token: str | None = None, runs_root: str | Path = "runs",
               follow: bool | None = None, stopping=lambda: False):
    """The Starlette app serving ``explorer`` (a :class:`cnnlab.explore.session.Explorer`).
    With ``token`` every request must carry it; without, only loopback Host headers pass.
    Runs started from the page go into new folders under ``runs_root``; ``follow``
    (default: when ``explorer`` is a run folder without its model.npz yet) follows the run
    another process is writing.  Event streams end once ``stopping()`` is true (the
    server is shutting down), so Ctrl-C does not wait for an open page."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    from cnnlab.data import DATASET_NAMES
    from cnnlab.explore.methods import run_method
    from cnnlab.explore.training import EventLog, LiveTraining, RunFollower
    from cnnlab.explore.units import unit_info
    from cnnlab.models import list_models
    from cnnlab.training.config import DATASET_DEFAULTS

    shown = _Shown(explorer)
    events = EventLog()
    trainer = LiveTraining(shown, Path(runs_root), events)
    if follow is None:
        follow = explorer.in_progress and explorer.run_dir is not None
    if follow:
        trainer.state = "following"
        RunFollower(shown, explorer.run_dir, events).start()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=_SECURITY_HEADERS)

    def ok(payload: Any) -> JSONResponse:
        return JSONResponse(payload, headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"})

    async def page(request: Request) -> Response:
        return Response(_static("index.html"), media_type="text/html; charset=utf-8",
                        headers=_SECURITY_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return error(404, f"no such file: /static/{name}")
        return Response(_static(name), media_type=STATIC_FILES[name], headers=_SECURITY_HEADERS)

    async def model(request: Request) -> Response:
        return ok(await asyncio.to_thread(shown.explorer.describe))

    async def input_of(request: Request, fields: dict[str, Any] | None = None
                       ) -> tuple[Any, dict[str, Any], int | None]:
        """(image or None, the JSON fields, test label) of a predict / unit / method request
        (``fields``: its JSON body, when already read)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if fields is None and ctype in IMAGE_TYPES:
            body = await read_body(request, MAX_UPLOAD_BYTES)
            fields = {k: _query_value(v) for k, v in request.query_params.items()}   # ?layer=..&channel=3
            fields["invert"] = fields.get("invert") in (1, True)
            return await asyncio.to_thread(image_from_upload, body), fields, None
        if ctype not in ("application/json", ""):
            raise ApiError(415, f"send JSON (application/json) or an image file ({', '.join(IMAGE_TYPES)}), "
                                f"got {ctype}")
        if fields is None:
            fields = parse_json(await read_body(request, MAX_JSON_BYTES))
        if "test_index" in fields:
            n = shown.explorer.test_count()
            if not n:
                raise ApiError(400, "this model has no test images (an untrained zoo model): send an image")
            raw, label = shown.explorer.test_image(int_field(fields, "test_index", hi=n - 1))
            return raw, fields, label
        if "image" not in fields:
            raise ApiError(400, "the body needs an 'image' (H x W or C x H x W list of numbers in [0, 1]) "
                                "or a 'test_index'")
        return image_from_json(fields["image"]), fields, None

    def flag(fields: dict[str, Any], key: str) -> bool:
        v = fields.get(key, False)
        if not isinstance(v, bool):
            raise ApiError(400, f"{key!r} must be true or false, got {v!r}")
        return v

    async def predict(request: Request) -> Response:
        image, fields, label = await input_of(request)
        pages = fields.get("pages") or {}
        if not isinstance(pages, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                  for v in pages.values()):
            raise ApiError(400, "'pages' must map layer names to channel offsets (integers)")
        out = await asyncio.to_thread(shown.explorer.predict, image, flag(fields, "invert"), pages,
                                      "the test image" if label is not None else "the image")
        out["label"] = label
        return ok(out)

    async def unit(request: Request) -> Response:
        image, fields, _ = await input_of(request)
        ex = shown.explorer
        name = fields.get("layer")
        if not isinstance(name, str):
            raise ApiError(400, "'layer' must be a layer name (see GET /api/model)")
        layer = ex.layer(name)
        channel = int_field(fields, "channel", hi=layer.shape[0] - 1)
        y = int_field(fields, "y", 0, hi=layer.shape[1] - 1) if len(layer.shape) == 3 else 0
        x = int_field(fields, "x", 0, hi=layer.shape[2] - 1) if len(layer.shape) == 3 else 0
        _, model_input, _, _ = await asyncio.to_thread(ex.to_input, image, flag(fields, "invert"))
        return ok(await asyncio.to_thread(unit_info, ex, model_input, name, channel, y, x))

    async def method(request: Request) -> Response:
        ex = shown.explorer
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        image = x = raw = None
        if ctype in IMAGE_TYPES:          # an uploaded file, the method's fields in the query
            image, fields, _ = await input_of(request)
        else:                             # filters, class_model and top9 need no input
            fields = parse_json(await read_body(request, MAX_JSON_BYTES))
            if "image" in fields or "test_index" in fields:
                image, fields, _ = await input_of(request, fields)
        if image is not None:
            raw, x, _, _ = await asyncio.to_thread(ex.to_input, image, flag(fields, "invert"))
        name = fields.get("method")

        def progress(done: int, total: int) -> None:
            events.add("progress", task=name, done=done, total=total)
        return ok(await asyncio.to_thread(run_method, ex, fields, x, raw, progress))

    async def train_state(request: Request) -> Response:
        return ok({**trainer.status(), "models": list_models(), "datasets": list(DATASET_NAMES),
                   "defaults": {"model": None, "dataset": "digits", "lr": DATASET_DEFAULTS["digits"]["lr"],
                                "batch_size": DATASET_DEFAULTS["digits"]["batch_size"], "epochs": 5}})

    async def train_start(request: Request) -> Response:
        fields = parse_json(await read_body(request, MAX_JSON_BYTES))
        return ok(await asyncio.to_thread(trainer.start, fields))

    async def train_control(request: Request) -> Response:
        return ok(trainer.control(parse_json(await read_body(request, MAX_JSON_BYTES))))

    async def train_events(request: Request) -> Response:
        after = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        if not after.isdigit():
            raise ApiError(400, f"'after' (or Last-Event-ID) must be an event id, got {after[:20]!r}")
        once = request.query_params.get("once") in ("1", "true")

        async def stream():
            last, quiet = int(after), 0.0
            while True:
                batch = events.after(last)
                for e in batch:
                    last = e["id"]
                    yield f"id: {last}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n"
                if once or stopping():
                    return
                if batch:
                    quiet = 0.0
                    continue
                await asyncio.sleep(0.1)
                quiet += 0.1
                if quiet >= 15:            # a comment line keeps proxies from closing the stream
                    quiet = 0.0
                    yield ": keep-alive\n\n"
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**_SECURITY_HEADERS, "Cache-Control": "no-store"})

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return error(exc.status, str(exc))
        return error(400, str(exc))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return error(status, f"{request.method} {request.url.path}: "
                             + ("no such page" if status == 404 else "not allowed here"))

    async def guard(scope, receive, send, app):
        """Token (non-loopback) or loopback Host (loopback) before anything else."""
        from starlette.datastructures import Headers, QueryParams

        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = Headers(scope=scope)
        if token is None:
            host = headers.get("host", "").rsplit(":", 1)[0] if "]" not in headers.get("host", "") \
                else headers.get("host", "").split("]")[0] + "]"
            if host not in _LOOPBACK_NAMES:
                return await error(403, f"Host {host!r} is not a loopback name")(scope, receive, send)
            return await app(scope, receive, send)
        given = (QueryParams(scope.get("query_string", b"").decode("latin-1")).get("token")
                 or headers.get("x-cnnlab-token") or _cookie(headers.get("cookie", ""), "cnnlab_token"))
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return await error(403, "a token is required: open the URL the command printed")(
                scope, receive, send)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start" and scope["path"] == "/":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"set-cookie", f"cnnlab_token={token}; Path=/; HttpOnly; SameSite=Strict".encode())]
            await send(message)
        return await app(scope, receive, send_with_cookie)

    routes = [Route("/", page), Route("/static/{name}", static), Route("/api/model", model),
              Route("/api/predict", predict, methods=["POST"]), Route("/api/unit", unit, methods=["POST"]),
              Route("/api/method", method, methods=["POST"]),
              Route("/api/train", train_state), Route("/api/train", train_start, methods=["POST"]),
              Route("/api/train/control", train_control, methods=["POST"]),
              Route("/api/train/events", train_events)]
    inner = Starlette(routes=routes, exception_handlers={ValueError: on_error, FileNotFoundError: on_error,
                                                         404: not_found, 405: not_found})

    async def app(scope, receive, send):
        await guard(scope, receive, send, inner)
    return app


def _query_value(v: str) -> Any:
    """A query parameter as the JSON value it spells (``3``, ``0.25``, ``true``), else the text."""
    try:
        return json.loads(v)
    except ValueError:
        return v


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def serve(explorer, host: str = "127.0.0.1", port: int = 8000, announce=print) -> None:
    """Run the explorer on uvicorn until Ctrl-C; a non-loopback ``host`` gets a token."""
    import uvicorn

    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    sock = bind(host, port)      # before the URL is announced: a taken port is an OSError here
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/"
    if token:
        url += f"?token={token}"
    announce(f"cnnlab explore: {explorer.source} at {url}  (Ctrl-C stops)")
    server = uvicorn.Server(uvicorn.Config(
        create_app(explorer, token, stopping=lambda: server.should_exit),
        log_level="warning", timeout_graceful_shutdown=2))
    with sock:
        server.run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); OSError naming the address when it is
    taken or not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, e.strerror, f"{host}:{port}") from e
    return sock
