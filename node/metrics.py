"""Prometheus metrics of one node (its own registry, served at /metrics).

Counters that already live elsewhere (the replica's drop reasons, the
transport's per-peer bytes) are read at scrape time by a collector instead of
being copied on every event.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WAL_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)


class _Live(Collector):
    def __init__(
        self,
        engine_stats: Callable[[], Mapping[str, int]],
        peer_stats: Callable[[], Mapping[str, Mapping[str, int]]],
    ) -> None:
        self.engine_stats = engine_stats
        self.peer_stats = peer_stats

    def collect(self) -> Iterable[Metric]:
        dropped = CounterMetricFamily(
            "medchain_consensus_dropped", "Consensus messages dropped by the engine, by reason", labels=["reason"]
        )
        events = CounterMetricFamily("medchain_consensus_events", "Engine event counters", labels=["event"])
        for name, value in sorted(self.engine_stats().items()):
            if name.startswith("dropped."):
                dropped.add_metric([name.removeprefix("dropped.")], value)
            elif name != "dropped":
                events.add_metric([name], value)
        sent = CounterMetricFamily("medchain_peer_bytes_sent", "Bytes sent to each peer", labels=["peer"])
        received = CounterMetricFamily("medchain_peer_bytes_received", "Bytes received from each peer", labels=["peer"])
        connected = GaugeMetricFamily("medchain_peer_connected", "1 when the peer is connected", labels=["peer"])
        for peer, stats in sorted(self.peer_stats().items()):
            sent.add_metric([peer], stats.get("bytes_out", 0))
            received.add_metric([peer], stats.get("bytes_in", 0))
            connected.add_metric([peer], stats.get("connected", 0))
        yield from (dropped, events, sent, received, connected)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("medchain_height", "Height of the last committed block", registry=r)
        self.view = Gauge("medchain_view", "Current consensus view", registry=r)
        self.view_changes = Counter("medchain_view_changes", "Views entered after a view change", registry=r)
        self.mempool_txs = Gauge("medchain_mempool_txs", "Transactions waiting in the mempool", registry=r)
        self.mempool_bytes = Gauge("medchain_mempool_bytes", "Bytes waiting in the mempool", registry=r)
        self.mempool_full = Counter(
            "medchain_mempool_full", "Submissions refused because the mempool was full", registry=r
        )
        self.txs_committed = Counter(
            "medchain_txs_committed", "Transactions committed (accepted by the app)", registry=r
        )
        self.txs_rejected = Counter(
            "medchain_txs_rejected", "Transactions committed but rejected by the app", registry=r
        )
        self.gossip_refused = Counter(
            "medchain_gossip_txs_refused",
            "Transactions gossiped by peers and refused at admission, by reason (the admission error code)",
            ["reason"],
            registry=r,
        )
        self.compact_proposals = Counter(
            "medchain_compact_proposals",
            "Compact proposals received, by whether every transaction was here (complete) or some were fetched",
            ["outcome"],
            registry=r,
        )
        self.blocks_synced = Counter("medchain_blocks_synced", "Blocks committed through catch-up", registry=r)
        self.sync_batches_dropped = Counter(
            "medchain_sync_batches_dropped",
            "Fetched block batches dropped unapplied: already fetched, not following on, or two already waiting",
            registry=r,
        )
        self.blocks_refused = Counter(
            "medchain_blocks_refused", "Blocks from peers refused (bad certificate, wrong parent or state)", registry=r
        )
        self.evidence = Counter("medchain_evidence", "Equivocation evidence recorded", registry=r)
        self.peers = Gauge("medchain_peers", "Connected peers", registry=r)
        self.commit_latency = Histogram(
            "medchain_commit_latency_seconds",
            "From admission at this node to commit",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.block_interval = Histogram(
            "medchain_block_interval_seconds", "Time between consecutive commits", buckets=LATENCY_BUCKETS, registry=r
        )
        self.block_txs = Histogram(
            "medchain_block_txs",
            "Transactions per block",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=r,
        )

        self.block_seconds = Histogram(
            "medchain_block_seconds",
            "A committed block's stages: execute (the rules on every transaction), store (its LevelDB batch) and "
            "trim (freed heap handed back to the OS, at most once a second), "
            "in wall seconds or the CPU seconds of the thread doing it",
            ["stage", "clock"], buckets=LATENCY_BUCKETS, registry=r,
        )

        self.wal_append = Histogram(
            "medchain_wal_append_seconds",
            "Consensus WAL appends (one write and one fdatasync, before the messages they record are sent), "
            "wall seconds on the storage thread",
            buckets=WAL_BUCKETS, registry=r,
        )

        # The healthcare ledger, as this node serves it.
        self.txs_by_action = Counter(
            "medchain_ledger_txs", "Committed transactions by action and outcome", ["action", "outcome"], registry=r
        )
        self.scans = Counter("medchain_scans", "Codes verified at this node, by status", ["status"], registry=r)
        self.scan_seconds = Histogram(
            "medchain_scan_seconds", "Time to answer a verification (with history and proofs)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0), registry=r,
        )
        self.alerts_filed = Counter("medchain_alerts_filed", "Scan alerts this node filed", registry=r)
        self.ehr_reads = Counter(
            "medchain_ehr_reads", "Record reads asked of this custodian, by outcome", ["outcome"], registry=r
        )
        self.break_glass = Counter("medchain_ehr_break_glass", "Break-glass reads served by this node", registry=r)
        self.records_filed = Counter("medchain_ehr_records_filed", "Record contents put in this vault", registry=r)
        self.records_shredded = Counter(
            "medchain_ehr_records_shredded", "Records crypto-shredded from this vault after erasure", registry=r
        )

    def watch_gc(self) -> Callable[[], None]:
        """Time every pass of Python's cyclic collector (``medchain_gc_pause_seconds``); returns the undo."""
        pause = Histogram(
            "medchain_gc_pause_seconds", "Pauses of the cyclic garbage collector, by generation", ["generation"],
            buckets=GC_BUCKETS, registry=self.registry,
        )
        by_generation = [pause.labels(str(g)) for g in range(3)]
        started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:  # the signature ``gc.callbacks`` calls
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                by_generation[info["generation"]].observe(time.perf_counter() - started[0])

        gc.callbacks.append(on_gc)
        return lambda: gc.callbacks.remove(on_gc)

    def watch(
        self,
        engine_stats: Callable[[], Mapping[str, int]],
        peer_stats: Callable[[], Mapping[str, Mapping[str, int]]],
    ) -> None:
        self.registry.register(_Live(engine_stats, peer_stats))

    def text(self) -> bytes:
        return generate_latest(self.registry)
