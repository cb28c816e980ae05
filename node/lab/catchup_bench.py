"""The catch-up benchmark (``medchain bench catchup``): a wiped validator fetches the chain again.

Rules of the measurement:

* one fresh 4-validator cluster (``node.lab.fresh_cluster``, always stopped)
  commits ``--txs`` pre-signed anchors, offered by the cluster bench's client
  in a closed loop (``node.lab.bench``), before anything is timed; the chain
  is built once and every run wipes the same validator (the last one that is
  not the primary) of that chain;
* a run: the nodes are left to go quiet (``usage.settle``), then the
  validator is SIGKILLed, its chain data deleted (keys kept) and it is
  started again (``node.lab.disk_faults.wipe_node``).  The clock starts when
  it answers its API as itself and stops at the first poll of ``/status``
  (every ``POLL_S``) that finds it at the height of the highest other
  validator, polled at the same moment; ``restart_s`` is the kill-to-answer
  time before that, not counted;
* the transactions caught up are what the restarted process executed
  (``medchain_txs_committed`` + ``rejected`` of its own ``/metrics``, which
  start at zero with the process), the blocks its height; the rates count
  only what it executed on the clock: a node starts fetching as soon as its
  peers connect, which can be before its API answers, so what it had
  executed by the first poll (``before_clock_txs``, ``before_clock_blocks``)
  is left out of them; that it really
  reached the head is checked by comparing its head hash with another
  validator's block at that height;
* CPU is user+sys of each process over the catch-up (``node.lab.usage``), %
  of one core; the catching-up node's CPU per block stage (execute, store)
  comes from its ``/metrics``;
* ``--load R`` keeps R tx/s of further anchors offered to the other three
  validators from before the wipe until the run ends, so the head moves; the
  report then has the gap (head minus the node's height) over time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from node.client.http import NodeClient
from node.lab import bench
from node.lab import cluster as clusters
from node.lab.bench_mix import executed_txs, read_node
from node.lab.disk_faults import wipe_node
from node.lab.fresh_cluster import free_base_port, lab_folder, running_cluster, wait_ready
from node.lab.percentiles import no_nan
from node.lab.progress import Progress
from node.lab.testnet import client_key, generate_testnet
from node.lab.usage import Samples, cpu_percent, settle
from primitives.errors import UsageError

VALIDATORS = 4
CLIENT_KEYS = 8
MAX_TXS = bench.MAX_TXS
MAX_RUNS = 20
POLL_S = 0.1
FILL_CONCURRENCY = 4_000  # uncommitted transactions in flight while the chain is built
LOAD_SECONDS = 180  # --load: pre-signed transactions for this long, per run
LOAD_CONNECTIONS = 8  # per node, for --load
GOAL_TXS, GOAL_S = 100_000, 30.0


class CatchupError(UsageError):
    """The benchmark cannot go on: the message says what went wrong."""


@dataclass(frozen=True, slots=True)
class CatchupOptions:
    txs: int = GOAL_TXS  # committed before the first wipe
    runs: int = 1
    load: float = 0.0  # tx/s offered during each run (0: none)
    timeout: float = 300.0  # longest catch-up before a run is given up

    def check(self) -> None:
        if not 1 <= self.txs <= MAX_TXS:
            raise CatchupError(f"--txs must be 1 to {MAX_TXS:,}, got {self.txs}")
        if not 1 <= self.runs <= MAX_RUNS:
            raise CatchupError(f"--runs must be 1 to {MAX_RUNS}, got {self.runs}")
        if not 0 <= self.load <= 5_000 or math.isnan(self.load):
            raise CatchupError(f"--load must be 0 to 5,000 tx/s, got {self.load}")

    def load_per_run(self) -> int:
        return math.ceil(self.load * LOAD_SECONDS)


@dataclass(slots=True)
class CatchupRun:
    run: int
    node: str
    restart_s: float  # kill to answering (not counted)
    seconds: float  # answering to at the head
    first_block_s: float | None  # answering to its first block
    reached: bool
    head_matches: bool
    start_head: int  # the others' height when it answered
    height: int  # its height at the end (blocks caught up)
    head: int  # the others' height at the end
    txs: int  # transactions it executed
    before_clock_txs: int  # of those, executed before the first poll (not in the rates)
    before_clock_blocks: int
    blocks_per_s: float
    tx_per_s: float
    cpu_pct: dict[str, float]
    stage_cpu_s: dict[str, float]  # its CPU per block stage over the run
    gap: list[tuple[float, int]] = field(default_factory=list)  # (s since answering, head - height), ~1/s


# ---------------------------------------------------------------- building the chain


class _Fill(bench.Run):
    """The cluster bench's closed loop, until every offered transaction committed (no fixed period)."""

    async def _measure(self, watcher: bench.CommitWatcher, tasks: list[asyncio.Task[None]]) -> bench.RunResult:
        before = Samples.take(self.pids)
        start = time.monotonic()
        watcher.on_commit = self._release
        self.submitter.on_failure = lambda index: self._release(1)
        self._release(self.plan.concurrency, start)
        await bench._first_done(self._until_committed(watcher, start), tasks)
        after = Samples.take(self.pids)
        self.window_open = False
        return self._result(watcher, start, time.monotonic(), before, after)

    async def _until_committed(self, watcher: bench.CommitWatcher, start: float) -> None:
        n = len(self.load.txs)
        deadline = start + max(120.0, n / 100)
        next_report = start + 5
        while watcher.resolved + sum(self.submitter.failed.values()) < n:
            now = time.monotonic()
            if now > deadline:
                raise CatchupError(f"only {watcher.resolved:,} of {n:,} transactions committed in "
                                   f"{now - start:.0f} s; see the nodes' node.log")
            self.submitter.retry_due(now)
            if self.submitter.broken:
                raise CatchupError(self.submitter.broken)
            if now >= next_report:
                next_report += 5
                self.progress.say(f"  committed {watcher.resolved:,} of {n:,} ({watcher.resolved / (now - start):,.0f}"
                                  " tx/s)")
            await asyncio.sleep(bench.TICK_S)


def build_chain(nodes: list[clusters.NodeProcess], txs: list[bytes], progress: Progress) -> dict[str, Any]:
    """Commit ``txs`` on the running cluster as fast as it takes them; how it went."""
    plan = bench.RunPlan("fill", "closed", seconds=0, concurrency=FILL_CONCURRENCY, txs=len(txs))
    load = bench.build_load(txs, bench._loopback_apis(nodes))
    progress.say(f"committing {len(txs):,} transactions, {FILL_CONCURRENCY:,} in flight")
    result = asyncio.run(_Fill(plan, nodes, load, progress).execute())
    if result.committed != len(txs):
        raise CatchupError(f"{len(txs) - result.committed:,} of {len(txs):,} transactions did not commit "
                           f"(answers other than 200/202: {result.failed})")
    seconds = result.steady_window_s
    return {"txs": result.committed, "seconds": round(seconds, 1), "tx_per_s": round(result.committed / seconds, 1)}


async def same_height(nodes: list[clusters.NodeProcess], timeout: float = 60) -> dict[str, Any]:
    """Wait until every validator reports the same height; the first node's status row then."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            rows = await asyncio.gather(*(clusters.fetch_status(session, n) for n in nodes))
            heights = {r["height"] for r in rows}
            if len(heights) == 1 and None not in heights:
                return rows[0]
            if time.monotonic() > deadline:
                raise CatchupError(f"the validators did not reach one height within {timeout:g} s: "
                                   + ", ".join(f"{r['name']} {r['height']}" for r in rows))
            await asyncio.sleep(POLL_S)


def pick_victim(nodes: list[clusters.NodeProcess], primary: str | None) -> str:
    """The last validator that is not the primary (wiping the primary would time a view change too)."""
    return [n.name for n in nodes if n.name != primary][-1]


# ---------------------------------------------------------------- one wipe and catch-up


@dataclass(slots=True)
class _Poll:
    """What the polls saw: (seconds since answering, node's height, others' highest height)."""

    points: list[tuple[float, int, int]] = field(default_factory=list)
    first_block_s: float | None = None
    txs_at_start: int = 0  # what the node had executed when the clock started (read just before the first poll)


async def _poll_until_head(session: aiohttp.ClientSession, victim: clusters.NodeProcess,
                           others: list[clusters.NodeProcess], t0: float, timeout: float) -> _Poll:
    seen = _Poll()
    seen.txs_at_start = executed_txs((await NodeClient(victim.api, session, timeout=10).send("GET", "/metrics")).text)
    while True:
        rows = await asyncio.gather(*(clusters.fetch_status(session, n) for n in [victim, *others]))
        now = time.monotonic() - t0
        height = rows[0]["height"] or 0
        head = max((r["height"] or 0) for r in rows[1:])
        seen.points.append((now, height, head))
        if height > 0 and seen.first_block_s is None:
            seen.first_block_s = now
        if rows[0].get("error") or not rows[0]["alive"]:
            raise CatchupError(f"{victim.name} stopped answering while catching up: "
                               f"{clusters.log_line(victim) or 'see its node.log'}")
        if height >= head > 0 or now > timeout:
            return seen
        await asyncio.sleep(POLL_S)


async def _head_matches(session: aiohttp.ClientSession, victim: clusters.NodeProcess,
                        other: clusters.NodeProcess, height: int) -> bool:
    mine, theirs = await asyncio.gather(*(NodeClient(n.api, session, timeout=10).send("GET", f"/blocks/{height}")
                                          for n in (victim, other)))
    return mine.status == theirs.status == 200 and mine.json()["hash"] == theirs.json()["hash"]


async def _offer_load(sub: bench.Submitter, rate: float) -> None:
    """Open-loop anchors at ``rate`` tx/s until cancelled or the pre-signed ones run out."""
    await sub.open()
    start, n, sent = time.monotonic(), len(sub.load.txs), 0
    while True:
        now = time.monotonic()
        due = min(n, int((now - start) * rate) + 1)
        while sent < due:
            sub.offer(sent, start + sent / rate)
            sent += 1
        sub.retry_due(now)
        await asyncio.sleep(0.01)


async def _wipe_and_watch(root: Path, nodes: list[clusters.NodeProcess], victim: str, load: list[bytes],
                          options: CatchupOptions) -> tuple[clusters.NodeProcess, float, float, _Poll, Samples,
                                                            Samples, bool]:
    others = [n for n in nodes if n.name != victim]
    sub = bench.Submitter(bench.build_load(load, bench._loopback_apis(others)), bench._loopback_apis(others),
                          LOAD_CONNECTIONS)
    loader = asyncio.create_task(_offer_load(sub, options.load)) if load else None
    try:
        killed = time.monotonic()
        node = await asyncio.to_thread(wipe_node, root, victim)
        t0 = time.monotonic()
        before = Samples.take({n.name: n.pid for n in [node, *others]})
        async with aiohttp.ClientSession() as session:
            seen = await _poll_until_head(session, node, others, t0, options.timeout)
            after = Samples.take({n.name: n.pid for n in [node, *others]})
            matches = await _head_matches(session, node, others[0], seen.points[-1][1])
    finally:
        if loader is not None:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
        sub.close()
    return node, t0 - killed, t0, seen, before, after, matches


def catch_up_once(number: int, root: Path, nodes: list[clusters.NodeProcess], victim: str, load: list[bytes],
                  options: CatchupOptions, progress: Progress) -> CatchupRun:
    """Wipe ``victim`` and time its catch-up; ``nodes`` gets its new pid."""
    progress.say(f"run {number}: wiping {victim}" + (f", {options.load:g} tx/s offered to the others" if load
                                                     else ""))
    node, restart_s, _, seen, before, after, matches = asyncio.run(
        _wipe_and_watch(root, nodes, victim, load, options))
    nodes[:] = [node if n.name == victim else n for n in nodes]
    elapsed, height, head = seen.points[-1]
    seconds = round(elapsed, 3)  # the rates below come from the figure reported, so they agree with it
    reading = read_node(node.api)
    run = CatchupRun(
        run=number, node=victim, restart_s=round(restart_s, 2), seconds=seconds,
        first_block_s=None if seen.first_block_s is None else round(seen.first_block_s, 3),
        reached=height >= head, head_matches=matches, start_head=seen.points[0][2], height=height, head=head,
        txs=reading.txs, before_clock_txs=seen.txs_at_start, before_clock_blocks=seen.points[0][1],
        blocks_per_s=round((height - seen.points[0][1]) / seconds, 1) if seconds else math.nan,
        tx_per_s=round((reading.txs - seen.txs_at_start) / seconds, 1) if seconds else math.nan,
        cpu_pct=cpu_percent(before, after), stage_cpu_s={k: round(v, 4) for k, v in reading.stage_cpu.items()},
        gap=gap_timeline(seen.points),
    )
    progress.say(f"run {number}: {victim} caught up {run.height:,} blocks, {run.txs:,} txs in {run.seconds:.2f} s"
                 if run.reached else f"run {number}: {victim} did not reach the head within {options.timeout:g} s")
    return run


def gap_timeline(points: list[tuple[float, int, int]], step: float = 1.0) -> list[tuple[float, int]]:
    """(seconds, head - height) about once per ``step``, with the first and the last poll."""
    out: list[tuple[float, int]] = []
    for t, height, head in points:
        if not out or t - out[-1][0] >= step or (t, height, head) == points[-1]:
            out.append((round(t, 2), max(0, head - height)))
    return out


# ---------------------------------------------------------------- the whole benchmark


def summarize(runs: list[CatchupRun]) -> dict[str, Any]:
    """Median and range of each run's figures."""
    out: dict[str, Any] = {}
    for key in ("seconds", "tx_per_s", "blocks_per_s", "txs", "height"):
        values = [float(getattr(r, key)) for r in runs]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def goal(options: CatchupOptions, runs: list[CatchupRun]) -> dict[str, Any] | None:
    if options.txs < GOAL_TXS:
        return None
    median = statistics.median(r.seconds for r in runs)
    return {"what": f"a wiped node catches up {GOAL_TXS:,} committed transactions in under {GOAL_S:g} s",
            "met": all(r.reached for r in runs) and median < GOAL_S, "measured": f"median {median:.2f} s"}


def catchup_bench(options: CatchupOptions, root: Path, progress: Progress) -> dict[str, Any]:
    cores = bench.cores_here()
    chain_id = generate_testnet(root, VALIDATORS, base_port=free_base_port(VALIDATORS), clients=CLIENT_KEYS,
                                chain_id=f"medchain-catchup-{os.urandom(3).hex()}").chain_id
    seeds = [client_key(root, j).seed for j in range(CLIENT_KEYS)]
    extra = options.load_per_run() * options.runs
    progress.say(f"pre-signing {options.txs + extra + 1:,} transactions with {CLIENT_KEYS} client keys")
    txs = bench.presign(seeds, chain_id, "catchup", options.txs + extra + 1, workers=cores)
    with running_cluster(root, progress.say) as nodes:
        asyncio.run(wait_ready(nodes, txs[0]))
        progress.say(f"cluster of {len(nodes)} validators ready under {root}")
        built = build_chain(nodes, txs[1 : options.txs + 1], progress)
        row = asyncio.run(same_height(nodes))
        built.update(height=row["height"], chain_txs=read_node(nodes[0].api).txs)
        victim = pick_victim(nodes, row.get("primary"))
        runs = []
        for k in range(options.runs):
            settle([n.pid for n in nodes], progress.say)
            first = options.txs + 1 + k * options.load_per_run()
            runs.append(catch_up_once(k + 1, root, nodes, victim, txs[first : first + options.load_per_run()],
                                      options, progress))
    return {
        "machine": bench.machine_summary(),
        "options": asdict(options),
        "chain": built,
        "runs": [asdict(r) for r in runs],
        "summary": summarize(runs),
        "goal": goal(options, runs),
    }


def run_catchup(options: CatchupOptions, directory: Path | None, progress: Progress) -> dict[str, Any]:
    """Run the benchmark and return its report (NaN figures as null).

    The network goes under ``directory`` and stays there; without one, into a
    temporary folder removed afterwards unless the run failed.
    """
    options.check()
    with lab_folder(directory, "medchain-bench-catchup-", CatchupError) as base:
        report = catchup_bench(options, base, progress)
    cleaned: dict[str, Any] = no_nan(report)  # type: ignore[assignment]
    return cleaned


def format_report(r: dict[str, Any]) -> str:
    """The report as a table, one row per run, then the median and the goal."""
    chain = r["chain"]
    lines = [
        f"chain: {chain['chain_txs']:,} transactions in {chain['height']:,} blocks, committed in "
        f"{chain['seconds']:.1f} s ({chain['tx_per_s']:,.0f} tx/s)"
        + (f"; {r['options']['load']:g} tx/s offered during each catch-up" if r["options"]["load"] else ""),
        f"  {'run':<5}{'node':<8}{'restart s':>10}{'catch-up s':>11}{'1st block s':>12}{'blocks':>9}{'txs':>10}"
        f"{'before clock':>13}{'blocks/s':>10}{'tx/s':>10}{'its CPU %':>10}{'others CPU %':>13}  at head",
    ]
    for run in r["runs"]:
        others = [v for k, v in run["cpu_pct"].items() if k not in (run["node"], "client")]
        first = "-" if run["first_block_s"] is None else f"{run['first_block_s']:.2f}"
        ok = "yes" if run["reached"] and run["head_matches"] else "NO"
        lines.append(
            f"  {run['run']:<5}{run['node']:<8}{run['restart_s']:>10.2f}{run['seconds']:>11.2f}{first:>12}"
            f"{run['height']:>9,}{run['txs']:>10,}{run['before_clock_txs']:>13,}{_num(run['blocks_per_s']):>10}"
            f"{_num(run['tx_per_s']):>10}"
            f"{run['cpu_pct'].get(run['node'], 0):>10.0f}{sum(others) / max(1, len(others)):>13.0f}  {ok}"
        )
    s = r["summary"]
    lines.append(
        f"  median catch-up {s['seconds']['median']:.2f} s (range {s['seconds']['min']:.2f}-{s['seconds']['max']:.2f}),"
        f" {s['tx_per_s']['median']:,.0f} tx/s, {s['blocks_per_s']['median']:,.1f} blocks/s"
    )
    last = r["runs"][-1]
    if last["stage_cpu_s"]:
        lines.append("  catching-up node's CPU by block stage (last run): "
                     + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(last["stage_cpu_s"].items())))
    if r["options"]["load"]:
        lines.append("  gap to the head over time (last run): "
                     + ", ".join(f"{t:.0f}s:{gap}" for t, gap in last["gap"]))
    if r["goal"]:
        g = r["goal"]
        lines.append(f"goal: {g['what']}: {'MET' if g['met'] else 'NOT MET'} ({g['measured']})")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
