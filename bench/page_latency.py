"""Pen-up to answer on screen, measured in the browser (headless Chromium from Debian).

    python bench/page_latency.py --draws 30

Starts `inkdigits serve`, opens the page, draws digits with real mouse
strokes and reads the page's own measurement: the time from the pointerup
event to the moment the answer for the finished drawing is rendered
(`window.inkdigits.latencies`, in ms).
"""

from __future__ import annotations

import argparse
import math
import signal
import statistics

from playwright.sync_api import sync_playwright
from serve_load import free_port, start_server

DIGITS = {
    "1": [[(150, 45), (150, 240)]],
    "7": [[(75, 55), (205, 55), (125, 240)]],
    "0": [
        [
            (140 + 62 * math.sin(2 * math.pi * t / 48), 140 - 92 * math.cos(2 * math.pi * t / 48))
            for t in range(49)
        ]
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url + "/")
            page.wait_for_function("window.inkdigits !== undefined")
            box = page.locator("#pad").bounding_box()
            s = box["width"] / 280
            read = []
            names = list(DIGITS)
            for i in range(args.draws + 2):  # the first two are warm-up
                name = names[i % len(names)]
                page.click("#clear")
                for stroke in DIGITS[name]:
                    page.mouse.move(box["x"] + stroke[0][0] * s, box["y"] + stroke[0][1] * s)
                    page.mouse.down()
                    for x, y in stroke[1:]:
                        page.mouse.move(box["x"] + x * s, box["y"] + y * s, steps=4)
                    page.mouse.up()
                    page.wait_for_function(f"window.inkdigits.latencies.length > {i}")
                read.append(page.locator("#answer").inner_text().strip() == name)
            lat = page.evaluate("window.inkdigits.latencies")[2:]
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    lat_sorted = sorted(lat)
    p95 = lat_sorted[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    print(
        f"{len(lat)} drawings: pen-up to answer median {statistics.median(lat):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(lat):.1f} ms; read correctly {sum(read[2:])}/{len(lat)}"
    )


if __name__ == "__main__":
    main()
