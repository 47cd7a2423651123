"""inkdigits: read handwritten digits and multi-digit numbers; train and evaluate MNIST CNNs.

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

__all__ = ["__version__", "InkdigitsError", "DataError", "ConfigError", "ModelError"]
