"""The bench's readings of a node's counters: parsed from a real node's exposition, compared before and after."""

from __future__ import annotations

from node.lab.bench_readings import NodeCounters, compare, parse_metrics, slow_pauses
from node.metrics import NodeMetrics


def exposition(view_changes: int, rejected: int, sent: dict[str, int]) -> str:
    metrics = NodeMetrics()
    metrics.view_changes.inc(view_changes)
    metrics.txs_by_action.labels("anchor", "accepted").inc(50)
    metrics.txs_by_action.labels("anchor", "duplicate").inc(rejected)
    metrics.gossip_refused.labels("bad-signature").inc(2)
    peers = {peer: {"bytes_out": n, "bytes_in": 1, "connected": 1} for peer, n in sent.items()}
    metrics.watch(lambda: {}, lambda: peers)
    return metrics.text().decode()


def test_a_nodes_exposition_gives_the_counters_the_bench_compares() -> None:
    found = parse_metrics(exposition(3, 4, {"node1": 100, "node2": 250}))
    assert (found.bytes_sent, found.bytes_received, found.view_changes) == (350, 2, 3)
    assert found.rejected == {"duplicate": 4}  # accepted transactions are not rejections
    assert found.gossip_refused == {"bad-signature": 2}


def test_the_difference_is_given_per_node_and_per_committed_transaction() -> None:
    before = {"node0": NodeCounters(bytes_sent=1_000, disk_bytes=10_000), "node1": NodeCounters(bytes_sent=500)}
    after = {
        "node0": NodeCounters(bytes_sent=5_000, view_changes=1, disk_bytes=30_000),
        "node1": NodeCounters(bytes_sent=2_500, disk_bytes=20_000),
    }
    after["node0"].rejected["duplicate"] = 3
    found = compare(before, after, committed=100)
    assert found["wire_bytes_sent"] == {"node0": 4_000, "node1": 2_000}
    assert found["wire_bytes_per_tx"] == 60.0
    assert found["disk_bytes_per_tx_per_node"] == (20_000 + 20_000) / 2 / 100
    assert found["view_changes"] == {"node0": 1, "node1": 0}
    assert found["rejected_in_blocks_by_code"] == {"duplicate": 3}
    assert compare(before, after, committed=0)["wire_bytes_per_tx"] is None


def test_pauses_are_read_from_the_histograms_and_compared_by_bucket() -> None:
    metrics = NodeMetrics()
    before = parse_metrics(metrics.text().decode())
    for seconds in (0.0004, 0.003, 0.003, 0.3, 1.7):
        metrics.wal_append.observe(seconds)
    metrics.block_seconds.labels("store", "wall").observe(0.02)
    metrics.block_seconds.labels("store", "cpu").observe(9.0)  # CPU time is not a pause
    metrics.block_seconds.labels("execute", "wall").observe(9.0)  # nor is execution
    metrics.wal_append.observe(60.0)  # beyond the last bound
    after = parse_metrics(metrics.text().decode())
    assert set(after.pauses) == {"wal", "store"}
    found = compare({"node0": before}, {"node0": after}, committed=10)["pauses"]["node0"]
    assert found["wal"] == {"count": 6, "over_slow": 3, "longest_from_s": 5.0, "longest_up_to_s": None}
    assert found["store"] == {"count": 1, "over_slow": 0, "longest_from_s": 0.01, "longest_up_to_s": 0.025}


def test_a_run_without_pauses_has_no_longest() -> None:
    metrics = NodeMetrics()
    metrics.wal_append.observe(0.2)
    reading = parse_metrics(metrics.text().decode())
    assert slow_pauses(reading.pauses["wal"], reading.pauses["wal"]) == {
        "count": 0, "over_slow": 0, "longest_from_s": None, "longest_up_to_s": None,
    }
    assert slow_pauses({}, reading.pauses["wal"]) == {
        "count": 1, "over_slow": 1, "longest_from_s": 0.1, "longest_up_to_s": 0.25,
    }
