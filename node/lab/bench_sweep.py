"""``medchain bench --sweep-nodes 4,7,10,16``: the same load on plain clusters of each size, one after another.

Each size gets a fresh cluster of that many validators, the same plan (open or
closed loop, duration, submission) and its own ceiling: the verify/s measured
once in the run, times the cores, divided by *its* number of validators
(``2 x verify/s / n`` on 2 cores), since every validator checks every
signature.  The rows say how throughput and latency fall with n and what
each transaction cost: node CPU per committed transaction (all nodes, and per
node), and the P2P bytes per block (bytes sent by every node per committed
transaction, times the mean transactions per block).  The nodes' ``/metrics``
count bytes, not messages, so messages per block are not reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from node.lab import bench
from node.lab.bench_network import NetworkSpec
from node.lab.progress import Progress

MAX_NODES = 64


@dataclass(frozen=True, slots=True)
class SweepRow:
    validators: int
    run: str
    committed_tx_s: float | None
    ceiling_tx_s: float
    share_of_ceiling: float | None
    p50_s: float | None
    p99_s: float | None
    never_committed: int
    node_cpu_ms_per_tx: float | None  # all nodes
    node_cpu_ms_per_tx_per_node: float | None
    wire_bytes_per_tx: float | None  # P2P bytes sent by all nodes
    wire_bytes_per_block: float | None
    mean_txs_per_block: float | None


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"4,7,10,16"`` as sizes; ValueError with a one-line reason for anything else."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"not a comma-separated list of validator counts: {text!r} (e.g. 4,7,10,16)") from None
    if any(not 1 <= n <= MAX_NODES for n in sizes):
        raise ValueError(f"each count must be 1 to {MAX_NODES}, got {text}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"a count appears twice in {text}")
    return sizes


def sweep(
    plan: bench.RunPlan, sizes: tuple[int, ...], base: Path, verify_seconds: float, progress: Progress
) -> dict[str, Any]:
    """One run of ``plan`` per size, each on a fresh plain cluster; the report gains ``sweep``."""
    runs_on = [(replace(plan, name=f"n{n}-{plan.name}"), NetworkSpec(n)) for n in sizes]
    report = bench.bench(runs_on, base, verify_seconds, progress)
    rows = [row(r) for r in report["runs"]]
    report["sweep"] = {
        "sizes": list(sizes),
        "rows": [asdict(r) for r in rows],
        "ceiling_rule": "cores x verify/s on one core / validators, per size (verify/s measured once in this run)",
        "messages_per_block": "not reported: the nodes' /metrics count P2P bytes, not messages",
    }
    return report


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def row(run: dict[str, Any]) -> SweepRow:
    """One size's row from its run in the report."""
    n = int(run["validators"])
    cpu = _num(run["node_cpu_ms_per_tx"])
    per_tx = _num(run["nodes"].get("wire_bytes_per_tx"))
    per_block = _num(run["mean_txs_per_block"])
    return SweepRow(
        validators=n,
        run=run["name"],
        committed_tx_s=_num(run["throughput_tx_s"]),
        ceiling_tx_s=float(run["ceiling_tx_s"]),
        share_of_ceiling=_num(run["share_of_ceiling"]),
        p50_s=_num(run["latency_s"].get("p50")),
        p99_s=_num(run["latency_s"].get("p99")),
        never_committed=int(run["failures"].get("never_committed", 0)),
        node_cpu_ms_per_tx=cpu,
        node_cpu_ms_per_tx_per_node=cpu / n if cpu is not None else None,
        wire_bytes_per_tx=per_tx,
        wire_bytes_per_block=per_tx * per_block if per_tx is not None and per_block else None,
        mean_txs_per_block=per_block,
    )
