"""Random fault schedules (``medchain chaos random``): pure, seeded, never more than f validators faulty at once.

A schedule is a list of timeline steps naming concrete validators.  Each step
makes its nodes faulty for a window: crashed, paused, partitioned away,
slowed, Byzantine or skewed from ``at_s`` for ``for_s`` seconds; a restart or
a wipe for ``RECOVERY_S`` (the time it is given to come back and catch up).
A step is placed only where, over its whole window, the validators already
faulty plus its own stay at most f.  The same seed gives the same schedule.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from node.lab.chaos.scenario import BEHAVIOURS, ClusterSpec, ExpectSpec, LoadSpec, Scenario, ScenarioError, Step

KINDS = ("kill", "pause", "restart", "wipe", "partition", "slow", "byzantine", "clock")
RECOVERY_S = 8.0  # a restarted or wiped validator counts as faulty this long
MIN_SPAN_S, MAX_SPAN_S = 2.0, 6.0
FIRST_S = 3.0  # the load runs this long before the first fault
QUIET_END_S = 3.0  # and this long after the last one ends
SKEWS_MS = (-3_000, 2_000, 5_000)
SLOW_MS = 500


def faulty_budget(validators: int) -> int:
    """f = floor((n - 1) / 3)."""
    return (validators - 1) // 3


def window(step: Step) -> tuple[float, float]:
    """The instants [start, end) during which ``step``'s nodes count as faulty."""
    span = step.for_s if step.for_s is not None else RECOVERY_S
    return step.at_s, step.at_s + span


def faulty_nodes(step: Step) -> set[str]:
    """The nodes ``step`` makes faulty: its nodes, or for a partition the smallest group."""
    if step.action == "partition" and step.groups:
        smallest: tuple[str, ...] = sorted(step.groups, key=len)[0]
        return set(smallest)
    return set(step.nodes)


def faulty_at(steps: Sequence[Step], t: float) -> set[str]:
    """Every node that some step makes faulty at instant ``t``."""
    out: set[str] = set()
    for step in steps:
        start, end = window(step)
        if start <= t < end:
            out |= faulty_nodes(step)
    return out


def _busy(steps: Sequence[Step], start: float, end: float) -> set[str]:
    """Nodes faulty at any instant of [start, end)."""
    out: set[str] = set()
    for step in steps:
        s, e = window(step)
        if s < end and start < e:
            out |= faulty_nodes(step)
    return out


def random_schedule(seed: int, duration_s: float, validators: Sequence[str]) -> list[Step]:
    """A seeded schedule of faults over ``duration_s`` seconds of load on ``validators``."""
    f = faulty_budget(len(validators))
    if f < 1:
        raise ScenarioError(f"a random schedule needs at least 4 validators (f >= 1); got {len(validators)}")
    if duration_s < FIRST_S + QUIET_END_S + MIN_SPAN_S:
        raise ScenarioError(f"a random schedule needs at least {FIRST_S + QUIET_END_S + MIN_SPAN_S:g} s of load")
    rng = random.Random(seed)
    steps: list[Step] = []
    t = round(FIRST_S + rng.uniform(0, 1), 1)
    while True:
        kind = rng.choice(KINDS)
        span = RECOVERY_S if kind in ("restart", "wipe") else round(rng.uniform(MIN_SPAN_S, MAX_SPAN_S), 1)
        if t + span > duration_s - QUIET_END_S:
            break
        busy = _busy(steps, t, t + span)
        room = f - len(busy & set(validators))
        if room >= 1:
            free = sorted(set(validators) - busy)
            chosen = sorted(rng.sample(free, rng.randint(1, min(room, len(free)))))
            steps.append(_step(kind, t, span, chosen, list(validators), rng))
        t = round(t + rng.uniform(1.0, 4.0), 1)
    return steps


def _step(kind: str, t: float, span: float, chosen: list[str], validators: list[str], rng: random.Random) -> Step:
    nodes = tuple(chosen)
    match kind:
        case "restart" | "wipe":
            return Step(t, kind, nodes)
        case "partition":
            rest = tuple(v for v in validators if v not in chosen)
            return Step(t, "partition", groups=(nodes, rest), for_s=span)
        case "slow":
            return Step(t, "link", nodes, for_s=span, settings=(("delay_ms", SLOW_MS),))
        case "byzantine":
            return Step(t, "byzantine", nodes, for_s=span, behaviour=rng.choice(BEHAVIOURS))
        case "clock":
            return Step(t, "clock", nodes, for_s=span, skew_ms=rng.choice(SKEWS_MS))
        case _:
            return Step(t, kind, nodes, for_s=span)


def random_scenario(seed: int, duration_s: float, validators: int = 4, rate: float = 20.0) -> Scenario:
    """A scenario running ``random_schedule`` on ``validators`` validators (named node0, node1, ...)."""
    names = [f"node{i}" for i in range(validators)]
    steps = random_schedule(seed, duration_s, names)
    return Scenario(
        name=f"random-{seed}",
        description=f"{len(steps)} random faults over {duration_s:g} s, never more than f at once (seed {seed})",
        source="random",
        seed=seed,
        cluster=ClusterSpec(validators=validators, settings=(("progress_timeout_ms", 1000),)),
        load=LoadSpec(rate=rate, duration_s=duration_s),
        timeline=tuple(steps),
        expect=ExpectSpec(commits_resume_within_s=15.0),
    )
