"""Keep freed memory in the process for reuse (glibc), so reading an image is not page faults.

Reading one image allocates a few dozen temporary arrays of a few hundred
kilobytes each. glibc serves blocks that large with fresh ``mmap`` pages, or
trims the heap back to the system after they are freed, so every read pays
for zeroed pages again: on this project's 2-core VMs that was about a quarter
of a 280x280 drawing's read time (read_digit 3.5 -> 2.6 ms, ink_map 1.3 ->
0.35 ms; docs/BENCHMARKS.md). Raising glibc's mmap and trim thresholds keeps
those blocks on the heap. The cost is that up to ``TRIM`` bytes of freed
memory stay with the process.

The reading commands (``inkdigits read``/``predict``/``serve`` and the
server's reader processes) call :func:`tune_memory`; the library does not
change a process's allocator by itself. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP = 32 * 1024 * 1024  # blocks below this come from the heap (glibc's own ceiling)
TRIM = 64 * 1024 * 1024  # free memory kept at the top of the heap before trimming

_done = False


def tune_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process; True if it took effect."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
    return _done
