"""What a run's samples say over time: heights per node, commits per second, view changes.

Pure functions of a ``RunRecord``'s samples and acks, shared by the liveness
check and the report.  Heights: ``height_at(series, t)`` is the height of the
node's last sample at or before ``t`` that answered, None when that last
sample did not answer (the node was down) or there is none.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Any

from node.lab.chaos.record import Ack, Sample


def by_node(samples: Iterable[Sample], nodes: Iterable[str]) -> dict[str, list[Sample]]:
    """Each named node's samples in time order (a node with none gets an empty list)."""
    out: dict[str, list[Sample]] = {n: [] for n in nodes}
    for s in samples:
        if s.node in out:
            out[s.node].append(s)
    for series in out.values():
        series.sort(key=lambda s: s.t_s)
    return out


def _last_at(series: Sequence[Sample], t: float) -> Sample | None:
    i = bisect.bisect_right([s.t_s for s in series], t)
    return series[i - 1] if i else None


def height_at(series: Sequence[Sample], t: float) -> int | None:
    last = _last_at(series, t)
    return None if last is None else last.height


def known_height_at(series: Sequence[Sample], t: float) -> int | None:
    """The height of the last sample at or before ``t`` that answered (None: none did)."""
    for s in reversed(series[: bisect.bisect_right([x.t_s for x in series], t)]):
        if s.height is not None:
            return s.height
    return None


def network_height(nodes: dict[str, list[Sample]], t: float) -> int:
    """The highest height any of ``nodes`` had reported at or before ``t`` (0 before any answer)."""
    return max((h for h in (known_height_at(s, t) for s in nodes.values()) if h is not None), default=0)


def first_above(series: Sequence[Sample], after: float, height: int) -> float | None:
    """The time of the node's first sample after ``after`` with a height above ``height``."""
    for s in series:
        if s.t_s > after and s.height is not None and s.height > height:
            return s.t_s
    return None


def throughput(acks: Sequence[Ack], duration_s: float) -> list[dict[str, Any]]:
    """Acknowledged commits per one-second bucket: ``[{"t_s", "committed", "honest"}, ...]``."""
    last = max([duration_s, *(a.acked_s for a in acks)], default=0.0)
    buckets = max(1, math.ceil(last))
    total, honest = [0] * buckets, [0] * buckets
    for a in acks:
        i = min(buckets - 1, max(0, int(a.acked_s)))
        total[i] += 1
        honest[i] += a.honest
    return [{"t_s": i, "committed": total[i], "honest": honest[i]} for i in range(buckets)]


def view_changes(samples: Iterable[Sample], nodes: Iterable[str]) -> list[dict[str, Any]]:
    """Each time a node's reported view differs from its previous report: ``[{"t_s", "node", "from", "to"}]``."""
    out: list[dict[str, Any]] = []
    for node, series in by_node(samples, nodes).items():
        previous: int | None = None
        for s in series:
            if s.view is None:
                continue
            if previous is not None and s.view != previous:
                out.append({"t_s": s.t_s, "node": node, "from": previous, "to": s.view})
            previous = s.view
    out.sort(key=lambda c: (c["t_s"], c["node"]))
    return out
