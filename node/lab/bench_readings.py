"""What the bench reads around a run besides time: the nodes' counters and disks, the machine, the commit.

Per node, before the load and after the drain: ``/metrics`` (P2P bytes sent
and received, view changes, committed transactions rejected by the ledger by
code, gossiped transactions refused by reason) and the size of its data
directory.  The differences, divided by the transactions the run committed,
give bytes on the wire and on disk per transaction.  Bytes on the wire are
the P2P transport's (consensus messages, gossip, catch-up) summed over every
node's sends; the HTTP load itself is not counted.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from prometheus_client.parser import text_string_to_metric_families

from node.client.http import NodeClient
from node.config import ConfigError, load_config
from node.lab.cluster import NodeProcess


@dataclass(slots=True)
class NodeCounters:
    """One reading of one node (a missing figure stays 0)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    view_changes: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # committed but rejected by the ledger, by code
    gossip_refused: Counter[str] = field(default_factory=Counter)  # by admission error code
    disk_bytes: int = 0
    # Cumulative histogram buckets {upper bound s: count} of the pauses a run's tail latency can come
    # from: consensus WAL appends, block stores (wall time) and the garbage collector (all generations).
    pauses: dict[str, dict[float, int]] = field(default_factory=dict)


PAUSE_FAMILIES = {"medchain_wal_append_seconds": "wal", "medchain_gc_pause_seconds": "gc"}
SLOW_PAUSE_S = 0.1  # a pause at least this long shows in a run's p99 commit latency


def parse_metrics(text: str) -> NodeCounters:
    """The counters the bench compares, from a Prometheus text exposition."""
    out = NodeCounters()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                _add_pause_bucket(out.pauses, family.name, sample.labels, sample.value)
                continue
            if not sample.name.endswith("_total"):
                continue
            value = int(sample.value)
            match family.name:
                case "medchain_peer_bytes_sent":
                    out.bytes_sent += value
                case "medchain_peer_bytes_received":
                    out.bytes_received += value
                case "medchain_view_changes":
                    out.view_changes += value
                case "medchain_ledger_txs" if sample.labels.get("outcome", "accepted") != "accepted":
                    out.rejected[sample.labels["outcome"]] += value
                case "medchain_gossip_txs_refused":
                    out.gossip_refused[sample.labels.get("reason", "?")] += value
    return out


def _add_pause_bucket(pauses: dict[str, dict[float, int]], family: str, labels: dict[str, str], value: float) -> None:
    kind = PAUSE_FAMILIES.get(family)
    if family == "medchain_block_seconds" and labels.get("stage") == "store" and labels.get("clock") == "wall":
        kind = "store"
    if kind is None:
        return
    bound = float(labels["le"])
    buckets = pauses.setdefault(kind, {})
    buckets[bound] = buckets.get(bound, 0) + int(value)


def slow_pauses(before: dict[float, int], after: dict[float, int], slow_s: float = SLOW_PAUSE_S) -> dict[str, Any]:
    """Between two readings of one cumulative histogram: how many pauses, how many longer than ``slow_s``
    (a bucket bound), and the longest.

    The longest pause lies between ``longest_from_s`` and ``longest_up_to_s``
    (the bounds of the lowest bucket that holds every pause of the run; both
    None without a pause, ``longest_up_to_s`` None beyond the last bound).
    """
    gained = {le: after.get(le, 0) - before.get(le, 0) for le in after}
    total = gained.get(math.inf, 0)
    below = max((n for le, n in gained.items() if le <= slow_s), default=0)
    low: float | None = None
    high: float | None = None
    if total > 0:
        bounds = sorted(gained)
        at = next(i for i, le in enumerate(bounds) if gained[le] == total)
        low = bounds[at - 1] if at > 0 else 0.0
        high = bounds[at] if bounds[at] != math.inf else None
    return {"count": total, "over_slow": total - below, "longest_from_s": low, "longest_up_to_s": high}


def _pauses(before: NodeCounters, after: NodeCounters) -> dict[str, dict[str, Any]]:
    return {kind: slow_pauses(before.pauses.get(kind, {}), buckets) for kind, buckets in sorted(after.pauses.items())}


def data_dir(node: NodeProcess) -> Path:
    home = Path(node.home)
    try:
        config = load_config(home)
    except ConfigError:
        return home / "data"
    return config.path(config.data_dir)


def dir_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it is gone); files vanishing meanwhile (compaction) are skipped."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


async def read_nodes(session: aiohttp.ClientSession, nodes: list[NodeProcess]) -> dict[str, NodeCounters]:
    """Every node's counters and data-directory size, now; a node that does not answer reads as zeros."""

    async def one(node: NodeProcess) -> NodeCounters:
        try:
            reply = await NodeClient(node.api, session, timeout=10).send("GET", "/metrics")
            counters = parse_metrics(reply.text) if reply.status == 200 else NodeCounters()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            counters = NodeCounters()
        counters.disk_bytes = await asyncio.to_thread(dir_bytes, data_dir(node))
        return counters

    found = await asyncio.gather(*(one(n) for n in nodes))
    return {n.name: c for n, c in zip(nodes, found, strict=True)}


def compare(before: dict[str, NodeCounters], after: dict[str, NodeCounters], committed: int) -> dict[str, Any]:
    """The run's share of every counter, per node and per committed transaction."""
    per_tx = committed if committed > 0 else None
    sent = {n: after[n].bytes_sent - before[n].bytes_sent for n in after if n in before}
    disk = {n: after[n].disk_bytes - before[n].disk_bytes for n in after if n in before}
    rejected: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for n in after:
        if n in before:
            refused += after[n].gossip_refused - before[n].gossip_refused
    first = next(iter(after), None)  # every node executes every block: one node's outcomes are the chain's
    if first is not None and first in before:
        rejected = after[first].rejected - before[first].rejected
    return {
        "wire_bytes_sent": sent,
        "wire_bytes_per_tx": sum(sent.values()) / per_tx if per_tx else None,
        "disk_bytes_added": disk,
        "disk_bytes_per_tx_per_node": sum(disk.values()) / len(disk) / per_tx if per_tx and disk else None,
        "view_changes": {n: after[n].view_changes - before[n].view_changes for n in after if n in before},
        "rejected_in_blocks_by_code": dict(sorted(rejected.items())),
        "gossip_refused_by_code": dict(sorted(refused.items())),
        "pauses": {n: _pauses(before[n], after[n]) for n in after if n in before},
    }


# ---------------------------------------------------------------- the machine and the code


def machine() -> dict[str, Any]:
    """Cores this process may use, the CPU model, memory, and the load average before the bench starts."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_before": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def commit() -> dict[str, Any]:
    """The git commit of the code that ran ("unknown" outside a checkout), and whether tracked files were changed."""
    here = Path(__file__).resolve().parent
    head = _git(here, "rev-parse", "HEAD")
    if head is None:
        return {"commit": "unknown", "dirty": None}
    status = _git(here, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return {"commit": head, "dirty": bool(status) if status is not None else None}


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
