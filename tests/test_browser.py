"""The drawing pad page in a real headless Chromium (Debian's), driven by Playwright.

Strokes are drawn with real mouse events; screenshots are kept in
test-artifacts/browser/. Needs /usr/bin/chromium (`make test` installs it);
set INKDIGITS_CHROMIUM to use another binary.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

import pytest
from conftest import REPO

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("INKDIGITS_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "browser"

# Strokes in pad pixels (the digit pad is 280x280, the number pad 840x280).
ONE = [[(150, 45), (150, 240)]]
SEVEN = [[(75, 55), (205, 55), (125, 240)]]
ZERO = [
    [
        (140 + 62 * math.sin(2 * math.pi * t / 48), 140 - 92 * math.cos(2 * math.pi * t / 48))
        for t in range(49)
    ]
]
FOUR = [[(105, 45), (70, 165), (190, 165)], [(160, 95), (160, 245)]]


def shifted(strokes, dx: float):
    return [[(x + dx, y) for x, y in s] for s in strokes]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium (make test does this)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(live_server + "/")
    pg.wait_for_function("window.inkdigits !== undefined")
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def draw(pg, strokes) -> None:
    """Draw strokes on the pad with the mouse, then wait for the pen-up result."""
    before = pg.evaluate("window.inkdigits.latencies.length")
    box = pg.locator("#pad").bounding_box()
    size = pg.evaluate(
        "[document.getElementById('pad').width, document.getElementById('pad').height]"
    )
    sx, sy = box["width"] / size[0], box["height"] / size[1]
    for stroke in strokes:
        x0, y0 = stroke[0]
        pg.mouse.move(box["x"] + x0 * sx, box["y"] + y0 * sy)
        pg.mouse.down()
        for (xa, ya), (xb, yb) in zip(stroke, stroke[1:], strict=False):
            n = max(2, int(math.hypot(xb - xa, yb - ya) / 8))
            pg.mouse.move(box["x"] + xb * sx, box["y"] + yb * sy, steps=n)
        pg.mouse.up()
        pg.wait_for_function(f"window.inkdigits.latencies.length > {before}")
        before += 1


def answer(pg) -> str:
    return pg.locator("#answer").inner_text().strip()


@pytest.mark.parametrize("name, strokes, want", [("1", ONE, "1"), ("7", SEVEN, "7"),
                                                  ("0", ZERO, "0"), ("4", FOUR, "4")])  # fmt: skip
def test_draw_a_digit(page, name, strokes, want):
    draw(page, strokes)
    page.screenshot(path=str(SHOTS / f"digit-{name}.png"))
    assert answer(page) == want
    assert page.locator("#confidence").inner_text().endswith("% sure")
    assert page.locator("#hint").is_hidden()
    # ten bars, the answer's the highest
    assert page.locator("#bars li").count() == 10
    assert page.locator("#bars li.best").get_attribute("data-digit") == want
    # the winning bar is drawn (most of its track filled)
    page.wait_for_function(
        """() => { const li = document.querySelector('#bars li.best');
                   return li.querySelector('.fill').getBoundingClientRect().width >
                          0.8 * li.querySelector('.track').getBoundingClientRect().width; }"""
    )
    # what the model sees: a 28x28 PNG
    src = page.locator("#seen").get_attribute("src")
    assert src.startswith("data:image/png;base64,")
    assert page.evaluate("document.getElementById('seen').naturalWidth") == 28


def test_live_prediction_while_drawing(page):
    """A result shows up before the pen is lifted (the throttled live request)."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    page.mouse.down()
    for i in range(1, 30):
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40 + i * 7)
        time.sleep(0.02)
    page.wait_for_function("document.getElementById('answer').dataset.state !== 'empty'")
    assert page.evaluate("window.inkdigits.latencies.length") == 0  # pen still down
    page.mouse.up()
    page.wait_for_function("window.inkdigits.latencies.length === 1")
    assert answer(page) == "1"


def test_undo_and_clear(page):
    draw(page, SEVEN)
    assert answer(page) == "7"
    draw(page, [[(60, 250), (230, 250)]])  # a stray underline
    page.click("#undo")
    page.wait_for_function("window.inkdigits.latencies.length === 3")
    assert answer(page) == "7"
    page.click("#clear")
    assert answer(page) == "–"
    assert page.locator("#confidence").inner_text() == "Draw to start"


def test_scribble_is_not_sure(page):
    blob = [[(100 + 80 * (i % 2), 60 + i * 4) for i in range(45)]]  # a dense zigzag block
    draw(page, blob)
    page.screenshot(path=str(SHOTS / "not-sure.png"))
    assert answer(page) == "?"
    assert page.locator("#confidence").inner_text() == "Not sure"


def test_explain_view(page):
    assert page.locator("#heat-figure").is_hidden()
    page.check("#explain-toggle")
    draw(page, SEVEN)
    page.wait_for_function("document.getElementById('heat').naturalWidth === 28")
    assert page.locator("#heat-figure").is_visible()
    page.screenshot(path=str(SHOTS / "explain.png"))


def test_number_mode(page):
    page.click("#mode-number")
    assert page.evaluate("document.getElementById('pad').width") == 840
    strokes = shifted(ONE, 0) + shifted(FOUR, 270) + shifted(SEVEN, 540)
    draw(page, strokes)
    page.screenshot(path=str(SHOTS / "number-147.png"))
    assert answer(page) == "147"
    assert page.locator("#answer").get_attribute("data-state") == "sure"
    assert page.locator("#reason").inner_text() == ""
    assert page.locator("#digit-list li").count() == 3
    # a box per digit drawn on the overlay: some blue pixels above each digit
    painted = page.evaluate(
        """() => { const c = document.getElementById('overlay').getContext('2d');
                   return [150, 410, 665].map(x => c.getImageData(x - 110, 0, 220, 280).data
                       .some((v, i) => i % 4 === 3 && v > 0)); }"""
    )
    assert painted == [True, True, True]


def doubt_the_count(route) -> None:
    """Pass the server's answer on as if its two models had counted the digits differently."""
    response = route.fetch()
    data = response.json()
    data["count_confidences"] = [0.72 for _ in data["lines"]]
    route.fulfill(response=response, json=data)


def test_a_number_whose_digit_count_is_in_doubt_says_so(page):
    page.route("**/api/v1/numbers", doubt_the_count)
    page.click("#mode-number")
    draw(page, shifted(ONE, 0) + shifted(FOUR, 270) + shifted(SEVEN, 540))
    assert answer(page) == "147"
    assert page.locator("#answer").get_attribute("data-state") == "partly"
    assert page.locator("#reason").inner_text() == "a digit may be missing or extra"
    page.set_input_files("#file-input", str(REPO / "examples" / "postcode.png"))
    page.wait_for_function("document.getElementById('upload-answer').textContent.includes('sure')")
    text = page.locator("#upload-answer").inner_text()
    assert text.startswith("10046") and text.endswith("sure; a digit may be missing or extra)")


def test_upload_shows_the_annotated_result(page):
    page.set_input_files("#file-input", str(REPO / "examples" / "postcode.png"))
    page.wait_for_function("document.getElementById('upload-answer').textContent.includes('sure')")
    assert page.locator("#upload-answer").inner_text().startswith("10046")
    assert page.locator("#upload-canvas").is_visible()
    assert page.evaluate("document.getElementById('upload-canvas').width") > 0
    page.locator("#drop").screenshot(path=str(SHOTS / "upload.png"))


def test_drag_and_drop_and_a_bad_file(page):
    data = (REPO / "examples" / "pad_digit.png").read_bytes()
    page.evaluate(
        """(bytes) => { const dt = new DataTransfer();
             dt.items.add(new File([new Uint8Array(bytes)], 'pad.png', {type: 'image/png'}));
             document.getElementById('drop').dispatchEvent(
                 new DragEvent('drop', {dataTransfer: dt, bubbles: true})); }""",
        list(data),
    )
    page.wait_for_function("document.getElementById('upload-answer').textContent.includes('sure')")
    assert page.locator("#upload-answer").inner_text().startswith("8")
    page.set_input_files(
        "#file-input", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"hello"}]
    )
    page.wait_for_function("document.getElementById('upload-answer').classList.contains('error')")
    assert "not an image" in page.locator("#upload-answer").inner_text()


def test_phone_layout(browser, live_server):
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    pg = ctx.new_page()
    pg.goto(live_server + "/")
    pg.wait_for_function("window.inkdigits !== undefined")
    # nothing wider than the screen; the pad fills the width
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    assert pg.locator("#pad").bounding_box()["width"] > 300
    assert pg.locator("#camera-input").get_attribute("capture") == "environment"
    pg.wait_for_function("document.getElementById('model-info').textContent.includes('MNIST')")
    assert "int8" in pg.locator("#model-info").inner_text()
    pg.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
    ctx.close()


def test_slow_upload_gets_408(live_server):
    """A client that stops sending its body is cut off at the time limit with a JSON 408."""
    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/digits HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 1000\r\n\r\n\x89PNG\r\n\x1a\n"
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 408")
    assert b'"error": "timeout"' in reply
