"""Run a scenario for one seed or many, and judge each run.

A run boots the cluster, starts the client, schedules the seed's faults, and
advances the virtual clock until every honest replica has reached the target
height -- ``scenario.heights``, and ``liveness_heights`` past the highest
honest height at the moment the last fault healed -- or until the virtual
time budget is spent (a *stalled* run).  A safety violation ends a run at
once.  CPU time is measured only when the caller injects a clock, and only
around the engine's own calls (``handle``, ``restore``, ``start``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial

from consensus.sim.checks import Violation
from consensus.sim.cluster import Clock, Cluster
from consensus.sim.scenario import FaultPlan, Scenario, plan_faults

MAX_FAILURES_REPORTED = 5


@dataclass(frozen=True, slots=True)
class RunResult:
    seed: int
    violations: tuple[Violation, ...]
    heights: dict[int, int]
    """Final height of every honest replica."""
    target: int
    heal_height: int
    heal_ms: int
    end_ms: int
    view_changes: int
    """The most NEW-VIEWs any honest replica entered."""
    txs: int
    """Transactions in the blocks decided (counted once per height)."""
    messages: int
    """Point-to-point messages put on the network (each receiver counts), sync included."""
    bytes: int
    """Bytes of consensus messages put on the network (each receiver counts; sync batches not counted)."""
    lost: int
    evidence: int
    forks: int
    """Blocks an equivocating primary showed in two versions."""
    restarts: int
    received: int
    cpu_s: float | None
    cpu_received_s: float | None
    switches: tuple[int, ...] = ()
    """Heights at which a validator-set change took effect (scheduled by the ledger during the run)."""
    zombie_votes: int = 0
    """Votes a removed Byzantine validator kept sending after its removal."""
    view_changes_at_switch: int = 0
    """Views honest replicas entered at a height where a new validator set took effect."""

    @property
    def safe(self) -> bool:
        return not any(v.is_safety for v in self.violations)

    @property
    def stalled(self) -> bool:
        return any(v.kind == "stalled" for v in self.violations)

    @property
    def blocks(self) -> int:
        return max(self.heights.values(), default=0)


def run_one(
    scenario: Scenario,
    seed: int,
    clock: Clock | None = None,
    on_decided: Callable[[int, Cluster], None] | None = None,
) -> RunResult:
    plan = plan_faults(scenario, seed)
    cluster = Cluster(scenario, seed, plan, clock)
    cluster.on_decided = on_decided
    sched = cluster.sched
    _schedule_faults(cluster, plan)
    cluster.boot()
    sched.at(0, cluster.client_tick)
    healed = {"height": 0, "done": plan.heal_ms == 0}

    def heal_mark() -> None:
        healed["height"] = max(cluster.honest_heights().values(), default=0)
        healed["done"] = True

    if plan.heal_ms:
        sched.at(plan.heal_ms, heal_mark)
    budget = scenario.max_virtual_ms
    if budget is None:
        budget = plan.heal_ms + 60_000 + 1_000 * (scenario.heights + scenario.liveness_heights)
    target = scenario.heights
    seen_decided = -1
    while True:
        when = sched.next_time()
        if when is None or when > budget or cluster.monitor.violations:
            break
        sched.run_next()
        if healed["done"]:
            target = max(scenario.heights, healed["height"] + scenario.liveness_heights)
            if cluster.commits != seen_decided:
                seen_decided = cluster.commits
                if min(cluster.honest_heights().values(), default=target) >= target:
                    break
    heights = cluster.honest_heights()
    violations = list(cluster.monitor.violations)
    if not violations and min(heights.values(), default=target) < target:
        behind = tuple(i for i, h in heights.items() if h < target)
        violations.append(Violation(
            "stalled", min(heights.values()), behind, (), sched.now,
            f"replicas {list(behind)} did not reach height {target} by {budget} ms "
            f"(faults healed at {plan.heal_ms} ms, height {healed['height']})",
        ))
    nodes = cluster.nodes
    honest = [nodes[i] for i in sorted(cluster.honest)]
    return RunResult(
        seed=seed,
        violations=tuple(violations),
        heights=heights,
        target=target,
        heal_height=healed["height"],
        heal_ms=plan.heal_ms,
        end_ms=sched.now,
        view_changes=max((n.view_changes for n in honest), default=0),
        txs=cluster.txs_decided,
        messages=cluster.net.sent,
        bytes=cluster.net.bytes_sent,
        lost=cluster.net.lost,
        evidence=sum(n.evidence for n in honest),
        forks=0 if cluster.adversary is None else cluster.adversary.forks_made,
        restarts=sum(n.restarts for n in nodes),
        received=sum(n.received for n in nodes),
        cpu_s=None if clock is None else sum(n.cpu_s for n in nodes),
        cpu_received_s=None if clock is None else sum(n.cpu_received_s for n in nodes),
        switches=tuple(cluster.switches),
        zombie_votes=cluster.zombie_votes,
        view_changes_at_switch=cluster.view_changes_at_switch,
    )


def _schedule_faults(cluster: Cluster, plan: FaultPlan) -> None:
    sched = cluster.sched
    for crash in plan.crashes:
        sched.at(crash.at_ms, partial(cluster.crash, crash.replica))
        sched.at(crash.restart_ms, partial(cluster.restart, crash.replica))
    if not cluster.sc.lossy_after_heal:
        sched.at(plan.heal_ms, cluster.net.stop_loss)
    partition = plan.partition
    if partition is not None:
        sched.at(partition.at_ms, lambda: cluster.net.partition(partition.groups))
        sched.at(partition.heal_ms, cluster.net.heal)


def run_many(
    scenario: Scenario,
    seeds: int,
    first_seed: int = 0,
    clock: Clock | None = None,
    on_run: Callable[[RunResult], None] | None = None,
    on_decided: Callable[[int, Cluster], None] | None = None,
) -> dict[str, object]:
    """Run seeds ``first_seed .. first_seed + seeds - 1``; one summary for all of them."""
    results = []
    for seed in range(first_seed, first_seed + seeds):
        result = run_one(scenario, seed, clock, on_decided)
        results.append(result)
        if on_run is not None:
            on_run(result)
    return summarize(scenario, results)


def summarize(scenario: Scenario, results: Iterable[RunResult]) -> dict[str, object]:
    """One JSON-ready summary of many runs.

    ``safety_violations`` and ``stalled_runs`` count runs; ``min_height`` is the
    lowest final height of any honest replica in any run, ``median_height`` the
    median over runs of each run's median honest height; ``view_changes`` adds
    up, over runs, the most NEW-VIEWs any one honest replica entered;
    ``messages_per_block`` is every point-to-point message (sync included) per
    height decided; ``cpu_ms_per_block`` is engine CPU per decided height per
    replica and ``cpu_us_per_message`` engine CPU per received message (both
    only with a clock); ``failures`` details the first failing seeds.
    """
    runs = list(results)
    blocks = sum(r.blocks for r in runs)
    summary: dict[str, object] = {
        "scenario": asdict(scenario),
        "runs": len(runs),
        "seeds": [runs[0].seed, runs[-1].seed] if runs else [],
        "safety_violations": sum(1 for r in runs if not r.safe),
        "stalled_runs": sum(1 for r in runs if r.stalled),
        "min_height": min((min(r.heights.values(), default=0) for r in runs), default=0),
        "median_height": statistics.median(
            [statistics.median(r.heights.values()) for r in runs if r.heights]
        ) if runs else 0,
        "view_changes": sum(r.view_changes for r in runs),
        "txs_per_block": round(sum(r.txs for r in runs) / blocks, 1) if blocks else None,
        "messages_per_block": round(sum(r.messages for r in runs) / blocks, 2) if blocks else None,
        "bytes_per_block": round(sum(r.bytes for r in runs) / blocks) if blocks else None,
        "virtual_ms_per_block": round(sum(r.end_ms for r in runs) / blocks, 1) if blocks else None,
        "messages_lost": sum(r.lost for r in runs),
        "evidence": sum(r.evidence for r in runs),
        "forks": sum(r.forks for r in runs),
        "restarts": sum(r.restarts for r in runs),
        "switches": sum(len(r.switches) for r in runs),
        "zombie_votes": sum(r.zombie_votes for r in runs),
        "view_changes_at_switch": sum(r.view_changes_at_switch for r in runs),
        "virtual_ms": sum(r.end_ms for r in runs),
    }
    cpu = [r for r in runs if r.cpu_s is not None]
    if cpu:
        total = sum(r.cpu_s or 0.0 for r in cpu)
        on_received = sum(r.cpu_received_s or 0.0 for r in cpu)
        received = sum(r.received for r in cpu)
        summary["cpu_s"] = round(total, 3)
        summary["cpu_ms_per_block"] = round(1e3 * total / blocks / scenario.nodes, 3) if blocks else None
        summary["cpu_us_per_message"] = round(1e6 * on_received / received, 1) if received else None
    failures = [r for r in runs if r.violations]
    summary["failures"] = [
        {"seed": r.seed, **r.violations[0].as_dict(), "heights": {str(k): v for k, v in r.heights.items()}}
        for r in failures[:MAX_FAILURES_REPORTED]
    ]
    return summary
