"""The bench's steady window and its figures over time: pure functions of per-transaction timings.

Rules (what ``medchain bench cluster`` reports, and ``docs/benchmarks.md`` restates):

* the load period ``[start, end)`` is cut into whole buckets of ``bucket_s``
  (1 s); each bucket counts the commits that arrived in it;
* the **steady window** runs from the start of the first bucket whose count
  reaches ``STEADY_FRACTION`` (half) of the median bucket to the end of the
  last such bucket.  What lies before is the **warm-up** (the pipeline
  filling), what lies after is the **drain** (the load stopped, commits
  trailing off); a stall *inside* the window stays in it and lowers the
  figure, since only the edges are trimmed;
* a load period of fewer than ``MIN_BUCKETS`` whole buckets, or one in which
  no bucket reaches the bar (nothing committed), is measured whole, and the
  window says so in its ``rule``;
* committed tx/s is the number of commits inside the window over its length;
* every transaction *submitted* inside the window enters its latency figures;
  one that never committed (refused, lost, or still pending when the bench
  stopped watching) is a **failure**: counted and reported beside the
  percentiles, and, in the censored figures, given the latency it had
  reached when watching stopped (``observed_until - submitted``), a lower
  bound of its true latency.

Times are seconds on one clock (``time.monotonic`` of the bench process); a
transaction that never committed has ``None`` as its commit time.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from node.lab.percentiles import percentiles

BUCKET_S = 1.0
STEADY_FRACTION = 0.5
MIN_BUCKETS = 3


@dataclass(frozen=True, slots=True)
class SteadyWindow:
    """The part of a run that is measured, and how it was chosen (times relative to the load's start)."""

    start_s: float
    end_s: float
    rule: str
    warmup_s: float  # load start to window start
    drain_s: float  # window end to the last commit (or to the load's end, if later)
    committed: int  # commits inside the window

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    @property
    def tx_per_s(self) -> float:
        return self.committed / self.seconds if self.seconds > 0 else math.nan


@dataclass(frozen=True, slots=True)
class Outcomes:
    """The transactions submitted inside the window: latencies of those that committed, and the failures."""

    latencies: list[float]  # seconds, committed only
    censored: list[float]  # the failures, each at ``observed_until - submitted``
    submitted: int

    @property
    def failures(self) -> int:
        return len(self.censored)


def bucket_counts(times: Sequence[float | None], start: float, end: float, bucket_s: float = BUCKET_S) -> list[int]:
    """Events per bucket ``[start + i * bucket_s, start + (i + 1) * bucket_s)`` up to ``end`` (a last partial bucket
    included); ``None`` and times outside ``[start, end)`` are left out."""
    if end <= start:
        return []
    counts = [0] * math.ceil((end - start) / bucket_s)
    for t in times:
        if t is not None and start <= t < end:
            counts[int((t - start) / bucket_s)] += 1
    return counts


def steady_window(
    commits: Sequence[float | None], start: float, end: float, bucket_s: float = BUCKET_S
) -> SteadyWindow:
    """The steady window of a load period ``[start, end)`` from the commit times (the rule is in the module's doc)."""
    whole = int((end - start) // bucket_s)
    counts = bucket_counts(commits, start, start + whole * bucket_s, bucket_s)
    last_commit = max((t for t in commits if t is not None), default=start)
    if whole < MIN_BUCKETS:
        return _window(commits, start, end, 0.0, end - start, last_commit,
                       f"the whole load period (shorter than {MIN_BUCKETS} buckets of {bucket_s:g} s)")
    median = statistics.median(counts)
    bar = STEADY_FRACTION * median
    steady = [i for i, n in enumerate(counts) if n > 0 and n >= bar]
    if not steady:
        return _window(commits, start, end, 0.0, end - start, last_commit,
                       "the whole load period (no commits to find a steady state in)")
    rule = (
        f"first to last {bucket_s:g} s bucket committing at least {STEADY_FRACTION:.0%} of the median bucket "
        f"(median {median:g} tx per bucket)"
    )
    return _window(commits, start, end, steady[0] * bucket_s, (steady[-1] + 1) * bucket_s, last_commit, rule)


def _window(
    commits: Sequence[float | None], start: float, end: float, w0: float, w1: float, last_commit: float, rule: str
) -> SteadyWindow:
    inside = sum(1 for t in commits if t is not None and start + w0 <= t < start + w1)
    drain = max(end, last_commit) - (start + w1)
    return SteadyWindow(w0, w1, rule, w0, max(0.0, drain), inside)


def outcomes(
    submitted: Sequence[float],
    committed: Sequence[float | None],
    window: tuple[float, float],
    observed_until: float,
) -> Outcomes:
    """Latencies and failures of the transactions submitted inside ``window`` (absolute times, ``[w0, w1)``)."""
    w0, w1 = window
    latencies, censored, count = [], [], 0
    for sent, done in zip(submitted, committed, strict=True):
        if not w0 <= sent < w1:
            continue
        count += 1
        if done is None:
            censored.append(max(0.0, observed_until - sent))
        else:
            latencies.append(done - sent)
    return Outcomes(latencies, censored, count)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per bucket from the load's start to the last commit: commits/s and the latency of what committed in it."""

    bucket_s: float
    committed_tx_s: list[float]
    latency_p50_s: list[float]
    latency_p99_s: list[float]


def timeline(
    submitted: Sequence[float], committed: Sequence[float | None], start: float, until: float,
    bucket_s: float = BUCKET_S,
) -> Timeline:
    """Throughput and latency over time; a bucket with no commit has NaN latencies."""
    size = math.ceil((until - start) / bucket_s) if until > start else 0
    by_bucket: list[list[float]] = [[] for _ in range(size)]
    for sent, done in zip(submitted, committed, strict=True):
        if done is not None and start <= done < start + size * bucket_s:
            by_bucket[int((done - start) / bucket_s)].append(done - sent)
    cuts = [percentiles(values, (50, 99)) for values in by_bucket]
    return Timeline(
        bucket_s,
        [len(values) / bucket_s for values in by_bucket],
        [c["p50"] for c in cuts],
        [c["p99"] for c in cuts],
    )
