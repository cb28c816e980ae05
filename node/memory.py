"""Hand the heap memory a node has freed back to the operating system.

glibc keeps what a process frees in its malloc arenas, one per thread that
allocated (the event loop, the storage threads, LevelDB's own), and returns
it to the kernel only when the top of an arena is free.  A node frees a whole
block's decoded transactions, votes and LevelDB memtable at a time, so the
resident set kept growing with memory the process no longer used: after a
40 s closed loop on 4 validators, ``malloc_trim(0)`` returned 18-20 MB of the
90-96 MB of private memory of each node (docs/benchmarks.md).

``HeapTrimmer.maybe_trim`` calls it at most once per interval; the node runs
it on a storage thread after a block is stored.  Where the C library has no
``malloc_trim`` (not glibc, not Linux) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable

TRIM_INTERVAL_S = 1.0


def find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the C library this process runs on
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    trim: Callable[[int], int] = fn
    return trim


class HeapTrimmer:
    def __init__(
        self,
        trim: Callable[[int], int] | None,
        interval_s: float = TRIM_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``trim``: the C library's ``malloc_trim`` (``find_malloc_trim()``); None trims nothing."""
        self.interval_s = interval_s
        self._clock = clock
        self._trim = trim
        self._last: float | None = None
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def due(self) -> bool:
        return self._trim is not None and (self._last is None or self._clock() - self._last >= self.interval_s)

    def maybe_trim(self) -> bool:
        """Trim if the interval has passed since the last trim; whether it did (thread-safe enough: at worst
        two threads both trim once)."""
        if not self.due():
            return False
        self._last = self._clock()
        assert self._trim is not None
        self._trim(0)
        self.trims += 1
        return True
