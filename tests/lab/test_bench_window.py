"""The bench's steady window, failures and HDR percentiles, on synthetic timings whose answers are known."""

from __future__ import annotations

import math

import pytest
from hdrh.histogram import HdrHistogram

from node.lab.bench_hdr import LatencyHistogram, latency_report
from node.lab.bench_window import bucket_counts, outcomes, steady_window, timeline

START = 1000.0  # an arbitrary clock origin: every answer is relative to the load's start


def commits_at(rate_by_second: list[int], start: float = START) -> list[float | None]:
    """``n`` commits spread evenly over each second ``i`` of the list."""
    return [start + i + (k + 0.5) / n for i, n in enumerate(rate_by_second) for k in range(n)]


def test_buckets_count_commits_per_second_and_ignore_the_rest() -> None:
    times: list[float | None] = [START + 0.1, START + 0.9, START + 1.0, None, START - 1, START + 2.5, START + 3.0]
    assert bucket_counts(times, START, START + 3) == [2, 1, 1]
    assert bucket_counts(times, START, START + 2.5) == [2, 1, 0]  # a partial last bucket, its end excluded
    assert bucket_counts(times, START, START) == []


def test_warm_up_and_drain_are_trimmed_and_said() -> None:
    # 2 s of pipeline filling, 6 s at 100 tx/s, 2 s of the load's end trailing off, commits after the load
    commits = commits_at([5, 20, 100, 100, 100, 100, 100, 100, 30, 10, 4])
    window = steady_window(commits, START, START + 10)
    assert (window.start_s, window.end_s) == (2.0, 8.0)
    assert window.warmup_s == 2.0
    assert window.drain_s == pytest.approx(10.875 - 8.0)  # to the last commit, after the load ended
    assert window.committed == 600 and window.tx_per_s == 100.0
    assert "50%" in window.rule and "median 100" in window.rule


def test_a_stall_inside_the_window_stays_in_it_and_lowers_the_rate() -> None:
    commits = commits_at([100, 100, 100, 0, 0, 100, 100, 100])
    window = steady_window(commits, START, START + 8)
    assert (window.start_s, window.end_s) == (0.0, 8.0)
    assert window.tx_per_s == pytest.approx(600 / 8)


def test_an_empty_run_is_measured_whole_and_commits_nothing() -> None:
    window = steady_window([None, None], START, START + 5)
    assert (window.start_s, window.end_s, window.committed) == (0.0, 5.0, 0)
    assert window.tx_per_s == 0.0 and "no commits" in window.rule
    got = outcomes([START + 1, START + 2], [None, None], (START, START + 5), observed_until=START + 30)
    assert got.latencies == [] and got.censored == [29.0, 28.0] and got.failures == 2
    report = latency_report(got.latencies, got.censored)
    assert all(math.isnan(v) for v in report.committed_s.values())
    assert report.with_failures_s["max"] == pytest.approx(29.0, rel=1e-3)
    assert (report.submitted, report.failures, report.failure_share) == (2, 2, 1.0)


def test_a_short_load_is_measured_whole() -> None:
    window = steady_window(commits_at([3, 50]), START, START + 2.5)
    assert (window.start_s, window.end_s, window.committed) == (0.0, 2.5, 53)
    assert "whole load period" in window.rule


def test_never_committed_transactions_are_failures_not_left_out() -> None:
    # 100 submitted in the window, one per 10 ms; latency 0.1 s, but every tenth never commits
    submitted = [START + 1 + i / 100 for i in range(100)]
    committed: list[float | None] = [None if i % 10 == 9 else t + 0.1 for i, t in enumerate(submitted)]
    late = [START + 0.5, START + 9.5]  # outside the window: neither latency nor failure
    got = outcomes([*submitted, *late], [*committed, None, None], (START + 1, START + 9), observed_until=START + 20)
    assert (got.submitted, len(got.latencies), got.failures) == (100, 90, 10)
    report = latency_report(got.latencies, got.censored)
    assert report.committed_s["p99"] == pytest.approx(0.1, rel=1e-3)
    # counted at the run's end, the failures own the top 10 %: p50 stays, p99 is 18+ s
    assert report.with_failures_s["p50"] == pytest.approx(0.1, rel=1e-3)
    assert report.with_failures_s["p99"] > 18.0
    assert report.failure_share == pytest.approx(0.1)


def test_hdr_percentiles_are_within_its_precision_of_the_exact_ones() -> None:
    values = [i / 1000 for i in range(1, 10_001)]  # 1 ms .. 10 s
    found = LatencyHistogram(values).summary()
    exact = {"p50": 5.0, "p90": 9.0, "p99": 9.9, "p99.9": 9.99, "max": 10.0}
    assert set(found) == set(exact)
    for key, value in exact.items():
        assert found[key] == pytest.approx(value, rel=2e-3), key


def test_the_hdr_dump_reloads_the_same_distribution() -> None:
    histogram = LatencyHistogram([0.01, 0.02, 0.5, 2.0])
    again = HdrHistogram.decode(histogram.encoded())
    assert again.get_total_count() == 4
    assert again.get_value_at_percentile(50) == histogram.hdr.get_value_at_percentile(50)
    curve = histogram.curve()
    assert curve[-1] == (100.0, pytest.approx(2.0, rel=1e-3))
    assert [p for p, _ in curve] == sorted(p for p, _ in curve)


def test_a_negative_or_nan_latency_is_refused() -> None:
    for bad in (-0.1, math.nan):
        with pytest.raises(ValueError, match="latency"):
            LatencyHistogram([bad])


def test_the_timeline_gives_rate_and_latency_per_second() -> None:
    submitted = [START + 0.1, START + 0.2, START + 1.1, START + 3.0]
    committed: list[float | None] = [START + 0.6, START + 0.7, START + 1.5, None]
    line = timeline(submitted, committed, START, START + 3.0)
    assert line.committed_tx_s == [2.0, 1.0, 0.0]
    assert line.latency_p50_s[0] == pytest.approx(0.5) and line.latency_p50_s[1] == pytest.approx(0.4)
    assert math.isnan(line.latency_p99_s[2])
