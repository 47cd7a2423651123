"""The MNIST data layer: IDX/CSV/npz parsing, checksums, splits, lookup and download."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from inkdigits import data
from inkdigits.errors import DataError

TRAIN_HIST = {
    0: 5923,
    1: 6742,
    2: 5958,
    3: 6131,
    4: 5842,
    5: 5421,
    6: 5918,
    7: 6265,
    8: 5851,
    9: 5949,
}
TEST_HIST = {0: 980, 1: 1135, 2: 1032, 3: 1010, 4: 982, 5: 892, 6: 958, 7: 1028, 8: 974, 9: 1009}


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(
        struct.pack(">I", d) for d in arr.shape
    )
    return header + arr.astype(np.uint8).tobytes()


# --------------------------------------------------------------------------- IDX


def test_parse_idx_roundtrip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = data.parse_idx(idx_bytes(arr))
    assert out.shape == (2, 3, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)


def test_parse_idx_big_endian_int32():
    arr = np.array([1, -2, 70000], dtype=">i4")
    raw = struct.pack(">BBBBI", 0, 0, 0x0C, 1, 3) + arr.tobytes()
    np.testing.assert_array_equal(data.parse_idx(raw), [1, -2, 70000])


GOOD = idx_bytes(np.zeros((2, 2, 2), np.uint8))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "not an IDX file"),
        (b"\x00\x00", "not an IDX file"),
        (b"\x89PNG" + GOOD[4:], "magic number"),
        (b"\x00\x00\x07\x03" + GOOD[4:], "magic number"),  # unknown type code
        (b"\x00\x00\x08\x09" + GOOD[4:], "magic number"),  # absurd number of dims
        (GOOD[:9], "header truncated"),
        (struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 0, 2), "zero dimension"),
        (GOOD[:-1], "truncated"),
        (GOOD + b"\x00", "trailing bytes"),
    ],
    ids=["empty", "short", "png", "type", "ndim", "header", "zero-dim", "data", "trailing"],
)
def test_parse_idx_rejects_malformed(raw, message):
    with pytest.raises(DataError, match=message) as err:
        data.parse_idx(raw, source="some-file.idx")
    assert "some-file.idx" in str(err.value)


def test_read_idx_gzip_and_raw_agree(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.idx"), arr)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.idx.gz"), arr)


def test_read_idx_truncated_gzip_names_file(tmp_path):
    blob = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)) + b"x" * 5000)
    p = tmp_path / "cut.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        data.read_idx(p)
    assert str(p) in str(err.value)


# --------------------------------------------------------------------------- CSV and npz


def _csv_rows(images, labels=None):
    rows = []
    for i, img in enumerate(images):
        cells = [str(v) for v in img.reshape(-1)]
        if labels is not None:
            cells.insert(0, str(labels[i]))
        rows.append(",".join(cells))
    return rows


@pytest.mark.parametrize("labeled", [True, False])
@pytest.mark.parametrize("header", [True, False])
def test_read_csv(tmp_path, labeled, header):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 0, 9], np.uint8)
    rows = _csv_rows(images, labels if labeled else None)
    if header:
        names = [f"pixel{i}" for i in range(784)]
        rows.insert(0, ",".join((["label"] if labeled else []) + names))
    p = tmp_path / "digits.csv"
    p.write_text("\n".join(rows) + "\n")
    got_images, got_labels = data.read_csv(p)
    np.testing.assert_array_equal(got_images, images)
    if labeled:
        np.testing.assert_array_equal(got_labels, labels)
    else:
        assert got_labels is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,2,3\n", "expected 784 pixel columns"),
        ("12," + ",".join(["0"] * 784) + "\n", "labels must lie in 0..9"),
        ("1," + ",".join(["300"] * 784) + "\n", "pixel values"),
        ("1,x," + ",".join(["0"] * 783) + "\n", "malformed CSV"),
    ],
    ids=["columns", "label", "pixel", "text"],
)
def test_read_csv_rejects_bad(tmp_path, content, message):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(DataError, match=message):
        data.read_csv(p)


def test_read_npz_roundtrip_and_missing_keys(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {
        "x_train": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_train": np.array([1, 2, 3, 4], np.uint8),
        "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "y_test": np.array([5, 6], np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    m = data.read_npz(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(m.train_images, arrays["x_train"])
    np.testing.assert_array_equal(m.test_labels, arrays["y_test"])
    # load_mnist finds an npz in a data folder too
    assert data.load_mnist(tmp_path, download_if_missing=False).test_labels.tolist() == [5, 6]
    del arrays["y_test"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(DataError, match="lacks the arrays"):
        data.read_npz(tmp_path / "partial.npz")


# --------------------------------------------------------------------------- the real files


def test_shared_mnist_checksums(mnist_dir):
    checks = data.verify_dir(mnist_dir)
    assert [c.ok for c in checks] == [True] * 4
    assert {c.path.name for c in checks} == {f.name for f in data.FILES.values()}


def test_label_histograms(mnist):
    assert data.label_histogram(mnist.train_labels) == TRAIN_HIST
    assert data.label_histogram(mnist.test_labels) == TEST_HIST
    assert mnist.train_images.shape == (60000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == np.uint8


def test_raw_uncompressed_files_are_verified(tmp_path, mnist_dir):
    for f in data.FILES.values():
        (tmp_path / f.name.removesuffix(".gz")).write_bytes(gzip.open(mnist_dir / f.name).read())
    assert all(c.ok for c in data.verify_dir(tmp_path))
    assert data.load_mnist(tmp_path).test_labels.shape == (10000,)


def test_validation_split_is_fixed_stratified_and_disjoint(mnist):
    s = mnist.split()
    assert len(s.x_val) == 5000 and len(s.x_train) == 55000
    assert data.label_histogram(s.y_val) == {d: 500 for d in range(10)}
    idx = data.validation_indices(mnist.train_labels)
    np.testing.assert_array_equal(idx, data.validation_indices(mnist.train_labels))
    # no validation image is also a training image (compare raw bytes)
    train_keys = {img.tobytes() for img in mnist.train_images[np.setdiff1d(np.arange(60000), idx)]}
    overlap = sum(img.tobytes() in train_keys for img in s.x_val)
    assert overlap <= 5  # MNIST holds a handful of exact duplicates; a leak would be 5000
    assert s.x_test is mnist.test_images


def test_corrupted_file_is_reported_by_name(tmp_path, mnist_dir):
    for f in data.FILES.values():
        shutil.copy(mnist_dir / f.name, tmp_path / f.name)
    target = tmp_path / data.FILES["test_labels"].name
    blob = bytearray(target.read_bytes())
    blob[100] ^= 0xFF
    target.write_bytes(bytes(blob))
    with pytest.raises(DataError) as err:
        data.load_mnist(tmp_path)
    msg = str(err.value)
    assert str(target) in msg and "checksum mismatch" in msg
    assert data.FILES["test_labels"].sha256_gz in msg
    assert "inkdigits data download" in msg


# --------------------------------------------------------------------------- lookup order


def _fill(d: Path, mnist_dir: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for f in data.FILES.values():
        (d / f.name).symlink_to(mnist_dir / f.name)
    return d


def test_lookup_order(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    assert data.cache_dir() == tmp_path / "xdg" / "inkdigits" / "mnist"
    assert data.find_data_dir() is None
    cache = _fill(data.cache_dir(), mnist_dir)
    assert data.find_data_dir() == cache
    env = _fill(tmp_path / "env", mnist_dir)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(env))
    assert data.find_data_dir() == env
    explicit = _fill(tmp_path / "explicit", mnist_dir)
    assert data.find_data_dir(explicit) == explicit


def test_explicit_folder_that_is_incomplete_is_an_error(tmp_path):
    (tmp_path / data.FILES["train_images"].name).write_bytes(b"")
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte.gz, t10k-images"):
        data.find_data_dir(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        data.find_data_dir(tmp_path / "nope")


# --------------------------------------------------------------------------- download


LABEL_KEYS = ["train_labels", "test_labels"]


def serve(mirror, mnist_dir, mode="ok", keys=LABEL_KEYS):
    for key in keys:
        name = data.FILES[key].name
        body = (mnist_dir / name).read_bytes()
        if mode == "corrupt":
            body = body[:-10] + b"\x00" * 10
        mirror.files["/mnist/" + name] = (mode, body)


def test_download_good(tmp_path, http_mirror, mnist_dir):
    m = http_mirror()
    serve(m, mnist_dir)
    out = data.download(tmp_path / "dl", [m.url], keys=LABEL_KEYS, progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(data.FILES[k].name for k in LABEL_KEYS)
    for k in LABEL_KEYS:
        assert data.check_file(out, k).ok
    # a second call finds the verified files and fetches nothing
    m.requests.clear()
    data.download(out, [m.url], keys=LABEL_KEYS, progress=False)
    assert m.requests == []


def test_download_corrupt_file_rejected_nothing_left(tmp_path, http_mirror, mnist_dir):
    m = http_mirror()
    serve(m, mnist_dir, mode="corrupt")
    dest = tmp_path / "dl"
    with pytest.raises(DataError, match="checksum mismatch"):
        data.download(dest, [m.url], keys=LABEL_KEYS, progress=False)
    assert list(dest.iterdir()) == []


def test_download_dropped_connection_tries_next_mirror(tmp_path, http_mirror, mnist_dir):
    bad, good = http_mirror(), http_mirror()
    serve(bad, mnist_dir, mode="drop")
    serve(good, mnist_dir)
    dest = tmp_path / "dl"
    data.download(dest, [bad.url, good.url], keys=LABEL_KEYS, progress=False)
    assert len(bad.requests) == 2 and len(good.requests) == 2
    assert sorted(p.name for p in dest.iterdir()) == sorted(data.FILES[k].name for k in LABEL_KEYS)
    assert all(data.check_file(dest, k).ok for k in LABEL_KEYS)


def test_download_dropped_connection_only_mirror_leaves_nothing(tmp_path, http_mirror, mnist_dir):
    m = http_mirror()
    serve(m, mnist_dir, mode="drop")
    dest = tmp_path / "dl"
    with pytest.raises(DataError, match="could not download") as err:
        data.download(dest, [m.url], keys=LABEL_KEYS, progress=False)
    assert m.url in str(err.value)
    assert list(dest.iterdir()) == []


def test_download_all_mirrors_fail_lists_each(tmp_path, http_mirror):
    a, b = http_mirror(), http_mirror()  # serve nothing: 404
    with pytest.raises(DataError) as err:
        data.download(tmp_path, [a.url, b.url], keys=["test_labels"], progress=False)
    assert a.url in str(err.value) and b.url in str(err.value)
    assert "404" in str(err.value)


def test_load_mnist_downloads_into_cache_when_missing(
    tmp_path, monkeypatch, http_mirror, mnist_dir
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    m = http_mirror()
    serve(m, mnist_dir, keys=list(data.FILES))
    monkeypatch.setattr(data, "MIRRORS", (m.url,))
    monkeypatch.setattr(data.download, "__defaults__", ((m.url,),))
    mn = data.load_mnist()
    assert data.label_histogram(mn.test_labels) == TEST_HIST
    assert Path(mn.source) == tmp_path / "inkdigits" / "mnist"
