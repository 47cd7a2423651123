"""The web app: a drawing pad page and a JSON API over the Reader (``inkdigits serve``).

    create_app(ServeSettings(...))   # the FastAPI app (tests, embedding)
    inkdigits serve --port 8000      # uvicorn with the app factory below

The model is loaded once at start-up (and once in each reader process);
images are never read on the event loop: by default in reader processes, one
per CPU core, or in worker threads with ``processes=0``. Bad input gets a 4xx
JSON body ``{"error": CODE, "detail": MESSAGE}``:

    400 empty_body / no_file / bad_request   nothing to read, or a malformed form
    413 too_large / too_many_files           body above max_upload_bytes, too many pixels,
                                             or more images than max_batch
    415 unsupported_type                     the bytes are not a PNG/JPEG/GIF/BMP/TIFF/WebP
    422 unreadable_image / invalid_parameter a corrupt image, or a bad query value
    408 timeout                              the body arrived too slowly
    422 too_slow                             reading took longer than the time limit
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from . import preprocessing as pre
from ._memory import tune_memory
from .errors import ConfigError
from .explain import occlusion
from .reader import Reader

WEB_DIR = Path(__file__).parent / "web"
ENV_PREFIX = "INKDIGITS_SERVE_"

# What the API accepts, recognised from the first bytes (never from the name or
# the declared Content-Type).
SIGNATURES: list[tuple[str, bytes, int]] = [
    ("png", b"\x89PNG\r\n\x1a\n", 0),
    ("jpeg", b"\xff\xd8\xff", 0),
    ("gif", b"GIF87a", 0),
    ("gif", b"GIF89a", 0),
    ("bmp", b"BM", 0),
    ("tiff", b"II*\x00", 0),
    ("tiff", b"MM\x00*", 0),
    ("webp", b"WEBP", 8),  # RIFF....WEBP
]


def sniff_image_type(data: bytes) -> str | None:
    """The image format named by the content's magic bytes, or None."""
    for name, magic, offset in SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if name == "webp" and data[:4] != b"RIFF":
                continue
            return name
    return None


@dataclass
class ServeSettings:
    """Server settings; each can be set as INKDIGITS_SERVE_<NAME> in the environment."""

    model: str | None = None
    """ONNX model to serve (default: the shipped model)"""
    max_upload_bytes: int = 10 * 1024 * 1024
    """largest request body accepted (enforced while the body is read)"""
    max_pixels: int = 50_000_000
    """largest image accepted, in pixels (checked before decoding)"""
    max_batch: int = 32
    """most images in one batch request"""
    timeout: float = 10.0
    """seconds a request may take, body upload included"""
    min_confidence: float = 0.5
    """default rejection threshold (each request may pass its own)"""
    threads: int = 1
    """ONNX Runtime threads per inference (requests run in parallel on top)"""
    concurrency: int = 4
    """images read at the same time; further requests wait their turn"""
    processes: int = -1
    """reader processes beside the server's event loop: -1 one per CPU core,
    0 none (read in threads of the server process)"""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = str if f.default is None else type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from None
        settings = cls(**values)
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    def validate(self) -> None:
        checks = [
            (self.max_upload_bytes > 0, "max_upload_bytes must be > 0"),
            (self.max_pixels > 0, "max_pixels must be > 0"),
            (self.max_batch >= 1, "max_batch must be >= 1"),
            (self.timeout > 0, "timeout must be > 0"),
            (0.0 <= self.min_confidence <= 1.0, "min_confidence must lie in [0, 1]"),
            (self.threads >= 1, "threads must be >= 1"),
            (self.concurrency >= 1, "concurrency must be >= 1"),
            (self.processes >= -1, "processes must be -1 (one per core), 0 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


class ApiError(Exception):
    """A client error: HTTP status, a machine-readable code and a message for people."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def __reduce__(self):  # raised in reader processes, re-raised in the server
        return (ApiError, (self.status, self.code, self.detail))


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


async def _send_error(send, status: int, code: str, detail: str) -> None:
    body = error_body(code, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class LimitsMiddleware:
    """Pure ASGI middleware: body-size limit while reading, and the per-request time limit.

    The size is checked against Content-Length first, then counted chunk by
    chunk as the body arrives (chunked uploads have no Content-Length), so an
    oversized upload is never held in memory.
    """

    def __init__(self, app, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_error(send, 400, "bad_request", "bad Content-Length")
                if declared > limit:
                    return await _send_error(send, 413, "too_large", _too_large(limit))
        state = {"received": 0, "body_done": False, "started": False}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    raise _BodyTooLarge
                if not message.get("more_body", False):
                    state["body_done"] = True
            return message

        async def tracked_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, limited_receive, tracked_send), self.timeout)
        except _BodyTooLarge:
            if not state["started"]:
                await _send_error(send, 413, "too_large", _too_large(limit))
        except TimeoutError:
            if not state["started"]:
                if state["body_done"] or scope["method"] in ("GET", "HEAD"):
                    await _send_error(
                        send, 422, "too_slow", f"reading took longer than {self.timeout:g} s"
                    )
                else:
                    await _send_error(
                        send, 408, "timeout", f"the upload took longer than {self.timeout:g} s"
                    )


def _too_large(limit: int) -> str:
    return f"request body is larger than the limit of {limit:,} bytes ({limit / 2**20:.1f} MiB)"


# --------------------------------------------------------------------------- app


def _png_data_url(img: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def heat_overlay(digit: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A 28x28 BGR image: the digit in grey with the heat map (0..1) coloured over it."""
    grey = cv2.cvtColor(digit, cv2.COLOR_GRAY2BGR).astype(np.float32) * 0.6
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET).astype(np.float32)
    alpha = heat[..., None] * 0.75
    return np.clip(grey * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


class App:
    """The state behind the routes: settings, the Reader, the inference limiter."""

    def __init__(self, settings: ServeSettings):
        tune_memory()
        self.settings = settings
        self.reader = Reader(
            settings.model,
            min_confidence=settings.min_confidence,
            threads=settings.threads,
            max_pixels=settings.max_pixels,
        )
        # Parallelism comes from reading several requests at once, so OpenCV's own
        # thread pool (which splits one small image across cores) only adds overhead.
        cv2.setNumThreads(1)
        self.limiter = anyio.CapacityLimiter(settings.concurrency)
        self.active = 0  # reads running in worker threads (some may be abandoned)
        self._lock = threading.Lock()
        # Reading is NumPy/OpenCV work with Python in between, so threads of one
        # process mostly wait for each other (the GIL); reader processes let one
        # server use every core. Spawned (not forked: ONNX Runtime holds threads).
        self.processes = settings.processes if settings.processes >= 0 else (os.cpu_count() or 1)
        self.pool = self._start_pool() if self.processes > 0 else None

    def _start_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        s, n = self.settings, self.processes
        pool = ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process,
            initargs=(s.model, s.min_confidence, s.max_pixels),
        )
        if not all(pool.map(_warm, range(n))):  # start them now, not on the first request
            raise RuntimeError("reader processes did not start")
        return pool

    async def read(self, *args) -> dict[str, Any]:
        """``read_one(reader, *args)`` off the event loop; a timed-out request abandons it."""
        if self.pool is not None:
            from concurrent.futures.process import BrokenProcessPool

            pool = self.pool
            try:
                return await asyncio.wrap_future(pool.submit(_read_in_process, *args))
            except BrokenProcessPool:  # a reader died (killed, out of memory): start afresh
                if self.pool is pool:  # the first request to notice restarts it; until
                    self.pool = None  # then requests are read in threads
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = await asyncio.to_thread(self._start_pool)
                raise

        def work():
            with self._lock:
                self.active += 1
            try:
                return read_one(self.reader, *args)
            finally:
                with self._lock:
                    self.active -= 1

        return await anyio.to_thread.run_sync(work, limiter=self.limiter, abandon_on_cancel=True)

    async def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout`` s) for reads still running, e.g. after a time-out."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def image_bytes(self, request: Request) -> list[tuple[str, bytes]]:
        """The uploaded image(s): multipart field(s) ``file``/``files``, or the raw body."""
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=self.settings.max_batch + 1, max_fields=16)
            except _BodyTooLarge:
                raise
            except Exception as exc:  # python-multipart / Starlette parse errors
                raise ApiError(400, "bad_request", f"malformed multipart form: {exc}") from None
            items = []
            try:
                for key, value in form.multi_items():
                    if key in ("file", "files") and hasattr(value, "read"):
                        items.append((value.filename or key, await value.read()))
            finally:
                await form.close()  # large parts are spooled to temporary files
            if not items:
                raise ApiError(400, "no_file", "the form has no 'file' (or 'files') part")
            return items
        body = await request.body()
        return [("body", body)]

    def check(self, name: str, data: bytes) -> None:
        if not data:
            raise ApiError(400, "empty_body", f"{name}: no image data (0 bytes)")
        if sniff_image_type(data) is None:
            raise ApiError(
                415,
                "unsupported_type",
                f"{name}: not an image (expected PNG, JPEG, GIF, BMP, TIFF or WebP content)",
            )


def read_one(
    reader: Reader, mode: str, data: bytes, min_conf: float, preview: bool, explain: bool
) -> dict[str, Any]:
    """Read one image (already checked to be an image type) into the response dict."""
    try:
        if mode == "digit":
            result = reader.read_digit(data, min_confidence=min_conf)
            out = result.to_dict()
            if preview:
                out["preprocessed"] = _png_data_url(result.image)
            if explain and result.box is not None:
                best = int(np.argmax(result.probabilities))
                heat = occlusion(reader.classify, result.image[None], np.array([best]))[0]
                out["explanation"] = _png_data_url(heat_overlay(result.image, heat))
            return out
        return reader.read_number(data, min_confidence=min_conf).to_dict()
    except pre.ImageTooLarge as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    except pre.ImageError as exc:
        raise ApiError(422, "unreadable_image", str(exc)) from None


# The reader of a reader process (see App): made once by the pool's initializer.
_PROCESS_READER: Reader | None = None


def _init_process(model: str | None, min_confidence: float, max_pixels: int) -> None:
    global _PROCESS_READER
    tune_memory()
    cv2.setNumThreads(1)
    _PROCESS_READER = Reader(model, min_confidence=min_confidence, threads=1, max_pixels=max_pixels)


def _read_in_process(*args) -> dict[str, Any]:
    assert _PROCESS_READER is not None
    return read_one(_PROCESS_READER, *args)


def _warm(_: int) -> bool:
    return _PROCESS_READER is not None


def _min_conf(value: float | None, app: App) -> float:
    if value is None:
        return app.settings.min_confidence
    if not 0.0 <= value <= 1.0:
        raise ApiError(422, "invalid_parameter", f"min_confidence must lie in [0, 1], got {value}")
    return value


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image as the raw body (any Content-Type), or a multipart form "
        "with a `file` part. The format is recognised from the content.",
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "A multipart form with one `files` part per image.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                    "required": ["files"],
                }
            }
        },
    }
}


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app: the Reader is loaded here, once."""
    settings = settings or ServeSettings()
    settings.validate()
    state = App(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        # let abandoned reads finish: native code must not be running at exit
        await state.drain(settings.timeout + 5)

    api = FastAPI(
        lifespan=lifespan,
        title="inkdigits",
        version=__version__,
        description="Read handwritten digits and numbers from images. "
        'Errors are JSON: `{"error": code, "detail": message}`.',
    )
    api.state.inkdigits = state

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "query")
            parts.append(f"{where}: {err.get('msg')}")
        return JSONResponse(
            {"error": "invalid_parameter", "detail": "; ".join(parts)}, status_code=422
        )

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def read_single(request: Request, mode: str, min_conf, preview, explain):
        mc = _min_conf(min_conf, state)
        [(name, data)] = (await state.image_bytes(request))[:1]
        state.check(name, data)
        # a JSONResponse skips FastAPI's jsonable_encoder: the dict is plain JSON already
        return JSONResponse(await state.read(mode, data, mc, preview, explain))

    async def read_batch(request: Request, mode: str, min_conf):
        mc = _min_conf(min_conf, state)
        items = await state.image_bytes(request)
        if len(items) > settings.max_batch:
            raise ApiError(
                413, "too_many_files", f"{len(items)} images; at most {settings.max_batch}"
            )
        results = []
        for name, data in items:
            try:
                state.check(name, data)
                out = await state.read(mode, data, mc, False, False)
                results.append({"file": name, **out})
            except ApiError as exc:
                results.append({"file": name, "error": exc.code, "detail": exc.detail})
        return JSONResponse({"results": results})

    conf_q = Query(None, description="report digits below this confidence as unknown")

    @api.post("/api/v1/digits", openapi_extra=IMAGE_BODY, tags=["read"])
    async def digits(
        request: Request,
        min_confidence: float | None = conf_q,
        preview: bool = Query(False, description="add the 28x28 the model saw, as a PNG data URL"),
        explain: bool = Query(False, description="add an occlusion heat map, as a PNG data URL"),
    ):
        """One digit: the digit (null if unknown), calibrated confidence, the 10 probabilities."""
        return await read_single(request, "digit", min_confidence, preview, explain)

    @api.post("/api/v1/numbers", openapi_extra=IMAGE_BODY, tags=["read"])
    async def numbers(request: Request, min_confidence: float | None = conf_q):
        """Every digit, line by line: the number(s), per-digit boxes, digits and confidences."""
        return await read_single(request, "number", min_confidence, False, False)

    @api.post("/api/v1/digits/batch", openapi_extra=BATCH_BODY, tags=["read"])
    async def digits_batch(request: Request, min_confidence: float | None = conf_q):
        """Several images, one digit each; a bad image gets an error entry, not a failed request."""
        return await read_batch(request, "digit", min_confidence)

    @api.post("/api/v1/numbers/batch", openapi_extra=BATCH_BODY, tags=["read"])
    async def numbers_batch(request: Request, min_confidence: float | None = conf_q):
        """Several images, each read as a number; bad images get error entries."""
        return await read_batch(request, "number", min_confidence)

    @api.get("/api/v1/model", tags=["model"])
    async def model_card():
        """The model card (architecture, accuracy, calibration, checksums) and what is served."""
        clf = state.reader.classifier
        serving = {
            "file": clf.path.name,
            "precision": clf.precision,
            "temperature": clf.temperature,
        }
        return {**state.reader.card, "serving": serving}

    @api.get("/healthz", tags=["model"])
    async def healthz():
        return {"status": "ok", "version": __version__}

    @api.get("/", include_in_schema=False)
    async def index():
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    api.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug: say so, keep serving
        return JSONResponse(
            {"error": "internal", "detail": f"internal error ({type(exc).__name__})"},
            status_code=500,
        )

    api.add_middleware(
        LimitsMiddleware, max_bytes=settings.max_upload_bytes, timeout=settings.timeout
    )
    return api


def app_from_env() -> FastAPI:
    """uvicorn factory: ``uvicorn --factory inkdigits.serve:app_from_env``."""
    return create_app(ServeSettings.from_env())
