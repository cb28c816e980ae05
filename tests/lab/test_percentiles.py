"""The one percentile implementation of the lab tools, on data whose answers are known."""

from __future__ import annotations

import math
import random

import pytest

from node.lab.percentiles import no_nan, percentiles


def test_one_to_a_hundred_interpolates_between_the_nearest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    random.Random(3).shuffle(values)  # the order of the samples does not matter
    found = percentiles(values, (50, 90, 95, 99))
    assert found == pytest.approx({"p50": 50.5, "p90": 90.1, "p95": 95.05, "p99": 99.01, "max": 100.0})


def test_small_samples_stay_within_what_was_measured() -> None:
    assert percentiles([4.0, 1.0, 3.0, 2.0], (50, 99)) == pytest.approx({"p50": 2.5, "p99": 3.97, "max": 4.0})
    assert percentiles([7.0], (50, 99)) == {"p50": 7.0, "p99": 7.0, "max": 7.0}
    assert percentiles([2.0, 2.0, 2.0], (50,)) == {"p50": 2.0, "max": 2.0}


def test_scale_and_rounding() -> None:
    found = percentiles([0.001, 0.002, 0.003], (50,), scale=1000.0, ndigits=2)
    assert found == {"p50": 2.0, "max": 3.0}
    assert percentiles([1.0, 2.0], (50,), ndigits=0) == {"p50": 2.0, "max": 2.0}  # 1.5 rounds to even


def test_no_samples_means_undefined_figures_and_null_in_json() -> None:
    found = percentiles([], (50, 99))
    assert set(found) == {"p50", "p99", "max"} and all(math.isnan(v) for v in found.values())
    assert no_nan({"latency": found, "runs": [math.nan, 1.0]}) == {
        "latency": {"p50": None, "p99": None, "max": None},
        "runs": [None, 1.0],
    }


@pytest.mark.parametrize("points", [(0,), (100,), (50, 101)])
def test_points_outside_the_open_range_are_refused(points: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentiles([1.0, 2.0], points)
