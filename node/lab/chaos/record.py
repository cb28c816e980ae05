"""What one chaos run observed, as plain data: the runner fills it, the checks and the report read it.

Times are seconds since the run's load started (``t_s``), on the runner's
monotonic clock.  Node names are the testnet's (``node0`` ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["progress", "stall-no-fork"]


@dataclass(frozen=True, slots=True)
class Ack:
    """A transaction a node acknowledged as committed to the load generator."""

    tx_id: str  # hex
    node: str  # the node that answered
    submitted_s: float
    acked_s: float
    height: int | None = None
    honest: bool = True  # False for the flooding client's transactions


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll of one node's /status; ``height`` None when the node did not answer."""

    t_s: float
    node: str
    height: int | None
    view: int | None = None
    in_view_change: bool = False


@dataclass(slots=True)
class FaultWindow:
    """One perturbation of the timeline: from ``start_s`` until ``end_s`` (None: never ended)."""

    kind: str  # e.g. kill, pause, partition, link, byzantine, clock, wipe, restore, flood
    nodes: list[str]
    start_s: float
    end_s: float | None
    detail: str = ""


@dataclass(slots=True)
class Expectations:
    outcome: Outcome = "progress"
    commits_resume_within_s: float | None = None  # after each fault's end, on every honest node
    evidence_from: list[str] = field(default_factory=list)  # validators whose misbehaviour must leave evidence
    honest_p99_latency_s: float | None = None  # bound on acknowledged honest transactions' commit latency
    min_acked: int = 1  # fewer acknowledged transactions than this fails durability (a vacuous run)


@dataclass(slots=True)
class RunRecord:
    scenario: str
    seed: int
    validators: list[str]
    observers: list[str]
    byzantine: list[str]  # nodes that misbehaved on purpose at some time: excluded from "honest"
    expectations: Expectations
    started_at: float  # wall time (epoch seconds) of t_s = 0
    duration_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    windows: list[FaultWindow] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    submitted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # refusal or error code -> count
    notes: list[str] = field(default_factory=list)

    @property
    def honest(self) -> list[str]:
        return [n for n in [*self.validators, *self.observers] if n not in self.byzantine]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
