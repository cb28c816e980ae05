"""The simulator runs the same ``Adversary`` as a real node: here, the ``garbage`` behaviour.

A Byzantine replica that follows every message with random bytes and floods
bursts of them now and then: the honest replicas receive them as consensus
data, drop every one as malformed, and neither fork nor stall.
"""

from consensus.sim import BEHAVIOURS, Scenario, run_many
from consensus.sim.cluster import Cluster
from consensus.sim.scenario import FaultPlan

FAULTS = {"drop": 0.05, "duplicate": 0.05, "partition": True}


def test_the_simulator_offers_every_shared_behaviour():
    assert BEHAVIOURS == ("none", "equivocate", "silent", "bad-sig", "vote-unknown", "stale", "garbage")


def test_honest_replicas_drop_every_garbage_frame_and_keep_deciding():
    cluster = Cluster(Scenario(nodes=4, byzantine=1, behaviour="garbage", heights=8), seed=2, plan=FaultPlan())
    cluster.boot()
    cluster.sched.at(0, cluster.client_tick)
    while cluster.sched.now < 20_000 and min(cluster.honest_heights().values()) < 8:
        cluster.sched.run_next()
    assert cluster.monitor.violations == []
    assert min(cluster.honest_heights().values()) >= 8
    adversary = cluster.adversary
    assert adversary is not None and adversary.garbage_sent > 100
    dropped = 0
    for i in sorted(cluster.honest):
        replica = cluster.nodes[i].replica
        assert replica is not None
        dropped += replica.stats["dropped.malformed"]
    # every garbage frame that reached an honest replica was dropped as malformed (some were lost in flight)
    assert 0 < dropped <= adversary.garbage_sent


def test_garbage_under_loss_partitions_and_crashes_never_forks_or_stalls():
    for nodes, byzantine in ((4, 1), (7, 2)):
        scenario = Scenario(nodes=nodes, byzantine=byzantine, behaviour="garbage", heights=10, crashes=1,
                            tx_rate_per_s=500, **FAULTS)
        summary = run_many(scenario, 10)
        assert summary["safety_violations"] == 0 and summary["stalled_runs"] == 0, summary["failures"]
