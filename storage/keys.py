"""The key layout of a node's LevelDB: one byte of prefix, then the key proper.

Heights and sequence numbers are 8-byte big-endian, so LevelDB's byte order is
numeric order and a range of heights is one iterator.

=======  ==============================  =========================================
prefix   key after the prefix            value
=======  ==============================  =========================================
``00``   ascii name (see ``META_*``)     metadata (see below)
``01``   height                          canonical ``Block`` bytes
``02``   block hash (32)                 height
``03``   height                          canonical ``CommitCertificate`` bytes
``04``   tx id = sha256(tx bytes) (32)   height (8) + index in the block (4) + outcome
``05``   application key (any bytes)     application value (opaque)
``06``   WAL sequence number             earlier versions' WAL (record height + bytes)
``07``   record height + WAL sequence    earlier versions' WAL index by height
``08``   evidence sequence number        ``EvidenceRecord`` bytes
``09``   sha256(evidence record) (32)    empty (duplicate guard)
=======  ==============================  =========================================

Metadata: ``version`` (storage schema version, a msgpack int, the one key every
future version must read the same way), ``identity`` (chain id and genesis
hash, written once), ``head`` (height, hash, app hash after the head block, its
timestamp and commit view; absent until block 1, then rewritten in the same
batch as every block) and, from earlier versions, ``wal-next``.  The WAL is
now a file beside the LevelDB (storage/wal.py); ``06``, ``07`` and
``wal-next`` are only read once, to move an earlier store's WAL into it.

A tx index entry ends with the transaction's *outcome*: what the node's
application made of it (opaque bytes to the store, the node's result record),
kept in the same entry so a transaction costs one random key, not two.
Entries written by earlier versions have no outcome (12 bytes): their results
are application state, under the node's own result keys.
"""

from __future__ import annotations

import struct

from primitives.errors import DecodeError

META = b"\x00"
BLOCK = b"\x01"
HEIGHT_BY_HASH = b"\x02"
CERTIFICATE = b"\x03"
TX = b"\x04"
STATE = b"\x05"
WAL = b"\x06"
WAL_BY_HEIGHT = b"\x07"
EVIDENCE = b"\x08"
EVIDENCE_DIGEST = b"\x09"

META_VERSION = META + b"version"
META_IDENTITY = META + b"identity"
META_HEAD = META + b"head"
META_WAL_NEXT = META + b"wal-next"

_U64 = struct.Struct(">Q")
_TX_LOCATION = struct.Struct(">QI")


def u64(n: int) -> bytes:
    return _U64.pack(n)


def read_u64(data: bytes) -> int:
    if len(data) != 8:
        raise DecodeError(f"expected 8 bytes, got {len(data)}")
    value: int = _U64.unpack(data)[0]
    return value


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only 0xff bytes has no end key")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def block_key(height: int) -> bytes:
    return BLOCK + u64(height)


def height_by_hash_key(block_hash: bytes) -> bytes:
    return HEIGHT_BY_HASH + block_hash


def certificate_key(height: int) -> bytes:
    return CERTIFICATE + u64(height)


def tx_key(tx_id: bytes) -> bytes:
    return TX + tx_id


def state_key(key: bytes) -> bytes:
    return STATE + key


def wal_key(seq: int) -> bytes:
    return WAL + u64(seq)


def wal_height_key(height: int, seq: int) -> bytes:
    return WAL_BY_HEIGHT + u64(height) + u64(seq)


def evidence_key(seq: int) -> bytes:
    return EVIDENCE + u64(seq)


def evidence_digest_key(digest: bytes) -> bytes:
    return EVIDENCE_DIGEST + digest


TX_LOCATION_SIZE = _TX_LOCATION.size


def pack_tx_location(height: int, index: int, outcome: bytes = b"") -> bytes:
    """A tx index entry: the location, then the outcome (empty in entries of earlier versions)."""
    return _TX_LOCATION.pack(height, index) + outcome


def unpack_tx_location(data: bytes) -> tuple[int, int]:
    """The location of a tx index entry (its outcome, if any, is ``data[TX_LOCATION_SIZE:]``)."""
    if len(data) < TX_LOCATION_SIZE:
        raise DecodeError(f"expected at least {TX_LOCATION_SIZE} bytes, got {len(data)}")
    height, index = _TX_LOCATION.unpack_from(data)
    return int(height), int(index)
