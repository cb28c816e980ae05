"""A typed, minimal wrapper around one plyvel (LevelDB) database.

Rules:

* one data directory is one LevelDB, held by one process (LevelDB's own
  ``LOCK`` file); a second opener gets ``DatabaseLocked`` naming the directory;
* every write goes through a ``Batch`` applied by ``Database.write`` as one
  LevelDB ``write_batch``: all of it becomes visible (and, with ``sync``,
  durable) at once, or none of it;
* reads go through the ``Reader`` protocol, which the database and its
  snapshots both implement, so the same read code serves either.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import plyvel

from storage.errors import DatabaseLocked, StorageError, StoreClosed

# Tuning (``medchain bench storage`` measures it; the figures are in
# docs/benchmarks.md).  A full block is a batch of a few hundred KiB, and a
# small memtable flushes every few blocks, stalling sustained commits on
# level-0 compactions; the healthcare mix also writes several state keys per
# transaction, so the memtable is large enough that a node under the mixed
# load rarely compacts.  Bloom filters make the "unknown tx id" lookups of
# admission and validation (almost always misses) skip the disk.  No block
# compression: the values are mostly hashes, keys and signatures, which snappy
# barely shrinks, while every first read of a block would pay to decompress it.
# Memory: a node's RSS holds the memtable (and a second while it flushes), the
# block cache, and the pages of the table files LevelDB maps to read them: a
# level-0 compaction reads about four memtables' worth of them at once.  At
# 64 MB and 256 MB, a 300 s closed loop on 4 validators peaked at 335-383 MB
# per node and slowed to 60% of its first 30 s; at 32 MB and 32 MB it committed
# 1,000,000 transactions, peaked at 244-262 MB and held 72-85%.  Once the WAL
# left LevelDB (storage/wal.py) the memtable fills at about half the rate, and
# at 16 MB the same run committed 1,000,000, peaked at 202-221 MB and held 87%
# of its first 30 s (docs/benchmarks.md).
WRITE_BUFFER_BYTES = 16 * 1024 * 1024
BLOCK_CACHE_BYTES = 32 * 1024 * 1024
BLOOM_FILTER_BITS = 10
COMPRESSION = None


class Reader(Protocol):
    """Point and range reads over the whole key space (database or snapshot)."""

    def get(self, key: bytes) -> bytes | None: ...

    def items(
        self, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]: ...

    def keys(self, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None) -> list[bytes]: ...


class Batch:
    """Writes collected in memory, applied atomically and in order by ``Database.write``."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []  # value None = delete

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append((key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append((key, None))

    def __len__(self) -> int:
        return len(self.ops)

    def size_bytes(self) -> int:
        return sum(len(k) + (0 if v is None else len(v)) for k, v in self.ops)


def _items(source: Any, start: bytes, stop: bytes, reverse: bool, limit: int | None) -> list[tuple[bytes, bytes]]:
    with source.iterator(start=start, stop=stop, reverse=reverse) as it:
        return list(it if limit is None else islice(it, limit))


def _keys(source: Any, start: bytes, stop: bytes, reverse: bool, limit: int | None) -> list[bytes]:
    with source.iterator(start=start, stop=stop, reverse=reverse, include_value=False) as it:
        return list(it if limit is None else islice(it, limit))


class Snapshot:
    """A consistent read-only view of the database at one moment."""

    def __init__(self, database: Database, snapshot: Any) -> None:
        self._database = database
        self._snapshot = snapshot
        self._released = False

    def _live(self) -> Any:
        if self._released:
            raise StoreClosed(f"snapshot of {self._database.path} was released")
        self._database.check_open()
        return self._snapshot

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._live().get(key)
        return value

    def items(
        self, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        return _items(self._live(), start, stop, reverse, limit)

    def keys(self, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None) -> list[bytes]:
        return _keys(self._live(), start, stop, reverse, limit)

    def release(self) -> None:
        if not self._released:
            self._released = True
            if not self._database.closed:
                self._snapshot.release()


class Database:
    """One LevelDB, opened exclusively by this process."""

    def __init__(self, path: Path, db: Any) -> None:
        self.path = path
        self._db = db

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Database:
        """Open (creating if missing) the LevelDB in directory ``path``."""
        directory = Path(path)
        db = open_leveldb(
            directory,
            "data directory",
            write_buffer_size=WRITE_BUFFER_BYTES,
            lru_cache_size=BLOCK_CACHE_BYTES,
            bloom_filter_bits=BLOOM_FILTER_BITS,
            compression=COMPRESSION,
        )
        return cls(directory, db)

    @property
    def closed(self) -> bool:
        closed: bool = self._db.closed
        return closed

    def check_open(self) -> None:
        if self._db.closed:
            raise StoreClosed(f"the store at {self.path} is closed")

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ reads

    def get(self, key: bytes) -> bytes | None:
        self.check_open()
        value: bytes | None = self._db.get(key)
        return value

    def point_reader(self, prefix: bytes) -> Callable[[bytes], bytes | None]:
        """``get(prefix + key)`` at C speed, for hot loops (a block's state reads); the store must stay open."""
        self.check_open()
        getter: Callable[[bytes], bytes | None] = self._db.prefixed_db(prefix).get
        return getter

    def items(
        self, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        self.check_open()
        return _items(self._db, start, stop, reverse, limit)

    def keys(self, start: bytes, stop: bytes, *, reverse: bool = False, limit: int | None = None) -> list[bytes]:
        self.check_open()
        return _keys(self._db, start, stop, reverse, limit)

    def snapshot(self) -> Snapshot:
        self.check_open()
        return Snapshot(self, self._db.snapshot())

    def is_empty(self) -> bool:
        self.check_open()
        with self._db.iterator(include_value=False) as it:
            return next(it, None) is None

    # ------------------------------------------------------------ writes

    def write(self, batch: Batch, *, sync: bool) -> None:
        """Apply ``batch`` as one LevelDB write batch; ``sync`` waits for fsync."""
        self.check_open()
        try:
            with self._db.write_batch(sync=sync, transaction=True) as wb:
                put, delete = wb.put, wb.delete
                for key, value in batch.ops:
                    if value is None:
                        delete(key)
                    else:
                        put(key, value)
        except plyvel.Error as exc:
            raise StorageError(f"write to {self.path} failed: {_message(exc)}") from None


def sync_directory(directory: Path) -> None:
    """Make a rename (or a creation) in ``directory`` durable: fsync the directory itself."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_leveldb(directory: Path, what: str, **options: Any) -> Any:
    """Open (creating if missing) the LevelDB in ``directory`` for this process alone.

    ``what`` names the folder in errors ("data directory", "vault directory"):
    ``DatabaseLocked`` when another process holds it, ``StorageError`` otherwise.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {what} {directory}: {exc.strerror or exc}") from None
    try:
        return plyvel.DB(str(directory), create_if_missing=True, **options)
    except plyvel.IOError as exc:
        message = _message(exc)
        if "lock" in message.lower():
            raise DatabaseLocked(
                f"{what} {directory} is locked: another medchain process seems to be using it "
                f"(stop that process or choose another data directory) [LevelDB: {message}]"
            ) from None
        raise StorageError(f"cannot open {what} {directory}: {message}") from None
    except plyvel.Error as exc:
        raise StorageError(f"cannot open {what} {directory}: {_message(exc)}") from None


def _message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg or exc)
