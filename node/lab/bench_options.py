"""What ``medchain bench`` was asked for: the options, the rules that tie them, and the runs they make.

The options come in families, and within each family one choice excludes the others:

* the cluster: ``--nodes N`` plain validators (default 4), ``--consortium FILE``,
  or ``--target DIR`` (one already running); ``--sweep-nodes`` is a series of
  plain clusters, so it excludes all three;
* the load: ``--rate R`` (open loop) or ``--closed-loop --in-flight C``
  (``--mode rate|closed`` and ``--concurrency`` are the older spellings);
  ``--profile`` is a preset series of runs that fixes the load itself;
* the series: one run, ``--sweep-nodes`` (one run per cluster size) or
  ``--find-max`` (open-loop steps at rising rates, ``node.lab.bench_find_max``);
  a series runs anchors only.

``usage_problem`` checks these on the options the user actually gave (a
default never conflicts) and returns one line saying what to drop, or None.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from node.lab.bench import PROFILE_WORKLOADS, PROFILES, VALIDATORS, RunPlan
from node.lab.bench_network import NetworkSpec, consortium_for

WORKLOADS = ("anchor", "mix", "both")
WORKLOAD_ALIASES = {"mixed": "mix"}  # the older spelling
P99_BOUND_S = 1.0
FIND_MAX_STEPS = 8


@dataclass(frozen=True, slots=True)
class Options:
    """The benchmark's options as given on the command line (or their defaults)."""

    profile: str | None = None
    workload: str | None = None  # anchor | mix | both; None: the profile's, else anchor
    closed_loop: bool = False
    rate: float = 500.0
    in_flight: int = 4_000
    duration: float = 10.0
    txs: int = 0
    connections: int = 128
    submit: str = "single"
    batch_size: int = 200
    nodes: int = VALIDATORS
    consortium: Path | None = None
    target: Path | None = None
    sweep_nodes: tuple[int, ...] = ()
    find_max: bool = False
    p99_bound_s: float = P99_BOUND_S
    max_steps: int = FIND_MAX_STEPS
    batch_wait_ms: float = 0.0

    def plans(self) -> list[RunPlan]:
        size = self.batch_size if self.submit == "batch" else 0
        if self.profile:
            return [replace(p, connections=self.connections, txs=self.txs or p.txs, submit=self.submit, batch_size=size,
                            batch_wait_ms=self.batch_wait_ms) for p in PROFILES[self.profile]]
        mode = "closed" if self.closed_loop else "rate"
        name = f"rate-{self.rate:g}" if mode == "rate" else f"closed-{self.in_flight}"
        plan = RunPlan(name, mode, self.duration, rate=self.rate, concurrency=self.in_flight, txs=self.txs,
                       connections=self.connections, submit=self.submit, batch_size=size,
                       batch_wait_ms=self.batch_wait_ms)
        return [plan]

    def chosen_workload(self) -> str:
        chosen = self.workload or PROFILE_WORKLOADS.get(self.profile or "", "anchor")
        return WORKLOAD_ALIASES.get(chosen, chosen)

    def network(self) -> NetworkSpec:
        """The cluster of a single run or of --find-max (a sweep makes its own)."""
        if self.target is not None:
            return NetworkSpec(target=self.target)
        consortium = self.consortium
        if consortium is None and self.chosen_workload() != "anchor":
            consortium = consortium_for(self.nodes)
        return NetworkSpec(self.nodes, consortium)


def _pick_one(given: Collection[str], first: str, second: str, why: str) -> str | None:
    if first in given and second in given:
        return f"{_flag(first)} and {_flag(second)} do not go together: {why}"
    return None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def usage_problem(o: Options, given: Collection[str]) -> str | None:
    """One line saying which given options conflict and what to drop, or None when they fit together."""
    closed = o.closed_loop
    checks: list[str | None] = [
        "--rate sets the open loop's offered rate; --closed-loop keeps --in-flight transactions in flight "
        "instead: give one or the other" if "rate" in given and closed else None,
        "--in-flight is for the closed loop: add --closed-loop, or give --rate for an open loop"
        if "in_flight" in given and not closed else None,
        _pick_one(given, "nodes", "consortium", "--nodes starts N plain validators, --consortium the nodes of a "
                  "consortium file; give one or the other"),
        *(_pick_one(given, "target", other, "--target drives the cluster already running in DIR, which decides "
                    f"its nodes; drop {_flag(other)}")
          for other in ("sweep_nodes", "nodes", "consortium", "directory")),
        *(_pick_one(given, "sweep_nodes", other, f"--sweep-nodes sets the validators of each run; drop {_flag(other)}")
          for other in ("nodes", "consortium", "find_max")),
        *(_pick_one(given, "profile", other, f"--profile is a preset series of runs with its own load; drop "
                    f"{_flag(other)} or the profile")
          for other in ("sweep_nodes", "find_max", "rate", "closed_loop", "in_flight", "duration")),
        "--find-max raises the open loop's offered rate step by step: drop --closed-loop"
        if o.find_max and closed else None,
        *(f"{_flag(name)} is for --find-max: add --find-max or drop it"
          for name in ("p99_bound", "max_steps") if name in given and not o.find_max),
        "--batch-wait-ms gathers transactions for --submit batch: add --submit batch or drop it"
        if "batch_wait_ms" in given and o.submit != "batch" else None,
        _series_workload(o),
    ]
    return next((c for c in checks if c), None)


def _series_workload(o: Options) -> str | None:
    workload = o.chosen_workload()
    if workload == "anchor":
        return None
    for flag, on in (("--sweep-nodes", bool(o.sweep_nodes)), ("--find-max", o.find_max),
                     ("--target", o.target is not None)):
        if on:
            return (f"{flag} runs anchors; the healthcare mix (--workload {workload}) needs a fresh consortium "
                    "cluster for its setup: drop one of them")
    if o.consortium is None and consortium_for(o.nodes) is None:
        return (f"the healthcare mix runs on a consortium and configs/ has none with {o.nodes} validators: "
                "give --consortium FILE (e.g. configs/consortium-4.toml or consortium-7.toml)")
    return None
