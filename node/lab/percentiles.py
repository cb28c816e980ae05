"""Percentiles of measured samples: the one implementation every lab tool reports with.

Built on ``statistics.quantiles`` from the standard library, method
``"inclusive"``: for the lab tools' small samples (scan times, send delays,
chaos gaps), exact percentiles cost only a sort.  The cluster bench's commit
latency goes through an HDR histogram instead (``node.lab.bench_hdr``): fixed
memory for runs of a million transactions, p99.9 without keeping every
sample, and a portable dump in the report.  The inclusive method
interpolates linearly between the two nearest ranks (R's type 7, numpy's
default), so a percentile never leaves the range of what was measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentiles(
    values: Sequence[float], points: Sequence[int], scale: float = 1.0, ndigits: int | None = None
) -> dict[str, float]:
    """``{"p50": ..., ..., "max": ...}`` for the given whole-number ``points``, each value times ``scale``.

    No samples: every figure is NaN (undefined, not zero).  ``ndigits`` rounds the figures.
    """
    if any(not 0 < p < 100 for p in points):
        raise ValueError(f"percentile points must be between 0 and 100 exclusive, got {list(points)}")
    if not values:
        return {**{f"p{p}": math.nan for p in points}, "max": math.nan}
    # statistics.quantiles needs two samples before Python 3.13; one sample is every percentile of itself
    one = len(values) == 1
    cuts = [float(values[0])] * 99 if one else statistics.quantiles(values, n=100, method="inclusive")
    out = {f"p{p}": cuts[p - 1] * scale for p in points}
    out["max"] = max(values) * scale
    if ndigits is not None:
        out = {k: round(v, ndigits) for k, v in out.items()}
    return out


def no_nan(value: object) -> object:
    """JSON has no NaN: an undefined figure (no sample) becomes null, in nested dicts and lists too."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value
