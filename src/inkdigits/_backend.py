"""Import Keras on the TensorFlow backend without TensorFlow's native start-up chatter.

TensorFlow's C++ side prints absl log lines to file descriptor 2 while it
loads (oneDNN notices, CPU feature hints), which TF_CPP_MIN_LOG_LEVEL no longer
silences. Training-side modules import Keras from here; the reading side never
does.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null for the duration (Python exceptions still propagate)."""
    if os.environ.get("INKDIGITS_TF_LOGS"):  # set it to see TensorFlow's own messages
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with quiet_native_stderr():
    import keras  # noqa: E402
    import tensorflow  # noqa: E402, F401  (loads the native runtime here, silently)

__all__ = ["keras", "quiet_native_stderr"]
