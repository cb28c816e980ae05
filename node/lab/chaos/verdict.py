"""A check's verdict, and the run's verdicts with whether the scenario's expectation was met."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Verdict:
    """One invariant judged: ``summary`` is one line for a table, ``details`` name what broke."""

    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Verdicts:
    items: list[Verdict]
    expectation_met: bool
    outcome: str  # "ok", "stalled, no fork", "FORK", "did not stall", "FAILED: durability, liveness"

    def get(self, name: str) -> Verdict | None:
        return next((v for v in self.items if v.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "expectation_met": self.expectation_met,
            "outcome": self.outcome,
            "verdicts": [v.to_json() for v in self.items],
        }
