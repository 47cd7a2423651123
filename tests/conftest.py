"""Shared fixtures: the MNIST folder, a local HTTP mirror, a CLI runner, a boxes dataset."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from inkdigits import cli, data
from inkdigits.extra import held_out

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder with the four original MNIST files (INKDIGITS_DATA_DIR in CI)."""
    env = os.environ.get(data.ENV_DATA_DIR)
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    for d in candidates:
        if all((d / f.name).is_file() for f in data.FILES.values()):
            return d
    pytest.skip("MNIST files not found: set INKDIGITS_DATA_DIR (.ci/run does)")


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> data.Mnist:
    return data.load_mnist(mnist_dir, download_if_missing=False)


def paper(digit28: np.ndarray, size: int = 200, ink=(20, 20, 20), bg=(255, 255, 255)) -> np.ndarray:
    """An MNIST digit as ink on paper, scaled up to size x size: RGB uint8."""
    big = cv2.resize(digit28, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    big = np.clip(big, 0, 1)[..., None]
    out = np.array(bg, np.float32) * (1 - big) + np.array(ink, np.float32) * big
    return out.astype(np.uint8)


# A real training run, small enough for the suite: 1 epoch on 2,000 images.
SMOKE = dict(model="fast-cnn", epochs=1, batch_size=16, lr=4e-3, train_subset=2000)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, mnist_dir):
    """A finished run folder (every artefact) and its card; shared by several test files."""
    import io

    from inkdigits import training
    from inkdigits.config import TrainConfig

    out = tmp_path_factory.mktemp("runs") / "smoke"
    cfg = TrainConfig(**SMOKE, data_dir=str(mnist_dir), precision="float32")
    result = training.train(cfg, out, stream=io.StringIO())
    return out, result.card


@dataclass
class Mirror:
    """A local HTTP server; ``files`` maps a path to (mode, bytes)."""

    url: str
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


def _handler(mirror: Mirror):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802
            mirror.requests.append(self.path)
            mode, body = mirror.files.get(self.path, ("missing", b""))
            if mode == "missing":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "drop":  # announce the whole file, send a third, hang up
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_mirror() -> Iterator[callable]:
    """Factory: ``http_mirror(prefix)`` starts a real server on 127.0.0.1 serving under prefix."""
    servers = []

    def start(prefix: str = "/mnist/") -> Mirror:
        mirror = Mirror(url="")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
        mirror.url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return mirror

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:  # argparse exits for --version / usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """`inkdigits serve` in a subprocess on a free port (a 2 s request time limit)."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    env = {**os.environ, "INKDIGITS_SERVE_TIMEOUT": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inkdigits", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"inkdigits serve did not start:\n{out}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _names(n: int, held: bool) -> list[str]:
    """File names that the hash puts in (or out of) the held-out share."""
    out, i = [], 0
    while len(out) < n:
        name = f"images/n{i:04d}.png"
        if held_out(name) == held:
            out.append(name)
        i += 1
    return out


@pytest.fixture
def boxes_dataset(tmp_path, mnist):
    """Five 3-digit images of MNIST test digits with per-digit boxes: 4 kept, 1 held out."""
    (tmp_path / "images").mkdir()
    entries, k = {}, 0
    for name in _names(4, held=False) + _names(1, held=True):
        idx = list(range(k, k + 3))
        k += 3
        tiles = [paper(mnist.test_images[i], size=60) for i in idx]
        cv2.imwrite(str(tmp_path / name), np.concatenate(tiles, axis=1))
        entries[name] = {
            "digits": [
                {"digit": int(mnist.test_labels[i]), "box_xywh": [60 * j + 6, 6, 48, 48]}
                for j, i in enumerate(idx)
            ]
        }
    (tmp_path / "boxes.json").write_text(json.dumps(entries))
    return tmp_path, mnist.test_labels[:15]
