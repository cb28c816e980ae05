"""node.mempool.RegossipSchedule: when a pending transaction is offered again, to whom, and its bound (pure, no I/O)."""

from __future__ import annotations

from node.mempool import RegossipSchedule


def test_nothing_is_due_before_the_first_interval() -> None:
    plan = RegossipSchedule(first_s=2.0, max_s=16.0)
    plan.add(b"a", now=100.0)
    assert plan.due(101.9, limit=10) == []
    assert plan.due(102.0, limit=10) == [(b"a", None)]


def test_each_resend_waits_twice_as_long_up_to_the_cap() -> None:
    plan = RegossipSchedule(first_s=1.0, max_s=4.0)
    plan.add(b"a", now=0.0)
    resent_at = [t / 2 for t in range(0, 60) if plan.due(t / 2, limit=10)]
    # due at 1, then +2 = 3, then +4 = 7, then every 4 (the cap): 11, 15, ...
    assert resent_at[:6] == [1.0, 3.0, 7.0, 11.0, 15.0, 19.0]


def test_a_forgotten_transaction_is_never_offered_again() -> None:
    plan = RegossipSchedule(first_s=1.0)
    plan.add(b"a", now=0.0)
    plan.add(b"b", now=0.0)
    plan.forget([b"a"])
    assert plan.due(5.0, limit=10) == [(b"b", None)]
    assert len(plan) == 1


def test_the_origin_peer_is_kept_with_the_transaction() -> None:
    plan = RegossipSchedule(first_s=1.0)
    plan.add(b"a", now=0.0, origin="node2")
    plan.add(b"a", now=0.5, origin="node3")  # a second copy changes nothing
    assert plan.due(1.0, limit=10) == [(b"a", "node2")]


def test_due_returns_at_most_limit_and_keeps_the_rest_due() -> None:
    plan = RegossipSchedule(first_s=1.0)
    for i in range(5):
        plan.add(bytes([i]), now=0.0)
    first = plan.due(1.0, limit=3)
    second = plan.due(1.0, limit=3)
    assert len(first) == 3 and len(second) == 2
    assert {t for t, _ in first} | {t for t, _ in second} == {bytes([i]) for i in range(5)}


def test_entries_are_bounded_oldest_out_first() -> None:
    plan = RegossipSchedule(first_s=1.0, max_entries=3)
    for i in range(5):
        plan.add(bytes([i]), now=float(i))
    assert len(plan) == 3
    assert [t for t, _ in plan.due(100.0, limit=10)] == [bytes([2]), bytes([3]), bytes([4])]


def test_forgetting_compacts_the_heap() -> None:
    plan = RegossipSchedule(first_s=1.0)
    tids = [i.to_bytes(4, "big") for i in range(5000)]
    for tid in tids:
        plan.add(tid, now=0.0)
    plan.forget(tids[:4900])
    assert len(plan._heap) <= 2 * len(plan) + 1024
    assert len(plan.due(1.0, limit=10_000)) == 100
