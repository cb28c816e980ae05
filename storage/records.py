"""Values the store writes itself (beyond blocks and certificates), as codec records.

Each is a frozen record with a ``SCHEMA`` and is encoded by ``primitives.codec``,
so reading one back is as strict as reading a block: a damaged value is a
``CorruptRecord`` naming its key, never a wrong value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

from consensus.config import ChainTip
from consensus.messages import CHAIN_ID_MAX, HASH, MAX_VALIDATORS, U64
from primitives.codec import MAX_MESSAGE_BYTES, Bytes, Kind, Text, UInt, decode
from primitives.errors import DecodeError
from storage.errors import CorruptRecord

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class HeadRecord:
    """A chain tip as stored: the block, the state after it, its time and commit view."""

    height: int
    block_hash: bytes
    app_hash: bytes
    timestamp_ms: int
    view: int

    SCHEMA: ClassVar[tuple[Kind, ...]] = (U64, HASH, HASH, U64, U64)

    @classmethod
    def of(cls, tip: ChainTip) -> HeadRecord:
        return cls(tip.height, tip.block_hash, tip.app_hash, tip.timestamp_ms, tip.view)

    def tip(self) -> ChainTip:
        return ChainTip(self.height, self.block_hash, self.app_hash, self.timestamp_ms, self.view)


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """Which chain this directory belongs to; written once, when it is created."""

    chain_id: str
    genesis_hash: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (Text(CHAIN_ID_MAX), HASH)


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """Two conflicting messages of one validator, as their canonical tagged bytes."""

    validator: int
    kind: str
    first: bytes
    second: bytes

    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        UInt(MAX_VALIDATORS - 1), Text(64), Bytes(MAX_MESSAGE_BYTES), Bytes(MAX_MESSAGE_BYTES),
    )


def decode_stored(cls: type[R], data: bytes, what: str, key: bytes) -> R:
    """Decode a stored value; a damaged one raises ``CorruptRecord`` naming ``what`` and the key."""
    try:
        # What we wrote we must read back, even past the network's message limit.
        return decode(cls, data, max_bytes=max(len(data), MAX_MESSAGE_BYTES))
    except DecodeError as exc:
        raise CorruptRecord(what, key, str(exc)) from None
