"""The lab tools as ``medchain`` commands: bench (cluster, verify, signing, storage, catchup), counterfeit, story.

Each command only reads its options and prints; the work is done by plain
functions in ``node.lab``.  Every tool that starts its own cluster stops it
again, also on errors, Ctrl-C (exit 130) and SIGTERM.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from node.cli.common import print_json
from node.lab import bench as cluster_bench
from node.lab import bench_report, bench_verify, catchup_bench, counterfeit, signing_bench, storage_bench, story
from node.lab.bench_batch import MAX_BATCH
from node.lab.progress import Progress

INTERRUPTED_EXIT = 130


class PositiveNumber(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A number above 0 and at most ``high`` (NaN and infinity refused)."""

    def __init__(self, kind: type[int] | type[float], high: float) -> None:
        self.kind = kind
        self.high = high
        self.name = "integer" if kind is int else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = self.kind(value)
            except (TypeError, ValueError):
                self.fail(f"not {'a whole number' if self.kind is int else 'a number'}: {value!r}", param, ctx)
        if math.isnan(number) or not 0 < number <= self.high:
            self.fail(f"must be above 0 and at most {self.high:g}, got {value}", param, ctx)
        return number


def _command_line(ctx: click.Context) -> str:
    """The command as it was given (the options set on the command line or from the environment), for reports."""
    words = ["medchain", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        given = ctx.get_parameter_source(param.name or "") in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        if not given or not isinstance(param, click.Option):
            continue
        value = ctx.params[param.name or ""]
        words.append(param.opts[0])
        if not param.is_flag:
            words.append(f"{value:g}" if isinstance(value, float) else str(value))
    return shlex.join(words)


def _interrupted(what: str) -> NoReturn:
    click.echo(f"interrupted: {what}", err=True)
    raise SystemExit(INTERRUPTED_EXIT)


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
QUIET_OPTION = click.option("--quiet", is_flag=True, help="No progress on stderr.")


# ---------------------------------------------------------------- bench


@click.group()
def bench() -> None:
    """Benchmarks: a local cluster under load, verification latency, signatures, storage.

    \b
      medchain bench cluster --profile quick      a short load on a fresh 4-validator cluster
      medchain bench verify --packs 2000          scan latency on a chain of 2,000 packs
      medchain bench signing                      Ed25519 sign/verify per second, two backends
      medchain bench storage                      block commits, WAL appends, opening a long chain
      medchain bench catchup --txs 100000         a wiped validator fetches the chain again
    """


@bench.command("cluster")
@click.option(
    "--profile",
    type=click.Choice(sorted(cluster_bench.PROFILES)),
    help="A preset that replaces --mode: 'quick' (one short run), 'issue' (500 tx/s for 20 s, then a 30 s "
    "closed-loop max-throughput run) or 'mix' (one consortium cluster: 30 s of closed-loop anchors, 30 s of the "
    "healthcare mix, 30 s of anchors again, 2,000 in flight; workload 'both').",
)
@click.option(
    "--workload",
    type=click.Choice(["anchor", "mixed", "both"]),
    help="anchor: anchors on a plain 4-validator cluster (the default); mixed: the healthcare mix of drug events and "
    "EHR operations on a consortium-4 cluster; both: anchors, the mix, then anchors again on the same consortium "
    "cluster, with the ratio of the mix to the anchors' mean.",
)
@click.option(
    "--mode",
    type=click.Choice(["rate", "closed"]),
    default="rate",
    show_default=True,
    help="rate: open loop at --rate tx/s; closed: keep --concurrency uncommitted transactions in flight.",
)
@click.option("--rate", type=PositiveNumber(float, 50_000), default=500.0, show_default=True, metavar="R",
              help="Offered tx/s in rate mode.")
@click.option("--concurrency", type=PositiveNumber(int, 100_000), default=4_000, show_default=True, metavar="C",
              help="Uncommitted transactions kept in flight in closed mode.")
@click.option("--seconds", type=PositiveNumber(float, 3_600), default=10.0, show_default=True, metavar="S",
              help="Length of the load period.")
@click.option("--txs", type=PositiveNumber(int, cluster_bench.MAX_TXS), default=None, metavar="N",
              help="Transactions to pre-sign (default: enough for the plan).")
@click.option("--connections", type=PositiveNumber(int, 512), default=128, show_default=True, metavar="K",
              help="Keep-alive connections per node.")
@click.option("--submit", type=click.Choice(["single", "batch"]), default="single", show_default=True,
              help="single: one transaction per POST /txs; batch: many per POST /txs/batch (each request carries "
              "what waited for a free connection, up to --batch-size). The report says which was used.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=200, show_default=True,
              metavar="N", help="With --submit batch: at most this many transactions per request.")
@click.option("--verify-seconds", type=PositiveNumber(float, 60), default=2.0, show_default=True, metavar="S",
              help="Time spent measuring this machine's Ed25519 verify/s.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Put the networks here and keep them (default: a temporary folder, removed afterwards).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write report.json, report.md and PNG plots (throughput and latency over time, the latency "
              "distribution) into this folder, created if missing.")
@JSON_OPTION
@QUIET_OPTION
def bench_cluster(profile: str | None, workload: str | None, mode: str, rate: float, concurrency: int,
                  seconds: float, txs: int | None, connections: int, submit: str, batch_size: int,
                  verify_seconds: float, directory: Path | None, out: Path | None, as_json: bool, quiet: bool) -> None:
    """Load a fresh local cluster with pre-signed transactions and measure it.

    Starts a 4-validator cluster (or, with --workload mixed/both, a consortium-4
    cluster running the healthcare mix), offers it pre-signed transactions, and
    reports committed throughput, commit latency percentiles, CPU and memory per
    node, and this machine's Ed25519 verification ceiling, measured in the same
    run.  Every cluster is stopped at the end, also on errors and Ctrl-C.

    \b
    Examples:
      medchain bench cluster --profile issue
      medchain bench cluster --mode rate --rate 800 --seconds 15
      medchain bench cluster --mode closed --concurrency 4000 --seconds 30 --json
      medchain bench cluster --mode closed --submit batch --batch-size 200
      medchain bench cluster --profile mix
    """
    if out is not None and (out / "report.json").exists():
        raise click.UsageError(f"{out} already holds a report; give a new or empty --out")
    options = cluster_bench.Options(profile, workload, mode, rate, concurrency, seconds, txs or 0, connections,
                                    submit, batch_size)
    command = _command_line(click.get_current_context())
    try:
        report = {"command": command} | cluster_bench.run_bench(options, directory, verify_seconds, Progress(quiet))
    except KeyboardInterrupt:
        _interrupted("the clusters were stopped")
    if out is not None:
        written = bench_report.write_report(report, out)
        Progress(quiet).say(f"report written: {', '.join(str(p) for p in written)}")
    if as_json:
        print_json(report)
    else:
        click.echo(bench_report.format_report(report))


@bench.command("verify")
@click.option("--packs", type=click.IntRange(1, bench_verify.MAX_PACKS), default=100_000, show_default=True,
              metavar="N", help="Packs on the chain (lots of 2,000 commissioned, shipped to the distributor, "
              "then to the pharmacies).")
@click.option("--scans", type=click.IntRange(1, bench_verify.MAX_SCANS), default=2_000, show_default=True,
              metavar="M", help="Sequential verifications per case (with proofs, without).")
@click.option("--seed", type=int, default=7, show_default=True, help="Picks the codes to scan.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Put the network here and keep it (default: a temporary folder, removed afterwards).")
@JSON_OPTION
@QUIET_OPTION
def bench_verify_command(packs: int, scans: int, seed: int, directory: Path | None, as_json: bool,
                         quiet: bool) -> None:
    """Time scans of genuine codes on a real chain of N packs.

    Starts a fresh consortium-4 cluster, builds a chain holding N packs, then
    times M sequential verifications of random genuine codes from one client,
    with proofs and without: p50/p95/p99 per case, the server's mean time, the
    chain's size.  The cluster is stopped at the end, also on errors and Ctrl-C.

    \b
    Examples:
      medchain bench verify --packs 2000 --scans 200
      medchain bench verify --json
    """
    try:
        report = bench_verify.run_verify(packs, scans, seed, directory, Progress(quiet))
    except KeyboardInterrupt:
        _interrupted("the cluster was stopped")
    if as_json:
        print_json(report)
    else:
        click.echo(bench_verify.format_verify(report))


@bench.command("signing")
@click.option("--seconds", type=PositiveNumber(float, 3_600), default=1.0, show_default=True, metavar="S",
              help="Time spent on each of the four measurements (backend x sign/verify).")
@JSON_OPTION
def bench_signing(seconds: float, as_json: bool) -> None:
    """Ed25519 sign/s and verify/s: PyNaCl (libsodium) against cryptography (OpenSSL).

    Both backends run in one process on the same keys and the same vote-sized
    messages, in alternating rounds, after checking that they produce the same
    signatures.
    """
    report = signing_bench.measure(seconds)
    if as_json:
        print_json(asdict(report))
    else:
        click.echo(signing_bench.format_table(report))


@bench.command("catchup")
@click.option("--txs", type=click.IntRange(1, catchup_bench.MAX_TXS), default=catchup_bench.GOAL_TXS,
              show_default=True, metavar="N", help="Transactions committed before the first wipe.")
@click.option("--runs", type=click.IntRange(1, catchup_bench.MAX_RUNS), default=1, show_default=True,
              help="Wipe-and-catch-up runs on the same chain (the report gives each and the median).")
@click.option("--load", type=click.FloatRange(0, 5_000), default=0.0, show_default=True, metavar="R",
              help="Anchors per second offered to the other validators during each catch-up (0: none); the head "
              "then moves and the node must reach it.")
@click.option("--timeout", type=PositiveNumber(float, 3_600), default=300.0, show_default=True, metavar="S",
              help="Longest catch-up before a run is given up.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Put the network here and keep it (default: a temporary folder, removed afterwards).")
@JSON_OPTION
@QUIET_OPTION
def bench_catchup(txs: int, runs: int, load: float, timeout: float, directory: Path | None, as_json: bool,
                  quiet: bool) -> None:
    """Time how fast a wiped validator catches up a chain of N transactions.

    Starts a fresh 4-validator cluster, commits N pre-signed anchors, then
    wipes one validator's chain data (keys kept), restarts it and times it
    from answering to reaching the others' height: blocks and transactions
    caught up, blocks/s and tx/s, CPU of every node.  The cluster is stopped
    at the end, also on errors and Ctrl-C.

    \b
    Examples:
      medchain bench catchup --txs 100000 --runs 3
      medchain bench catchup --txs 20000 --load 50 --json
    """
    options = catchup_bench.CatchupOptions(txs, runs, load, timeout)
    try:
        report = catchup_bench.run_catchup(options, directory, Progress(quiet))
    except KeyboardInterrupt:
        _interrupted("the cluster was stopped")
    if as_json:
        print_json(report)
    else:
        click.echo(catchup_bench.format_report(report))


@bench.command("storage")
@click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Measure on this folder's disk (a temporary folder is made inside it and removed); fsync cost "
              "depends on the disk (default: the system's temporary folder).")
@click.option("--count", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Blocks of 1,000 transactions per commit measurement (ten times as many 1-transaction blocks).")
@click.option("--seconds", type=PositiveNumber(float, 3_600), default=2.0, show_default=True,
              help="Time spent on the WAL append measurement.")
@click.option("--blocks", type=click.IntRange(1, 10_000_000), default=10_000, show_default=True,
              help="Length of the chain whose opening is timed.")
@JSON_OPTION
def bench_storage(directory: Path | None, count: int, seconds: float, blocks: int, as_json: bool) -> None:
    """The store's speed: synchronous block commits, WAL appends, and opening a long chain."""
    report = storage_bench.measure(directory, count, seconds, blocks)
    if as_json:
        print_json(report)
    else:
        click.echo(storage_bench.format_table(report))


# ---------------------------------------------------------------- counterfeit


@click.command("counterfeit")
@click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Run on this consortium cluster, already up (medchain cluster up --consortium ...); default: a "
              "fresh consortium-4 cluster, stopped at the end.")
@click.option("--packs", type=int, default=2000, show_default=True,
              help=f"Packs to commission (at least {counterfeit.MIN_PACKS}).")
@click.option("--fakes", type=int, default=10, show_default=True, help="Fakes of each kind (at least 1).")
@click.option("--dispense", type=int, default=100, show_default=True,
              help="Packs dispensed before the scans (at least --fakes: each clone copies one).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seeds the choice of packs and fakes.")
@click.option("--concurrency", type=int, default=16, show_default=True, help="Requests in flight.")
@click.option("--latency", type=int, default=0, show_default=True, metavar="N",
              help="Afterwards, time N sequential scans with and without proofs.")
@click.option("--keep", is_flag=True, help="Keep the fresh cluster's folder (genesis, node logs) and say where; "
              "its nodes are stopped all the same.")
@click.option("--base-port", type=click.IntRange(1024, 65_000), default=None, envvar="MEDCHAIN_COUNTERFEIT_PORT",
              help="First port of the fresh cluster (default: a free range; env MEDCHAIN_COUNTERFEIT_PORT).")
@JSON_OPTION
@QUIET_OPTION
def counterfeit_command(directory: Path | None, packs: int, fakes: int, dispense: int, seed: int, concurrency: int,
                        latency: int, keep: bool, base_port: int | None, as_json: bool, quiet: bool) -> None:
    """The counterfeit experiment: a supply chain with injected fakes of every kind.

    Commissions packs, moves them from the manufacturer through the distributor
    to the pharmacies, dispenses some, recalls a lot, then scans every genuine
    pack and injects three classes of bad product, each caught its own way:
    fakes (unknown serial, clone, wrong lot, wrong expiry: the scan's verdict
    and an alert on the ledger), genuine but unsellable packs (recalled: the
    scan's verdict; expired by the ledger's own time: the validators refuse
    the lot) and diversions (a pharmacy dispensing a pack it does not hold:
    the validators refuse it).  Exit status 0 when everything is caught, no
    genuine pack is flagged and every fake's alert is on the ledger, 1
    otherwise.

    \b
    --json prints one object:
      ok                      everything caught, nothing flagged, alerts all there
      packs                   packs commissioned
      fakes, unsellable, diversions
                              per kind: injected, detected, detected_by (the mechanism)
      genuine                 scanned, flagged (genuine packs wrongly flagged)
      alerts                  expected (one per fake), recorded (new on the ledger)
      verify_ms               concurrent genuine scans: count, p50, p99
      sequential_verify_ms    with --latency: with_proofs, no_proofs (count, p50, p95, p99)
      phases_s                seconds per phase; chain_height: the height at the end
      missed, flagged         the first 20 of each, for diagnosis

    \b
    Examples:
      medchain counterfeit                       2,000 packs on a fresh consortium-4 cluster
      medchain counterfeit --packs 8 --fakes 1 --dispense 1   the smallest run
      medchain counterfeit --dir ./hc --json     on a running consortium cluster
    """
    if directory is not None and (keep or base_port is not None):
        raise click.UsageError("--keep and --base-port are for a fresh cluster; drop them or drop --dir")
    sizes = counterfeit.Sizes(packs, fakes, dispense, seed, concurrency, latency)
    say = Progress(quiet).say
    try:
        if directory is None:
            summary = counterfeit.run_fresh(sizes, say, keep, base_port)
        else:
            summary = counterfeit.run_on(directory, sizes, say)
    except KeyboardInterrupt:
        _interrupted("the cluster was stopped" if directory is None else "the cluster is still running")
    if as_json:
        print_json(summary)
    else:
        click.echo(counterfeit.format_summary(summary))
    if not summary["ok"]:
        raise SystemExit(1)


# ---------------------------------------------------------------- story


@click.command("story")
@click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="The consortium cluster folder (medchain cluster up --consortium configs/consortium-4.toml "
              "--dir DIR).")
@JSON_OPTION
def story_command(directory: Path, as_json: bool) -> None:
    """Play the demo story on a running consortium cluster, checking every outcome.

    A patient treated at two hospitals (records filed, consent granted, used and
    revoked, break-glass, erasure), a lot of medicine from the manufacturer to a
    pharmacy, a clone and a counterfeit caught, a recall.  A step that does not
    turn out as the ledger's rules say stops the story with an error.
    """
    steps = story.play(directory, (lambda line: None) if as_json else click.echo)
    if as_json:
        print_json([asdict(s) for s in steps])


LAB_COMMANDS: list[click.Command] = [bench, counterfeit_command, story_command]
