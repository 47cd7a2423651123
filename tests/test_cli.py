"""CLI basics: version, usage errors, and `inkdigits data` exit codes and messages."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from inkdigits import __version__, data


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"inkdigits {__version__}"


def test_module_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "inkdigits", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and __version__ in proc.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["frobnicate"], "invalid choice"),
        (["data"], "required: action"),
        (["data", "explode"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line(run_cli, argv, message):
    code, _, err = run_cli(*argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_data_verify_ok(run_cli, mnist_dir):
    code, out, err = run_cli("data", "verify", "--data-dir", mnist_dir)
    assert code == 0, err
    assert out.count(": OK") == 4 and "all 4 MNIST files verified" in out


def test_data_verify_reports_corrupt_copy(run_cli, mnist_dir, tmp_path):
    for f in data.FILES.values():
        shutil.copy(mnist_dir / f.name, tmp_path / f.name)
    bad = tmp_path / data.FILES["train_images"].name
    bad.write_bytes(bad.read_bytes()[:-1000])
    code, out, err = run_cli("data", "verify", "--data-dir", tmp_path)
    assert code == 1
    assert f"{bad}: checksum mismatch" in err
    assert "1 of 4 MNIST files failed verification" in err
    assert out.count(": OK") == 3
    assert "Traceback" not in err


def test_data_verify_missing_folder(run_cli, tmp_path):
    code, _, err = run_cli("data", "verify", "--data-dir", tmp_path / "nowhere")
    assert code == 1
    assert "does not exist" in err and "Traceback" not in err


def test_data_info_histograms(run_cli, mnist_dir):
    code, out, _ = run_cli("data", "info", "--data-dir", mnist_dir)
    assert code == 0
    assert "train  60000 images  0:5923 1:6742" in out
    assert "test   10000 images  0:980 1:1135" in out


def test_data_download_cli(run_cli, tmp_path, http_mirror, mnist_dir):
    m = http_mirror()
    for f in data.FILES.values():
        m.files["/mnist/" + f.name] = ("ok", (mnist_dir / f.name).read_bytes())
    code, out, err = run_cli("data", "download", "--data-dir", tmp_path, "--mirror", m.url)
    assert code == 0, err
    assert out.count(": OK") == 4


def test_data_download_cli_failure_exit_code(run_cli, tmp_path, http_mirror):
    m = http_mirror()
    code, _, err = run_cli("data", "download", "--data-dir", tmp_path, "--mirror", m.url)
    assert code == 1
    assert err.startswith("inkdigits: error: could not download") and "Traceback" not in err
