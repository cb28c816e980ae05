"""``medchain bench --find-max``: the highest open-loop rate a cluster sustains within a p99 bound.

The search, all on one cluster (fresh, or ``--target``), one open-loop step after another:

* each step offers ``rate`` tx/s of pre-signed anchors for ``--duration`` seconds
  (signed before the step's clock starts) and is measured like any run
  (steady window, HDR latency, failures counted);
* a step is *sustainable* when the p99 commit latency, with every transaction
  that never committed counted at the latency it had reached (so failures
  push it up), is at most the bound (``--p99-bound``, 1 s by default), and
  the cluster committed at least ``KEEP_UP`` of the offered rate over the
  steady window (an open loop that falls behind builds a queue a short step
  may not yet show in its p99);
* growth: the first step offers ``--rate`` (500 tx/s by default); while every
  step was sustainable the next offers ``FACTOR`` times the last (at most
  ``MAX_RATE``); if the first fails, each next one offers the last divided by
  ``FACTOR`` until one is sustainable (not below ``MIN_RATE``);
* refinement: once a sustainable rate and a higher unsustainable one bracket
  the answer, up to ``REFINE_STEPS`` steps bisect the bracket (its midpoint,
  to the whole tx/s), stopping early when it is narrower than 5 %;
* ``--max-steps`` bounds the whole search; the answer is the highest
  sustainable rate offered, with what that step committed.

``next_rate`` is the search on its own (no I/O); ``find_max`` runs it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from node.lab import bench
from node.lab.bench_network import NetworkSpec, open_site, started
from node.lab.fresh_cluster import wait_ready
from node.lab.progress import Progress
from node.lab.usage import settle

FACTOR = 2.0
REFINE_STEPS = 2
MIN_RATE = 1.0
MAX_RATE = 50_000.0
KEEP_UP = 0.9  # a sustainable step commits at least this share of the offered rate
NARROW = 0.05  # a bracket narrower than this share of its low end is not refined further


@dataclass(frozen=True, slots=True)
class Step:
    run: str
    rate: float
    committed_tx_s: float
    p99_s: float | None  # with the never-committed at the latency they had reached
    never_committed: int
    sustainable: bool
    why: str


def judge(run: dict[str, Any], bound_s: float) -> Step:
    """Whether one measured step (a run of the report) was sustainable, and why (one line)."""
    rate, committed = float(run["rate"]), _number(run["throughput_tx_s"]) or 0.0
    p99 = _number(run["latency_with_failures_s"].get("p99"))
    never = int(run["failures"].get("never_committed", 0))
    if p99 is None:
        ok, why = False, "nothing committed"
    elif p99 > bound_s:
        ok, why = False, f"p99 {p99:.3f} s > {bound_s:g} s"
    elif committed < KEEP_UP * rate:
        ok, why = False, f"committed {committed:,.1f} tx/s < {KEEP_UP:.0%} of {rate:g} offered"
    else:
        ok, why = True, f"p99 {p99:.3f} s <= {bound_s:g} s, committed {committed:,.1f} tx/s"
    return Step(run["name"], rate, committed, p99, never, ok, why)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def next_rate(tried: Sequence[tuple[float, bool]], start: float, max_steps: int) -> float | None:
    """The next rate to offer after the ``(rate, sustainable)`` steps so far, or None: the search is over."""
    if len(tried) >= max_steps:
        return None
    if not tried:
        return start
    passed = [rate for rate, ok in tried if ok]
    last = tried[-1][0]
    if len(passed) == len(tried):
        return min(round(last * FACTOR), MAX_RATE) if last < MAX_RATE else None
    if not passed:
        lower = round(last / FACTOR, 1)
        return lower if lower >= MIN_RATE else None
    best = max(passed)
    above = [rate for rate, ok in tried if not ok and rate > best]
    if not above:  # every failure lies below the best step: nothing to refine
        return None
    low_fail = min(above)
    bracketed = next(i for i in range(len(tried)) if {ok for _, ok in tried[: i + 1]} == {True, False})
    if len(tried) - 1 - bracketed >= REFINE_STEPS or low_fail - best <= max(1.0, NARROW * best):
        return None
    return float(round((best + low_fail) / 2))


def find_max(
    plan: bench.RunPlan, spec: NetworkSpec, bound_s: float, max_steps: int, base: Path, verify_seconds: float,
    progress: Progress,
) -> dict[str, Any]:
    """Run the search on one cluster; the report holds every step as a run, and the search in ``find_max``."""
    site = open_site(spec, base / "find-max")
    probe = bench.sign_for(site, "probe", 1, progress)[0]
    steps: list[Step] = []
    runs: list[bench.RunResult] = []
    ceiling: bench.Ceiling | None = None
    with started(site, progress.say) as nodes:
        asyncio.run(wait_ready(nodes, probe))
        while (rate := next_rate([(s.rate, s.sustainable) for s in steps], plan.rate, max_steps)) is not None:
            step_plan = replace(plan, name=f"step{len(steps) + 1}-{rate:g}", mode="rate", rate=rate, txs=0)
            txs = bench.sign_for(site, step_plan.name, step_plan.presign_count(), progress)
            if ceiling is None:
                ceiling = bench.measure_ceiling(txs, verify_seconds, site.validators, progress)
            if runs:  # what the last step left (LevelDB compacting) must not land in this one
                settle([n.pid for n in nodes], progress.say)
            result = bench.measure_plan(step_plan, nodes, txs, progress)
            bench.set_against(result, ceiling, site.validators)
            runs.append(result)
            steps.append(judge(asdict(result), bound_s))
            progress.say(f"{step_plan.name}: {'sustainable' if steps[-1].sustainable else 'not sustainable'}: "
                         f"{steps[-1].why}")
    assert ceiling is not None
    return {
        "machine": bench.machine_summary(),
        "ceiling": asdict(ceiling),
        "runs": [asdict(r) for r in runs],
        "goals": [],
        "find_max": summary(steps, plan, bound_s, max_steps),
    }


def summary(steps: Sequence[Step], plan: bench.RunPlan, bound_s: float, max_steps: int) -> dict[str, Any]:
    best = max((s for s in steps if s.sustainable), key=lambda s: s.rate, default=None)
    return {
        "p99_bound_s": bound_s,
        "start_tx_s": plan.rate,
        "factor": FACTOR,
        "refine_steps": REFINE_STEPS,
        "max_steps": max_steps,
        "step_seconds": plan.seconds,
        "keep_up": KEEP_UP,
        "rule": f"sustainable: p99 commit latency (never-committed counted) <= {bound_s:g} s and committed >= "
        f"{KEEP_UP:.0%} of the offered rate; rates x{FACTOR:g} from {plan.rate:g} tx/s until a step fails (or /"
        f"{FACTOR:g} until one passes), then up to {REFINE_STEPS} bisections; at most {max_steps} steps of "
        f"{plan.seconds:g} s",
        "steps": [asdict(s) for s in steps],
        "highest_sustainable_tx_s": best.rate if best else None,
        "committed_at_highest_tx_s": best.committed_tx_s if best else None,
    }
