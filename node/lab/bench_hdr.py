"""Commit latency through an HDR histogram (``hdrhistogram``): percentiles, the percentile curve, a portable dump.

Latencies are recorded in whole microseconds from 1 µs to one hour with three
significant digits, so every figure is within 0.1 % of the exact sample
(HdrHistogram reports the highest value equivalent to the bucket).  A latency
above an hour is recorded as an hour.  The histogram keeps a run's latencies
in fixed memory whatever its length, and its compressed dump (``encoded``)
lets anyone reload the whole distribution from ``report.json``
(``HdrHistogram.decode``) and ask for other percentiles.

Failures (transactions that never committed) are never dropped: the summary
counts them beside the percentiles of what committed, and
``censored_summary`` gives the percentiles with each failure recorded at the
latency it had reached when the bench stopped watching (a lower bound of its
own, unknown, latency), so a high percentile that lands on a failure shows it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
POINTS = (50.0, 90.0, 99.0, 99.9)
CURVE_TICKS = 5  # percentile-curve points per halving of the distance to 100 %


def point_name(p: float) -> str:
    """``50.0`` -> ``"p50"``, ``99.9`` -> ``"p99.9"``."""
    return f"p{p:g}"


class LatencyHistogram:
    """Latencies in seconds, kept as microseconds in an HdrHistogram."""

    def __init__(self, values: Iterable[float] = ()) -> None:
        self.hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        for value in values:
            self.record(value)

    def record(self, seconds: float) -> None:
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"a latency must be a number of seconds >= 0, got {seconds}")
        self.hdr.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6))))

    @property
    def count(self) -> int:
        return int(self.hdr.get_total_count())

    def summary(self, points: Sequence[float] = POINTS) -> dict[str, float]:
        """``{"p50": s, ..., "p99.9": s, "max": s}`` in seconds; NaN for every figure when nothing was recorded."""
        if not self.count:
            return {**{point_name(p): math.nan for p in points}, "max": math.nan}
        out = {point_name(p): self.hdr.get_value_at_percentile(p) / 1e6 for p in points}
        out["max"] = self.hdr.get_max_value() / 1e6
        return out

    def curve(self) -> list[tuple[float, float]]:
        """(percentile, seconds) pairs for a percentile plot, denser towards 100 % (empty: no samples)."""
        if not self.count:
            return []
        points = [
            (round(float(item.percentile_level_iterated_to), 6), item.value_iterated_to / 1e6)
            for item in self.hdr.get_percentile_iterator(CURVE_TICKS)
        ]
        return [(p, v) for p, v in points if p < 100.0] + [(100.0, self.hdr.get_max_value() / 1e6)]

    def encoded(self) -> str:
        """The whole distribution, compressed and base64-encoded (HdrHistogram's portable format)."""
        return str(self.hdr.encode().decode("ascii")) if self.count else ""


@dataclass(frozen=True, slots=True)
class LatencyReport:
    """The latency figures of a steady window (seconds)."""

    committed_s: dict[str, float]  # percentiles over the transactions that committed
    with_failures_s: dict[str, float]  # the same with each failure at the latency it had reached
    submitted: int
    committed: int
    failures: int
    curve: list[list[float]]  # (percentile, seconds) of the committed, for the percentile plot
    hdr: str  # the committed latencies' histogram, compressed and base64-encoded (microseconds)

    @property
    def failure_share(self) -> float:
        return self.failures / self.submitted if self.submitted else math.nan


def latency_report(latencies: Sequence[float], censored: Sequence[float]) -> LatencyReport:
    """Committed-only and censored percentiles, the failures, the curve and the dump."""
    committed = LatencyHistogram(latencies)
    everything = LatencyHistogram(latencies)
    for value in censored:
        everything.record(value)
    return LatencyReport(
        committed.summary(),
        everything.summary(),
        len(latencies) + len(censored),
        len(latencies),
        len(censored),
        [list(point) for point in committed.curve()],
        committed.encoded(),
    )
