"""The bench's report for people: one column per run, then the ceiling, the mix and the goals.

``medchain bench`` prints this unless ``--json`` asks for the report itself; with ``--out`` it also writes
``report.json``, ``report.md`` and the plots.  A sweep adds one row per cluster size, ``--find-max`` its steps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from node.lab import bench_plots, bench_series
from node.lab.bench import VERIFY_ROUNDS

LATENCY_KEYS = ("p50", "p90", "p99", "p99.9", "max")


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _window(w: dict[str, Any]) -> str:
    return f"{w['start_s']:g}-{w['end_s']:g} (warm-up {w['warmup_s']:.1f}, drain {w['drain_s']:.1f})"


def _failures(f: dict[str, Any]) -> str:
    share = f.get("share")
    return f"{f['never_committed']:,} of {f['submitted']:,}" + (f" ({100 * share:.2f} %)" if share else "")


def _pauses(run: dict[str, Any], longest: bool) -> str:
    """Per kind of pause (WAL append, block store, GC): the most pauses over 0.1 s at one node, or the
    longest pause at any node (the upper bound of its bucket; "> x" beyond the last bound)."""
    per_node = list(run["nodes"].get("pauses", {}).values())
    out = []
    for kind in ("wal", "store", "gc"):
        seen = [p[kind] for p in per_node if kind in p and p[kind]["count"]]
        if not seen:
            out.append("-")
        elif not longest:
            out.append(str(max(s["over_slow"] for s in seen)))
        elif any(s["longest_up_to_s"] is None for s in seen):
            out.append(f"> {max(s['longest_from_s'] for s in seen):g}")
        else:
            out.append(f"{max(s['longest_up_to_s'] for s in seen):g}")
    return " / ".join(out)


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in counts.items()) or "0"


def format_report(report: dict[str, Any]) -> str:
    runs: list[dict[str, Any]] = report["runs"]
    ceiling = report["ceiling"]
    rows: list[tuple[str, list[str]]] = [
        ("load", [r["description"] for r in runs]),
        ("pre-signed / offered", [f"{r['presigned']:,} / {r['offered']:,}" for r in runs]),
        ("committed (not committed)", [f"{r['committed']:,} ({r['not_committed']:,})" for r in runs]),
        ("committed tx/s, steady", [f"{_fmt(r['throughput_tx_s'], 1)} over {r['steady_window_s']:g} s" for r in runs]),
        ("steady window, s of the load", [_window(r["window"]) for r in runs]),
        ("blocks/s, steady", [_fmt(r["blocks_per_s"], 2) for r in runs]),
        ("mean txs per block", [_fmt(r["mean_txs_per_block"], 1) for r in runs]),
    ]
    for p in LATENCY_KEYS:
        rows.append((f"commit latency {p} (s)", [_fmt(r["latency_s"].get(p), 3) for r in runs]))
    rows += [
        ("never committed, of submitted in window", [_failures(r["failures"]) for r in runs]),
        (
            "p99 / max with them at the run's end (s)",
            [f"{_fmt(r['latency_with_failures_s'].get('p99'), 3)} / "
             f"{_fmt(r['latency_with_failures_s'].get('max'), 3)}" for r in runs],
        ),
        ("503 mempool-full (retried)", [f"{r['mempool_full_503']:,}" for r in runs]),
        ("other HTTP errors", [", ".join(f"{k}: {v}" for k, v in r["failed"].items()) or "0" for r in runs]),
        (
            "rejected in blocks (by code)",
            [f"{r['rejected_in_blocks']:,} ({_codes(r['nodes'].get('rejected_in_blocks_by_code', {}))})" for r in runs],
        ),
        (
            "client send delay p99/max (ms)",
            [f"{_fmt(r['send_delay_ms']['p99'], 1)} / {_fmt(r['send_delay_ms']['max'], 1)}" for r in runs],
        ),
        ("highest view", [str(r["max_view"]) for r in runs]),
        ("view changes (most at one node)", [str(max(r["nodes"].get("view_changes", {}).values(), default=0))
                                             for r in runs]),
        ("pauses > 0.1 s, most at one node: WAL append / block store / GC", [_pauses(r, False) for r in runs]),
        ("longest pause, up to (s): WAL append / block store / GC", [_pauses(r, True) for r in runs]),
        ("P2P bytes sent per tx, all nodes", [_fmt(r["nodes"].get("wire_bytes_per_tx")) for r in runs]),
        ("disk bytes per tx, per node", [_fmt(r["nodes"].get("disk_bytes_per_tx_per_node")) for r in runs]),
    ]
    names = sorted({k for r in runs for k in r["cpu_pct"]}, key=lambda k: (k == "client", k))
    for name in names:
        rows.append((f"CPU % of a core, {name}", [_fmt(r["cpu_pct"].get(name, math.nan), 1) for r in runs]))
    rows.append(("CPU % of a core, other processes", [_fmt(r["others_cpu_pct"], 1) for r in runs]))
    rows.append(("CPU ms per committed tx, all nodes", [_fmt(r["node_cpu_ms_per_tx"], 2) for r in runs]))
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
    rows.append(("share of verify ceiling", [f"{100 * (r['share_of_ceiling'] or 0):.1f} % of "
                                             f"{_fmt(r.get('ceiling_tx_s'))}" for r in runs]))
    width = max(len(k) for k, _ in rows)
    cols = [max(len(r["name"]), *(len(v[i]) for _, v in rows)) for i, r in enumerate(runs)]
    lines = ["  ".join([" " * width, *(r["name"].ljust(c) for r, c in zip(runs, cols, strict=True))])]
    lines += ["  ".join([k.ljust(width), *(v.ljust(c) for v, c in zip(vals, cols, strict=True))]) for k, vals in rows]
    lines += ["", *_ceiling_lines(ceiling)]
    if "sweep" in report:
        lines += ["", *bench_series.sweep_table(report["sweep"])]
    if "find_max" in report:
        lines += ["", *bench_series.find_max_lines(report["find_max"])]
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


# ---------------------------------------------------------------- report.json, report.md, plots


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """Write ``report.json``, ``report.md`` and every run's plots into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    plots = {r["name"]: bench_plots.plot_run(r, out) for r in report["runs"]}
    if "sweep" in report:
        plots[bench_series.SWEEP] = [bench_plots.plot_sweep(report["sweep"], out)]
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(format_markdown(report, {k: [p.name for p in v] for k, v in plots.items()}))
    return [out / "report.json", out / "report.md", *(p for paths in plots.values() for p in paths)]


def format_markdown(report: dict[str, Any], plots: dict[str, list[str]]) -> str:
    """The report for people: where and how it ran, then per run its figures, its nodes and its plots."""
    m, c = report["machine"], report["ceiling"]
    load = " / ".join(_fmt(x, 2) for x in m["load_average_before"])
    dirty = {True: " (tracked files changed)", False: "", None: ""}[report.get("dirty")]
    lines = [
        f"# medchain bench: {report['workload']}, {report['started_at']}",
        "",
        f"- **Command:** `{report.get('command', 'medchain bench')}`",
        f"- **Cluster:** {report.get('network', 'a fresh cluster')}; {report.get('series', 'runs')}",
        f"- **Commit:** `{report['commit']}`{dirty}",
        f"- **Machine:** {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GB; load average before the run "
        f"{load} (1 / 5 / 15 min); Python {m['python']}, {m['platform']}",
        f"- **Ceiling:** {c['cores']} cores x {c['verify_per_s']:,.0f} verify/s / {c['validators']} validators "
        f"= {c['tx_per_s']:,.0f} tx/s (best of {VERIFY_ROUNDS} rounds, measured in this run)",
        "",
    ]
    if "sweep" in report:
        lines += bench_series.sweep_markdown(report["sweep"], plots.get(bench_series.SWEEP, []))
    if "find_max" in report:
        lines += bench_series.find_max_markdown(report["find_max"])
    for run in report["runs"]:
        lines += _run_markdown(run, plots.get(run["name"], []))
    for mix in report.get("mixes", []):
        lines += ["## The healthcare mix", "", "```", *mix_lines(mix, c), "```", ""]
    if report["goals"]:
        lines += ["## Goals", ""]
        lines += [f"- {g['what']}: **{'met' if g['met'] else 'not met'}** ({g['measured']})" for g in report["goals"]]
        lines.append("")
    return "\n".join([*lines, *DEFINITIONS])


def _run_markdown(r: dict[str, Any], plots: list[str]) -> list[str]:
    w, f, lat, cens = r["window"], r["failures"], r["latency_s"], r["latency_with_failures_s"]
    share = r["share_of_ceiling"]
    plan = ", ".join(f"{k} {v}" for k, v in r["plan"].items())
    lines = [
        f"## Run {r['name']}: {r['description']}",
        "",
        f"Plan: {plan}.",
        "",
        f"- **Committed:** {_fmt(r['throughput_tx_s'], 1)} tx/s over the steady window, "
        f"{100 * share:.1f} % of the ceiling; {r['committed']:,} of {r['offered']:,} offered committed in all",
        f"- **Steady window:** {w['start_s']:g} s to {w['end_s']:g} s of the {r['seconds']:g} s load "
        f"({w['seconds']:g} s); warm-up {w['warmup_s']:.1f} s, drain {w['drain_s']:.1f} s; rule: {w['rule']}",
        f"- **Never committed** (submitted in the window): {_failures(f)}",
        f"- **Refused:** {r['mempool_full_503']:,} mempool-full 503s (retried); other HTTP answers: "
        f"{_codes(r['failed'])}; rejected in blocks: {_codes(r['nodes'].get('rejected_in_blocks_by_code', {}))}; "
        f"gossip refused: {_codes(r['nodes'].get('gossip_refused_by_code', {}))}",
        f"- **Bytes per committed tx:** {_fmt(r['nodes'].get('wire_bytes_per_tx'))} sent on P2P (all nodes), "
        f"{_fmt(r['nodes'].get('disk_bytes_per_tx_per_node'))} on disk per node",
        f"- **Load generator:** {_fmt(r['cpu_pct'].get('client'), 1)} % of a core during the load (this process; "
        f"pre-signing ran before the clock); other processes {_fmt(r['others_cpu_pct'], 1)} %; machine busy "
        f"{_fmt(r['machine_busy_pct'], 1)} %",
        f"- **Blocks:** {_fmt(r['blocks_per_s'], 2)}/s, {_fmt(r['mean_txs_per_block'], 1)} txs each; highest view "
        f"{r['max_view']}",
        "",
        "| commit latency (s) | " + " | ".join(LATENCY_KEYS) + " |",
        "|---|" + "---:|" * len(LATENCY_KEYS),
        "| committed | " + " | ".join(_fmt(lat.get(k), 3) for k in LATENCY_KEYS) + " |",
        "| with the never-committed at the run's end | "
        + " | ".join(_fmt(cens.get(k), 3) for k in LATENCY_KEYS) + " |",
        "",
        "| process | CPU % of a core | RSS MB | peak RSS MB | P2P bytes sent | disk bytes added | view changes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    nodes = r["nodes"]
    for name in sorted(r["cpu_pct"], key=lambda k: (k == "client", k)):
        lines.append(
            f"| {name} | {_fmt(r['cpu_pct'][name], 1)} | {_fmt(r['rss_mb'].get(name))} | "
            f"{_fmt(r['peak_rss_mb'].get(name))} | {_fmt(nodes.get('wire_bytes_sent', {}).get(name))} | "
            f"{_fmt(nodes.get('disk_bytes_added', {}).get(name))} | {nodes.get('view_changes', {}).get(name, '-')} |"
        )
    lines += ["", *(f"![{p}]({p})" for p in plots), ""]
    lines += [f"- note: {n}" for n in r["notes"]]
    return [*lines, ""] if r["notes"] else lines


DEFINITIONS = [
    "## How the bench measures",
    "",
    "- **Steady window:** the load period is cut into 1 s buckets of commits; the window runs from the first "
    "bucket committing at least half the median bucket to the last such bucket (a stall between them stays in). "
    "Before it is the warm-up, after it the drain. A load shorter than 3 s is measured whole.",
    "- **Committed tx/s:** commits inside the window over its length.",
    "- **Commit latency:** from the moment a transaction was due (open loop) or first written (closed loop) to the "
    "arrival of the commit event for its block; percentiles from an HDR histogram (3 significant digits) over "
    "every transaction submitted inside the window.",
    "- **Never committed:** a transaction submitted inside the window that did not commit before the bench "
    "stopped watching (refused, lost, or still pending after the drain): counted as a failure, never left out; "
    "the second latency row records each at the latency it had reached then (a lower bound).",
    "- **Ceiling:** cores x Ed25519 verify/s on one core / validators: every validator checks every "
    "transaction's signature and they share the machine's cores, so no cluster here could commit more. Verify/s is "
    "measured once per bench (best of the rounds, per CPU second); each run divides by its own number of "
    "validators, so in a sweep each size has its own ceiling.",
    "",
]
