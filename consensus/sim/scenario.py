"""What one simulated run looks like: cluster, faults, load, and how long to wait.

A ``Scenario`` is the same for every seed; a ``FaultPlan`` is what one seed
makes of it (which replicas crash and when, where the partition cuts and when
it heals).  Every random choice comes from ``random.Random`` instances seeded
from the run's seed and a purpose label, so a seed fixes the whole run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from consensus import byzantine
from consensus.membership import ACTIVATION_DELAY
from consensus.quorum import max_faulty
from consensus.sim.geography import GEOGRAPHIES
from primitives.errors import UsageError

BEHAVIOURS = ("none", *byzantine.BEHAVIOURS)


@dataclass(frozen=True, slots=True)
class Scenario:
    nodes: int = 4
    byzantine: int = 0
    behaviour: str = "none"
    byzantine_indices: tuple[int, ...] | None = None
    """Which replicas are Byzantine; default the first ``byzantine`` (so the initial primary is one)."""
    heights: int = 20
    """Every honest replica must reach this height ..."""
    liveness_heights: int = 5
    """... and this many heights past the highest honest height at the time the last fault heals."""
    # client load
    txs_per_block: int = 100
    tx_rate_per_s: int | None = None
    """Offered load in transactions per virtual second (default: 20 full blocks per second, saturating)."""
    tx_interval_ms: int = 20
    tx_bytes: tuple[int, int] = (100, 250)
    mempool_limit: int = 20_000
    # network
    delay_ms: int = 5
    jitter_ms: int = 45
    drop: float = 0.0
    """Loss probability per message while faults last (links are a fault that heals too) ..."""
    lossy_after_heal: bool = False
    """... or for the whole run (liveness then rests on view changes re-driving lost rounds)."""
    duplicate: float = 0.0
    regions: str | None = None
    """A geography (``consensus.sim.geography``, e.g. "europe6"): validators placed in its regions in turn,
    each message delayed by its link's latency and transmission instead of delay_ms and jitter_ms."""
    bandwidth_mbps: float = 100.0
    """With ``regions``: each link's bandwidth, each direction."""
    measure_latency: bool = False
    """Record each transaction's commit latency (submission to the first honest decision) and each
    height's decision time: ``Cluster.tx_latencies_ms``, ``Cluster.decided_at``."""
    partition: bool = False
    crashes: int = 0
    """How many honest replicas crash (losing their memory) and restart from store and WAL."""
    fault_start_ms: int = 100
    fault_window_ms: int = 1_500
    partition_ms: tuple[int, int] = (300, 3_000)
    downtime_ms: tuple[int, int] = (200, 3_000)
    # engine
    progress_timeout_ms: int = 500
    checkpoint_interval: int = 10
    window: int = 200
    sync_batch: int = 50
    stale_interval_ms: int = 40
    max_virtual_ms: int | None = None
    """Give up (a stalled run) at this virtual time; default: the heal time + 60 s + 1 s per height."""
    keep_heights: int | None = None
    """Long runs: forget stored blocks, WAL records and checker entries this far below the head.

    Only for runs without crashes (a restarted replica may need to sync from further back).
    """
    chain_id: str = "medchain-sim"
    # reconfiguration
    joiners: int = 0
    """Replicas outside the genesis set, numbered after it: they follow the chain until a change adds them."""
    reconfigure: tuple[str, ...] = ()
    """Validator-set changes in order, each "add:I" or "remove:I" (I a replica's number).  Each goes to the
    ledger as a transaction once the previous one took effect and ``reconfigure_gap`` more heights were decided
    (the first once height ``reconfigure_from`` is); the block that carries it schedules it
    ``activation_delay`` heights later."""
    reconfigure_from: int = 3
    reconfigure_gap: int = 2
    activation_delay: int = ACTIVATION_DELAY
    view_change_at_switch: bool = False
    """Crash the primary (when honest) as the height before each switch is decided, so that every
    switch happens during a view change; it restarts three progress timeouts later."""

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise UsageError("a cluster needs at least one replica")
        if self.behaviour not in BEHAVIOURS:
            raise UsageError(f"unknown behaviour {self.behaviour!r}; choose one of {', '.join(BEHAVIOURS)}")
        if not 0 <= self.byzantine <= self.nodes:
            raise UsageError(f"{self.byzantine} Byzantine replicas do not fit in a cluster of {self.nodes}")
        if self.byzantine_indices is not None and (
            len(set(self.byzantine_indices)) != self.byzantine
            or any(not 0 <= i < self.nodes for i in self.byzantine_indices)
        ):
            raise UsageError("byzantine_indices must name exactly `byzantine` distinct replicas")
        if self.crashes > self.nodes - self.byzantine_count:
            raise UsageError("more crashes than honest replicas")
        if not (0.0 <= self.drop < 1.0 and 0.0 <= self.duplicate < 1.0):
            raise UsageError("drop and duplicate are probabilities below 1")
        if self.txs_per_block < 1 or self.heights < 1 or self.tx_interval_ms < 1:
            raise UsageError("txs_per_block, heights and tx_interval_ms must be positive")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise UsageError("network delays cannot be negative")
        if self.regions is not None and self.regions not in GEOGRAPHIES:
            raise UsageError(f"no geography {self.regions!r}; known: {', '.join(sorted(GEOGRAPHIES))}")
        if not self.bandwidth_mbps > 0:
            raise UsageError("bandwidth_mbps must be positive")
        if self.joiners < 0 or self.activation_delay < ACTIVATION_DELAY or self.reconfigure_gap < 0:
            raise UsageError(f"joiners and reconfigure_gap cannot be negative, activation_delay is {ACTIVATION_DELAY}+")
        removed = {who for kind, who in self.reconfigure_steps if kind == "remove"}
        for r in removed:
            if any(b > r for b in self.faulty - removed):
                # the Byzantine replicas keep their position in every set (the adversary signs by position)
                raise UsageError(f"removing replica {r} would move a Byzantine replica after it to another position")

    @property
    def total(self) -> int:
        """Every replica: the genesis validators and the joiners."""
        return self.nodes + self.joiners

    @property
    def reconfigure_steps(self) -> tuple[tuple[str, int], ...]:
        steps = []
        for step in self.reconfigure:
            kind, _, who = step.partition(":")
            if kind not in ("add", "remove") or not who.isdigit() or not 0 <= int(who) < self.total:
                raise UsageError(f"a reconfiguration step is add:I or remove:I with I a replica's number, got {step!r}")
            steps.append((kind, int(who)))
        return tuple(steps)

    @property
    def byzantine_count(self) -> int:
        return 0 if self.behaviour == "none" else self.byzantine

    @property
    def faulty(self) -> frozenset[int]:
        if self.byzantine_count == 0:
            return frozenset()
        if self.byzantine_indices is not None:
            return frozenset(self.byzantine_indices)
        return frozenset(range(self.byzantine))

    @property
    def f(self) -> int:
        return max_faulty(self.nodes)

    @property
    def offered_tx_rate(self) -> int:
        return self.tx_rate_per_s if self.tx_rate_per_s is not None else 20 * self.txs_per_block


@dataclass(frozen=True, slots=True)
class Crash:
    replica: int
    at_ms: int
    restart_ms: int


@dataclass(frozen=True, slots=True)
class Partition:
    groups: tuple[tuple[int, ...], ...]
    at_ms: int
    heal_ms: int


@dataclass(frozen=True, slots=True)
class FaultPlan:
    crashes: tuple[Crash, ...] = ()
    partition: Partition | None = None
    heal_ms: int = 0
    """When the last fault is over (0: no faults)."""


def plan_faults(scenario: Scenario, seed: int) -> FaultPlan:
    rng = random.Random(f"{seed}/faults")
    start, window = scenario.fault_start_ms, scenario.fault_window_ms
    heal = start + window if scenario.drop > 0 and not scenario.lossy_after_heal else 0
    honest = [i for i in range(scenario.nodes) if i not in scenario.faulty]
    crashes = []
    for victim in sorted(rng.sample(honest, scenario.crashes)):
        at = start + rng.randint(0, window)
        back = at + rng.randint(*scenario.downtime_ms)
        crashes.append(Crash(victim, at, back))
        heal = max(heal, back)
    partition = None
    if scenario.partition and scenario.total > 1:
        order = list(range(scenario.total))
        rng.shuffle(order)
        cut = rng.randint(1, scenario.total - 1)
        at = start + rng.randint(0, window)
        groups = (tuple(sorted(order[:cut])), tuple(sorted(order[cut:])))
        partition = Partition(groups, at, at + rng.randint(*scenario.partition_ms))
        heal = max(heal, partition.heal_ms)
    return FaultPlan(tuple(crashes), partition, heal)
