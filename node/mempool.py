"""Pending transactions: admitted once, bounded in count and bytes, evicted on commit.

The signature and stateless checks run once at admission (``admit``); the
result is remembered by tx id, so a transaction gossiped by several peers or
included in a block is never verified twice by this node.
"""

from __future__ import annotations

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
