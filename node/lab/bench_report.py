"""The bench's report for people: one column per run, then the ceiling, the mix and the goals.

``medchain bench cluster`` prints this unless ``--json`` asks for the report itself.
"""

from __future__ import annotations

import math
from typing import Any

from node.lab.bench import VERIFY_ROUNDS


def _fmt(value: float, digits: int = 0) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def format_report(report: dict[str, Any]) -> str:
    runs: list[dict[str, Any]] = report["runs"]
    ceiling = report["ceiling"]
    rows: list[tuple[str, list[str]]] = [
        ("load", [r["description"] for r in runs]),
        ("pre-signed / offered", [f"{r['presigned']:,} / {r['offered']:,}" for r in runs]),
        ("committed (not committed)", [f"{r['committed']:,} ({r['not_committed']:,})" for r in runs]),
        ("committed tx/s, steady", [f"{_fmt(r['throughput_tx_s'], 1)} over {r['steady_window_s']:g} s" for r in runs]),
        ("blocks/s, steady", [_fmt(r["blocks_per_s"], 2) for r in runs]),
        ("mean txs per block", [_fmt(r["mean_txs_per_block"], 1) for r in runs]),
    ]
    for p in ("p50", "p90", "p99", "max"):
        rows.append((f"commit latency {p} (s)", [_fmt(r["latency_s"][p], 3) for r in runs]))
    rows += [
        ("503 mempool-full (retried)", [f"{r['mempool_full_503']:,}" for r in runs]),
        ("other HTTP errors", [", ".join(f"{k}: {v}" for k, v in r["failed"].items()) or "0" for r in runs]),
        ("rejected in blocks", [str(r["rejected_in_blocks"]) for r in runs]),
        (
            "client send delay p99/max (ms)",
            [f"{_fmt(r['send_delay_ms']['p99'], 1)} / {_fmt(r['send_delay_ms']['max'], 1)}" for r in runs],
        ),
        ("highest view", [str(r["max_view"]) for r in runs]),
    ]
    names = sorted({k for r in runs for k in r["cpu_pct"]}, key=lambda k: (k == "client", k))
    for name in names:
        rows.append((f"CPU % of a core, {name}", [_fmt(r["cpu_pct"].get(name, math.nan), 1) for r in runs]))
    rows.append(("CPU % of a core, other processes", [_fmt(r["others_cpu_pct"], 1) for r in runs]))
    rows.append(("CPU ms per committed tx, 4 nodes", [_fmt(r["node_cpu_ms_per_tx"], 2) for r in runs]))
    rows.append((f"machine busy, % of {ceiling['cores']} cores", [_fmt(r["machine_busy_pct"], 1) for r in runs]))
    for name in names:
        rows.append(
            (
                f"RSS MB (peak), {name}",
                [
                    f"{_fmt(r['rss_mb'].get(name, math.nan))} ({_fmt(r['peak_rss_mb'].get(name, math.nan))})"
                    for r in runs
                ],
            )
        )
    rows.append(("share of verify ceiling", [f"{100 * r['share_of_ceiling']:.1f} %" for r in runs]))
    width = max(len(k) for k, _ in rows)
    cols = [max(len(r["name"]), *(len(v[i]) for _, v in rows)) for i, r in enumerate(runs)]
    lines = ["  ".join([" " * width, *(r["name"].ljust(c) for r, c in zip(runs, cols, strict=True))])]
    lines += ["  ".join([k.ljust(width), *(v.ljust(c) for v, c in zip(vals, cols, strict=True))]) for k, vals in rows]
    lines += ["", *_ceiling_lines(ceiling)]
    for m in report.get("mixes", []):
        lines += ["", *mix_lines(m, ceiling)]
    for r in runs:
        lines += [f"note ({r['name']}): {n}" for n in r["notes"]]
    lines += [f"goal: {g['what']}: {'MET' if g['met'] else 'NOT MET'} ({g['measured']})" for g in report["goals"]]
    return "\n".join(lines)


def mix_lines(m: dict[str, Any], ceiling: dict[str, Any]) -> list[str]:
    setup = m["setup"]
    kinds = ", ".join(f"{n:,} {k}" for k, n in setup["by_kind"].items())
    lines = [
        f"mix ({m['run']}): {m['mix']}",
        *(f"  {s['kind']:<11}{s['weight']:>3} / 20  {s['what']}" for s in m["composition"]),
        f"setup, not measured: {setup['txs']:,} transactions in {setup['seconds']:.1f} s ({kinds})",
    ]
    accepted = sum(row.get("accepted", 0) for row in m["outcomes"].values())
    rejected = {
        f"{kind} {code}": n for kind, row in m["outcomes"].items() for code, n in row.items() if code != "accepted"
    }
    lines.append(
        f"outcomes of the mixed run (node0's /metrics): {accepted:,} accepted ("
        + ", ".join(f"{k} {row.get('accepted', 0):,}" for k, row in sorted(m["outcomes"].items()))
        + f"); rejected: {sum(rejected.values()):,}"
        + (f" ({', '.join(f'{k}: {n}' for k, n in sorted(rejected.items()))})" if rejected else "")
    )
    lines.append(
        f"Ed25519 checks per mixed tx: {m['signatures_per_tx']:.2f} (an access also carries the reader's "
        f"signature); counted in checks, the mixed run used {100 * m['signature_share_of_ceiling']:.1f} % of the "
        f"verify ceiling ({ceiling['tx_per_s']:,.0f} one-signature tx/s)"
    )
    stages = m.get("block_cpu_us_per_tx") or {}
    for workload in ("anchor", "mixed"):
        if stages.get(workload):
            parts = ", ".join(f"{stage} {us:,.1f}" for stage, us in stages[workload].items())
            lines.append(f"block stages at node0, CPU us per committed tx ({workload}): {parts}")
    if m["ratio"] is not None:
        each = " and ".join(f"{r:,.1f}" for r in m["anchor_runs_tx_s"])
        lines.append(
            f"mixed / anchor-only committed tx/s on the same cluster: {m['mixed_tx_s']:,.1f} / "
            f"{m['anchor_tx_s']:,.1f} = {m['ratio']:.2f} (anchors: the mean of {each}, before and after the mix)"
        )
    return lines


def _ceiling_lines(c: dict[str, Any]) -> list[str]:
    return [
        f"Ed25519 verification on this machine: {c['verify_per_s']:,.0f} verify/s on one core "
        f"(best of {VERIFY_ROUNDS} rounds, per CPU second; median {c['verify_median_per_s']:,.0f}; PyNaCl via "
        f"primitives.signing on {c['payload_bytes']}-byte tx payloads; the process had {c['cpu_share']:.2f} of a core)",
        f"ceiling = cores x verify/s / validators = {c['cores']} x {c['verify_per_s']:,.0f} / {c['validators']} "
        f"= {c['tx_per_s']:,.0f} tx/s.",
        "Why: every validator must check every transaction's client signature at least once, and the validators",
        "share this machine's cores, so a cluster doing nothing else could not commit more; 'share of verify ceiling'",
        "above is committed tx/s divided by this figure.",
    ]
