"""MNIST data layer: IDX / CSV / npz readers, lookup, download with SHA-256 checks, splits.

Where the data is looked for, in order:

1. an explicit ``data_dir`` (``--data-dir`` on the command line),
2. the ``INKDIGITS_DATA_DIR`` environment variable,
3. the user cache, ``$XDG_CACHE_HOME/inkdigits/mnist`` (``~/.cache/inkdigits/mnist``).

When none holds the four files, :func:`download` fetches them into the cache
from the public mirrors in :data:`MIRRORS` (the next mirror is tried when one
fails), verifies every file against the pinned SHA-256 and writes it atomically
(temporary file, then rename), so an interrupted download never leaves a
partial file behind.

Run ``inkdigits data info|verify|download`` to use this from the shell.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

ENV_DATA_DIR = "INKDIGITS_DATA_DIR"
IMAGE_SIZE = 28  # MNIST images are 28x28 pixels
NUM_CLASSES = 10
VAL_SIZE = 5000  # validation images carved out of the 60k training set
VAL_SEED = 20260101  # fixed: the validation split never changes between runs


@dataclass(frozen=True)
class MnistFile:
    """One of the four MNIST distribution files."""

    name: str  # file name on the mirrors, e.g. "train-images-idx3-ubyte.gz"
    sha256_gz: str  # SHA-256 of the gzip file as distributed
    sha256_raw: str  # SHA-256 of the decompressed IDX file
    shape: tuple[int, ...]  # the array it holds


FILES: dict[str, MnistFile] = {
    "train_images": MnistFile(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    "train_labels": MnistFile(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    "test_images": MnistFile(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    "test_labels": MnistFile(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
}

# Public mirrors of the original files (yann.lecun.com itself is often down).
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# IDX type codes -> numpy dtypes (all multi-byte types are big-endian).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- readers


def _read_bytes_maybe_gzip(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            raise DataError(
                f"{path}: the gzip stream is truncated or corrupt ({exc}); "
                "delete the file and run `inkdigits data download`"
            ) from exc
    return data


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX byte string; the header is validated before any data is read.

    Raises :class:`DataError` naming ``source`` on a bad magic number, an
    unknown type code, a zero dimension or a length that does not match.
    """
    if len(data) < 4:
        raise DataError(f"{source}: not an IDX file (only {len(data)} bytes)")
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        magic = int.from_bytes(data[:4], "big")
        raise DataError(
            f"{source}: not an IDX file (magic number {magic:#010x}; expected "
            "0x00000801 for labels or 0x00000803 for images)"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{source}: IDX header truncated ({len(data)} of {header_len} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise DataError(f"{source}: IDX header has a zero dimension {dims}")
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{source}: IDX file {what}: header says {dims} ({expected} data bytes), "
            f"file has {actual}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw (detected from its first bytes)."""
    p = Path(path)
    return parse_idx(_read_bytes_maybe_gzip(p), str(p))


def read_csv(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a Kaggle-style MNIST CSV: ``label,pixel0..pixel783`` or just the pixels.

    Returns ``(images, labels)`` with images of shape (N, 28, 28) uint8 and
    labels (N,) uint8, or ``None`` for an unlabeled file (784 columns).
    A header row is detected and skipped.
    """
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as fh:
            first = fh.readline()
    except OSError as exc:
        raise DataError(f"{p}: cannot read file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not a text CSV file") from exc
    cells = [c.strip().strip('"') for c in first.split(",")]
    has_header = bool(cells) and not cells[0].lstrip("-").isdigit()
    try:
        table = np.loadtxt(p, delimiter=",", skiprows=1 if has_header else 0, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{p}: malformed CSV ({exc})") from exc
    n_pixels = IMAGE_SIZE * IMAGE_SIZE
    if table.shape[1] == n_pixels + 1:
        labels, pixels = table[:, 0], table[:, 1:]
    elif table.shape[1] == n_pixels:
        labels, pixels = None, table
    else:
        raise DataError(
            f"{p}: expected {n_pixels} pixel columns (plus an optional label column), "
            f"found {table.shape[1]} columns"
        )
    if has_header and labels is not None and cells[0].lower() != "label":
        raise DataError(f"{p}: first column is {cells[0]!r}, expected 'label'")
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise DataError(f"{p}: pixel values must lie in 0..255")
    if labels is not None and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{p}: labels must lie in 0..9")
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return images, None if labels is None else labels.astype(np.uint8)


@dataclass(frozen=True)
class Mnist:
    """The MNIST arrays: images (N, 28, 28) uint8 with ink high, labels (N,) uint8."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # where the arrays were read from

    def split(self, val_size: int = VAL_SIZE) -> Splits:
        """The fixed train/validation split; see :func:`validation_indices`."""
        val_idx = validation_indices(self.train_labels, val_size)
        mask = np.ones(len(self.train_labels), dtype=bool)
        mask[val_idx] = False
        return Splits(
            x_train=self.train_images[mask],
            y_train=self.train_labels[mask],
            x_val=self.train_images[val_idx],
            y_val=self.train_labels[val_idx],
            x_test=self.test_images,
            y_test=self.test_labels,
        )


@dataclass(frozen=True)
class Splits:
    """Training, validation (model selection) and test (final report only) arrays."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def read_npz(path: str | os.PathLike[str]) -> Mnist:
    """Read a Keras-style ``mnist.npz`` with ``x_train, y_train, x_test, y_test``."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
            if missing:
                raise DataError(f"{p}: npz lacks the arrays {sorted(missing)}")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: not a readable npz file ({exc})") from exc
    for key in ("x_train", "x_test"):
        if arrays[key].ndim != 3 or arrays[key].shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{p}: {key} has shape {arrays[key].shape}, expected (N, 28, 28)")
    for img, lab in (("x_train", "y_train"), ("x_test", "y_test")):
        if len(arrays[img]) != len(arrays[lab]):
            raise DataError(f"{p}: {img} and {lab} have different lengths")
    return Mnist(
        arrays["x_train"].astype(np.uint8),
        arrays["y_train"].astype(np.uint8),
        arrays["x_test"].astype(np.uint8),
        arrays["y_test"].astype(np.uint8),
        source=str(p),
    )


# --------------------------------------------------------------------------- lookup


def cache_dir() -> Path:
    """The user cache folder for MNIST (honours ``XDG_CACHE_HOME``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inkdigits" / "mnist"


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """Where data is looked for, in order, as (reason, path) pairs."""
    out: list[tuple[str, Path]] = []
    if data_dir:
        out.append(("--data-dir", Path(data_dir)))
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        out.append((ENV_DATA_DIR, Path(env)))
    out.append(("user cache", cache_dir()))
    return out


def _file_in(directory: Path, f: MnistFile) -> Path | None:
    """The gzip or the raw (uncompressed) form of ``f`` inside ``directory``."""
    for name in (f.name, f.name.removesuffix(".gz")):
        p = directory / name
        if p.is_file():
            return p
    return None


def _has_all(directory: Path) -> bool:
    return all(_file_in(directory, f) is not None for f in FILES.values())


def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first candidate folder holding all four files (or mnist.npz), else None.

    An explicit ``data_dir`` that is missing or incomplete is an error rather
    than silently falling through to another location.
    """
    for reason, d in candidate_dirs(data_dir):
        if _has_all(d) or (d / "mnist.npz").is_file():
            return d
        if reason != "user cache":
            missing = [f.name for f in FILES.values() if _file_in(d, f) is None]
            state = "does not exist" if not d.exists() else f"lacks {', '.join(missing)}"
            raise DataError(
                f"MNIST folder {d} (from {reason}) {state}; "
                "point it at a folder with the four MNIST files or unset it "
                "to use the cache"
            )
    return None


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download_if_missing: bool = True,
    verify: bool = True,
) -> Mnist:
    """Load MNIST from the first place that has it, downloading into the cache if needed.

    With ``verify`` (the default) each file's SHA-256 is checked first, so a
    corrupted file is reported by name rather than trained on.
    """
    d = find_data_dir(data_dir)
    if d is None:
        if not download_if_missing:
            raise DataError(
                f"MNIST not found (looked in {', '.join(str(p) for _, p in candidate_dirs())}); "
                "run `inkdigits data download` or set INKDIGITS_DATA_DIR"
            )
        d = cache_dir()
        download(d)
    if not _has_all(d) and (d / "mnist.npz").is_file():
        return read_npz(d / "mnist.npz")
    if verify:
        verify_dir(d, raise_on_error=True)
    arrays = {key: read_idx(_file_in(d, f)) for key, f in FILES.items()}  # type: ignore[arg-type]
    for key, f in FILES.items():
        if arrays[key].shape != f.shape:
            raise DataError(f"{d / f.name}: shape {arrays[key].shape}, expected {f.shape}")
    return Mnist(**arrays, source=str(d))


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """The result of checking one MNIST file against its pinned checksum."""

    key: str
    path: Path | None
    expected: str
    actual: str | None

    @property
    def ok(self) -> bool:
        return self.actual is not None and self.actual == self.expected

    def message(self) -> str:
        if self.path is None:
            return f"{FILES[self.key].name}: missing"
        if self.ok:
            return f"{self.path}: OK (sha256 {self.actual})"
        return (
            f"{self.path}: checksum mismatch (expected sha256 {self.expected}, got {self.actual}); "
            "the file is corrupt or not the original: delete it and run "
            "`inkdigits data download`"
        )


def check_file(directory: Path, key: str) -> FileCheck:
    """Check one file (gzip or raw form) in ``directory`` against its pinned SHA-256."""
    f = FILES[key]
    p = _file_in(directory, f)
    if p is None:
        return FileCheck(key, None, f.sha256_gz, None)
    expected = f.sha256_gz if p.name.endswith(".gz") else f.sha256_raw
    return FileCheck(key, p, expected, sha256_file(p))


def verify_dir(directory: str | os.PathLike[str], raise_on_error: bool = False) -> list[FileCheck]:
    """Check all four files in ``directory``; optionally raise on the first bad one."""
    d = Path(directory)
    checks = [check_file(d, key) for key in FILES]
    if raise_on_error:
        bad = [c for c in checks if not c.ok]
        if bad:
            raise DataError("; ".join(c.message() for c in bad))
    return checks


def label_histogram(labels: np.ndarray) -> dict[int, int]:
    """Count of each digit 0-9 in ``labels``."""
    counts = np.bincount(labels.astype(np.int64), minlength=NUM_CLASSES)
    return {d: int(c) for d, c in enumerate(counts)}


# --------------------------------------------------------------------------- splits


def validation_indices(labels: np.ndarray, val_size: int = VAL_SIZE) -> np.ndarray:
    """Indices of the fixed, stratified validation split (val_size/10 per class).

    Seeded with :data:`VAL_SEED`, so every run, model and machine uses the same
    5,000 training images for model selection; the test set stays untouched.
    """
    if not 0 < val_size < len(labels):
        raise DataError(f"validation size {val_size} must lie in 1..{len(labels) - 1}")
    rng = np.random.default_rng(VAL_SEED)
    per_class = val_size // NUM_CLASSES
    extra = val_size - per_class * NUM_CLASSES
    picked = []
    for digit in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == digit)
        take = min(len(idx), per_class + (1 if digit < extra else 0))
        picked.append(rng.choice(idx, size=take, replace=False))
    return np.sort(np.concatenate(picked))


# --------------------------------------------------------------------------- download


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        file=sys.stderr,
        leave=False,
    )


def _fetch_one(url: str, dest: Path, expected_sha: str, timeout: float, progress: bool) -> None:
    """Stream ``url`` into a temporary file beside ``dest``; rename only if the checksum holds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        received = 0
        req = urllib.request.Request(url, headers={"User-Agent": "inkdigits"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with _progress(total, dest.name, progress) as bar:
                while block := resp.read(1 << 16):
                    out.write(block)
                    h.update(block)
                    received += len(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise DataError(f"connection dropped after {received} of {total} bytes")
        actual = h.hexdigest()
        if actual != expected_sha:
            raise DataError(f"checksum mismatch (expected sha256 {expected_sha}, got {actual})")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def download(
    directory: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] = MIRRORS,
    *,
    keys: Iterable[str] = FILES,
    timeout: float = 30.0,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Download the MNIST files into ``directory`` (default: the cache), verified.

    Files already present with the right checksum are kept. For each file the
    mirrors are tried in order; a failed or corrupt download leaves nothing
    behind and moves on to the next mirror. Raises :class:`DataError` listing
    every mirror's failure when none works.
    """
    d = Path(directory) if directory is not None else cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {d} ({exc.strerror or exc})") from exc
    if not os.access(d, os.W_OK):
        raise DataError(f"{d} is not writable")
    for key in keys:
        f = FILES[key]
        dest = d / f.name
        if not force and dest.is_file() and sha256_file(dest) == f.sha256_gz:
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + f.name
            try:
                _fetch_one(url, dest, f.sha256_gz, timeout, progress)
                break
            except (OSError, http.client.HTTPException, DataError, ValueError) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    reason = f"HTTP {exc.code} {exc.reason}"
                else:
                    reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url}: {reason}")
        else:
            raise DataError(f"could not download {f.name} from any mirror: " + "; ".join(failures))
    return d
