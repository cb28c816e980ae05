"""The consensus write-ahead log: what this replica signed or saw prepared.

Rules:

* records are numbered by a sequence number that only grows (the next number
  is kept in the metadata, so it survives even the pruning of every record);
  reading returns them in that order, which is the order they were appended;
* one ``append`` (one replica output) is one synchronous write batch, however
  many records it holds: after it returns they survive a crash, and the
  driver may send (consensus/events.py: persist, then send);
* each record is stored with its height, and a second key orders records by
  (height, sequence) so ``prune`` below a height touches only what it deletes:
  cheap enough to run after every block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, get_args

import msgpack

from consensus.events import WAL_CODEC, WalPrepared, WalRecord, WalSigned
from consensus.messages import SignedMessage
from primitives.errors import DecodeError, UsageError
from storage.database import Batch, Reader
from storage.errors import CorruptRecord
from storage.keys import META_WAL_NEXT, WAL, WAL_BY_HEIGHT, prefix_end, read_u64, u64, wal_height_key, wal_key


@dataclass(frozen=True, slots=True)
class WalEntry:
    seq: int
    height: int
    record: WalRecord


def _height_positions() -> dict[int, int]:
    positions: dict[int, int] = {}
    for cls in get_args(SignedMessage):
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        positions[cls.TAG] = names.index("height")
    return positions


# Where "height" sits in each signed message's field array, from the message
# classes themselves: lets ``record_height`` read it without decoding a block.
_HEIGHT_AT = _height_positions()


def signed_height(data: bytes) -> int:
    """The height of a signed consensus message, read from its tagged bytes."""
    unpacker: Any = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1024))
    unpacker.feed(data)
    try:
        size = unpacker.read_array_header()
        tag = unpacker.unpack()
        position = _HEIGHT_AT.get(tag) if type(tag) is int else None
        if position is None or size <= position + 1:
            raise UsageError(f"not a signed consensus message (tag {tag!r}, {size} fields)")
        for _ in range(position):
            unpacker.skip()
        height = unpacker.unpack()
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.OutOfData) as exc:
        raise UsageError(f"not a signed consensus message: {exc!r}") from None
    if type(height) is not int or height < 0:
        raise UsageError(f"a signed consensus message with height {height!r}")
    return height


def record_height(record: WalRecord) -> int:
    match record:
        case WalSigned(data):
            return signed_height(data)
        case WalPrepared(cert):
            return cert.height
    raise UsageError(f"not a WAL record: {type(record).__name__}")


def read_next_seq(reader: Reader) -> int:
    raw = reader.get(META_WAL_NEXT)
    try:
        stored = 0 if raw is None else read_u64(raw)
    except DecodeError as exc:
        raise CorruptRecord("next WAL sequence number", META_WAL_NEXT, str(exc)) from None
    last = reader.keys(WAL, prefix_end(WAL), reverse=True, limit=1)
    return max(stored, read_u64(last[0][len(WAL):]) + 1 if last else 0)


def add_records(batch: Batch, first_seq: int, records: list[WalRecord]) -> int:
    """Put ``records`` numbered from ``first_seq``; return the next free number."""
    seq = first_seq
    for record in records:
        height = record_height(record)
        batch.put(wal_key(seq), u64(height) + WAL_CODEC.encode(record))
        batch.put(wal_height_key(height, seq), b"")
        seq += 1
    batch.put(META_WAL_NEXT, u64(seq))
    return seq


def add_prune(reader: Reader, batch: Batch, below_height: int) -> int:
    """Delete every record with height < ``below_height``; return how many."""
    index_keys = reader.keys(WAL_BY_HEIGHT, WAL_BY_HEIGHT + u64(below_height))
    for key in index_keys:
        batch.delete(wal_key(read_u64(key[9:17])))
        batch.delete(key)
    return len(index_keys)


def read_entries(reader: Reader) -> list[WalEntry]:
    entries: list[WalEntry] = []
    for key, value in reader.items(WAL, prefix_end(WAL)):
        seq = read_u64(key[len(WAL):])
        try:
            record: WalRecord = WAL_CODEC.decode(value[8:])
            height = read_u64(value[:8])
        except DecodeError as exc:
            raise CorruptRecord(f"WAL record {seq}", key, str(exc)) from None
        entries.append(WalEntry(seq, height, record))
    return entries
