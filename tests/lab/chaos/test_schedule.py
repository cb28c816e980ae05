"""Random schedules: pure and seeded, never more than f faulty validators at any instant."""

from __future__ import annotations

import pytest

from node.lab.chaos.scenario import ScenarioError, Step
from node.lab.chaos.schedule import faulty_at, faulty_nodes, random_scenario, random_schedule, window

NAMES = [f"node{i}" for i in range(4)]
SEVEN = [f"node{i}" for i in range(7)]


def instants(steps: list[Step]) -> list[float]:
    """Every window's start and just before its end: where the count of faulty nodes can peak."""
    return sorted({t for s in steps for t in (window(s)[0], window(s)[1] - 1e-6)})


def test_the_same_seed_gives_the_same_schedule():
    assert random_schedule(11, 60, NAMES) == random_schedule(11, 60, NAMES)
    assert random_scenario(11, 60) == random_scenario(11, 60)


def test_different_seeds_give_different_schedules():
    schedules = {tuple(random_schedule(seed, 60, NAMES)) for seed in range(10)}
    assert len(schedules) == 10


@pytest.mark.parametrize(("names", "f"), [(NAMES, 1), (SEVEN, 2)])
def test_never_more_than_f_validators_faulty_at_once(names: list[str], f: int):
    peaks = []
    for seed in range(200):
        steps = random_schedule(seed, 60, names)
        assert steps, seed
        for t in instants(steps):
            faulty = faulty_at(steps, t)
            assert len(faulty) <= f, (seed, t, faulty, [s.describe() for s in steps])
            peaks.append(len(faulty))
    if f > 1:
        assert max(peaks) == f, "the budget is never used in full: the check would pass vacuously"


def test_the_check_itself_sees_overlapping_faults():
    steps = [Step(1.0, "kill", ("node0",), for_s=5.0), Step(3.0, "pause", ("node1",), for_s=5.0)]
    assert faulty_at(steps, 4.0) == {"node0", "node1"}
    assert faulty_at(steps, 7.0) == {"node1"}
    partition = Step(0.0, "partition", groups=(("node2",), ("node0", "node1", "node3")), for_s=2.0)
    assert faulty_nodes(partition) == {"node2"}


def test_every_fault_ends_before_the_load_does():
    for seed in range(50):
        steps = random_schedule(seed, 30, NAMES)
        assert all(window(s)[1] <= 30 for s in steps), seed
        assert {s.action for s in random_schedule(seed, 30, NAMES)} <= {
            "kill", "pause", "restart", "wipe", "partition", "link", "byzantine", "clock"}


def test_every_kind_of_fault_appears_over_some_seeds():
    kinds = {s.action for seed in range(30) for s in random_schedule(seed, 60, NAMES)}
    assert kinds == {"kill", "pause", "restart", "wipe", "partition", "link", "byzantine", "clock"}


def test_too_few_validators_or_too_short_a_run_is_refused():
    with pytest.raises(ScenarioError, match="at least 4 validators"):
        random_schedule(1, 60, NAMES[:3])
    with pytest.raises(ScenarioError, match="at least"):
        random_schedule(1, 5, NAMES)
