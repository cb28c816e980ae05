"""Metadata: the schema version, the chain's identity and the head.

Opening a directory either initialises it (empty LevelDB: version and
identity in one synchronous batch) or checks it, in this order:

1. the schema version must be ours (``SchemaMismatch`` names both versions);
2. the chain id and the genesis hash must be the caller's (``ChainMismatch``);
3. the head, if any, must decode, and its block and certificate must exist.

There is no head record until the first block commits: a new store is at
genesis, and the genesis tip (its app hash, its time) is the node's to know.
"""

from __future__ import annotations

from consensus.config import ChainTip
from primitives.codec import encode, pack, unpack_strict
from primitives.errors import DecodeError, UsageError
from primitives.hashing import HASH_SIZE
from storage.database import Batch, Database, Reader
from storage.errors import ChainMismatch, CorruptRecord, SchemaMismatch, StorageError
from storage.keys import META_HEAD, META_IDENTITY, META_VERSION, block_key, certificate_key
from storage.records import HeadRecord, IdentityRecord, decode_stored

SCHEMA_VERSION = 1
"""Bump when the meaning of any key or value changes; old directories are then refused."""


def read_version(reader: Reader) -> int | None:
    raw = reader.get(META_VERSION)
    if raw is None:
        return None
    try:
        version = unpack_strict(raw)
    except DecodeError as exc:
        raise CorruptRecord("schema version", META_VERSION, str(exc)) from None
    if type(version) is not int:
        raise CorruptRecord("schema version", META_VERSION, f"expected an integer, got {type(version).__name__}")
    return version


def read_identity(reader: Reader) -> IdentityRecord:
    raw = reader.get(META_IDENTITY)
    if raw is None:
        raise CorruptRecord("chain identity", META_IDENTITY, "missing")
    return decode_stored(IdentityRecord, raw, "chain identity", META_IDENTITY)


def read_head(reader: Reader) -> ChainTip | None:
    """The last committed block, or None at genesis (nothing committed yet)."""
    raw = reader.get(META_HEAD)
    if raw is None:
        return None
    return decode_stored(HeadRecord, raw, "head", META_HEAD).tip()


def put_head(batch: Batch, tip: ChainTip) -> None:
    batch.put(META_HEAD, encode(HeadRecord.of(tip)))


def open_chain(db: Database, chain_id: str, genesis_hash: bytes) -> ChainTip | None:
    """Initialise an empty database for this chain, or check an existing one; return its head."""
    if type(genesis_hash) is not bytes or len(genesis_hash) != HASH_SIZE:
        raise UsageError(f"the genesis hash must be {HASH_SIZE} bytes")
    version = read_version(db)
    if version is None:
        if not db.is_empty():
            raise StorageError(
                f"data directory {db.path} holds a LevelDB without a medchain schema version: "
                "it is not a medchain store (choose an empty directory)"
            )
        batch = Batch()
        batch.put(META_VERSION, pack(SCHEMA_VERSION))
        batch.put(META_IDENTITY, encode(IdentityRecord(chain_id, genesis_hash)))
        db.write(batch, sync=True)
        return None
    if version != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"data directory {db.path} was written by storage schema version {version}; "
            f"this medchain reads version {SCHEMA_VERSION} (run a matching medchain release, "
            "or start this node from an empty data directory and let it catch up)"
        )
    _check_identity(db, read_identity(db), chain_id, genesis_hash)
    head = read_head(db)
    if head is not None:
        _check_head(db, head)
    return head


def _check_identity(db: Database, found: IdentityRecord, chain_id: str, genesis_hash: bytes) -> None:
    if found.chain_id != chain_id or found.genesis_hash != genesis_hash:
        raise ChainMismatch(
            f"data directory {db.path} belongs to chain {found.chain_id!r} "
            f"(genesis {found.genesis_hash.hex()[:16]}), not to chain {chain_id!r} "
            f"(genesis {genesis_hash.hex()[:16]}): point the node at this chain's data directory "
            "or at an empty one"
        )


def _check_head(db: Database, head: ChainTip) -> None:
    for key, what in ((block_key(head.height), "block"), (certificate_key(head.height), "certificate")):
        if db.get(key) is None:
            raise CorruptRecord(f"head at height {head.height}", key, f"its {what} is missing")
