"""The options of the cluster benchmark, shared by ``medchain bench`` and its alias ``medchain bench cluster``.

The rules that tie them are in ``node.lab.bench_options``; this module only
reads them from click, refuses a conflict as a usage error and prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from node.cli.common import print_json
from node.cli.lab_options import JSON_OPTION, QUIET_OPTION, PositiveNumber, command_line, interrupted
from node.lab import bench as cluster_bench
from node.lab import bench_options as cluster_bench_options
from node.lab import bench_report, bench_runner, bench_sweep
from node.lab.bench_batch import MAX_BATCH
from node.lab.progress import Progress


def _sweep_sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    try:
        return bench_sweep.parse_sizes(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


BENCH_OPTIONS = [
    click.option("--nodes", type=click.IntRange(1, bench_sweep.MAX_NODES), default=cluster_bench.VALIDATORS,
                 show_default=True, metavar="N", help="Validators of the fresh plain cluster the bench starts."),
    click.option("--consortium", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                 metavar="FILE", help="Start a fresh cluster of this consortium file's nodes instead of --nodes "
                 "(e.g. configs/consortium-4.toml or configs/consortium-7.toml)."),
    click.option("--target", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
                 metavar="DIR", help="Drive the cluster already running in this folder (medchain cluster up --dir "
                 "DIR: its cluster.json, genesis and client keys) instead of starting one; it is left running."),
    click.option("--workload", type=click.Choice(["anchor", "mix", "mixed", "both"]), default=None,
                 help="anchor: pre-signed anchors (the default); mix (or mixed): the healthcare mix of drug events "
                 "and EHR operations on a consortium cluster (consortium-N.toml for --nodes N, or --consortium); "
                 "both: anchors, the mix, then anchors again on the same consortium cluster, with the ratio of the "
                 "mix to the anchors' mean."),
    click.option("--profile", type=click.Choice(sorted(cluster_bench.PROFILES)), default=None,
                 help="A preset series with its own load: 'quick' (one short run), 'issue' (500 tx/s for 20 s, then "
                 "a 30 s closed-loop max-throughput run) or 'mix' (30 s of closed-loop anchors, 30 s of the "
                 "healthcare mix, 30 s of anchors again, 2,000 in flight; workload 'both')."),
    click.option("--rate", type=PositiveNumber(float, 50_000), default=500.0, show_default=True, metavar="R",
                 help="Open loop: offered tx/s, transaction i due at start + i/R whether or not earlier ones were "
                 "answered; with --find-max, the first step's rate."),
    click.option("--closed-loop", is_flag=True,
                 help="Closed loop: keep --in-flight uncommitted transactions in flight, offering one as each "
                 "commits."),
    click.option("--in-flight", "--concurrency", "in_flight", type=PositiveNumber(int, 100_000), default=4_000,
                 show_default=True, metavar="C", help="With --closed-loop: uncommitted transactions kept in flight "
                 "(--concurrency is the older name)."),
    click.option("--mode", type=click.Choice(["rate", "closed"]), default=None,
                 help="The older spelling of the loop: 'rate' is --rate's open loop, 'closed' is --closed-loop."),
    click.option("--duration", "--seconds", "duration", type=PositiveNumber(float, 3_600), default=10.0,
                 show_default=True, metavar="S", help="Length of each run's load period (of each step with "
                 "--find-max; --seconds is the older name)."),
    click.option("--sweep-nodes", callback=_sweep_sizes, default=None, metavar="N,N,...",
                 help="Run the same load on fresh plain clusters of each size in turn (e.g. 4,7,10,16), each against "
                 "its own ceiling; adds a table per size and sweep.png (throughput and p99 against validators)."),
    click.option("--find-max", is_flag=True,
                 help="Find the highest sustainable open-loop rate: steps from --rate doubling until p99 commit "
                 "latency passes --p99-bound (or less than 90 % of the offered rate commits), then 2 bisections; "
                 "each step lasts --duration, all on one cluster."),
    click.option("--p99-bound", type=PositiveNumber(float, 600), default=cluster_bench_options.P99_BOUND_S,
                 show_default=True, metavar="S", help="With --find-max: the p99 commit latency (never-committed "
                 "transactions counted) a sustainable step stays within."),
    click.option("--max-steps", type=click.IntRange(1, 40), default=cluster_bench_options.FIND_MAX_STEPS,
                 show_default=True, metavar="N", help="With --find-max: at most this many steps, refinement included."),
    click.option("--txs", type=PositiveNumber(int, cluster_bench.MAX_TXS), default=None, metavar="N",
                 help="Transactions to pre-sign per run (default: enough for the plan; at most 1,000,000, about "
                 "0.8 GB of memory)."),
    click.option("--connections", type=PositiveNumber(int, 512), default=128, show_default=True, metavar="K",
                 help="Keep-alive connections per node."),
    click.option("--submit", type=click.Choice(["single", "batch"]), default="single", show_default=True,
                 help="single: one transaction per POST /txs; batch: many per POST /txs/batch (each request carries "
                 "what waited for a free connection, up to --batch-size). The report says which was used."),
    click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=200, show_default=True,
                 metavar="N", help="With --submit batch: at most this many transactions per request."),
    click.option("--batch-wait-ms", type=click.FloatRange(0, 1000), default=0.0, show_default=True, metavar="MS",
                 help="With --submit batch: a due transaction waits up to this long for others to share its request "
                 "(as a gateway gathering submissions would); its latency still counts from when it was due."),
    click.option("--verify-seconds", type=PositiveNumber(float, 60), default=2.0, show_default=True, metavar="S",
                 help="Time spent measuring this machine's Ed25519 verify/s (for the ceiling)."),
    click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Put the fresh networks here and keep them (default: a temporary folder, removed afterwards)."),
    click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Also write report.json, report.md and PNG plots (per run: throughput and latency over time, "
                 "the latency distribution; for a sweep, sweep.png) into this folder, created if missing."),
    JSON_OPTION,
    QUIET_OPTION,
]


def bench_options_of(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the benchmark's options (``medchain bench`` and its alias ``bench cluster``)."""
    for option in reversed(BENCH_OPTIONS):
        command = option(command)
    return command


def given_options(ctx: click.Context) -> set[str]:
    """The options set on the command line or from the environment (a default never conflicts)."""
    sources = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {name for name in ctx.params if ctx.get_parameter_source(name) in sources}


def _options(ctx: click.Context, p: dict[str, Any]) -> cluster_bench_options.Options:
    given = given_options(ctx)
    if p["mode"] == "rate" and p["closed_loop"]:
        raise click.UsageError("--mode rate and --closed-loop contradict each other: drop one")
    closed = p["closed_loop"] or p["mode"] == "closed"
    if closed:
        given |= {"closed_loop"} if p["mode"] == "closed" else set()
    options = cluster_bench_options.Options(
        p["profile"], p["workload"], closed, p["rate"], p["in_flight"], p["duration"], p["txs"] or 0,
        p["connections"], p["submit"], p["batch_size"], p["nodes"], p["consortium"], p["target"],
        p["sweep_nodes"], p["find_max"], p["p99_bound"], p["max_steps"], batch_wait_ms=p["batch_wait_ms"],
    )
    problem = cluster_bench_options.usage_problem(options, given)
    if problem:
        raise click.UsageError(problem)
    out = p["out"]
    if out is not None and (out / "report.json").exists():
        raise click.UsageError(f"{out} already holds a report; give a new or empty --out")
    return options


def run_cluster_bench(ctx: click.Context, p: dict[str, Any]) -> None:
    options = _options(ctx, p)
    progress = Progress(p["quiet"])
    try:
        report = {"command": command_line(ctx)} | bench_runner.run_bench(options, p["directory"],
                                                                          p["verify_seconds"], progress)
    except KeyboardInterrupt:
        interrupted("the clusters the bench started were stopped")
    if p["out"] is not None:
        written = bench_report.write_report(report, p["out"])
        progress.say(f"report written: {', '.join(str(path) for path in written)}")
    if p["as_json"]:
        print_json(report)
    else:
        click.echo(bench_report.format_report(report))
