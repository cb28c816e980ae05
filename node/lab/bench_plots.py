"""The bench's PNG plots (matplotlib, one pair per run), drawn on bare ``Figure`` objects: no pyplot, no
display, no global state (``savefig`` renders a PNG with the Agg canvas).

* ``<run>-over-time.png``: committed tx/s per second above, the p50 and p99
  commit latency of what committed in each second below; the steady window
  shaded on both;
* ``<run>-latency-distribution.png``: the HDR percentile plot of commit
  latency (committed transactions), the x axis stretched towards 100 % as
  HdrHistogram's plots are (1 / (1 - p)), with the failures named in the title;
* ``sweep.png`` (``--sweep-nodes``): committed tx/s and each size's ceiling
  above, p50 and p99 commit latency below, against the number of validators.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def file_stem(run_name: str) -> str:
    """A run's name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_name) or "run"


def plot_run(run: dict[str, Any], out: Path) -> list[Path]:
    """Write the run's plots into ``out``; return their paths."""
    stem = file_stem(run["name"])
    paths = [out / f"{stem}-over-time.png", out / f"{stem}-latency-distribution.png"]
    for path, figure in zip(paths, (_over_time(run), _distribution(run)), strict=True):
        figure.savefig(path, dpi=100)
    return paths


def _nan(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _over_time(run: dict[str, Any]) -> Figure:
    line, window = run["timeline"], run["window"]
    rates = line["committed_tx_s"]
    edges = [line["bucket_s"] * i for i in range(len(rates) + 1)]
    seconds = [line["bucket_s"] * (i + 0.5) for i in range(len(rates))]
    figure = Figure(figsize=(9, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    if rates:
        top.stairs(rates, edges, color="tab:blue", label="committed tx/s")
    top.set_ylabel("committed tx/s")
    top.set_title(f"{run['name']}: {run['description']}")
    bottom.plot(seconds, _nan(line["latency_p50_s"]), label="p50", color="tab:green", marker=".")
    bottom.plot(seconds, _nan(line["latency_p99_s"]), label="p99", color="tab:red", marker=".")
    bottom.set_ylabel("commit latency (s)")
    bottom.set_xlabel("seconds since the load started (latency of what committed in each second)")
    bottom.legend(loc="upper left")
    for axes in (top, bottom):
        axes.axvspan(window["start_s"], window["end_s"], color="0.9", zorder=0, label="steady window")
        axes.axvline(run["seconds"], color="0.5", linestyle=":", linewidth=1, label="load ended")
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
    top.legend(loc="upper left")
    return figure


def _stretch(percentile: float) -> float:
    """Where a percentile sits on the x axis: 1 / (1 - p), capped so that 100 % stays finite."""
    return 1.0 / max(1e-6, 1.0 - percentile / 100.0)


def _distribution(run: dict[str, Any]) -> Figure:
    curve = [(p, v) for p, v in run["latency_curve"] if p < 100.0]  # 100 % would sit at infinity: max is a line
    failures = run["failures"]
    figure = Figure(figsize=(9, 5), layout="constrained")
    axes = figure.subplots()
    if curve:
        axes.plot([_stretch(p) for p, _ in curve], [v for _, v in curve], color="tab:blue", label="committed")
        axes.axhline(run["latency_s"]["max"], color="tab:red", linestyle=":", label="max")
    axes.set_xscale("log")
    shown = [t for t in TICKS if not curve or _stretch(t) <= _stretch(curve[-1][0]) * 1.01]
    axes.set_xticks([_stretch(t) for t in shown], [f"{t:g}%" for t in shown])
    axes.minorticks_off()
    axes.set_xlabel("percentile")
    axes.set_ylabel("commit latency (s)")
    axes.set_ylim(bottom=0)
    axes.set_title(
        f"{run['name']}: commit latency in the steady window, HDR histogram; "
        f"{failures.get('never_committed', 0):,} of {failures.get('submitted', 0):,} never committed"
    )
    axes.grid(True, alpha=0.3)
    if curve:
        axes.legend(loc="upper left")
    return figure


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def plot_sweep(sweep: dict[str, Any], out: Path) -> Path:
    """Throughput (with each size's ceiling) and p50/p99 latency against the number of validators."""
    rows = sorted(sweep["rows"], key=lambda r: r["validators"])
    sizes = [r["validators"] for r in rows]
    figure = Figure(figsize=(8, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(sizes, [_or_nan(r["committed_tx_s"]) for r in rows], marker="o", color="tab:blue",
             label="committed tx/s (steady window)")
    top.plot(sizes, [r["ceiling_tx_s"] for r in rows], marker=".", linestyle="--", color="0.5",
             label="ceiling: cores x verify/s / validators")
    top.set_ylabel("tx/s")
    top.set_title("sweep over the number of validators")
    bottom.plot(sizes, [_or_nan(r["p50_s"]) for r in rows], marker="o", color="tab:green", label="p50")
    bottom.plot(sizes, [_or_nan(r["p99_s"]) for r in rows], marker="o", color="tab:red", label="p99")
    bottom.set_ylabel("commit latency (s)")
    bottom.set_xlabel("validators")
    bottom.set_xticks(sizes)
    for axes in (top, bottom):
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend(loc="best")
    path = out / "sweep.png"
    figure.savefig(path, dpi=100)
    return path
