"""The lab tools as ``medchain`` commands: bench (cluster, verify, signing, storage, catchup), counterfeit, story.

Each command only reads its options and prints; the work is done by plain
functions in ``node.lab``.  Every tool that starts its own cluster stops it
again, also on errors, Ctrl-C (exit 130) and SIGTERM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from node.cli.cluster_bench import bench_options_of, given_options, run_cluster_bench
from node.cli.common import print_json
from node.cli.lab_options import JSON_OPTION, QUIET_OPTION, PositiveNumber, interrupted
from node.lab import (
    bench_verify,
    catchup_bench,
    counterfeit,
    signing_bench,
    storage_bench,
    story,
)
from node.lab.progress import Progress

R = TypeVar("R")

KEEP_DIR_OPTION = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Put the network here and keep it (default: a temporary folder, removed afterwards).",
)


def _run_and_show(run: Callable[[], R], text: Callable[[R], str], as_json: bool) -> None:
    """Run a benchmark that starts its own cluster (stopped on Ctrl-C), then print its report."""
    try:
        report = run()
    except KeyboardInterrupt:
        interrupted("the cluster was stopped")
    if as_json:
        print_json(report)
    else:
        click.echo(text(report))


# ---------------------------------------------------------------- bench


@click.group(invoke_without_command=True, subcommand_metavar="[COMMAND [ARGS]...]")
@bench_options_of
@click.pass_context
def bench(ctx: click.Context, /, **params: Any) -> None:
    """Benchmark a local cluster under pre-signed load (the default), or run another benchmark.

    Without a command: starts a fresh cluster (4 validators, or --nodes N, or
    --consortium FILE; or drives a running one with --target DIR), offers it
    pre-signed transactions (open loop --rate R, or --closed-loop --in-flight
    C) and reports committed throughput over the steady window, commit latency
    percentiles (never-committed transactions counted as failures), CPU and
    memory per node, bytes on the wire and on disk, and its share of this
    machine's ceiling, measured in the same run: cores x Ed25519 verify/s on
    one core / validators.  --sweep-nodes repeats the load per cluster size;
    --find-max searches the highest rate that keeps p99 within --p99-bound.
    Every cluster the bench started is stopped at the end, also on errors and
    Ctrl-C; a --target is left running.

    \b
    Examples:
      medchain bench                                   500 tx/s for 10 s on 4 validators
      medchain bench --closed-loop --in-flight 4000 --duration 30 --submit batch
      medchain bench --workload both --consortium configs/consortium-7.toml
      medchain bench --sweep-nodes 4,7,10,16 --rate 1000 --out ./sweep
      medchain bench --find-max --rate 1000 --p99-bound 1 --duration 10
      medchain bench --target ./net --rate 800 --duration 15
      medchain bench --profile issue --json

    \b
    Other benchmarks:
      medchain bench verify --packs 2000          scan latency on a chain of 2,000 packs
      medchain bench signing                      Ed25519 sign/verify per second, two backends
      medchain bench storage                      block commits, WAL appends, opening a long chain
      medchain bench catchup --txs 100000         a wiped validator fetches the chain again
    """
    if ctx.invoked_subcommand is None:
        run_cluster_bench(ctx, params)
        return
    given = sorted("--" + name.replace("_", "-") for name in given_options(ctx))
    if given:
        what = f"{given[0]} is an option" if len(given) == 1 else f"{', '.join(given)} are options"
        raise click.UsageError(
            f"{what} of the cluster benchmark: give it without '{ctx.invoked_subcommand}', or after "
            f"'{ctx.invoked_subcommand}' if that command takes it"
        )


@bench.command("cluster")
@bench_options_of
@click.pass_context
def bench_cluster(ctx: click.Context, /, **params: Any) -> None:
    """The cluster benchmark, as 'medchain bench' without a command runs it (same options).

    Kept so that older scripts and notes keep working; see 'medchain bench
    --help' for what it measures.

    \b
    Examples:
      medchain bench cluster --profile issue
      medchain bench cluster --rate 800 --duration 15
      medchain bench cluster --closed-loop --in-flight 4000 --duration 30 --json
    """
    run_cluster_bench(ctx, params)


@bench.command("verify")
@click.option("--packs", type=click.IntRange(1, bench_verify.MAX_PACKS), default=100_000, show_default=True,
              metavar="N", help="Packs on the chain (lots of 2,000 commissioned, shipped to the distributor, "
              "then to the pharmacies).")
@click.option("--scans", type=click.IntRange(1, bench_verify.MAX_SCANS), default=2_000, show_default=True,
              metavar="M", help="Sequential verifications per case (with proofs, without).")
@click.option("--seed", type=int, default=7, show_default=True, help="Picks the codes to scan.")
@KEEP_DIR_OPTION
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
    _run_and_show(lambda: bench_verify.run_verify(packs, scans, seed, directory, Progress(quiet)),
                  bench_verify.format_verify, as_json)


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
@KEEP_DIR_OPTION
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
    _run_and_show(lambda: catchup_bench.run_catchup(options, directory, Progress(quiet)),
                  catchup_bench.format_report, as_json)


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
        interrupted("the cluster was stopped" if directory is None else "the cluster is still running")
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
