"""Liveness, judged from the samples: how soon after each fault's end every honest node commits again.

Definitions (times are the run's seconds; heights as in ``series``):

* node n's height at t, h_n(t): the height of its last answered sample at or
  before t; n is *down* at t when its last sample at or before t did not
  answer, or it has none;
* the network's height at t, H(t): the largest h_n(t) over the honest nodes;
* a fault window ending at E: node n's *reference* is H(E) when n was down at
  E or the window names n (a faulted node, restarted or wiped or cut off, must
  catch up with the network and pass it), else h_n(E).  n has *recovered* at
  its first sample after E above its reference; the window's recovery time is
  the latest over the honest nodes, counted from E.  Nodes still under another
  fault at E (a window that started by E and had not ended) are left out: they
  are judged at that window's end;
* a fault window from S to E: its *longest commit gap* is the longest time
  during [S, E) in which no honest node that the window does not name, and no
  other fault touches at S, reported a height above the highest any of them
  had reported before: how long the rest of the network went without a commit
  (a crashed primary: the progress timeout plus the view change).  A block
  certified just before S that lands just after it does not hide the gap that
  follows.  None when none of those nodes committed during the window (as
  expected when it took a quorum away);
* progress after the last fault: with T the last moment a window ended (or
  started, for one that never ended), every honest node not under an unended
  fault has a sample after T above H(T);
* a *stall* (what ``expect = "stall-no-fork"`` wants): while more than f
  validators are faulty at once (named by windows other than ``flood``;
  f = (n - 1) // 3 for n validators), from ``STALL_GRACE_S`` after that began
  (a block already certified may still land) until it ended or the run ended,
  no honest node passed H at that moment: nothing committed anywhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from node.lab.chaos.record import FaultWindow, RunRecord, Sample
from node.lab.chaos.series import by_node, first_above, height_at, network_height
from node.lab.chaos.verdict import Verdict

STALL_GRACE_S = 1.0
FAULTLESS_KINDS = frozenset({"flood"})  # a window of these kinds makes no node faulty


@dataclass(frozen=True, slots=True)
class Recovery:
    window: int  # index in record.windows
    kind: str
    nodes: list[str]
    end_s: float
    recovery_s: float | None  # None: some honest node never recovered
    per_node: dict[str, float | None]
    left_out: list[str]  # honest nodes still under another fault at the end
    gap_s: float | None = None  # the longest time without a commit on the nodes it left alone, during it


def _under_fault(windows: list[FaultWindow], t: float, skip: int = -1) -> set[str]:
    out: set[str] = set()
    for i, w in enumerate(windows):
        if i != skip and w.kind not in FAULTLESS_KINDS and w.start_s <= t and (w.end_s is None or w.end_s > t):
            out.update(w.nodes)
    return out


def _honest_series(record: RunRecord) -> dict[str, list[Sample]]:
    return by_node(record.samples, record.honest)


def recoveries(record: RunRecord, heights: dict[str, list[Sample]] | None = None) -> list[Recovery]:
    """One ``Recovery`` per window that ended, in window order (``heights``: the honest nodes' samples by node)."""
    heights = _honest_series(record) if heights is None else heights
    out: list[Recovery] = []
    for i, w in enumerate(record.windows):
        if w.end_s is None:
            continue
        end = w.end_s
        busy = _under_fault(record.windows, end, skip=i)
        net = network_height(heights, end)
        per_node: dict[str, float | None] = {}
        for node, series in heights.items():
            if node in busy:
                continue
            own = height_at(series, end)
            reference = net if own is None or node in w.nodes else own
            seen = first_above(series, end, reference)
            per_node[node] = None if seen is None else round(seen - end, 3)
        times = list(per_node.values())
        worst = None if not times or any(t is None for t in times) else max(t for t in times if t is not None)
        gap = longest_commit_gap(heights, record.windows, i)
        out.append(Recovery(i, w.kind, list(w.nodes), end, worst, per_node, sorted(busy & set(heights)), gap))
    return out


def longest_commit_gap(heights: dict[str, list[Sample]], windows: list[FaultWindow], i: int) -> float | None:
    """The longest stretch of window ``i`` without a commit on the honest nodes it leaves alone (None: none)."""
    w = windows[i]
    start = w.start_s
    touched = set(w.nodes) | _under_fault(windows, start, skip=i)
    others = {n: s for n, s in heights.items() if n not in touched}
    inside = sorted((s for series in others.values() for s in series if start < s.t_s), key=lambda s: s.t_s)
    until = w.end_s if w.end_s is not None else max((s.t_s for s in inside), default=start)
    top = network_height(others, start)
    commits = []
    for s in inside:
        if s.t_s >= until:
            break
        if s.height is not None and s.height > top:
            top = s.height
            commits.append(s.t_s)
    if not commits:
        return None
    edges = [start, *commits, until]
    return round(max(b - a for a, b in itertools.pairwise(edges)), 3)


def beyond_f(record: RunRecord) -> list[tuple[float, float | None]]:
    """The intervals [start, end) when more than f validators were faulty at once (end None: to the run's end)."""
    f = (len(record.validators) - 1) // 3
    validators = set(record.validators)
    moments = sorted({w.start_s for w in record.windows} | {w.end_s for w in record.windows if w.end_s is not None})
    out: list[tuple[float, float | None]] = []
    start: float | None = None
    for t in moments:
        over = len(_under_fault(record.windows, t) & validators) > f
        if over and start is None:
            start = t
        elif not over and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, None))
    return out


def stalls(record: RunRecord, heights: dict[str, list[Sample]] | None = None) -> list[dict[str, Any]]:
    """For each beyond-f interval: whether any honest node committed in it (after the grace)."""
    heights = _honest_series(record) if heights is None else heights
    out = []
    for start, end in beyond_f(record):
        since = start + STALL_GRACE_S
        until = end if end is not None else float("inf")
        base = network_height(heights, since)
        inside = [s for series in heights.values() for s in series if since < s.t_s <= until]
        moved = [s for s in inside if s.height is not None and s.height > base]
        out.append({
            "start_s": start, "end_s": end, "height": base, "samples": len(inside),
            "stalled": bool(inside) and not moved,
            "first_commit_s": min((s.t_s for s in moved), default=None),
        })
    return out


def progress_after_last_fault(record: RunRecord, heights: dict[str, list[Sample]] | None = None) -> tuple[bool, str]:
    heights = _honest_series(record) if heights is None else heights
    last = max((w.end_s if w.end_s is not None else w.start_s for w in record.windows), default=0.0)
    busy = {n for w in record.windows if w.end_s is None for n in w.nodes}
    net = network_height(heights, last)
    missing = [n for n, s in heights.items() if n not in busy and first_above(s, last, net) is None]
    if missing:
        return False, f"no commit above height {net} after {last:g} s on {', '.join(missing)}"
    return True, f"every honest node passed height {net} after {last:g} s"


def _window_lines(recs: list[Recovery], bound: float | None, last_t: float) -> tuple[bool, list[str]]:
    ok, lines = True, []
    for r in recs:
        label = f"window {r.window} ({r.kind} {','.join(r.nodes) or '-'}, ended {r.end_s:g} s)"
        if r.recovery_s is None:
            ok = False
            stuck = [n for n, t in r.per_node.items() if t is None]
            tail = last_t - r.end_s
            lines.append(f"{label}: no commit afterwards on {', '.join(stuck)} (the run went on {tail:.1f} s)")
        elif bound is not None and r.recovery_s > bound:
            ok = False
            lines.append(f"{label}: commits resumed after {r.recovery_s:.2f} s, expected within {bound:g} s")
    return ok, lines


def liveness(record: RunRecord) -> Verdict:
    """Per-window recovery against ``commits_resume_within_s`` and progress after the last fault;
    with ``stall-no-fork``, the verdict fails when the chain stalled (as expected)."""
    bound = record.expectations.commits_resume_within_s
    heights = _honest_series(record)
    recs = recoveries(record, heights)
    last_t = max((s.t_s for s in record.samples), default=0.0)
    windows_ok, details = _window_lines(recs, bound, last_t)
    progress_ok, progress = progress_after_last_fault(record, heights)
    found = stalls(record, heights)
    data: dict[str, Any] = {
        "recoveries": [
            {"window": r.window, "kind": r.kind, "nodes": r.nodes, "end_s": r.end_s, "recovery_s": r.recovery_s,
             "per_node": r.per_node, "left_out": r.left_out, "longest_commit_gap_s": r.gap_s}
            for r in recs
        ],
        "bound_s": bound, "progress_after_last_fault": progress_ok, "stalls": found,
    }
    times = [r.recovery_s for r in recs if r.recovery_s is not None]
    worst = f"worst recovery {max(times):.2f} s" if times else "no fault window ended"
    if record.expectations.outcome == "stall-no-fork":
        stalled = [s for s in found if s["stalled"]]
        data["stalled"] = bool(stalled)
        if stalled:
            s = stalled[0]
            end = "the run's end" if s["end_s"] is None else f"{s['end_s']:g} s"
            return Verdict("liveness", False, f"stalled at height {s['height']} from {s['start_s']:g} s to {end} "
                           "(more than f validators faulty)", [*details, progress], data)
        why = "no moment had more than f faulty validators" if not found else "honest nodes kept committing"
        return Verdict("liveness", True, f"did not stall: {why}", [*details, progress], data)
    ok = windows_ok and progress_ok
    summary = f"{len(recs)} fault window(s), {worst}; {progress}" if ok else (details or [progress])[0]
    return Verdict("liveness", ok, summary, details if progress_ok else [*details, progress], data)

