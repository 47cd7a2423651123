"""Load test of `inkdigits serve`: requests/s and latency at 16 concurrent clients, and a soak.

    python bench/serve_load.py                      # 60 s at 16 connections (wrk)
    python bench/serve_load.py --soak 300           # 5 min with 10% bad requests, RSS sampled

The server runs as its own process (one uvicorn worker, the shipped model);
the load comes from `wrk` (Debian package `wrk`) in a second process on
127.0.0.1. Every request POSTs the same 280x280 PNG drawing of a digit, the
size the page sends, to /api/v1/digits. In the soak, every tenth request
sends a text file instead; those must get 415 and every good one 200.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = assert(io.open("{png}", "rb"))
local good = f:read("*all")
f:close()
local bad = "this is a text file, not an image"
local every = {every}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent_good, sent_bad, got_200, got_415, got_other, n = 0, 0, 0, 0, 0, 0
end

function request()
  n = n + 1
  if every > 0 and n % every == 0 then
    sent_bad = sent_bad + 1
    return wrk.format(nil, nil, nil, bad)
  end
  sent_good = sent_good + 1
  return wrk.format(nil, nil, nil, good)
end

function response(status, headers, body)
  if status == 200 then got_200 = got_200 + 1
  elseif status == 415 then got_415 = got_415 + 1
  else got_other = got_other + 1 end
end

function done(summary, latency, requests)
  local t = {{sent_good = 0, sent_bad = 0, got_200 = 0, got_415 = 0, got_other = 0}}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  for _, p in ipairs({{50, 90, 99, 99.9}}) do
    io.write(string.format("PCT %g %.3f\n", p, latency:percentile(p) / 1000.0))
  end
  io.write(string.format("COUNTS %d %d %d %d %d\n",
      t.sent_good, t.sent_bad, t.got_200, t.got_415, t.got_other))
  io.write(string.format("ERRORS %d %d %d %d %d\n", summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""


def drawing_png(path: Path) -> None:
    """A 7 drawn like on the page: 18-px black strokes on a white 280x280 canvas."""
    img = np.full((280, 280, 3), 255, np.uint8)
    cv2.line(img, (80, 60), (200, 60), (0, 0, 0), 18, cv2.LINE_AA)
    cv2.line(img, (200, 60), (120, 235), (0, 0, 0), 18, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the uvicorn worker), in MB."""
    total = 0
    pids = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "inkdigits", "serve", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def run_wrk(url: str, seconds: int, connections: int, script: Path) -> dict:
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    cmd += ["--timeout", "5s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {float(p): float(ms) for p, ms in re.findall(r"^PCT ([\d.]+) ([\d.]+)$", out, re.M)}
    counts = [int(v) for v in re.search(r"^COUNTS (.*)$", out, re.M).group(1).split()]
    errors = [int(v) for v in re.search(r"^ERRORS (.*)$", out, re.M).group(1).split()]
    return {"rps": rps, "pct": pct, "counts": counts, "errors": errors, "raw": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--soak", type=int, default=0, help="soak seconds (10%% bad requests)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the timed run")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    tmp = Path(tempfile.mkdtemp())
    png = tmp / "drawing.png"
    drawing_png(png)
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/v1/digits"
    server = start_server(port)
    try:
        print(f"server pid {server.pid}, {os.cpu_count()} CPUs, POST {png.stat().st_size} B PNG")
        warm = tmp / "warm.lua"
        warm.write_text(LUA.format(png=png, every=0))
        run_wrk(url, 5, args.connections, warm)  # warm-up
        if args.seconds:
            for r in range(args.rounds):
                res = run_wrk(url, args.seconds, args.connections, warm)
                sent_good, _, ok, _, other = res["counts"]
                print(
                    f"round {r + 1}: {res['rps']:.0f} req/s  p50 {res['pct'][50]:.1f} ms  "
                    f"p90 {res['pct'][90]:.1f} ms  p99 {res['pct'][99]:.1f} ms  "
                    f"p99.9 {res['pct'][99.9]:.1f} ms  200s {ok}/{sent_good}  other {other}  "
                    f"socket errors {sum(res['errors'][:3] + res['errors'][4:])}"
                )
        if args.soak:
            soak = tmp / "soak.lua"
            soak.write_text(LUA.format(png=png, every=10))
            samples: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(5):
                    samples.append(rss_mb(server.pid))

            rss_before = rss_mb(server.pid)
            t = threading.Thread(target=sample, daemon=True)
            t.start()
            res = run_wrk(url, args.soak, args.connections, soak)
            stop.set()
            t.join()
            sent_good, sent_bad, ok, got_415, other = res["counts"]
            first = statistics.median(samples[1:4]) if len(samples) > 4 else rss_before
            last = statistics.median(samples[-3:])
            print(
                f"soak {args.soak} s: {res['rps']:.0f} req/s  p99 {res['pct'][99]:.1f} ms  "
                f"good {sent_good} -> 200 {ok}  bad {sent_bad} -> 415 {got_415}  "
                f"other statuses {other}  socket errors {res['errors']}"
            )
            print(
                f"RSS: {rss_before:.0f} MB idle after warm-up, {first:.0f} MB early in the soak, "
                f"{last:.0f} MB at the end ({100 * (last - first) / first:+.1f}%), "
                f"max {max(samples):.0f} MB"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


if __name__ == "__main__":
    main()
