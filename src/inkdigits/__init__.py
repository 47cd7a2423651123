"""inkdigits: read handwritten digits and multi-digit numbers; train and evaluate MNIST CNNs.

    >>> from inkdigits import Reader
    >>> Reader().read_number("amount.jpg").number    # doctest: +SKIP

Importing this package is light: it never imports TensorFlow. Training lives in
``inkdigits.training`` (extra ``train``); reading uses ONNX Runtime.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("inkdigits")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from .errors import ConfigError, DataError, InkdigitsError, ModelError


def __getattr__(name: str):
    # Reader & co. are imported on first use, so `import inkdigits` stays fast.
    if name in ("Reader", "DigitResult", "NumberResult", "read_digit", "read_number"):
        from . import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'inkdigits' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Reader",
    "DigitResult",
    "NumberResult",
    "read_digit",
    "read_number",
    "InkdigitsError",
    "DataError",
    "ConfigError",
    "ModelError",
]
