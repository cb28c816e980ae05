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

    def has_room(self, size: int) -> bool:
        """Whether a new transaction of ``size`` bytes would be taken now."""
        return len(self._txs) < self.limits.max_txs and self.size_bytes + size <= self.limits.max_bytes

    def refuse_full(self) -> MempoolFull:
        """Count a refusal for lack of room; the exception that says so."""
        self.rejected_full += 1
        return MempoolFull(f"mempool holds {len(self._txs)} transactions ({self.size_bytes} bytes)")

    def add(self, tx_id: bytes, data: bytes) -> bool:
        """Add a checked transaction; False if already present; MempoolFull when full."""
        if tx_id in self:
            return False
        if not self.has_room(len(data)):
            raise self.refuse_full()
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

    def oldest(self) -> bytes | None:
        """The id of the transaction pending longest (the next block's first), or None when empty."""
        return next(iter(self._txs), None)


def proposal_delay(pending: int, max_block_txs: int, batch_timeout_s: float, oldest_waited_s: float | None) -> float:
    """How long a primary that may propose waits before it does.

    Not at all for a full block; otherwise until the oldest pending transaction
    has waited ``batch_timeout_s`` (as Hyperledger Fabric's orderer counts its
    BatchTimeout from a batch's first transaction).  Counting it from the moment
    the primary became free to propose instead put the whole timeout on top of
    every round once load kept transactions waiting through the round: at
    2,003 tx/s in batches on 4 validators blocks came 9-12 times a second and p50 / p99
    were 0.09-0.13 / 0.25-0.78 s; counted from the oldest transaction, 15-18
    times a second at the same CPU per transaction, 0.07-0.10 / 0.23-0.49 s
    (docs/benchmarks.md).  ``oldest_waited_s`` None (its admission time is not
    known) waits the whole timeout.
    """
    if pending >= max_block_txs:
        return 0.0
    if oldest_waited_s is None:
        return batch_timeout_s
    return min(batch_timeout_s, max(0.0, batch_timeout_s - oldest_waited_s))


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


# ------------------------------------------------------------ gossip waiting to be checked
#
# A peer's transport reads frames in order.  Checking a gossiped transaction's
# signature where its frame is read would hold every later frame of that link,
# a PRE-PREPARE or a vote among them, behind the signature checks of thousands
# of transactions (measured: a 2,000-transaction proposal reached the replicas
# about 0.4 s after the primary sent it).  So gossip is only queued where it is
# read, by tx id, and checked by a task of its own in small slices; consensus
# frames pass it.  A transaction a block names before its turn comes is checked
# by the block's validation, once (the checker remembers verdicts by tx id).
class GossipBacklog:
    """Gossiped transactions waiting for their checks: oldest first, one entry per tx id, bounded."""

    def __init__(self, max_txs: int = 50_000) -> None:
        self.max_txs = max_txs
        self._items: OrderedDict[bytes, tuple[bytes, str]] = OrderedDict()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, tid: bytes) -> bool:
        return tid in self._items

    def get(self, tid: bytes) -> bytes | None:
        """A queued transaction's bytes (not checked yet), or None."""
        item = self._items.get(tid)
        return None if item is None else item[0]

    def add(self, tid: bytes, data: bytes, origin: str) -> bool:
        """Queue one; False when already queued or the backlog is full (counted in ``dropped``).

        Dropping is safe: the peer keeps it pending and offers it again on its
        resend schedule, and a block naming it carries it whole.
        """
        if tid in self._items:
            return False
        if len(self._items) >= self.max_txs:
            self.dropped += 1
            return False
        self._items[tid] = (data, origin)
        return True

    def take(self, limit: int) -> list[tuple[bytes, bytes, str]]:
        """Up to ``limit`` of the oldest as (tx id, bytes, origin peer), removed from the backlog."""
        out: list[tuple[bytes, bytes, str]] = []
        items = self._items
        while items and len(out) < limit:
            tid, (data, origin) = items.popitem(last=False)
            out.append((tid, data, origin))
        return out
