"""Blocks, consensus messages and certificates: small frozen records.

Every record has a fixed field order (its ``SCHEMA``) and is encoded by
``primitives.codec``.  A signed message carries the index of its sender in the
validator list and an Ed25519 signature over ``signing_payload()``, under a
domain tag of its own (Castro & Liskov, TOCS 2002, section 4.1: every message
is signed by its sender; the tag keeps a PREPARE signature from ever passing
as a COMMIT).

Votes in certificates carry only (validator, signature): the payload they sign
is rebuilt from the certificate's (height, view, block hash), so a certificate
of 2f+1 votes costs 2f+1 signatures and no repeated fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from primitives.codec import Bytes, Kind, ListOf, MessageCodec, Nested, Optional, Text, UInt, encode, pack
from primitives.hashing import HASH_SIZE, sha256
from primitives.signing import SIGNATURE_SIZE

MAX_VALIDATORS = 256
MAX_BLOCK_TXS = 20_000
MAX_TX_BYTES = 64 * 1024
CHAIN_ID_MAX = 64

HASH = Bytes(HASH_SIZE, exact=True)
SIG = Bytes(SIGNATURE_SIZE, exact=True)
U64 = UInt()
VALIDATOR = UInt(MAX_VALIDATORS - 1)

DOMAIN_PRE_PREPARE = b"medchain/v1/pre-prepare"
DOMAIN_PREPARE = b"medchain/v1/prepare"
DOMAIN_COMMIT = b"medchain/v1/commit"
DOMAIN_CHECKPOINT = b"medchain/v1/checkpoint"
DOMAIN_VIEW_CHANGE = b"medchain/v1/view-change"
DOMAIN_NEW_VIEW = b"medchain/v1/new-view"


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: bytes
    proposer: int
    view: int
    timestamp_ms: int
    tx_root: bytes
    tx_count: int
    app_hash: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        Text(CHAIN_ID_MAX), U64, HASH, VALIDATOR, U64, U64, HASH, UInt(MAX_BLOCK_TXS), HASH,
    )


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[bytes, ...]
    hash: bytes = field(init=False, compare=False, repr=False)
    _tx_hashes: tuple[bytes, ...] | None = field(init=False, compare=False, repr=False, default=None)

    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        Nested(BlockHeader), ListOf(Bytes(MAX_TX_BYTES), MAX_BLOCK_TXS),
    )

    def __post_init__(self) -> None:
        # The block id is the hash of the header only; the header commits to
        # the transactions through tx_root, which block validation checks.
        object.__setattr__(self, "hash", sha256(encode(self.header)))

    @property
    def height(self) -> int:
        return self.header.height

    def tx_hashes(self) -> tuple[bytes, ...]:
        """SHA-256 of each transaction (the node's tx ids), computed once per block object.

        Validation and execution both need them; hashing every transaction
        twice per block on every node cost a few per cent of a node's CPU.
        """
        found = self._tx_hashes
        if found is None:
            found = tuple(sha256(data) for data in self.txs)
            object.__setattr__(self, "_tx_hashes", found)
        return found


@dataclass(frozen=True, slots=True)
class Vote:
    """One validator's signature inside a certificate."""

    validator: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (VALIDATOR, SIG)


def vote_payload(height: int, view: int, block_hash: bytes) -> bytes:
    return pack([height, view, block_hash])


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """2f+1 COMMIT signatures over (chain id, height, view, block hash)."""

    height: int
    view: int
    block_hash: bytes
    votes: tuple[Vote, ...]

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, U64, HASH, ListOf(Nested(Vote), MAX_VALIDATORS))
    DOMAIN: ClassVar[bytes] = DOMAIN_COMMIT


@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """A block and 2f+1 PREPARE signatures for it in one view (PBFT's P set)."""

    view: int
    block: Block
    votes: tuple[Vote, ...]

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, Nested(Block), ListOf(Nested(Vote), MAX_VALIDATORS))
    DOMAIN: ClassVar[bytes] = DOMAIN_PREPARE

    @property
    def height(self) -> int:
        return self.block.height

    @property
    def block_hash(self) -> bytes:
        return self.block.hash


@dataclass(frozen=True, slots=True)
class PrePrepare:
    TAG: ClassVar[int] = 1
    DOMAIN: ClassVar[bytes] = DOMAIN_PRE_PREPARE
    view: int
    height: int
    block: Block
    sender: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, U64, Nested(Block), VALIDATOR, SIG)

    def signing_payload(self) -> bytes:
        return vote_payload(self.height, self.view, self.block.hash)


@dataclass(frozen=True, slots=True)
class Prepare:
    TAG: ClassVar[int] = 2
    DOMAIN: ClassVar[bytes] = DOMAIN_PREPARE
    view: int
    height: int
    block_hash: bytes
    sender: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, U64, HASH, VALIDATOR, SIG)

    def signing_payload(self) -> bytes:
        return vote_payload(self.height, self.view, self.block_hash)


@dataclass(frozen=True, slots=True)
class Commit:
    TAG: ClassVar[int] = 3
    DOMAIN: ClassVar[bytes] = DOMAIN_COMMIT
    view: int
    height: int
    block_hash: bytes
    sender: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, U64, HASH, VALIDATOR, SIG)

    def signing_payload(self) -> bytes:
        return vote_payload(self.height, self.view, self.block_hash)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A replica's signed claim of the chain and state at a checkpoint height."""

    TAG: ClassVar[int] = 4
    DOMAIN: ClassVar[bytes] = DOMAIN_CHECKPOINT
    height: int
    block_hash: bytes
    app_hash: bytes
    sender: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, HASH, HASH, VALIDATOR, SIG)

    def signing_payload(self) -> bytes:
        return pack([self.height, self.block_hash, self.app_hash])


@dataclass(frozen=True, slots=True)
class ViewChange:
    """Move to ``new_view`` at ``height``, carrying the highest prepared block."""

    TAG: ClassVar[int] = 5
    DOMAIN: ClassVar[bytes] = DOMAIN_VIEW_CHANGE
    new_view: int
    height: int
    prepared: PreparedCertificate | None
    sender: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, U64, Optional(Nested(PreparedCertificate)), VALIDATOR, SIG)

    def signing_payload(self) -> bytes:
        prepared = None if self.prepared is None else [self.prepared.view, self.prepared.block.hash]
        return pack([self.new_view, self.height, prepared])


@dataclass(frozen=True, slots=True)
class NewView:
    """The new primary's proof (2f+1 VIEW-CHANGEs) and its proposal for ``height``.

    ``block`` is the block with the highest-view prepared certificate among the
    VIEW-CHANGEs when there is one (it may have been decided), else a fresh
    block, or None when the new primary has nothing to propose yet.
    """

    TAG: ClassVar[int] = 6
    DOMAIN: ClassVar[bytes] = DOMAIN_NEW_VIEW
    view: int
    height: int
    view_changes: tuple[ViewChange, ...]
    block: Block | None
    sender: int
    signature: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        U64, U64, ListOf(Nested(ViewChange), MAX_VALIDATORS), Optional(Nested(Block)), VALIDATOR, SIG,
    )

    def signing_payload(self) -> bytes:
        changes = [[vc.sender, vc.signature] for vc in self.view_changes]
        block_hash = None if self.block is None else self.block.hash
        return pack([self.view, self.height, changes, block_hash])


SignedMessage = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView

CONSENSUS_CODEC = MessageCodec([PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView])


def message_height(message: SignedMessage) -> int:
    return message.height


def message_view(message: SignedMessage) -> int | None:
    match message:
        case ViewChange():
            return message.new_view
        case Checkpoint():
            return None
        case _:
            return message.view
