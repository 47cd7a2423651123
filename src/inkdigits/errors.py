"""Exceptions that carry a message meant for the user.

The CLI prints these as one line on stderr and exits non-zero; anything else
that escapes is a bug and is reported as such (``--debug`` shows the traceback).
"""

from __future__ import annotations


class InkdigitsError(Exception):
    """An error the user can act on; ``str(err)`` says what happened and what to do."""


class DataError(InkdigitsError):
    """MNIST data is missing, malformed, or does not match its pinned checksum."""


class ConfigError(InkdigitsError):
    """A bad option or configuration value."""


class ModelError(InkdigitsError):
    """A model file is missing, unreadable, or of the wrong kind."""
