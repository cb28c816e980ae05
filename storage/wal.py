"""The consensus write-ahead log: what this replica signed or saw prepared.

The log is an append-only file beside the LevelDB (``<data dir>/wal/``), not
LevelDB keys: every prepared certificate carries its whole block, so a WAL in
LevelDB wrote each block's transactions two or three times into the memtable,
where they were flushed and compacted only to be deleted at the next
checkpoint (docs/benchmarks.md, "Where a transaction's time goes").

Rules:

* the log is one file, ``wal/wal-<generation>.log``: a header (magic, its
  generation, the first sequence number it may use), then frames; a frame is
  ``length (4) | crc32 (4) | sequence (8) | height (8) | WAL_CODEC bytes``,
  the CRC covering everything after itself;
* records are numbered by a sequence number that only grows, also across
  pruning (the header keeps where numbering resumes); reading returns them in
  append order;
* one ``append`` (one replica output) is one ``write`` and one ``fdatasync``,
  however many records it holds: after it returns they survive a crash, and
  the driver may send (consensus/events.py: persist, then send);
* a crash during an append leaves a torn last frame: opening drops it (those
  records were never acknowledged, so their messages were never sent); a bad
  frame followed by a good one is not a torn append but damage, and opening
  refuses the log (``CorruptRecord`` naming file and offset) rather than
  forget what this replica signed;
* ``prune`` below a height writes the surviving records into the next
  generation (a new file, synced, renamed into place, the folder synced), then
  removes the old one: a crash at any point leaves one whole generation, the
  old or the new; opening keeps the newest and removes older leftovers;
* a store written when the WAL lived in LevelDB (keys ``06``/``07``) is moved
  into the file on first open: a generation holding exactly those records is
  written, then the keys are deleted; repeating it after a crash gives the
  same file.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import msgpack

from consensus.events import WAL_CODEC, WalPrepared, WalRecord, WalSigned
from consensus.messages import SignedMessage
from primitives.errors import DecodeError, UsageError
from storage.database import Batch, Database, Reader, sync_directory
from storage.errors import CorruptRecord, StorageError, StoreClosed
from storage.keys import META_WAL_NEXT, WAL, WAL_BY_HEIGHT, prefix_end, read_u64

log = logging.getLogger(__name__)

FOLDER = "wal"
MAGIC = b"MCWAL\x00\x01\x00"
_HEADER = struct.Struct(">8sQQ")  # magic, generation, first sequence number
_FRAME = struct.Struct(">IIQQ")  # payload length, crc32 of the rest, sequence, height
_SEQ_HEIGHT = struct.Struct(">QQ")
MAX_RECORD_BYTES = 64 * 1024 * 1024
_NAME = re.compile(r"^wal-([0-9]{16})\.log$")


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


def frame(seq: int, height: int, payload: bytes) -> bytes:
    """One record's bytes in the log file."""
    rest = _SEQ_HEIGHT.pack(seq, height) + payload
    return _FRAME.pack(len(payload), zlib.crc32(rest), seq, height) + payload


@dataclass(frozen=True, slots=True)
class _Live:
    seq: int
    height: int
    offset: int  # of the frame in the current file
    size: int  # of the whole frame


@dataclass(frozen=True, slots=True)
class Scan:
    """What reading one log file found: its bytes, its good frames, and where (and why) reading stopped."""

    data: bytes
    first_seq: int
    frames: list[_Live]
    good_end: int  # offset just past the last good frame
    size: int
    damage: str | None  # a bad frame followed by a good one: not a torn append


def _frame_at(data: bytes, offset: int) -> tuple[_Live, str | None]:
    """The frame at ``offset`` and None, or a placeholder and why it is not a whole, intact frame."""
    end = len(data)
    if end - offset < _FRAME.size:
        return _Live(0, 0, offset, 0), f"{end - offset} bytes, too short for a frame header"
    length, crc, seq, height = _FRAME.unpack_from(data, offset)
    size = _FRAME.size + length
    if length > MAX_RECORD_BYTES:
        return _Live(seq, height, offset, 0), f"a frame of {length} bytes (at most {MAX_RECORD_BYTES})"
    if offset + size > end:
        return _Live(seq, height, offset, size), f"a frame of {size} bytes with {end - offset} left in the file"
    if zlib.crc32(memoryview(data)[offset + 8 : offset + size]) != crc:
        return _Live(seq, height, offset, size), "checksum mismatch"
    return _Live(seq, height, offset, size), None


def scan_file(path: Path) -> Scan:
    """Read the frames of one log file (``CorruptRecord`` for a bad header or damage inside the log)."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise CorruptRecord(f"WAL file {path}", b"", f"{len(data)} bytes, too short for its header")
    magic, _, first_seq = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise CorruptRecord(f"WAL file {path}", b"", f"not a medchain WAL (magic {magic.hex()})")
    frames: list[_Live] = []
    offset, damage = _HEADER.size, None
    last_seq = -1  # the survivors of a prune keep their numbers, below the header's first_seq
    while offset < len(data):
        live, problem = _frame_at(data, offset)
        if problem is None and live.seq <= last_seq:
            problem = f"sequence number {live.seq} after {last_seq}"
        if problem is not None:
            # A torn append ends the file; a good frame after the bad one means the log was damaged.
            if live.size and offset + live.size < len(data) and _frame_at(data, offset + live.size)[1] is None:
                damage = f"frame at offset {offset}: {problem}, with intact frames after it"
            break
        frames.append(live)
        last_seq = live.seq
        offset += live.size
    return Scan(data, first_seq, frames, offset, len(data), damage)


def _where(e: _Live, path: Path) -> str:
    return f"WAL record {e.seq} in {path} at offset {e.offset}"


def _decode(whole_frame: bytes, where: str) -> WalRecord:
    """The record in a frame's bytes (``CorruptRecord`` naming ``where`` if they do not decode)."""
    try:
        record: WalRecord = WAL_CODEC.decode(whole_frame[_FRAME.size :])
    except DecodeError as exc:
        raise CorruptRecord(where, b"", str(exc)) from None
    return record


class WalLog:
    """The log of one data directory; not thread-safe (``ChainStore`` serialises its calls)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._live: list[_Live] = []
        self._generation = 0
        self._next_seq = 0
        self._end = 0

    @classmethod
    def open(cls, data_dir: Path, legacy: Database | None = None) -> WalLog:
        """Open (creating if missing) the log in ``data_dir``; move a LevelDB WAL of ``legacy`` into it."""
        wal = cls(data_dir / FOLDER)
        try:
            wal.folder.mkdir(exist_ok=True)
            wal._load()
            if legacy is not None:
                wal._adopt_legacy(legacy)
        except OSError as exc:
            wal.close()
            raise StorageError(f"cannot open the WAL in {wal.folder}: {exc.strerror or exc}") from None
        except BaseException:
            wal.close()
            raise
        return wal

    def _path(self, generation: int) -> Path:
        return self.folder / f"wal-{generation:016d}.log"

    def _generations(self) -> list[int]:
        found = (_NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _load(self) -> None:
        for leftover in self.folder.glob("wal-*.tmp"):  # a prune that crashed before its rename
            leftover.unlink()
        generations = self._generations()
        if not generations:
            self._start_generation(1, 0, [])
            return
        current = generations[-1]
        for older in generations[:-1]:  # a prune that crashed before removing its predecessor
            self._path(older).unlink()
        path = self._path(current)
        scan = scan_file(path)
        if scan.damage is not None:
            raise CorruptRecord(f"WAL file {path}", b"", scan.damage)
        self._generation = current
        self._live = scan.frames
        self._next_seq = max(scan.first_seq, scan.frames[-1].seq + 1 if scan.frames else 0)
        self._fd = os.open(path, os.O_RDWR)
        if scan.good_end < scan.size:
            log.warning("WAL %s: dropping a torn last append (%d bytes at offset %d): a crash during the write",
                        path, scan.size - scan.good_end, scan.good_end)
            os.ftruncate(self._fd, scan.good_end)
            os.fsync(self._fd)
        self._end = scan.good_end

    def _start_generation(self, generation: int, first_seq: int, frames: list[tuple[int, int, bytes]]) -> None:
        """Write generation ``generation`` holding ``frames`` (seq, height, payload), durably, and switch to it."""
        path = self._path(generation)
        tmp = path.with_suffix(".tmp")
        parts = [_HEADER.pack(MAGIC, generation, first_seq)]
        live: list[_Live] = []
        offset = _HEADER.size
        for seq, height, payload in frames:
            data = frame(seq, height, payload)
            parts.append(data)
            live.append(_Live(seq, height, offset, len(data)))
            offset += len(data)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(parts))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        sync_directory(self.folder)
        old = self._generation
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(path, os.O_RDWR)
        self._generation, self._live, self._end = generation, live, offset
        self._next_seq = max(first_seq, live[-1].seq + 1 if live else 0)
        if old and old != generation:
            self._path(old).unlink(missing_ok=True)

    def _adopt_legacy(self, db: Database) -> None:
        """Move WAL records kept in LevelDB by an earlier version into this log, then delete them there."""
        entries = read_legacy_entries(db)
        raw_next = db.get(META_WAL_NEXT)
        if not entries and raw_next is None:
            return
        try:
            stored_next = 0 if raw_next is None else read_u64(raw_next)
        except DecodeError as exc:
            raise CorruptRecord("next WAL sequence number", META_WAL_NEXT, str(exc)) from None
        first = max([stored_next, self._next_seq] + [e.seq + 1 for e in entries])
        frames = [(e.seq, e.height, WAL_CODEC.encode(e.record)) for e in entries]
        self._start_generation(self._generation + 1, first, frames)
        batch = Batch()
        for key in db.keys(WAL, prefix_end(WAL)) + db.keys(WAL_BY_HEIGHT, prefix_end(WAL_BY_HEIGHT)):
            batch.delete(key)
        batch.delete(META_WAL_NEXT)
        db.write(batch, sync=True)
        log.info("moved %d WAL records from LevelDB into %s", len(entries), self.folder)

    # ------------------------------------------------------------ use

    def append(self, records: list[WalRecord]) -> None:
        """Persist ``records`` durably: one write and one fdatasync."""
        if not records:
            return
        fd = self._require_open()
        parts, live = [], []
        offset, seq = self._end, self._next_seq
        for record in records:
            height = record_height(record)
            data = frame(seq, height, WAL_CODEC.encode(record))
            parts.append(data)
            live.append(_Live(seq, height, offset, len(data)))
            offset += len(data)
            seq += 1
        data = b"".join(parts)
        written = os.pwrite(fd, data, self._end)
        if written != len(data):
            raise StorageError(f"short write to the WAL in {self.folder}: {written} of {len(data)} bytes")
        os.fdatasync(fd)
        self._live.extend(live)
        self._end, self._next_seq = offset, seq

    def prune(self, below_height: int) -> int:
        """Forget every record with height < ``below_height``; return how many."""
        fd = self._require_open()
        keep = [e for e in self._live if e.height >= below_height]
        dropped = len(self._live) - len(keep)
        if dropped:
            frames = [(e.seq, e.height, os.pread(fd, e.size, e.offset)[_FRAME.size :]) for e in keep]
            self._start_generation(self._generation + 1, self._next_seq, frames)
        return dropped

    def entries(self) -> list[WalEntry]:
        """Every record, in append order."""
        fd = self._require_open()
        path = self._path(self._generation)
        return [WalEntry(e.seq, e.height, _decode(os.pread(fd, e.size, e.offset), _where(e, path))) for e in self._live]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _require_open(self) -> int:
        if self._fd is None:
            raise StoreClosed(f"the WAL in {self.folder} is closed")
        return self._fd


def check_folder(data_dir: Path) -> list[str]:
    """Problems of the WAL files in ``data_dir`` (for ``storage/integrity.py``), without changing them."""
    folder = data_dir / FOLDER
    if not folder.is_dir():
        return []
    problems: list[str] = []
    names = sorted(p.name for p in folder.iterdir() if _NAME.match(p.name))
    if len(names) > 1:
        problems.append(f"WAL: {len(names)} generations in {folder} ({', '.join(names)}); opening keeps the newest")
    for name in names[-1:]:
        path = folder / name
        try:
            scan = scan_file(path)
        except CorruptRecord as exc:
            problems.append(str(exc))
            continue
        if scan.damage is not None:
            problems.append(f"WAL file {path}: {scan.damage}")
        for e in scan.frames:
            where = _where(e, path)
            try:
                recorded = record_height(_decode(scan.data[e.offset : e.offset + e.size], where))
            except CorruptRecord as exc:
                problems.append(str(exc))
                continue
            except UsageError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if recorded != e.height:
                problems.append(f"{where}: stored with height {e.height}, but the record is of height {recorded}")
    return problems


# ---------------------------------------------------------------- the LevelDB WAL of earlier versions


def read_legacy_entries(reader: Reader) -> list[WalEntry]:
    entries: list[WalEntry] = []
    for key, value in reader.items(WAL, prefix_end(WAL)):
        seq = read_u64(key[len(WAL) :])
        try:
            record: WalRecord = WAL_CODEC.decode(value[8:])
            height = read_u64(value[:8])
        except DecodeError as exc:
            raise CorruptRecord(f"WAL record {seq}", key, str(exc)) from None
        entries.append(WalEntry(seq, height, record))
    return entries
