"""``medchain bench``: from the options to the report, whichever series they ask for.

One run or a profile's runs (``node.lab.bench``), a sweep over cluster sizes
(``node.lab.bench_sweep``) or the search for the highest sustainable rate
(``node.lab.bench_find_max``); anchors on a plain cluster, a consortium or a
target, or the healthcare mix on a consortium.  Fresh networks go under
``--dir`` (kept) or a temporary folder (removed unless the run failed); every
cluster the bench started is stopped on the way out, a target never is.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.lab import bench, bench_readings
from node.lab.bench_find_max import find_max
from node.lab.bench_options import Options
from node.lab.bench_sweep import sweep
from node.lab.fresh_cluster import lab_folder
from node.lab.percentiles import no_nan
from node.lab.progress import Progress


def measure(options: Options, base: Path, verify_seconds: float, progress: Progress) -> dict[str, Any]:
    """Run what the options ask for, networks under ``base``; the report without its context."""
    plans = options.plans()
    if options.sweep_nodes:
        return sweep(plans[0], options.sweep_nodes, base, verify_seconds, progress)
    if options.find_max:
        return find_max(plans[0], options.network(), options.p99_bound_s, options.max_steps, base, verify_seconds,
                        progress)
    workload = options.chosen_workload()
    if workload == "anchor":
        return bench.bench([(plan, options.network()) for plan in plans], base, verify_seconds, progress)
    internal = "mixed" if workload == "mix" else workload
    return bench.bench_consortium(plans, internal, options.network(), base, verify_seconds, progress)


def series(options: Options) -> str:
    if options.sweep_nodes:
        return f"sweep over {', '.join(map(str, options.sweep_nodes))} validators"
    return "find-max" if options.find_max else "runs"


def run_bench(options: Options, directory: Path | None, verify_seconds: float, progress: Progress) -> dict[str, Any]:
    """Run the benchmark and return its report (NaN figures as null).

    The networks go under ``directory`` and stay there; without one, into a
    temporary folder that is removed afterwards unless the run failed (its node
    logs are kept and the error names the folder).  Every cluster the bench
    started is stopped on the way out, on errors, on Ctrl-C and on SIGTERM alike.
    """
    with lab_folder(directory, "medchain-bench-", bench.BenchError, what="networks") as base:
        context = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **bench_readings.commit(),
            "machine": bench_readings.machine(),  # before anything starts: its load average is the machine's own
            "workload": options.chosen_workload(),
            "network": "plain clusters, one per size" if options.sweep_nodes else options.network().describe(),
            "series": series(options),
            "plans": [asdict(p) for p in options.plans()],
        }
        found = measure(options, base, verify_seconds, progress)
        report = context | {k: v for k, v in found.items() if k != "machine"}
    cleaned: dict[str, Any] = no_nan(report)  # type: ignore[assignment]
    return cleaned
