"""Pending transactions: admitted once, bounded in count and bytes, evicted on commit.

The signature and stateless checks run once at admission (``admit``); the
result is remembered by tx id, so a transaction gossiped by several peers or
included in a block is never verified twice by this node.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass


class MempoolFull(Exception):
    """Back-pressure: the caller should retry later (HTTP 503 + Retry-After)."""


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_txs: int = 50_000
    max_bytes: int = 64 * 1024 * 1024


class Mempool:
    def __init__(self, limits: MempoolLimits | None = None) -> None:
        self.limits = limits or MempoolLimits()
        self._txs: OrderedDict[bytes, bytes] = OrderedDict()
        self.size_bytes = 0
        self.admitted = 0
        self.rejected_full = 0

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    def get(self, tx_id: bytes) -> bytes | None:
        """The pending transaction's bytes, or None."""
        return self._txs.get(tx_id)

    def add(self, tx_id: bytes, data: bytes) -> bool:
        """Add a checked transaction; False if already present; MempoolFull when full."""
        if tx_id in self:
            return False
        if len(self._txs) >= self.limits.max_txs or self.size_bytes + len(data) > self.limits.max_bytes:
            self.rejected_full += 1
            raise MempoolFull(f"mempool holds {len(self._txs)} transactions ({self.size_bytes} bytes)")
        self._txs[tx_id] = data
        self.size_bytes += len(data)
        self.admitted += 1
        return True

    def batch(self, max_txs: int, max_bytes: int) -> list[tuple[bytes, bytes]]:
        """The oldest transactions that fit in one block (left in the pool until committed)."""
        out: list[tuple[bytes, bytes]] = []
        total = 0
        for tx_id, data in self._txs.items():
            if len(out) >= max_txs or total + len(data) > max_bytes:
                break
            out.append((tx_id, data))
            total += len(data)
        return out

    def remove(self, tx_ids: list[bytes]) -> int:
        removed = 0
        for tx_id in tx_ids:
            data = self._txs.pop(tx_id, None)
            if data is not None:
                self.size_bytes -= len(data)
                removed += 1
        return removed

    def ids(self) -> list[bytes]:
        return list(self._txs)


# ------------------------------------------------------------ offering pending transactions again
#
# When to offer a pending transaction to peers again, and to whom.
#
# Gossip over a live link is reliable (TCP under TLS): a peer that was connected
# when a transaction was gossiped has it, unless its mempool was full.  So a
# pending transaction is offered again only
#
# * to a peer whose link (re)opened: everything pending, at once (what was queued
#   on the old link may be lost), and
# * to every peer but the one it came from, on a backoff schedule: first after
#   ``first_s``, then after twice as long each time up to ``max_s``, in case a
#   full mempool refused it (that peer may be the next primary).
#
# Under load a transaction commits before its first resend is due, so pending
# work no longer costs a resend of everything every two seconds.  Pure: time is
# an argument, nothing is sent from here.
@dataclass(slots=True)
class _Entry:
    due: float
    interval: float
    origin: str | None


class RegossipSchedule:
    """Pending transactions by tx id: when each is next offered again, and which peer it came from."""

    def __init__(self, first_s: float = 2.0, max_s: float = 16.0, max_entries: int = 200_000) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.max_entries = max_entries
        self._entries: dict[bytes, _Entry] = {}
        self._heap: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, tid: bytes, now: float, origin: str | None = None) -> None:
        """A transaction just admitted (``origin``: the peer that gossiped it, which need not hear it again)."""
        if tid in self._entries:
            return
        if len(self._entries) >= self.max_entries:  # oldest first: insertion order
            self._entries.pop(next(iter(self._entries)))
        entry = _Entry(now + self.first_s, self.first_s, origin)
        self._entries[tid] = entry
        heapq.heappush(self._heap, (entry.due, tid))

    def forget(self, tids: list[bytes]) -> None:
        """Committed (or otherwise gone): never offered again.  Their heap slots are dropped lazily."""
        for tid in tids:
            self._entries.pop(tid, None)
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._heap = [(e.due, tid) for tid, e in self._entries.items()]
            heapq.heapify(self._heap)

    def due(self, now: float, limit: int) -> list[tuple[bytes, str | None]]:
        """Up to ``limit`` transactions due at ``now`` with their origin, each rescheduled twice as far out."""
        out: list[tuple[bytes, str | None]] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(out) < limit:
            due, tid = heapq.heappop(heap)
            entry = self._entries.get(tid)
            if entry is None or entry.due != due:  # forgotten, or a stale slot of a rescheduled entry
                continue
            out.append((tid, entry.origin))
            entry.interval = min(entry.interval * 2, self.max_s)
            entry.due = now + entry.interval
            heapq.heappush(heap, (entry.due, tid))
        return out
