"""A chaos run's report: report.json for scripts, report.md for people, timeline.png (matplotlib).

The plot uses matplotlib's object API (``Figure``, rendered by Agg), never
``pyplot``: no global state, no display needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from node.lab.chaos.liveness import recoveries
from node.lab.chaos.record import RunRecord
from node.lab.chaos.series import by_node, throughput, view_changes
from node.lab.chaos.verdict import Verdicts

INVARIANTS = ("agreement", "durability", "validity", "liveness", "evidence", "latency")
KIND_COLOURS = {
    "kill": "tab:red", "pause": "tab:orange", "restart": "tab:red", "partition": "tab:purple", "link": "tab:blue",
    "byzantine": "tab:brown", "clock": "tab:olive", "wipe": "tab:pink", "restore": "tab:pink", "flood": "tab:cyan",
}


def _clean(value: Any) -> Any:
    """JSON without NaN or infinities (they are not JSON): None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def report_json(record: RunRecord, verdicts: Verdicts) -> dict[str, Any]:
    recs = {r.window: r for r in recoveries(record)}
    nodes = [*record.validators, *record.observers]
    out: dict[str, Any] = _clean({
        "scenario": record.scenario,
        "seed": record.seed,
        "started_at": record.started_at,
        "duration_s": record.duration_s,
        "validators": record.validators,
        "observers": record.observers,
        "byzantine": record.byzantine,
        "expectations": record.to_json()["expectations"],
        "submitted": record.submitted,
        "acknowledged": len(record.acks),
        "refused": record.refused,
        **verdicts.to_json(),
        "faults": [
            {"kind": w.kind, "nodes": w.nodes, "start_s": w.start_s, "end_s": w.end_s, "detail": w.detail,
             "recovery_s": recs[i].recovery_s if i in recs else None,
             "longest_commit_gap_s": recs[i].gap_s if i in recs else None}
            for i, w in enumerate(record.windows)
        ],
        "throughput": throughput(record.acks, record.duration_s),
        "view_changes": view_changes(record.samples, nodes),
        "heights": {n: [[s.t_s, s.height] for s in series] for n, series in by_node(record.samples, nodes).items()},
        "notes": record.notes,
    })
    return out


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _expectation(record: RunRecord) -> str:
    e = record.expectations
    parts = ["stall, never fork" if e.outcome == "stall-no-fork" else "progress"]
    if e.commits_resume_within_s is not None:
        parts.append(f"commits resume within {e.commits_resume_within_s:g} s after each fault")
    if e.evidence_from:
        parts.append(f"evidence from {', '.join(e.evidence_from)}")
    if e.honest_p99_latency_s is not None:
        parts.append(f"honest p99 latency within {e.honest_p99_latency_s:g} s")
    parts.append(f"at least {e.min_acked} acknowledged transaction(s)")
    return "; ".join(parts)


def _faults_md(record: RunRecord) -> list[str]:
    if not record.windows:
        return ["No fault was applied."]
    recs = {r.window: r for r in recoveries(record)}
    lines = [
        "| # | kind | nodes | from (s) | to (s) | longest commit gap elsewhere during it (s) "
        "| commits resumed after its end (s) | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, w in enumerate(record.windows):
        end = "-" if w.end_s is None else f"{w.end_s:g}"
        rec = recs.get(i)
        shown = "-" if rec is None else ("never" if rec.recovery_s is None else f"{rec.recovery_s:.2f}")
        during = "-" if rec is None else ("none" if rec.gap_s is None else f"{rec.gap_s:.2f}")
        nodes = ", ".join(w.nodes)
        lines.append(f"| {i} | {w.kind} | {nodes} | {w.start_s:g} | {end} | {during} | {shown} | {_cell(w.detail)} |")
    return lines


def report_md(record: RunRecord, verdicts: Verdicts, image: str = "timeline.png") -> str:
    met = "met" if verdicts.expectation_met else "NOT met"
    lines = [
        f"# Chaos run: {record.scenario}", "",
        f"- seed {record.seed}, {record.duration_s:.1f} s, validators {', '.join(record.validators)}"
        + (f", observers {', '.join(record.observers)}" if record.observers else "")
        + (f", Byzantine {', '.join(record.byzantine)}" if record.byzantine else ""),
        f"- load: {record.submitted} submitted, {len(record.acks)} acknowledged as committed"
        + (f", refused {', '.join(f'{k}: {v}' for k, v in sorted(record.refused.items()))}" if record.refused else ""),
        f"- expectation: {_expectation(record)}",
        f"- **outcome: {verdicts.outcome}** (expectation {met})", "",
        "| invariant | verdict | summary |", "|---|---|---|",
        *(f"| {v.name} | {'ok' if v.ok else 'FAIL'} | {_cell(v.summary)} |" for v in verdicts.items), "",
        "## Faults", "",
    ]
    lines += _faults_md(record)
    lines += ["", "## Evidence", ""]
    ev = verdicts.get("evidence")
    culprits: dict[str, Any] = ev.data.get("culprits", {}) if ev else {}
    for name, c in culprits.items():
        lines.append(f"- {name} (key `{c['key']}`): {', '.join(c['kinds'])} at height(s) "
                     f"{', '.join(map(str, c['heights']))}, reported by {', '.join(c['reported_by'])}")
    if not culprits:
        lines.append("No honest node holds evidence of misbehaviour.")
    failing = [v for v in verdicts.items if v.details]
    if failing:
        lines += ["", "## Details", ""]
        for v in failing:
            lines += [f"### {v.name}", "", *(f"- {_cell(d)}" for d in v.details), ""]
    if record.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in record.notes)]
    lines += ["", f"![timeline]({image})", ""]
    return "\n".join(lines)


def _shade_windows(ax: Axes, record: RunRecord, top: float) -> None:
    for i, w in enumerate(record.windows):
        end = w.end_s if w.end_s is not None else max(record.duration_s, w.start_s)
        colour = KIND_COLOURS.get(w.kind, "tab:gray")
        ax.axvspan(w.start_s, end, color=colour, alpha=0.15, linewidth=0)
        label = f"{w.kind} {','.join(w.nodes)}".strip()
        ax.text(w.start_s, top * (0.97 - 0.07 * (i % 4)), label, fontsize=7, color=colour, va="top")


def _plot_heights(ax: Axes, record: RunRecord) -> None:
    nodes = [*record.validators, *record.observers]
    series = by_node(record.samples, nodes)
    for node, samples in series.items():
        xs = [s.t_s for s in samples]
        ys = [math.nan if s.height is None else float(s.height) for s in samples]
        style = "--" if node in record.byzantine else "-"
        ax.plot(xs, ys, style, drawstyle="steps-post", linewidth=1.2, label=node)
    heights = {(s.node, s.t_s): s.height for s in record.samples}
    marks = [(c["t_s"], heights.get((c["node"], c["t_s"]))) for c in view_changes(record.samples, nodes)]
    xs = [t for t, h in marks if h is not None]
    ys = [float(h) for _, h in marks if h is not None]
    if xs:
        ax.scatter(xs, ys, marker="v", color="black", s=18, zorder=3, label="view change")
    top = max((s.height or 0 for s in record.samples), default=1) or 1
    _shade_windows(ax, record, float(top))
    ax.set_ylabel("height")
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    ax.grid(alpha=0.3)


def write_timeline(path: Path, record: RunRecord) -> Path:
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    heights_ax, tps_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    _plot_heights(heights_ax, record)
    heights_ax.set_title(f"{record.scenario} (seed {record.seed})")
    buckets = throughput(record.acks, record.duration_s)
    tps_ax.bar([b["t_s"] + 0.5 for b in buckets], [b["committed"] for b in buckets], width=0.9,
               color="tab:blue", label="committed tx/s")
    if any(not a.honest for a in record.acks):
        tps_ax.plot([b["t_s"] + 0.5 for b in buckets], [b["honest"] for b in buckets], color="tab:green",
                    label="honest tx/s")
    tps_ax.set_ylabel("tx/s")
    tps_ax.set_xlabel("seconds since the load started")
    tps_ax.legend(loc="upper right", fontsize=7)
    tps_ax.grid(alpha=0.3)
    fig.savefig(path, format="png", dpi=100)
    return path


def write_report(out: Path, record: RunRecord, verdicts: Verdicts) -> list[Path]:
    """Write report.json, report.md and timeline.png into ``out`` (created); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    as_json = out / "report.json"
    as_json.write_text(json.dumps(report_json(record, verdicts), indent=2, allow_nan=False) + "\n")
    as_md = out / "report.md"
    as_md.write_text(report_md(record, verdicts))
    return [as_json, as_md, write_timeline(out / "timeline.png", record)]


def verdict_table(rows: Sequence[tuple[str, Verdicts]]) -> str:
    """One line per scenario: each invariant's verdict (and any other verdict a row holds), the outcome and
    whether the expectation held."""
    names = list(INVARIANTS)
    names += [v.name for _, verdicts in rows for v in verdicts.items if v.name not in names]  # e.g. the runner's
    names = list(dict.fromkeys(names))
    head = ["scenario", *names, "outcome", "expected"]
    table = [head]
    for scenario, verdicts in rows:
        cells = [scenario]
        for name in names:
            v = verdicts.get(name)
            cells.append("-" if v is None else ("ok" if v.ok else "FAIL"))
        table.append([*cells, verdicts.outcome, "yes" if verdicts.expectation_met else "NO"])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
