"""`medchain sim`: seeded simulations of the PBFT engine, judged for safety and liveness.

The simulator itself is pure (``consensus.sim``); this command only chooses a
scenario, injects the process CPU clock, optionally watches memory with
tracemalloc, and prints the summary for people or, with ``--json``, for scripts.
Exit status: 0 when every run was safe and live, 1 on any safety violation or
stalled run, 2 on bad arguments.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import click

from consensus.sim import BEHAVIOURS, RunResult, Scenario, run_many, run_one, summarize
from consensus.sim.cluster import Cluster
from consensus.sim.geography import GEOGRAPHIES
from primitives.errors import UsageError


class _OneLineUsageError(click.UsageError):
    """Bad arguments: one line on stderr, exit status 2."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()} (see `medchain sim --help`)", err=True)


class _SimCommand(click.Command):
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as error:
            raise _OneLineUsageError(error.format_message(), error.ctx) from None


@click.command(cls=_SimCommand)
@click.option("--nodes", "-n", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Validators in the simulated cluster.")
@click.option("--byzantine", "-k", type=click.IntRange(0), default=0, show_default=True,
              help="How many of them are Byzantine (the first K, so the initial primary is one).")
@click.option("--behaviour", "-b", type=click.Choice(BEHAVIOURS), default="none", show_default=True,
              help="What the Byzantine replicas do; `none` runs an all-honest cluster.")
@click.option("--seeds", "-s", type=click.IntRange(1), default=10, show_default=True,
              help="How many seeded runs (each seed is one fully deterministic run).")
@click.option("--first-seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the first run.")
@click.option("--heights", type=click.IntRange(1), default=20, show_default=True,
              help="Every honest replica must reach this height.")
@click.option("--drop", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Probability that a message is lost while faults last.")
@click.option("--duplicate", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Probability that a message arrives twice.")
@click.option("--lossy-after-heal", is_flag=True, help="Keep losing messages after the faults heal.")
@click.option("--partition", is_flag=True, help="Cut the cluster in two for a while, then heal.")
@click.option("--crash", type=click.IntRange(0), default=0, is_flag=False, flag_value=1, show_default=True,
              help="Crash this many honest replicas (default 1 when given alone); they restart from store and WAL.")
@click.option("--txs-per-block", type=click.IntRange(1, 20_000), default=100, show_default=True,
              help="Largest batch a primary proposes (clients offer 20 full blocks per virtual second).")
@click.option("--progress-timeout-ms", type=click.IntRange(1), default=500, show_default=True,
              help="Virtual time work may wait at one height before a view change.")
@click.option("--checkpoint-interval", type=click.IntRange(1), default=10, show_default=True,
              help="Heights between checkpoints (stable checkpoints garbage-collect the engine's logs).")
@click.option("--regions", type=click.Choice(sorted(GEOGRAPHIES)), default=None,
              help="Place the validators in a geography's regions in turn (europe6: London, Paris, Frankfurt, "
                   "Madrid, Milan, Stockholm); each message then takes its link's modelled latency and its size "
                   "over --bandwidth-mbps instead of a random 5-50 ms.")
@click.option("--bandwidth-mbps", type=click.FloatRange(0.001, min_open=False), default=100.0, show_default=True,
              help="With --regions: each link's bandwidth, each direction.")
@click.option("--sizes", default=None, metavar="N,N,...",
              help="Instead of seeded runs: for each number of validators, commit latency, messages and bytes per "
                   "block, the view change after the primary fails and the throughput bounds they imply, on "
                   "--regions (europe6 by default), one seed, --heights heights (see docs/simulation.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --sizes: write scale.json, scale.md and scale.png here.")
@click.option("--memory", is_flag=True,
              help="One long run of the first seed under tracemalloc: memory at the start and the end.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
def sim(
    nodes: int, byzantine: int, behaviour: str, seeds: int, first_seed: int, heights: int, drop: float,
    duplicate: float, lossy_after_heal: bool, partition: bool, crash: int, txs_per_block: int,
    progress_timeout_ms: int, checkpoint_interval: int, regions: str | None, bandwidth_mbps: float,
    sizes: str | None, out_dir: Path | None, memory: bool, as_json: bool,
) -> None:
    """Run seeded simulations of the PBFT engine and check agreement and liveness.

    Each run drives NODES replicas over a simulated network (random delays,
    optional loss, duplication, a partition, crashes with restart) under a
    steady client load, until every honest replica reaches HEIGHTS and keeps
    deciding after the faults heal.  Any disagreement between honest replicas,
    any double signature, or a replica that stops deciding fails the command.

    \b
    Examples:
      medchain sim --nodes 4 --byzantine 1 --behaviour equivocate --seeds 20 --heights 30
      medchain sim --nodes 7 --byzantine 2 --behaviour silent --drop 0.05 --partition --crash
      medchain sim --nodes 4 --heights 10000 --seeds 1 --memory --json
      medchain sim --nodes 16 --regions europe6 --bandwidth-mbps 100 --seeds 3
    """
    if sizes is not None:
        _scale(sizes, regions or "europe6", bandwidth_mbps, heights, txs_per_block, out_dir, as_json)
        return
    if out_dir is not None:
        raise _OneLineUsageError("--out goes with --sizes")
    if byzantine > nodes:
        raise _OneLineUsageError(f"--byzantine {byzantine} is more than --nodes {nodes}")
    try:
        scenario = Scenario(
            nodes=nodes, byzantine=byzantine, behaviour=behaviour, heights=heights, txs_per_block=txs_per_block,
            drop=drop, duplicate=duplicate, lossy_after_heal=lossy_after_heal, partition=partition, crashes=crash,
            progress_timeout_ms=progress_timeout_ms, checkpoint_interval=checkpoint_interval,
            regions=regions, bandwidth_mbps=bandwidth_mbps,
            keep_heights=max(2 * checkpoint_interval, 64) if memory and crash == 0 else None,
        )
    except UsageError as error:
        raise _OneLineUsageError(str(error)) from None
    started = time.perf_counter()
    if memory:
        summary = _memory_run(scenario, first_seed, show_progress=not as_json)
    else:
        summary = _runs(scenario, seeds, first_seed, show_progress=not as_json)
    summary["wall_s"] = round(time.perf_counter() - started, 2)
    ok = summary["safety_violations"] == 0 and summary["stalled_runs"] == 0
    summary["ok"] = ok
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(scenario, summary)
    if not ok:
        sys.exit(1)


def _scale(sizes: str, regions: str, bandwidth_mbps: float, heights: int, txs_per_block: int, out: Path | None,
           as_json: bool) -> None:
    try:
        counts = [int(part) for part in sizes.split(",")]
    except ValueError:
        raise _OneLineUsageError(f"--sizes: {sizes!r} is not a comma-separated list of numbers") from None
    if not counts or any(not 4 <= n <= 256 for n in counts):
        raise _OneLineUsageError("--sizes: each size must be 4-256 validators (a silent primary needs f >= 1)")
    from node.lab.sim_scale import sweep

    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    report = sweep(counts, regions, bandwidth_mbps, heights, txs_per_block, out, say)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    elif out is not None:
        click.echo(f"report written: {out / 'scale.json'}, {out / 'scale.md'}, {out / 'scale.png'}")


def _runs(scenario: Scenario, seeds: int, first_seed: int, show_progress: bool) -> dict[str, Any]:
    if not (show_progress and sys.stderr.isatty()):
        return run_many(scenario, seeds, first_seed, clock=time.process_time)
    results: list[RunResult] = []
    with click.progressbar(range(first_seed, first_seed + seeds), label="simulating", file=sys.stderr) as bar:
        for seed in bar:
            results.append(run_one(scenario, seed, clock=time.process_time))
    return summarize(scenario, results)


def _memory_run(scenario: Scenario, seed: int, show_progress: bool) -> dict[str, Any]:
    """One run under tracemalloc, sampling memory at the first height and every tenth of the run."""
    samples: list[dict[str, int]] = []
    parts: dict[str, int] = {}
    step = max(1, scenario.heights // 10)
    bar = click.progressbar(length=scenario.heights, label="heights", file=sys.stderr) \
        if show_progress and sys.stderr.isatty() else None

    def probe(height: int, cluster: Cluster) -> None:
        if bar is not None:
            bar.update(1)
        if height == 1 or height % step == 0:
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            engines = [node.replica for node in cluster.nodes if node.replica is not None]
            parts.clear()
            parts.update(_largest_parts(engines[0]) if engines else {})
            samples.append({
                "height": height,
                "traced_current_bytes": current,
                "traced_peak_bytes": peak,
                "engine_bytes": _deep_size(engines),
            })

    tracemalloc.start()
    try:
        result = run_one(scenario, seed, clock=time.process_time, on_decided=probe)
    finally:
        tracemalloc.stop()
        if bar is not None:
            bar.render_finish()
    summary = summarize(scenario, [result])
    first, last = (samples[0], samples[-1]) if samples else ({}, {})
    summary["memory"] = {"start": first, "end": last, "samples": samples, "largest_engine_parts": parts}
    return summary


def _largest_parts(engine: object, top: int = 6) -> dict[str, int]:
    """Where one engine's bytes are: deep size of each of its attributes, largest first."""
    sizes = {name: _deep_size([value]) for name, value in vars(engine).items() if name != "cfg"}
    for name, value in vars(getattr(engine, "verifier", object())).items():
        sizes[f"verifier.{name}"] = _deep_size([value])
    return dict(sorted(sizes.items(), key=lambda item: -item[1])[:top])


def _deep_size(roots: Iterable[object]) -> int:
    """Bytes of every object reachable from ``roots`` (classes, modules and functions excluded)."""
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | ModuleType | FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def _print_summary(scenario: Scenario, s: dict[str, Any]) -> None:
    faulty = "no Byzantine"
    if scenario.byzantine_count:
        faulty = f"{scenario.byzantine_count} Byzantine ({scenario.behaviour})"
    faults = [name for name, on in (
        (f"drop {scenario.drop:g}", scenario.drop > 0), ("partition", scenario.partition),
        (f"{scenario.crashes} crash(es)", scenario.crashes > 0),
        (f"regions {scenario.regions} at {scenario.bandwidth_mbps:g} Mbit/s", scenario.regions is not None)) if on]
    seeds = s["seeds"]
    click.echo(f"medchain sim: {s['runs']} run(s), seeds {seeds[0]}-{seeds[-1]}, n={scenario.nodes}, {faulty}, "
               f"{scenario.heights} heights, {', '.join(faults) or 'no network faults'}")
    rows = [
        ("safety violations", s["safety_violations"]),
        ("stalled runs", s["stalled_runs"]),
        ("heights reached", f"min {s['min_height']}, median {s['median_height']}"),
        ("view changes", s["view_changes"]),
        ("messages per block", s["messages_per_block"]),
        ("bytes per block", s["bytes_per_block"]),
        ("virtual time per block", f"{s['virtual_ms_per_block']} ms"),
    ]
    if "cpu_ms_per_block" in s:
        rows.append(("engine CPU", f"{s['cpu_ms_per_block']} ms per block per replica, "
                                   f"{s['cpu_us_per_message']} µs per message"))
    memory = s.get("memory")
    if memory and memory["start"]:
        start, end = memory["start"], memory["end"]
        rows.append(("traced memory", f"{start['traced_current_bytes'] / 1e6:.1f} MB at height {start['height']}, "
                                      f"{end['traced_current_bytes'] / 1e6:.1f} MB at height {end['height']} "
                                      f"(peak {end['traced_peak_bytes'] / 1e6:.1f} MB)"))
        rows.append(("engine state", f"{start['engine_bytes'] / 1e6:.2f} MB -> {end['engine_bytes'] / 1e6:.2f} MB"))
        largest = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in memory["largest_engine_parts"].items())
        rows.append(("largest in one engine", largest))
    rows.append(("wall time", f"{s['wall_s']} s"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"  {name:<{width}}  {value}")
    for failure in s["failures"]:
        hashes = ", ".join(h[:16] for h in failure["hashes"])
        click.echo(f"  seed {failure['seed']}: {failure['kind']} at height {failure['height']}, "
                   f"replicas {failure['replicas']}{' ' + hashes if hashes else ''}: {failure['detail']}")
    click.echo("  result: " + ("OK" if s["ok"] else "FAILED"))
