"""Simulated clusters: the engine's safety and liveness claims under seeded faults.

Castro & Liskov (OSDI 1999 / TOCS 2002): with n >= 3f + 1 replicas of which
at most f are faulty, honest replicas never decide different blocks at one
height (safety, section 4.2 and 4.4), and once the network behaves they keep
deciding (liveness, section 4.5.2).  Every run is checked on every commit and
on every message an honest replica emits (``consensus.sim.checks``).
"""

import json
from collections import deque

import pytest
from click.testing import CliRunner

from consensus.events import CancelTimer, Output, SetTimer, TimerFired
from consensus.messages import CONSENSUS_CODEC, Prepare
from consensus.sim import Scenario, run_many, run_one
from consensus.sim.checks import SafetyMonitor
from consensus.sim.cluster import Cluster
from consensus.sim.scenario import FaultPlan
from node.cli.main import main
from tests.helpers import keys
from tests.helpers import sign as sign_message

BEHAVIOURS = ["equivocate", "silent", "bad-sig", "vote-unknown", "stale"]
CLUSTERS = [(4, 1), (7, 2)]  # n = 3f + 1 with f Byzantine
FAULTS = {"drop": 0.05, "duplicate": 0.05, "partition": True}
LOAD = {"tx_rate_per_s": 500}  # steady work at every height; saturating blocks would only cost time here
CI_SEEDS = 50  # per (cluster, behaviour): 2 x 5 x 50 = 500 schedules in the default suite
SLOW_SEEDS = 500


def _assert_safe_and_live(summary):
    failures = summary["failures"]
    assert summary["safety_violations"] == 0, failures
    assert summary["stalled_runs"] == 0, failures


# ---------------------------------------------------------------- properties over many schedules


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize(("nodes", "byzantine"), CLUSTERS, ids=["n4-f1", "n7-f2"])
def test_f_byzantine_replicas_under_delay_loss_and_partitions_never_fork_or_stall(nodes, byzantine, behaviour):
    half = CI_SEEDS // 2
    base = Scenario(nodes=nodes, byzantine=byzantine, behaviour=behaviour, heights=10, **FAULTS, **LOAD)
    # first half: Byzantine replicas plus network faults; second half: an honest replica crashes too
    _assert_safe_and_live(run_many(base, half, first_seed=0))
    crashing = Scenario(nodes=nodes, byzantine=byzantine, behaviour=behaviour, heights=10, crashes=1, **FAULTS, **LOAD)
    summary = run_many(crashing, CI_SEEDS - half, first_seed=half)
    _assert_safe_and_live(summary)
    assert summary["restarts"] == CI_SEEDS - half


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize(("nodes", "byzantine"), CLUSTERS, ids=["n4-f1", "n7-f2"])
def test_many_more_schedules_never_fork_or_stall(nodes, byzantine, behaviour):
    for crashes, first in ((0, 10_000), (1, 20_000)):
        scenario = Scenario(nodes=nodes, byzantine=byzantine, behaviour=behaviour, heights=20, crashes=crashes,
                            checkpoint_interval=5, **FAULTS, **LOAD)
        _assert_safe_and_live(run_many(scenario, SLOW_SEEDS, first_seed=first))


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_links_that_stay_lossy_slow_the_cluster_down_but_never_fork_or_stall_it(behaviour):
    scenario = Scenario(nodes=4, byzantine=1, behaviour=behaviour, heights=10, drop=0.02, lossy_after_heal=True,
                        max_virtual_ms=600_000)
    _assert_safe_and_live(run_many(scenario, 100, first_seed=30_000))


# ---------------------------------------------------------------- named claims


def test_an_equivocating_primary_forks_nothing_and_the_chain_moves_on():
    forks_per_run: list[int] = []
    summary = run_many(Scenario(nodes=4, byzantine=1, behaviour="equivocate", heights=15), 10,
                       on_run=lambda run: forks_per_run.append(run.forks))
    _assert_safe_and_live(summary)
    # it really showed two blocks, in every run
    assert len(forks_per_run) == 10 and min(forks_per_run) >= 1, forks_per_run
    assert summary["min_height"] >= 15


def test_colluding_equivocators_at_n7_f2_fork_nothing():
    summary = run_many(Scenario(nodes=7, byzantine=2, behaviour="equivocate", heights=15), 10)
    _assert_safe_and_live(summary)
    assert summary["forks"] >= 10


def test_a_silent_primary_is_voted_out_and_commits_resume():
    for seed in range(5):
        result = run_one(Scenario(nodes=4, byzantine=1, behaviour="silent", heights=12), seed)
        assert result.safe and not result.stalled, result.violations
        assert result.view_changes > 0
        assert min(result.heights.values()) >= 12


def _run_until(cluster, condition, limit_ms):
    while cluster.sched.now <= limit_ms and not cluster.monitor.violations:
        if condition():
            return True
        cluster.sched.run_next()
    return condition()


@pytest.mark.parametrize("nodes", [4, 7])
def test_f_replicas_crashed_mid_height_restart_from_their_wal_sign_nothing_new_and_catch_up(nodes):
    scenario = Scenario(nodes=nodes, heights=1)
    f = scenario.f
    cluster = Cluster(scenario, seed=7, plan=FaultPlan())
    cluster.boot()
    cluster.sched.at(0, cluster.client_tick)
    victims = list(range(1, f + 1))

    def signed_mid_height():
        # each victim has written what it signed at a height it has not committed yet
        return all(
            cluster.nodes[v].head.height >= 3 and cluster.nodes[v].wal
            and cluster.nodes[v].wal[-1][0] > cluster.nodes[v].head.height
            for v in victims
        )

    assert _run_until(cluster, signed_mid_height, 10_000)
    crashed_at = {v: cluster.nodes[v].head.height for v in victims}
    in_flight = {v: len(cluster.nodes[v].wal) for v in victims}
    for v in victims:
        cluster.crash(v)
    down_until = cluster.sched.now + 1_500
    assert _run_until(cluster, lambda: cluster.sched.now >= down_until, 20_000)
    emitted_before = cluster.monitor.emitted_checked
    for v in victims:
        cluster.restart(v)
    target = max(cluster.honest_heights().values()) + 10
    assert _run_until(cluster, lambda: min(cluster.honest_heights().values()) >= target, 60_000)
    assert cluster.monitor.violations == []  # no double signature across the restart, no fork
    assert cluster.monitor.emitted_checked > emitted_before
    for v in victims:
        assert cluster.nodes[v].head.height >= target > crashed_at[v]
        assert in_flight[v] > 0 and cluster.nodes[v].restarts == 1


def test_f_honest_crashes_with_restarts_over_many_schedules():
    for nodes in (4, 7):
        scenario = Scenario(nodes=nodes, heights=10, crashes=Scenario(nodes=nodes).f, drop=0.05, partition=True)
        summary = run_many(scenario, 10, first_seed=500)
        _assert_safe_and_live(summary)
        assert summary["restarts"] == 10 * scenario.crashes


# ---------------------------------------------------------------- the checks are not vacuous


def test_f_plus_1_colluding_equivocators_do_break_agreement_and_the_checker_reports_it():
    summary = run_many(Scenario(nodes=4, byzantine=2, behaviour="equivocate", heights=10), 50)
    assert summary["safety_violations"] >= 1
    failure = summary["failures"][0]
    assert failure["kind"] == "agreement"
    assert failure["height"] >= 1
    assert len(set(failure["replicas"])) == 2 and not set(failure["replicas"]) & {0, 1}
    assert len(set(failure["hashes"])) == 2 and all(len(h) == 64 for h in failure["hashes"])


def test_the_monitor_reports_an_honest_replica_signing_two_blocks_for_one_view_and_height():
    monitor = SafetyMonitor(frozenset({0, 1, 2, 3}))
    key = keys(4)[1]
    first = sign_message(Prepare(0, 5, b"\x01" * 32, 1, b""), key)
    second = sign_message(Prepare(0, 5, b"\x02" * 32, 1, b""), key)
    monitor.on_emit(1, CONSENSUS_CODEC.encode(first), 10)
    monitor.on_emit(1, CONSENSUS_CODEC.encode(first), 11)  # the same message again is fine
    assert monitor.violations == []
    monitor.on_emit(1, CONSENSUS_CODEC.encode(second), 12)
    [violation] = monitor.violations
    assert (violation.kind, violation.height, violation.replicas) == ("double-sign", 5, (1,))


def test_a_liveness_failure_is_reported_as_a_stalled_run():
    # f + 1 silent replicas at n = 4: no quorum is ever possible, so the run must stall (safely)
    result = run_one(Scenario(nodes=4, byzantine=2, behaviour="silent", heights=3, max_virtual_ms=20_000), 0)
    assert result.safe and result.stalled
    assert result.violations[0].kind == "stalled"


# ---------------------------------------------------------------- the driver and the simulator


def test_the_same_seed_gives_the_same_run():
    scenario = Scenario(nodes=4, byzantine=1, behaviour="stale", heights=8, crashes=1, **FAULTS)
    first, again = run_many(scenario, 3, first_seed=11), run_many(scenario, 3, first_seed=11)
    assert first == again
    assert run_one(scenario, 11) == run_one(scenario, 11)
    assert run_one(scenario, 11) != run_one(scenario, 12)


def test_a_cancelled_or_replaced_timer_never_fires():
    cluster = Cluster(Scenario(nodes=4), seed=0, plan=FaultPlan())
    cluster.boot()
    fired = []
    cluster.feed = lambda i, event: fired.append((i, event))
    node = cluster.nodes[2]
    out = Output(timers=[SetTimer("a", 100, 91), SetTimer("b", 100, 92), SetTimer("b", 150, 93), CancelTimer("a")])
    cluster._apply(node, out, deque())
    while cluster.sched.run_next():
        pass
    assert fired == [(2, TimerFired("b", 93))]


def test_transactions_are_batched_up_to_the_block_limit_and_leave_every_mempool_once_committed():
    scenario = Scenario(nodes=4, heights=5, txs_per_block=3, tx_rate_per_s=400)
    cluster = Cluster(scenario, seed=1, plan=FaultPlan())
    cluster.boot()
    cluster.sched.at(0, cluster.client_tick)
    assert _run_until(cluster, lambda: min(cluster.honest_heights().values()) >= 5, 10_000)
    node = cluster.nodes[0]
    committed = [tx for h in range(1, 6) for tx in node.store[h][0].txs]
    assert all(len(node.store[h][0].txs) <= 3 for h in range(1, 6))
    assert len(committed) == len(set(committed))
    assert all(100 <= len(tx) <= 250 for tx in committed)
    for other in cluster.nodes:
        assert not set(committed) & set(other.mempool)


def test_a_replica_whose_restart_reset_its_backoff_does_not_stay_a_view_ahead_for_ever():
    """Regression (section 4.5.2; engine unit tests in test_view_change.py).

    In this schedule the silent primary forces view changes, replica 2 crashes
    and restarts with its backoff reset, and afterwards kept timing out into a
    view ahead of replicas 1 and 3 -- alone there, never f + 1 of them, so
    neither side could pull the other along and the cluster stalled at height
    1 for good.  A view-change timer now moves on only once 2f + 1 replicas
    joined the view change; alone, a replica asks again.
    """
    scenario = Scenario(nodes=4, byzantine=1, behaviour="silent", heights=10, crashes=1, **FAULTS)
    result = run_one(scenario, 24)
    assert result.safe and not result.stalled, result.violations
    assert result.restarts == 1 and result.view_changes > 0


# ---------------------------------------------------------------- the command line


def _cli(*args):
    return CliRunner().invoke(main, ["sim", *args])


def test_cli_prints_one_json_summary_and_exits_0_when_every_run_is_safe_and_live():
    result = _cli("--nodes", "4", "--byzantine", "1", "--behaviour", "silent", "--seeds", "2", "--heights", "5",
                  "--drop", "0.05", "--partition", "--crash", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("runs", "safety_violations", "stalled_runs", "min_height", "median_height", "view_changes",
                "messages_per_block", "cpu_ms_per_block", "cpu_us_per_message", "failures", "ok"):
        assert key in summary
    assert summary["runs"] == 2 and summary["ok"] is True and summary["min_height"] >= 5


def test_cli_exits_1_and_names_the_failing_seed_on_a_safety_violation():
    result = _cli("--nodes", "4", "--byzantine", "2", "--behaviour", "equivocate", "--seeds", "3", "--heights", "3")
    assert result.exit_code == 1
    assert "agreement at height" in result.stdout and "FAILED" in result.stdout


@pytest.mark.parametrize("args", [
    ("--nodes", "4", "--byzantine", "5"),
    ("--behaviour", "lying"),
    ("--drop", "1.5"),
    ("--seeds", "0"),
])
def test_cli_exits_2_with_one_line_on_bad_arguments(args):
    result = _cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:")
