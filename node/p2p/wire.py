"""What nodes say to each other over the P2P transport, one tagged record per frame.

* ``ConsensusFrame`` carries a consensus message's canonical bytes as signed by
  its author (relayed unchanged, so a relay cannot alter it);
* ``TxGossip`` carries client transactions;
* ``SyncRequest`` / ``SyncResponse`` fetch committed blocks with certificates;
* ``HeadAnnounce`` tells peers (observers above all) a new head exists;
* ``PeerSet`` tells peers whom we are directly connected to, so that a
  message is relayed only to peers that cannot hear its author themselves;
* ``CompactProposal`` is a PRE-PREPARE with its transactions named by id
  (``node.proposals``); ``TxFetch`` asks its sender for the ones a replica
  lacks and ``TxFill`` brings them;
* ``NodeReport`` tells peers, every few seconds, where this node stands (view,
  mempool, last commit), for operators' views of the whole network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from consensus.messages import MAX_BLOCK_TXS, SIG, VALIDATOR, Block, BlockHeader, CommitCertificate
from primitives.codec import MAX_MESSAGE_BYTES, Bool, Bytes, Kind, ListOf, MessageCodec, Nested, Optional, Text, UInt

MAX_SYNC_BLOCKS = 64


@dataclass(frozen=True, slots=True)
class ConsensusFrame:
    TAG: ClassVar[int] = 1
    data: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Bytes(MAX_MESSAGE_BYTES),)


@dataclass(frozen=True, slots=True)
class TxGossip:
    TAG: ClassVar[int] = 2
    txs: tuple[bytes, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ListOf(Bytes(64 * 1024), 4096),)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    TAG: ClassVar[int] = 3
    from_height: int
    max_blocks: int
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), UInt(MAX_SYNC_BLOCKS))


@dataclass(frozen=True, slots=True)
class CertifiedBlock:
    block: Block
    certificate: CommitCertificate
    SCHEMA: ClassVar[tuple[Kind, ...]] = (Nested(Block), Nested(CommitCertificate))


@dataclass(frozen=True, slots=True)
class SyncResponse:
    TAG: ClassVar[int] = 4
    head_height: int
    blocks: tuple[CertifiedBlock, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), ListOf(Nested(CertifiedBlock), MAX_SYNC_BLOCKS))


@dataclass(frozen=True, slots=True)
class HeadAnnounce:
    TAG: ClassVar[int] = 5
    height: int
    block_hash: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), Bytes(32, exact=True))


@dataclass(frozen=True, slots=True)
class PeerSet:
    TAG: ClassVar[int] = 6
    peers: tuple[str, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (ListOf(Text(64), 1024),)


TX_ID = Bytes(32, exact=True)


@dataclass(frozen=True, slots=True)
class CompactProposal:
    """A PRE-PREPARE's fields with the block's transactions as ids, in block order."""

    TAG: ClassVar[int] = 7
    view: int
    height: int
    header: BlockHeader
    tx_ids: tuple[bytes, ...]
    sender: int
    signature: bytes
    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        UInt(), UInt(), Nested(BlockHeader), ListOf(TX_ID, MAX_BLOCK_TXS), VALIDATOR, SIG,
    )


@dataclass(frozen=True, slots=True)
class TxFetch:
    """Send me these transactions of your proposal at (height, view)."""

    TAG: ClassVar[int] = 8
    height: int
    view: int
    tx_ids: tuple[bytes, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), UInt(), ListOf(TX_ID, MAX_BLOCK_TXS))


@dataclass(frozen=True, slots=True)
class TxFill:
    """The answer to a ``TxFetch``: the transactions the sender found."""

    TAG: ClassVar[int] = 9
    height: int
    view: int
    txs: tuple[bytes, ...]
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), UInt(), ListOf(Bytes(64 * 1024), MAX_BLOCK_TXS))


@dataclass(frozen=True, slots=True)
class NodeReport:
    """Where the sender stands, for ``GET /network``: informative only, nothing acts on it."""

    TAG: ClassVar[int] = 10
    height: int
    view: int
    in_view_change: bool
    mempool_txs: int
    last_commit_ms: int | None  # wall clock of its last commit since it started
    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(), UInt(), Bool(), UInt(), Optional(UInt()))


NodeMessage = (
    ConsensusFrame | TxGossip | SyncRequest | SyncResponse | HeadAnnounce | PeerSet | CompactProposal | TxFetch | TxFill
    | NodeReport
)
NODE_CODEC = MessageCodec([
    ConsensusFrame, TxGossip, SyncRequest, SyncResponse, HeadAnnounce, PeerSet, CompactProposal, TxFetch, TxFill,
    NodeReport,
])
