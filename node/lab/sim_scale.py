"""How PBFT scales with the number of validators, simulated on a geography (``medchain sim --sizes``).

For each size n the same scenario runs twice, on one seed:

* all honest: commit latency (each transaction, from submission to the first
  honest decision of its block), virtual time per block, messages and bytes
  per block, and the engine's CPU per received message (real Ed25519 checks,
  measured on this machine);
* the first primary silent from the start: how long the first commit takes
  then, against the all-honest run; the difference is the view change.

From the measured message counts it derives two throughput bounds, per
validator: the CPU bound (messages each replica must check per block times the
measured CPU per message) and the bandwidth bound (bytes each replica receives
per block over its link), each times the transactions per block.  PBFT's
prepare and commit phases are all-to-all, so messages per block grow as n^2
and each replica's share as n: the bounds fall as 1/n.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consensus.sim import Scenario, run_one
from consensus.sim.cluster import Cluster
from node.lab.percentiles import no_nan, percentiles


def _run(scenario: Scenario, seed: int) -> tuple[Any, Cluster]:
    seen: list[Cluster] = []

    def grab(height: int, cluster: Cluster) -> None:
        if not seen:
            seen.append(cluster)

    result = run_one(scenario, seed, clock=time.process_time, on_decided=grab)
    if not seen:
        raise RuntimeError(f"no height was decided with n={scenario.nodes}")
    return result, seen[0]


def measure_size(n: int, regions: str, bandwidth_mbps: float, heights: int, txs_per_block: int,
                 seed: int = 0) -> dict[str, Any]:
    base = Scenario(nodes=n, heights=heights, liveness_heights=0, regions=regions, bandwidth_mbps=bandwidth_mbps,
                    txs_per_block=txs_per_block, measure_latency=True)
    honest, cluster = _run(base, seed)
    if not honest.safe or honest.stalled:
        raise RuntimeError(f"the all-honest run with n={n} was not safe and live: {honest.violations}")
    silent, vc_cluster = _run(dataclasses.replace(base, byzantine=1, behaviour="silent", heights=2), seed)
    if not silent.safe:
        raise RuntimeError(f"the silent-primary run with n={n} was not safe: {silent.violations}")
    blocks = honest.blocks
    per_replica_msgs = honest.messages / blocks / n
    cpu_us = 1e6 * (honest.cpu_received_s or 0.0) / honest.received if honest.received else None
    per_replica_bytes = honest.bytes / blocks / n
    txs = honest.txs / blocks
    latencies = cluster.tx_latencies_ms
    first_honest = cluster.decided_at.get(1)
    first_silent = vc_cluster.decided_at.get(1)
    cpu_blocks = 1e6 / (per_replica_msgs * cpu_us) if cpu_us else None
    bw_blocks = bandwidth_mbps * 1e6 / 8 / per_replica_bytes
    return {
        "validators": n,
        "blocks": blocks,
        "txs_per_block": round(txs, 1),
        "commit_latency_ms": {**no_nan(percentiles(latencies, (50, 99), ndigits=1)),  # type: ignore[dict-item]
                              "count": len(latencies)},
        "ms_per_block": round(honest.end_ms / blocks, 1),
        "messages_per_block": round(honest.messages / blocks, 1),
        "bytes_per_block": round(honest.bytes / blocks),
        "messages_per_block_per_replica": round(per_replica_msgs, 1),
        "cpu_us_per_message": None if cpu_us is None else round(cpu_us, 1),
        "first_commit_ms": first_honest,
        "first_commit_silent_primary_ms": first_silent,
        "view_change_ms": None if first_honest is None or first_silent is None else first_silent - first_honest,
        "bound_tx_per_s_cpu": None if cpu_blocks is None else round(cpu_blocks * txs),
        "bound_tx_per_s_bandwidth": round(bw_blocks * txs),
    }


def sweep(sizes: Sequence[int], regions: str, bandwidth_mbps: float, heights: int, txs_per_block: int,
          out: Path | None, say: Any = print) -> dict[str, Any]:
    rows = []
    for n in sizes:
        started = time.perf_counter()
        row = measure_size(n, regions, bandwidth_mbps, heights, txs_per_block)
        row["wall_s"] = round(time.perf_counter() - started, 1)
        say(f"n={n}: commit p50 {row['commit_latency_ms']['p50']} ms, p99 {row['commit_latency_ms']['p99']} ms, "
            f"{row['messages_per_block']} messages per block, view change {row['view_change_ms']} ms "
            f"({row['wall_s']} s)")
        rows.append(row)
    report = {"regions": regions, "bandwidth_mbps": bandwidth_mbps, "heights": heights,
              "txs_per_block": txs_per_block, "sizes": rows}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "scale.md").write_text(markdown(report))
        plot(report, out / "scale.png")
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# PBFT by number of validators: {report['regions']}, {report['bandwidth_mbps']:g} Mbit/s per link",
        "",
        "| validators | commit p50 / p99 (ms) | ms per block | messages per block | per replica | bytes per block "
        "| view change (ms) | CPU bound (tx/s) | bandwidth bound (tx/s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["sizes"]:
        lat = r["commit_latency_ms"]
        lines.append(
            f"| {r['validators']} | {lat['p50']} / {lat['p99']} | {r['ms_per_block']} | {r['messages_per_block']} "
            f"| {r['messages_per_block_per_replica']} | {r['bytes_per_block']:,} | {r['view_change_ms']} "
            f"| {r['bound_tx_per_s_cpu']:,} | {r['bound_tx_per_s_bandwidth']:,} |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["sizes"]
    n = [r["validators"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0][0]
    ax.plot(n, [r["commit_latency_ms"]["p50"] for r in rows], "o-", label="p50")
    ax.plot(n, [r["commit_latency_ms"]["p99"] for r in rows], "s--", label="p99")
    ax.set(title="Commit latency", xlabel="validators", ylabel="ms")
    ax.legend()
    ax = axes[0][1]
    ax.plot(n, [r["messages_per_block"] for r in rows], "o-", label="all replicas")
    ax.plot(n, [r["messages_per_block_per_replica"] for r in rows], "s--", label="per replica")
    ax.set(title="Messages per block", xlabel="validators", yscale="log")
    ax.legend()
    ax = axes[1][0]
    ax.plot(n, [r["view_change_ms"] for r in rows], "o-")
    ax.set(title="View change after the primary fails", xlabel="validators", ylabel="ms")
    ax = axes[1][1]
    ax.plot(n, [r["bound_tx_per_s_cpu"] for r in rows], "o-", label="CPU (Ed25519 per message)")
    ax.plot(n, [r["bound_tx_per_s_bandwidth"] for r in rows], "s--", label="bandwidth")
    ax.set(title="Throughput bound from message complexity", xlabel="validators", ylabel="tx/s", yscale="log")
    ax.legend()
    fig.suptitle(f"PBFT on {report['regions']} at {report['bandwidth_mbps']:g} Mbit/s per link")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
