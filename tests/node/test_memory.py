"""Freed heap memory goes back to the operating system, at most once per interval."""

from __future__ import annotations

import platform
import sys
import threading
from pathlib import Path

from node.memory import HeapTrimmer, find_malloc_trim


def _private_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


def test_trims_at_most_once_per_interval() -> None:
    now = [100.0]
    calls: list[int] = []
    trimmer = HeapTrimmer(lambda pad: calls.append(pad) or 1, interval_s=1.0, clock=lambda: now[0])
    assert trimmer.maybe_trim() and calls == [0]
    now[0] += 0.5
    assert not trimmer.due() and not trimmer.maybe_trim() and calls == [0]
    now[0] += 0.5
    assert trimmer.due() and trimmer.maybe_trim() and calls == [0, 0] and trimmer.trims == 2


def test_without_malloc_trim_it_does_nothing() -> None:
    trimmer = HeapTrimmer(None)
    assert not trimmer.available and not trimmer.due() and not trimmer.maybe_trim() and trimmer.trims == 0


def test_on_glibc_it_hands_freed_memory_back() -> None:
    """A thread's arena keeps freed chunks below a live one; malloc_trim returns their pages."""
    assert sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc", "the test machine runs glibc"
    trimmer = HeapTrimmer(find_malloc_trim())
    assert trimmer.available
    kept: list[bytes] = []

    def churn() -> None:
        chunks = [bytes(4000) + i.to_bytes(4, "big") for i in range(20_000)]  # ~80 MB, above pymalloc's sizes
        kept.extend(chunks[9::10])  # every tenth stays: the arena's top is never free, so free() cannot shrink it

    worker = threading.Thread(target=churn)
    worker.start()
    worker.join()
    before = _private_mb()
    assert trimmer.maybe_trim()
    after = _private_mb()
    assert before - after >= 30, (before, after)
    assert len(kept) == 2_000
