"""``medchain chaos``: fault-injection experiments on a fresh local cluster, checked and reported.

Each run starts its own cluster (stopped at the end, also on errors, Ctrl-C
and SIGTERM), so these commands need no running network.  Exit status: 0
when every expectation of every scenario run held, 1 when one did not, 2 for
a usage error, 130 when interrupted.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from node.cli.common import json_option, print_json
from node.cli.lab_options import interrupted
from node.lab.chaos import scenario as scenarios
from node.lab.chaos.report import verdict_table
from node.lab.chaos.runner import RunResult, run_scenario
from node.lab.chaos.schedule import random_scenario
from node.lab.chaos.verdict import Verdicts
from node.lab.fresh_cluster import raise_interrupt_on_sigterm
from node.lab.progress import Progress

OUT_HELP = "Folder for the run: OUT/network (the nodes' folders and logs), report.json, report.md, timeline.png."


def _run(scenario: scenarios.Scenario, out: Path, seed: int | None, as_json: bool) -> RunResult:
    raise_interrupt_on_sigterm()
    try:
        return run_scenario(scenario, out, Progress(as_json), seed)
    except KeyboardInterrupt:
        interrupted("the cluster was stopped")


def _show(result: RunResult, as_json: bool) -> None:
    if as_json:
        print_json(result.summary())
        return
    v = result.verdicts
    click.echo(f"{result.scenario.name}: {v.outcome} (expectation {'met' if v.expectation_met else 'NOT met'})")
    for item in v.items:
        click.echo(f"  {item.name:<11} {'ok  ' if item.ok else 'FAIL'}  {item.summary}")
    click.echo(f"  {len(result.record.acks):,} of {result.record.submitted:,} honest transactions acknowledged; "
               f"{result.seconds:.0f} s in all")
    click.echo(f"  report: {', '.join(str(p) for p in result.files)}")


def worst_recovery(verdicts: Verdicts) -> float | None:
    """The slowest recovery after a fault's end, from the liveness verdict (None: none measured)."""
    live = verdicts.get("liveness")
    times = [r.get("recovery_s") for r in (live.data.get("recoveries", []) if live else [])]
    found = [t for t in times if isinstance(t, int | float)]
    return max(found) if found else None


@click.group("chaos")
def chaos_group() -> None:
    """Fault-injection experiments: scenarios of crashes, partitions, Byzantine validators, checked afterwards.

    \b
      medchain chaos list                                   the shipped scenarios
      medchain chaos run primary-crash --out ./runs/pc      one scenario, its report in ./runs/pc
      medchain chaos run-all --out ./runs                   every scenario, one table
      medchain chaos random --seed 3 --duration 40 --out ./runs/r3
    """


@chaos_group.command("list")
@json_option("Print the scenarios (name, description, file) as JSON.")
def list_command(as_json: bool) -> None:
    """The scenarios shipped in configs/scenarios, each with its one-line description."""
    rows = [scenarios.load_scenario(path) for path in scenarios.shipped()]
    if as_json:
        print_json([{"name": s.name, "description": s.description, "file": s.source} for s in rows])
        return
    width = max((len(s.name) for s in rows), default=0)
    for s in rows:
        click.echo(f"{s.name:<{width}}  {s.description}")


@chaos_group.command("run")
@click.argument("scenario")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help=OUT_HELP)
@click.option("--seed", type=int, default=None, help="Replaces the scenario file's seed (link faults, targets).")
@json_option("Print the verdicts as one JSON object; no progress on stderr.")
def run_command(scenario: str, out: Path, seed: int | None, as_json: bool) -> None:
    """Run SCENARIO (a file, or the name of one in configs/scenarios) on a fresh cluster and check it.

    Starts the cluster, drives the load, applies the timeline, then checks
    agreement, durability, validity, liveness and evidence from every node's
    store and writes the report.  Exit status 0 when every expectation held.
    """
    result = _run(scenarios.load_scenario(scenarios.find_scenario(scenario)), out, seed, as_json)
    _show(result, as_json)
    if not result.verdicts.expectation_met:
        raise SystemExit(1)


@chaos_group.command("run-all")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Each scenario's run goes in OUT/<name> (default: a new temporary folder, kept and named).")
@click.option("--only", default=None, metavar="NAME,...", help="Run only these scenarios (comma-separated names).")
@json_option("Print every run's verdicts as a JSON list; no progress on stderr.")
def run_all_command(out: Path | None, only: str | None, as_json: bool) -> None:
    """Run every shipped scenario (or --only some) and print one table; exit 0 only if all met expectations."""
    chosen = [scenarios.load_scenario(p) for p in scenarios.shipped()]
    if only is not None:
        wanted = [n.strip() for n in only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {s.name for s in chosen})
        if unknown or not wanted:
            raise click.UsageError(f"--only: no scenario named {', '.join(unknown) or '(none given)'}; "
                                   "see 'medchain chaos list'")
        chosen = [s for s in chosen if s.name in wanted]
    base = out or Path(tempfile.mkdtemp(prefix="medchain-chaos-"))
    results = [_run(s, base / s.name, None, as_json) for s in chosen]
    if as_json:
        print_json([r.summary() for r in results])
    else:
        click.echo(_table(results))
        click.echo(f"reports under {base}")
    if not all(r.verdicts.expectation_met for r in results):
        raise SystemExit(1)


def _table(results: list[RunResult]) -> str:
    lines = verdict_table([(r.scenario.name, r.verdicts) for r in results]).splitlines()
    recovery = ["worst recovery", "-" * 14] + [
        "-" if (w := worst_recovery(r.verdicts)) is None else f"{w:.2f} s" for r in results
    ]
    width = max(len(line) for line in lines)
    return "\n".join(f"{line:<{width}}  {extra}" for line, extra in zip(lines, recovery, strict=True))


@chaos_group.command("random")
@click.option("--seed", type=int, required=True, help="Seeds the schedule: the same seed gives the same schedule.")
@click.option("--duration", type=click.FloatRange(10, 3_600), default=40.0, show_default=True,
              help="Seconds of load over which the faults are spread.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help=OUT_HELP)
@click.option("--validators", type=click.IntRange(4, 31), default=4, show_default=True,
              help="Validators in the cluster (f = (n - 1) // 3 may be faulty at once).")
@click.option("--dry-run", is_flag=True, help="Print the schedule and stop (no cluster started).")
@json_option("Print the schedule and the verdicts as one JSON object; no progress on stderr.")
def random_command(seed: int, duration: float, out: Path, validators: int, dry_run: bool, as_json: bool) -> None:
    """A random schedule of faults, never more than f validators faulty at once; run it and check it."""
    scenario = random_scenario(seed, duration, validators)
    schedule = [s.describe() for s in scenario.timeline]
    if dry_run or not as_json:
        _print_schedule(scenario, schedule, as_json and dry_run)
    if dry_run:
        return
    result = _run(scenario, out, seed, as_json)
    if as_json:
        doc: dict[str, Any] = {"schedule": schedule, **result.summary()}
        print_json(doc)
    else:
        _show(result, False)
    if not result.verdicts.expectation_met:
        raise SystemExit(1)


def _print_schedule(scenario: scenarios.Scenario, schedule: list[str], as_json: bool) -> None:
    if as_json:
        print_json({"scenario": scenario.name, "schedule": schedule})
        return
    click.echo(f"{scenario.name}: {scenario.description}")
    for line in schedule:
        click.echo(f"  {line}")
