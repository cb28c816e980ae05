"""The report's pages for a series: the sweep's table (one row per cluster size) and the find-max search.

Plain functions from the report's dicts to lines of text or Markdown; ``node.lab.bench_report`` places them.
"""

from __future__ import annotations

import math
from typing import Any

SWEEP = "sweep"  # the sweep's plots in the report's plot index

# (heading, key in a row, digits; a key ending in "share" is shown as a percentage)
SWEEP_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("validators", "validators", 0),
    ("committed tx/s", "committed_tx_s", 1),
    ("ceiling tx/s", "ceiling_tx_s", 0),
    ("share", "share_of_ceiling", 1),
    ("p50 s", "p50_s", 3),
    ("p99 s", "p99_s", 3),
    ("never committed", "never_committed", 0),
    ("node CPU ms/tx", "node_cpu_ms_per_tx", 2),
    ("per node", "node_cpu_ms_per_tx_per_node", 3),
    ("P2P bytes/tx", "wire_bytes_per_tx", 0),
    ("P2P bytes/block", "wire_bytes_per_block", 0),
    ("txs/block", "mean_txs_per_block", 1),
)


def _cell(row: dict[str, Any], key: str, digits: int) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key == "share_of_ceiling":
        return f"{100 * value:.{digits}f} %"
    return f"{value:,.{digits}f}"


def _grid(sweep: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    heads = [h for h, _, _ in SWEEP_COLUMNS]
    return heads, [[_cell(row, key, d) for _, key, d in SWEEP_COLUMNS] for row in sweep["rows"]]


def sweep_table(sweep: dict[str, Any]) -> list[str]:
    """The sweep as a text table, one row per size, then how to read it."""
    heads, rows = _grid(sweep)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    lines = ["sweep over the number of validators (one fresh cluster per size):",
             "  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [*lines, *_sweep_notes(sweep)]


def _sweep_notes(sweep: dict[str, Any]) -> list[str]:
    return [
        f"ceiling per size: {sweep['ceiling_rule']}; share = committed tx/s / that ceiling",
        "node CPU ms/tx: CPU of all nodes over the load / transactions committed in it ('per node': divided by n); "
        "P2P bytes/block: bytes every node sent per committed tx x mean txs per block",
        f"messages per block: {sweep['messages_per_block']}",
    ]


def sweep_markdown(sweep: dict[str, Any], plots: list[str]) -> list[str]:
    heads, rows = _grid(sweep)
    lines = ["## Sweep over the number of validators", "",
             "| " + " | ".join(heads) + " |", "|" + "---:|" * len(heads)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", *(f"- {note}" for note in _sweep_notes(sweep)), "", *(f"![{p}]({p})" for p in plots), ""]
    return lines


def _step_line(step: dict[str, Any]) -> str:
    verdict = "sustainable" if step["sustainable"] else "not sustainable"
    return f"{step['run']}: {step['rate']:,.1f} tx/s offered: {verdict} ({step['why']})"


def _answer(found: dict[str, Any]) -> str:
    best = found["highest_sustainable_tx_s"]
    if best is None:
        return f"no step was sustainable within p99 {found['p99_bound_s']:g} s"
    answer = (f"highest sustainable rate: {best:,.1f} tx/s offered, {found['committed_at_highest_tx_s']:,.1f} tx/s "
              f"committed, with p99 commit latency within {found['p99_bound_s']:g} s")
    if not any(not s["sustainable"] and s["rate"] > best for s in found["steps"]):
        answer += " (no higher step failed: the search stopped first; the cluster may sustain more)"
    return answer


def find_max_lines(found: dict[str, Any]) -> list[str]:
    """The search as text: its rule, each step and its verdict, then the answer."""
    return [f"find-max: {found['rule']}", *(f"  {_step_line(s)}" for s in found["steps"]), _answer(found)]


def find_max_markdown(found: dict[str, Any]) -> list[str]:
    lines = ["## Highest sustainable rate (--find-max)", "", f"**{_answer(found)}.**", "", f"Search: {found['rule']}.",
             "", "| step | offered tx/s | committed tx/s | p99 s (failures counted) | never committed | verdict |",
             "|---|---:|---:|---:|---:|---|"]
    for s in found["steps"]:
        p99 = "-" if s["p99_s"] is None else f"{s['p99_s']:.3f}"
        lines.append(f"| {s['run']} | {s['rate']:,.1f} | {s['committed_tx_s']:,.1f} | {p99} | "
                     f"{s['never_committed']:,} | {s['why']} |")
    return [*lines, ""]
