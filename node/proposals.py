"""Compact proposals: a PRE-PREPARE sent with its transactions named by id, rebuilt from what a replica holds.

A primary's PRE-PREPARE carries the whole block, and the replicas already hold
nearly every transaction in it: they were gossiped to all validators before
the primary could pick them.  Sending each block whole to n-1 peers cost the
primary n-1 copies of every transaction on the wire, and each replica the
decoding of all of them.

So between validators the node sends a ``CompactProposal`` instead: the
header, the tx ids in block order, and the primary's signature.  That
signature covers (height, view, block hash) and the block hash is the hash of
the header alone (``consensus.messages``), so the PRE-PREPARE rebuilt from the
ids carries the primary's own valid signature; the replica never has to trust
the mapping from ids to bytes, because it looks the bytes up under ids it
computed itself, and block validation checks them against the header's
``tx_root`` as for any proposal.  What a replica lacks it asks the sender for
(``TxFetch``, answered by ``TxFill``); the consensus engine sees only whole
PRE-PREPAREs and is unchanged.

Pure: no I/O, no clock.  The node does the lookups and the sending.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.messages import Block, PrePrepare
from node.p2p.wire import CompactProposal
from node.transaction import tx_id

PRE_PREPARE_PREFIX = bytes([0x90 | (len(PrePrepare.SCHEMA) + 1), PrePrepare.TAG])
"""How an encoded PRE-PREPARE begins (a msgpack array of tag and fields, the tag first): told apart unread."""

MAX_INCOMPLETE = 8
"""Proposals waiting for transactions at once (one per view and height is the honest case)."""


def compact(message: PrePrepare, ids: Sequence[bytes] | None = None) -> CompactProposal:
    """The compact form of ``message`` (``ids``: its transactions' ids when already known)."""
    txs = message.block.txs
    if ids is None or len(ids) != len(txs):
        ids = [tx_id(data) for data in txs]
    return CompactProposal(message.view, message.height, message.block.header, tuple(ids),
                           message.sender, message.signature)


def rebuild(proposal: CompactProposal, txs: Sequence[bytes]) -> PrePrepare:
    return PrePrepare(proposal.view, proposal.height, Block(proposal.header, tuple(txs)),
                      proposal.sender, proposal.signature)


@dataclass(slots=True)
class _Waiting:
    proposal: CompactProposal
    found: dict[bytes, bytes]
    peer: str


class ProposalAssembler:
    """Compact proposals whose transactions are not all here yet, by (height, view, sender)."""

    def __init__(self, max_incomplete: int = MAX_INCOMPLETE) -> None:
        self.max_incomplete = max_incomplete
        self._waiting: dict[tuple[int, int, int], _Waiting] = {}
        self.complete = 0
        self.fetched = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def offer(
        self, peer: str, proposal: CompactProposal, lookup: Callable[[bytes], bytes | None]
    ) -> PrePrepare | list[bytes]:
        """The rebuilt PRE-PREPARE when ``lookup`` finds every transaction, else the ids to ask ``peer`` for."""
        found: dict[bytes, bytes] = {}
        missing: list[bytes] = []
        for tid in proposal.tx_ids:
            data = lookup(tid)
            if data is None:
                missing.append(tid)
            else:
                found[tid] = data
        if not missing:
            self.complete += 1
            return rebuild(proposal, [found[tid] for tid in proposal.tx_ids])
        key = (proposal.height, proposal.view, proposal.sender)
        if key not in self._waiting and len(self._waiting) >= self.max_incomplete:
            oldest = min(self._waiting)
            del self._waiting[oldest]
            self.dropped += 1
        self._waiting[key] = _Waiting(proposal, found, peer)
        return list(dict.fromkeys(missing))

    def fill(self, height: int, view: int, txs: Sequence[bytes]) -> list[PrePrepare]:
        """Add fetched transactions (ids computed here); the proposals of (height, view) now complete."""
        if not txs:
            return []
        given = {tx_id(data): data for data in txs}
        done: list[PrePrepare] = []
        for key, waiting in list(self._waiting.items()):
            if key[0] != height or key[1] != view:
                continue
            ids = waiting.proposal.tx_ids
            for tid in ids:
                if tid not in waiting.found and tid in given:
                    waiting.found[tid] = given[tid]
            if all(tid in waiting.found for tid in ids):
                del self._waiting[key]
                self.fetched += 1
                done.append(rebuild(waiting.proposal, [waiting.found[tid] for tid in ids]))
        return done

    def forget_through(self, height: int) -> None:
        """Heights up to ``height`` are decided: their proposals no longer matter."""
        for key in [k for k in self._waiting if k[0] <= height]:
            del self._waiting[key]


def serve(ids: Sequence[bytes], lookup: Callable[[bytes], bytes | None], block: Block | None) -> list[bytes]:
    """The transactions asked for by ``ids``: from ``lookup`` (the mempool), else from ``block`` if given."""
    out: list[bytes] = []
    by_id: dict[bytes, bytes] | None = None
    for tid in ids:
        data = lookup(tid)
        if data is None and block is not None:
            if by_id is None:
                by_id = {tx_id(t): t for t in block.txs}
            data = by_id.get(tid)
        if data is not None:
            out.append(data)
    return out
