"""The REST API against the real app (FastAPI TestClient, the shipped model)."""

from __future__ import annotations

import base64
import io
import json

import cv2
import numpy as np
import pytest
from conftest import paper
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from inkdigits.classifier import load_card, shipped_model_path  # noqa: E402
from inkdigits.errors import ConfigError  # noqa: E402
from inkdigits.serve import ServeSettings, create_app, sniff_image_type  # noqa: E402

DIGIT_FIELDS = {"digit", "confidence", "probabilities", "box", "reason"}
NUMBER_FIELDS = {"number", "lines", "confidence", "digits", "count_confidences", "reason"}
LIMITS = dict(max_upload_bytes=300_000, max_pixels=1_000_000, max_batch=4)


def png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def drawn_seven() -> bytes:
    """A 7 drawn like on the page's pad: black strokes on a white 280x280 canvas."""
    img = np.full((280, 280, 3), 255, np.uint8)
    cv2.line(img, (80, 60), (200, 60), (0, 0, 0), 18, cv2.LINE_AA)
    cv2.line(img, (200, 60), (120, 235), (0, 0, 0), 18, cv2.LINE_AA)
    return png(img)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeSettings(**LIMITS))) as c:
        yield c


@pytest.fixture(scope="module")
def number_png(mnist) -> tuple[bytes, str]:
    idx = [3, 2, 1]
    label = "".join(str(int(mnist.test_labels[i])) for i in idx)
    row = np.concatenate([paper(mnist.test_images[i], size=120) for i in idx], axis=1)
    return png(row), label


def error_of(resp, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == code
    return body["detail"]


# ---------------------------------------------------------------------------- good requests


def test_healthz_and_model_card(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    card = client.get("/api/v1/model").json()
    shipped = load_card(shipped_model_path())
    assert card["model"]["name"] == shipped["model"]["name"]
    assert card["int8"]["sha256"] == shipped["int8"]["sha256"]
    assert card["serving"] == {
        "file": "model-int8.onnx",
        "precision": "int8",
        "temperature": shipped["int8"]["calibration"]["temperature"],
    }


@pytest.mark.parametrize("how", ["raw", "multipart", "raw-wrong-type"])
def test_digit_endpoint(client, how):
    data = drawn_seven()
    if how == "raw":
        resp = client.post("/api/v1/digits", content=data, headers={"content-type": "image/png"})
    elif how == "multipart":
        resp = client.post("/api/v1/digits", files={"file": ("seven.png", data, "image/png")})
    else:  # the type is taken from the content, not from the name or the declared type
        resp = client.post("/api/v1/digits", files={"file": ("seven.jpg", data, "text/plain")})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == DIGIT_FIELDS
    assert body["digit"] == 7 and body["reason"] is None
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1) < 1e-3
    assert body["confidence"] == max(body["probabilities"]) > 0.9
    x, y, w, h = body["box"]
    assert 60 <= x <= 100 and 40 <= y <= 70 and 100 <= w <= 160 and 160 <= h <= 210


def test_digit_preview_and_explanation(client):
    resp = client.post("/api/v1/digits?preview=true&explain=true", content=drawn_seven())
    body = resp.json()
    assert set(body) == DIGIT_FIELDS | {"preprocessed", "explanation"}
    for key, shape in [("preprocessed", (28, 28)), ("explanation", (28, 28, 3))]:
        head, b64 = body[key].split(",", 1)
        assert head == "data:image/png;base64"
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))
        assert img.shape == shape
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["preprocessed"].split(",")[1]))))
    assert seen.max() == 255 and seen[0].max() == 0  # MNIST style: white ink, empty border


def test_blank_canvas_is_no_digit(client):
    blank = png(np.full((280, 280, 3), 255, np.uint8))
    body = client.post("/api/v1/digits", content=blank).json()
    assert body["digit"] is None and "no digit" in body["reason"] and body["box"] is None


def test_min_confidence_per_request(client):
    body = client.post("/api/v1/digits?min_confidence=1", content=drawn_seven()).json()
    assert body["digit"] is None and body["reason"].startswith("not sure")


def test_number_endpoint(client, number_png):
    data, label = number_png
    resp = client.post("/api/v1/numbers", files={"file": ("n.png", data, "image/png")})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == NUMBER_FIELDS
    assert body["number"] == label and body["lines"] == [label]
    boxes = [d["box"] for d in body["digits"][0]]
    assert [set(d) for d in body["digits"][0]] == [DIGIT_FIELDS] * 3
    # left to right, each box inside its own 120-px tile
    assert [b[0] // 120 for b in boxes] == [0, 1, 2]


def test_batch_endpoints_report_bad_items_without_failing(client, number_png):
    files = [
        ("files", ("seven.png", drawn_seven(), "image/png")),
        ("files", ("notes.txt", b"hello", "text/plain")),
        ("files", ("number.png", number_png[0], "image/png")),
    ]
    body = client.post("/api/v1/digits/batch", files=files).json()
    assert [r["file"] for r in body["results"]] == ["seven.png", "notes.txt", "number.png"]
    assert body["results"][0]["digit"] == 7
    assert body["results"][1]["error"] == "unsupported_type"
    numbers = client.post("/api/v1/numbers/batch", files=files).json()["results"]
    assert numbers[0]["number"] == "7" and numbers[2]["number"] == number_png[1]


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    for path in [
        "/api/v1/digits",
        "/api/v1/numbers",
        "/api/v1/digits/batch",
        "/api/v1/numbers/batch",
        "/api/v1/model",
        "/healthz",
    ]:
        assert path in spec["paths"], path
    body = spec["paths"]["/api/v1/digits"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/png" in body
    assert client.get("/docs").status_code == 200


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="pad"' in page.text
    for name in ["app.js", "style.css"]:
        assert client.get(f"/static/{name}").status_code == 200
    # works offline: nothing is loaded from another host
    assert "http://" not in page.text.replace("http://www.w3.org", "")
    assert "https://" not in page.text


# ---------------------------------------------------------------------------- bad requests


def _truncated_png() -> bytes:
    return drawn_seven()[:200]


BAD_REQUESTS = [
    # (name, how to send, expected status, expected code)
    ("empty body", dict(content=b""), 400, "empty_body"),
    ("text as raw body", dict(content=b"just some words"), 415, "unsupported_type"),
    (
        "text named .png with image/png",
        dict(files={"file": ("x.png", b"not really a png", "image/png")}),
        415,
        "unsupported_type",
    ),
    ("truncated png", dict(content=_truncated_png()), 422, "unreadable_image"),
    ("png magic then garbage", dict(content=b"\x89PNG\r\n\x1a\n" + b"x" * 100), 422,
     "unreadable_image"),
    ("body too large", dict(content=b"\x89PNG\r\n\x1a\n" + bytes(400_000)), 413, "too_large"),
    (
        "chunked body too large",
        dict(content=lambda: iter([b"\x89PNG\r\n\x1a\n"] + [bytes(50_000)] * 10)),
        413,
        "too_large",
    ),
    ("too many pixels", dict(content=png(np.zeros((1500, 1000), np.uint8))), 413, "too_large"),
    ("form without a file", dict(data={"note": "hi"}, files={"other": ("a", b"b")}), 400,
     "no_file"),
    (
        "malformed multipart",
        dict(content=b"--xyz\r\nnonsense", headers={"content-type": "multipart/form-data"}),
        400,
        "bad_request",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, kwargs, status, code", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
@pytest.mark.parametrize("endpoint", ["/api/v1/digits", "/api/v1/numbers"])
def test_bad_requests_get_clear_4xx(client, endpoint, name, kwargs, status, code):
    kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}  # fresh generators
    detail = error_of(client.post(endpoint, **kwargs), status, code)
    assert detail and "Traceback" not in detail
    # the worker is still alive and reading
    assert client.post("/api/v1/digits", content=drawn_seven()).json()["digit"] == 7


@pytest.mark.parametrize(
    "query, message",
    [("min_confidence=2", "must lie in [0, 1]"), ("min_confidence=abc", "min_confidence")],
)
def test_bad_parameters(client, query, message):
    detail = error_of(
        client.post(f"/api/v1/digits?{query}", content=drawn_seven()), 422, "invalid_parameter"
    )
    assert message in detail


def test_too_many_files_in_a_batch(client):
    files = [("files", (f"{i}.png", drawn_seven(), "image/png")) for i in range(5)]
    assert "at most 4" in error_of(
        client.post("/api/v1/digits/batch", files=files), 413, "too_many_files"
    )


def test_unknown_route_and_method_are_json(client):
    error_of(client.get("/api/v1/nothing"), 404, "not_found")
    error_of(client.get("/api/v1/digits"), 405, "method_not_allowed")


def test_time_limit_gives_4xx_and_the_app_keeps_serving():
    settings = ServeSettings(timeout=0.05, max_pixels=50_000_000)
    noise = np.random.default_rng(0).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    noise = cv2.resize(noise, (2500, 2500), interpolation=cv2.INTER_NEAREST)  # compresses well
    app = create_app(settings)
    with TestClient(app) as c:
        detail = error_of(c.post("/api/v1/numbers", content=png(noise)), 422, "too_slow")
        assert "0.05 s" in detail
        assert c.get("/healthz").status_code == 200
    # shutting down waited for the abandoned read (no native code running at exit)
    assert app.state.inkdigits.active == 0


def test_sniffing_recognises_common_formats():
    img = Image.new("L", (8, 8))
    for fmt, name in [("PNG", "png"), ("JPEG", "jpeg"), ("GIF", "gif"), ("BMP", "bmp"),
                      ("TIFF", "tiff"), ("WEBP", "webp")]:  # fmt: skip
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        assert sniff_image_type(buf.getvalue()) == name
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff_image_type(b"%PDF-1.7") is None


def test_settings_from_environment():
    env = {"INKDIGITS_SERVE_MAX_UPLOAD_BYTES": "1234", "INKDIGITS_SERVE_TIMEOUT": "2.5"}
    s = ServeSettings.from_env(env)
    assert s.max_upload_bytes == 1234 and s.timeout == 2.5 and s.max_pixels == 50_000_000
    assert ServeSettings.from_env(s.to_env()) == s
    with pytest.raises(ConfigError, match="INKDIGITS_SERVE_TIMEOUT='soon' is not a valid float"):
        ServeSettings.from_env({"INKDIGITS_SERVE_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="min_confidence must lie in"):
        ServeSettings.from_env({"INKDIGITS_SERVE_MIN_CONFIDENCE": "3"})


def test_model_card_is_json_serialisable(client):
    assert json.loads(client.get("/api/v1/model").content)["metrics"]["test_accuracy"] > 0.99


def test_a_shipped_model_is_served_by_name():
    with TestClient(create_app(ServeSettings(model="checks", processes=0))) as c:
        card = c.get("/api/v1/model").json()
        assert [r["file"] for r in card["data"]["extra_digits"]][-1] == "orand-crops.npz"
        assert c.post("/api/v1/digits", content=drawn_seven()).json()["digit"] == 7


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "--model", "nowhere.onnx"], "model nowhere.onnx: no such file"),
        (["serve", "--port", "0"], "must be >= 1"),
        (["serve", "--min-confidence", "1.5"], "must lie in [0, 1]"),
    ],
)
def test_serve_cli_errors(run_cli, argv, message):
    code, out, err = run_cli(*argv)
    assert code in (1, 2) and message in err and "Traceback" not in err


def test_a_killed_reader_process_is_replaced():
    """A reader process that dies costs one request a 500, never the server."""
    import os
    import signal
    import time

    app = create_app(ServeSettings(processes=1))
    state = app.state.inkdigits
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.post("/api/v1/digits", content=drawn_seven()).json()["digit"] == 7
        [pid] = list(state.pool._processes)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        first = c.post("/api/v1/digits", content=drawn_seven())
        assert first.status_code in (200, 500)
        assert first.headers["content-type"] == "application/json"
        for _ in range(3):  # a fresh reader process answers from now on
            assert c.post("/api/v1/digits", content=drawn_seven()).json()["digit"] == 7
        assert pid not in state.pool._processes
