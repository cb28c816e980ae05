"""Liveness from synthetic samples: recovery times, stalls, the stall-no-fork expectation."""

import pytest

from node.lab.chaos.checks import judge
from node.lab.chaos.liveness import beyond_f, liveness, recoveries
from node.lab.chaos.record import Ack, FaultWindow, Sample
from node.lab.chaos.series import throughput, view_changes
from node.lab.chaos.verdict import Verdict
from tests.lab.chaos.chains import VALIDATORS, record

NODES = [*VALIDATORS, "node4"]


def _samples(heights, until=20.0, step=0.5):
    """``heights(node, t)`` -> height or None (down), sampled every ``step`` seconds."""
    out, t = [], 0.0
    while t <= until + 1e-9:
        out += [Sample(round(t, 3), n, heights(n, round(t, 3))) for n in NODES]
        t += step
    return out


def _crash_node1(n, t):
    """Every node one block a second; node1 down from 5 s to 10 s, then back at its old height 5,
    catching up to the network at 12 s."""
    if n != "node1":
        return int(t)
    if t < 5:
        return int(t)
    if t < 10:
        return None
    return 5 if t < 12 else int(t)


def _crash_record(**expect):
    r = record(samples=_samples(_crash_node1), **expect)
    r.windows.append(FaultWindow("kill", ["node1"], 5.0, 10.0))
    return r


def test_recovery_is_the_time_until_the_restarted_node_passes_the_network():
    (rec,) = recoveries(_crash_record())
    # at 10 s the network is at 10: node1 passes it at 12 s (height 12 > 10); the others at 11 s
    assert rec.per_node["node1"] == pytest.approx(2.0)
    assert rec.per_node["node0"] == pytest.approx(1.0)
    assert rec.recovery_s == pytest.approx(2.0) and rec.left_out == []


def test_recovery_within_the_bound_passes_and_beyond_it_fails():
    assert liveness(_crash_record(commits_resume_within_s=5.0)).ok
    slow = liveness(_crash_record(commits_resume_within_s=1.5))
    assert not slow.ok and "2.00 s, expected within 1.5 s" in slow.summary
    assert slow.data["recoveries"][0]["recovery_s"] == pytest.approx(2.0)


def test_a_node_that_never_commits_again_fails_liveness():
    def stuck(n, t):
        return None if n == "node2" and t >= 5 else int(t)

    r = record(samples=_samples(stuck), commits_resume_within_s=5.0)
    r.windows.append(FaultWindow("pause", ["node2"], 5.0, 10.0))
    v = liveness(r)
    assert not v.ok and "no commit afterwards on node2" in v.summary
    assert v.data["recoveries"][0]["recovery_s"] is None and not v.data["progress_after_last_fault"]


def test_a_node_still_under_another_fault_is_judged_at_that_fault_s_end():
    def two_faults(n, t):
        if n == "node3" and 3 <= t < 15:
            return None
        return int(t)

    r = record(samples=_samples(two_faults), commits_resume_within_s=3.0)
    r.windows += [FaultWindow("link", ["node1"], 2.0, 6.0), FaultWindow("kill", ["node3"], 3.0, 15.0)]
    first, second = recoveries(r)
    assert first.left_out == ["node3"] and "node3" not in first.per_node
    assert second.per_node["node3"] == pytest.approx(1.0)
    assert liveness(r).ok


def test_a_fault_that_never_ends_needs_progress_from_the_others():
    def silent_forever(n, t):
        return 3 if n == "node0" and t >= 3 else int(t)

    r = record(samples=_samples(silent_forever))
    r.windows.append(FaultWindow("byzantine", ["node0"], 3.0, None))
    r.byzantine.append("node0")
    v = liveness(r)
    assert v.ok and v.data["recoveries"] == []


def _stalled(n, t):
    return min(int(t), 6)


def _beyond_f_record(heights):
    r = record(samples=_samples(heights), outcome="stall-no-fork")
    r.byzantine += ["node0", "node1"]
    r.windows += [FaultWindow("byzantine", ["node0"], 5.0, None), FaultWindow("kill", ["node2"], 5.0, None)]
    return r


def test_beyond_f_intervals_count_faulty_validators():
    r = _beyond_f_record(_stalled)
    assert beyond_f(r) == [(5.0, None)]
    r.windows[1].end_s = 12.0
    assert beyond_f(r) == [(5.0, 12.0)]


def test_a_stall_beyond_f_fails_liveness_and_meets_stall_no_fork_without_a_fork():
    v = liveness(_beyond_f_record(_stalled))
    assert not v.ok and v.data["stalled"] and "stalled at height 6 from 5 s" in v.summary
    others = [Verdict(n, True, "") for n in ("agreement", "durability", "validity", "evidence")]
    met = judge([*others, v], _beyond_f_record(_stalled).expectations)
    assert met.expectation_met and met.outcome == "stalled, no fork"
    forked = judge([Verdict("agreement", False, ""), *others[1:], v], _beyond_f_record(_stalled).expectations)
    assert not forked.expectation_met and forked.outcome == "FORK"


def test_a_chain_that_keeps_committing_beyond_f_did_not_stall():
    v = liveness(_beyond_f_record(lambda n, t: int(t)))
    assert v.ok and not v.data["stalled"] and v.summary.startswith("did not stall")
    verdicts = judge([Verdict("agreement", True, ""), v], _beyond_f_record(_stalled).expectations)
    assert not verdicts.expectation_met and verdicts.outcome == "did not stall"


def test_a_commit_in_the_grace_after_the_faults_began_is_no_progress():
    v = liveness(_beyond_f_record(lambda n, t: min(int(t * 2), 11)))  # the last block lands at 5.5 s
    assert not v.ok and v.data["stalled"]


def test_throughput_and_view_changes_over_time():
    r = _crash_record()
    r.acks += [Ack(f"{i:064x}", "node0", 0.0, 0.5 + i * 0.4, honest=i % 2 == 0) for i in range(5)]
    buckets = throughput(r.acks, 3.0)
    assert [b["committed"] for b in buckets] == [2, 2, 1]
    assert [b["honest"] for b in buckets] == [1, 1, 1]
    samples = [Sample(0.0, "node0", 1, view=0), Sample(1.0, "node0", 1, view=1), Sample(2.0, "node0", 2, view=1)]
    assert view_changes(samples, ["node0"]) == [{"t_s": 1.0, "node": "node0", "from": 0, "to": 1}]


def _primary_crash(n, t):
    """node0 (the primary) down from 5 s to 10 s; the others commit nothing from 5 s until a view change at 7.5 s."""
    if n == "node0" and 5 <= t < 10:
        return None
    if t < 5:
        return int(t)
    if t < 7.5:
        return 5
    return int(t) - 1 if n != "node0" or t >= 12 else 5


def test_the_longest_commit_gap_during_a_fault_is_the_others_stall():
    r = record(samples=_samples(_primary_crash))
    r.windows.append(FaultWindow("kill", ["node0"], 5.0, 10.0))
    (rec,) = recoveries(r)
    assert rec.gap_s == 2.5  # the view change, seen on the nodes the fault left alone
    assert liveness(r).data["recoveries"][0]["longest_commit_gap_s"] == 2.5


def test_a_block_landing_just_after_the_fault_does_not_hide_the_gap():
    def heights(n, t):  # one block lands at 5.5 s (certified before the crash), then nothing until 8.5 s
        if n == "node0" and 5 <= t < 10:
            return None
        return int(t) if t < 5.5 else 6 if t < 8.5 else int(t)

    r = record(samples=_samples(heights))
    r.windows.append(FaultWindow("kill", ["node0"], 5.0, 10.0))
    (rec,) = recoveries(r)
    assert rec.gap_s == 3.0


def test_no_commit_during_a_fault_that_took_the_quorum_away():
    r = record(samples=_samples(lambda n, t: min(int(t), 5) if t < 10 else int(t)))
    r.windows.append(FaultWindow("partition", ["node0", "node1"], 5.0, 10.0))
    (rec,) = recoveries(r)
    assert rec.gap_s is None
