"""One chaos run: a fresh cluster, the load, the timeline, the samples; then the checks and the report.

``run_scenario`` generates a testnet in ``OUT/network`` on free loopback
ports, starts it and waits until it commits, seeds every node's fault
randomness, and then runs three things at once for the load's duration: the
load (``load.Load``), a sampler that polls every node's ``/status`` about five
times a second, and the timeline (``actions.Timeline``).  When the load ends,
faults still in force are undone (unless the scenario says ``undo_at_end =
false``) and the honest nodes get up to ``settle_s`` to converge.  The nodes
are then stopped (always, also on errors and Ctrl-C), the checks read their
stores, and ``OUT`` receives report.json, report.md and timeline.png.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from node.client.http import ApiFailure, NodeClient, NodeUnreachable
from node.config import load_config
from node.genesis import load_genesis
from node.healthcare.transactions import Anchor, make_transaction
from node.lab import bench_mix, disk_faults
from node.lab import cluster as clusters
from node.lab.chaos.actions import Timeline
from node.lab.chaos.checks import check_run
from node.lab.chaos.load import Load, anchor_maker
from node.lab.chaos.record import RunRecord, Sample
from node.lab.chaos.report import write_report
from node.lab.chaos.scenario import CONFIG_DIR, NODE_SETTINGS, Scenario, check_names
from node.lab.chaos.verdict import Verdict, Verdicts
from node.lab.consortium import load_consortium
from node.lab.counterfeit import Network
from node.lab.faults import AdminClient
from node.lab.fresh_cluster import free_base_port, running_cluster, wait_ready
from node.lab.progress import Progress
from node.lab.testnet import client_key, generate_testnet
from primitives.hashing import sha256

SAMPLE_EVERY_S = 0.2
HEIGHTS_EVERY_S = 5.0
STEPS_GRACE_S = 60.0  # steps still running when the load ends (a restart waiting for its node) get this long
TAIL_S = 5.0  # the load goes on this long after the faults end, so that recovery shows in commits


@dataclass(slots=True)
class RunResult:
    scenario: Scenario
    record: RunRecord
    verdicts: Verdicts
    files: list[Path]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "seed": self.record.seed,
            "expectation_met": self.verdicts.expectation_met,
            "outcome": self.verdicts.outcome,
            "verdicts": [v.to_json() for v in self.verdicts.items],
            "acked": len(self.record.acks),
            "submitted": self.record.submitted,
            "refused": self.record.refused,
            "files": [str(p) for p in self.files],
            "seconds": round(self.seconds, 1),
        }


def run_scenario(scenario: Scenario, out: Path, progress: Progress, seed: int | None = None) -> RunResult:
    """Run ``scenario`` in a fresh cluster under ``out``; the nodes are stopped whatever happens."""
    started = time.monotonic()
    seed = scenario.seed if seed is None else seed
    network = out / "network"
    record = prepare_network(scenario, network, seed)
    progress.say(f"{scenario.name}: {scenario.description}")
    progress.say(f"{len(record.validators)} validators, {len(record.observers)} observers under {network}; seed {seed}")
    with running_cluster(network, progress.say) as nodes:
        asyncio.run(_drive(scenario, network, nodes, record, progress))
    progress.say("checking the invariants from every node's store")
    verdicts = check_run(network, record)
    if scenario.expect.store_intact:
        add_verdict(verdicts, store_verdict(network, record))
    files = write_report(out, record, verdicts)
    progress.say(f"{scenario.name}: {verdicts.outcome}; report in {out}")
    return RunResult(scenario, record, verdicts, files, time.monotonic() - started)


def prepare_network(scenario: Scenario, network: Path, seed: int) -> RunRecord:
    """Write the scenario's network (node settings applied); the record it will fill."""
    spec = scenario.cluster
    consortium = None
    if spec.consortium is not None:
        given = Path(spec.consortium)
        consortium = load_consortium(given if given.is_file() else CONFIG_DIR / spec.consortium)
    size = len(consortium.validators) + len(consortium.observers) if consortium else spec.validators + spec.observers
    chain_id = f"chaos-{scenario.name[:40]}-{os.urandom(3).hex()}"
    generate_testnet(network, spec.validators, spec.observers, base_port=free_base_port(size), clients=2,
                     consortium=consortium, chain_id=chain_id)
    sections: dict[str, dict[str, int]] = {}  # config section -> the settings the scenario changes in it
    for key, value in spec.settings:
        section, name = NODE_SETTINGS[key]
        sections.setdefault(section, {})[name] = value
    roles: dict[str, list[str]] = {"validator": [], "observer": []}
    for home in clusters.node_homes(network):
        config = load_config(home)
        roles[config.role].append(config.name)
        if sections:
            changed = {s: replace(getattr(config, s), **v) for s, v in sections.items()}
            (home / "config.toml").write_text(replace(config, **changed).to_toml())
    check_names(scenario, [*roles["validator"], *roles["observer"]])
    return RunRecord(scenario.name, seed, roles["validator"], roles["observer"], [],
                     scenario.expect.expectations([]), started_at=0.0)


async def _drive(scenario: Scenario, network: Path, nodes: list[clusters.NodeProcess], record: RunRecord,
                 progress: Progress) -> None:
    chain_id = _chain_id(network)
    probe_label = f"chaos probe {os.urandom(4).hex()}"
    probe = make_transaction(client_key(network, 0), chain_id, Anchor(sha256(probe_label.encode()), probe_label),
                             int(time.time() * 1000))
    await wait_ready(nodes, probe)
    admin = AdminClient(network)
    await admin.seed(record.seed)
    apis = {n.name: n.api for n in nodes if n.name in record.validators}
    make = await _honest_maker(scenario, network, chain_id, list(apis.values()), record.seed, progress)
    progress.say(f"cluster ready; {scenario.load.kind} load at {scenario.load.rate:g} tx/s for "
                 f"{scenario.load.duration_s:g} s, {len(scenario.timeline)} timeline steps")
    t0 = time.monotonic()
    record.started_at = time.time()

    def clock() -> float:
        return time.monotonic() - t0

    async with Load(record, apis, clock) as load:
        timeline = Timeline(network, record, admin, load, clock, progress.say, record.seed)
        timeline.flood_maker = anchor_maker(client_key(network, 1), chain_id, f"flood-{os.urandom(3).hex()}")
        timeline.until = scenario.load.duration_s
        sampler = Sampler(nodes, record, load, clock, progress.say)
        sampling = asyncio.create_task(sampler.run())
        try:
            await _run_period(scenario, record, load, timeline, sampler, clock, make, progress)
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        record.duration_s = round(clock(), 3)
    record.expectations = scenario.expect.expectations(record.byzantine)


async def _run_period(scenario: Scenario, record: RunRecord, load: Load, timeline: Timeline, sampler: Sampler,
                      clock: Callable[[], float], make: Callable[[int], bytes | None], progress: Progress) -> None:
    """The load and the timeline; the faults undone; the tail of load; the settle period."""
    duration, settle = scenario.load.duration_s, scenario.settle_s
    tail = min(TAIL_S, settle)
    deadline = duration + tail + settle
    steps = asyncio.create_task(timeline.run(scenario.timeline))
    offering = asyncio.create_task(load.offer(make, scenario.load.rate, duration + tail, deadline))
    try:
        await asyncio.sleep(max(0.0, duration - clock()))
        timeline.stopped.set()
        done, _ = await asyncio.wait([steps], timeout=STEPS_GRACE_S)
        if not done:
            record.notes.append(f"timeline steps still running {STEPS_GRACE_S:g} s after the load's end were cancelled")
        if scenario.undo_at_end:
            await timeline.undo_all()
        else:
            record.notes.append("faults still in force at the load's end were left in force (undo_at_end = false)")
        await offering
        progress.say(f"{clock():6.1f}s  load over; waiting up to {settle:g} s for the honest nodes to converge")
        while clock() < deadline and not (load.in_flight() == 0 and sampler.converged(record.honest)):
            await asyncio.sleep(SAMPLE_EVERY_S)
        if not sampler.converged(record.honest):
            record.notes.append(f"the honest nodes had not converged {settle:g} s after the load")
    finally:
        for task in (steps, offering):
            task.cancel()
        await asyncio.gather(steps, offering, return_exceptions=True)


class Sampler:
    """Polls every node's /status; keeps the record's samples and the latest sample per node."""

    def __init__(self, nodes: list[clusters.NodeProcess], record: RunRecord, load: Load, clock: Callable[[], float],
                 say: Callable[[str], None]) -> None:
        self.nodes, self.record, self.load, self.now, self.say = nodes, record, load, clock, say
        self.latest: dict[str, Sample] = {}

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            last_line = -HEIGHTS_EVERY_S
            while True:
                began = self.now()
                samples = await asyncio.gather(*(self._poll(session, n) for n in self.nodes))
                self.record.samples.extend(samples)
                self.latest.update({s.node: s for s in samples})
                self.load.unreachable = {s.node for s in samples if s.height is None}
                if began - last_line >= HEIGHTS_EVERY_S:
                    last_line = began
                    self.say(f"{began:6.1f}s  heights " + " ".join(
                        f"{s.node}={'-' if s.height is None else s.height}" for s in samples
                    ) + f"; {len(self.record.acks)} acked, {self.load.in_flight()} in flight")
                await asyncio.sleep(max(0.0, began + SAMPLE_EVERY_S - self.now()))

    async def _poll(self, session: aiohttp.ClientSession, node: clusters.NodeProcess) -> Sample:
        t = round(self.now(), 3)
        try:
            status = await NodeClient(node.api, session, timeout=1).status()
        except (NodeUnreachable, ApiFailure):
            return Sample(t, node.name, None)
        height, view = status.get("height"), status.get("view")
        return Sample(t, node.name, height if isinstance(height, int) else None,
                      view if isinstance(view, int) else None, bool(status.get("in_view_change")))

    def converged(self, honest: list[str]) -> bool:
        """Every honest node answered its last poll, all at one height."""
        heights = {self.latest[n].height if n in self.latest else None for n in honest}
        return None not in heights and len(heights) == 1


def _chain_id(network: Path) -> str:
    return load_genesis(network / "genesis.json").chain_id


async def _honest_maker(scenario: Scenario, network: Path, chain_id: str, apis: list[str], seed: int,
                        progress: Progress) -> Callable[[int], bytes | None]:
    """Transaction i of the honest load: anchors signed on the fly, or the healthcare mix, set up first."""
    if scenario.load.kind == "anchors":
        return anchor_maker(client_key(network, 0), chain_id, os.urandom(3).hex())
    count = int(scenario.load.rate * scenario.load.duration_s) + 16
    cast = bench_mix.Cast.from_kinds(Network.load(network).kinds)
    now_ms = int(time.time() * 1000)
    plan = bench_mix.plan_mix(cast, count, now_ms, seed=seed, tag=chain_id)
    seeds = {**bench_mix.network_seeds(network), **plan.seeds}
    progress.say(f"mix: setting up {sum(len(w) for w in plan.setup):,} transactions (not part of the run)")
    await bench_mix.run_setup(apis, plan.setup, seeds, chain_id, progress.say)
    txs = bench_mix.sign_steps(seeds, chain_id, int(time.time() * 1000), plan.load)
    return lambda i: txs[i] if i < len(txs) else None


# ---------------------------------------------------------------- the store check


def store_verdict(network: Path, record: RunRecord) -> Verdict:
    """Every node's store opens and holds together after the run (``check_store`` of each node's home)."""
    problems = {
        name: disk_faults.check_store(network / name) for name in [*record.validators, *record.observers]
    }
    broken = [f"{name}: {p}" for name, found in problems.items() for p in found]
    bad = sum(1 for found in problems.values() if found)
    summary = "every store intact" if not broken else f"{len(broken)} problem(s) in {bad} store(s)"
    return Verdict("store", not broken, summary, broken, {"nodes": problems})


def add_verdict(verdicts: Verdicts, verdict: Verdict) -> None:
    """Add a verdict the runner judged itself; a failed one fails the run."""
    verdicts.items.append(verdict)
    if not verdict.ok:
        verdicts.expectation_met = False
        failed = verdicts.outcome.startswith("FAILED:")
        verdicts.outcome = f"{verdicts.outcome}, {verdict.name}" if failed else f"FAILED: {verdict.name}"
