"""The state a block executes against: the previous block's state plus this block's writes.

``Overlay`` buffers writes (``None`` deletes) over a read-only base; ``scan``
merges both for a key prefix, in key order.  ``Ctx`` is what one rule sees:
the transaction, its id, the block's height and time, and the state.
"""

from __future__ import annotations

import bisect
import dataclasses
import operator
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgpack

from node.app import StateReader
from primitives.codec import Kind, ListOf, Nested, Optional, pack

R = TypeVar("R")


Convert = Callable[[Any], Any]
_READERS: dict[type, Convert] = {}
_WRITERS: dict[type, Convert] = {}


def _converter(kind: Kind, record: Callable[[type], Convert], each_list: Convert | None) -> Convert | None:
    """How a value of ``kind`` is converted, field by field (None: used as it is).

    ``record`` converts a nested record; ``each_list`` is what a list of
    plain values needs (``tuple`` when reading, nothing when writing).
    """
    if isinstance(kind, Nested):
        return record(kind.cls)
    if isinstance(kind, Optional):
        opt = _converter(kind.inner, record, each_list)
        if opt is None:
            return None
        return lambda v: None if v is None else opt(v)
    if isinstance(kind, ListOf):
        each = _converter(kind.inner, record, each_list)
        if each is None:
            return each_list
        if each_list is None:  # writing: a list of converted items
            return lambda v: [each(x) for x in v]
        return lambda v: tuple(map(each, v))
    return None


def _record_reader(cls: type) -> Convert:
    """Unpacked msgpack -> record; only the fields that need it are converted."""
    found = _READERS.get(cls)
    if found is None:
        convert = [(i, f) for i, k in enumerate(cls.SCHEMA)  # type: ignore[attr-defined]
                   if (f := _converter(k, _record_reader, tuple)) is not None]
        if not convert:
            def found(v: Any) -> Any:
                return cls(*v)
        else:
            def found(v: Any) -> Any:
                for i, f in convert:
                    v[i] = f(v[i])
                return cls(*v)
        _READERS[cls] = found
    return found


def _record_writer(cls: type) -> Convert:
    """Record -> what msgpack packs (a tuple packs as an array, like a list)."""
    found = _WRITERS.get(cls)
    if found is None:
        names = [f.name for f in dataclasses.fields(cls)]
        convert = [(i, f) for i, k in enumerate(cls.SCHEMA)  # type: ignore[attr-defined]
                   if (f := _converter(k, _record_writer, None)) is not None]
        get = operator.attrgetter(*names)
        if len(names) == 1:
            only = convert[0][1] if convert else None  # attrgetter of one name gives the value, not a tuple
            if only is None:
                def found(v: Any) -> Any:
                    return (get(v),)
            else:
                def found(v: Any) -> Any:
                    return (only(get(v)),)
        elif not convert:
            found = get
        else:
            def found(v: Any) -> Any:
                out = list(get(v))
                for i, f in convert:
                    out[i] = f(out[i])
                return out
        _WRITERS[cls] = found
    return found


def encode_state(record: Any) -> bytes:
    """The canonical bytes of a record the rules built (same bytes as ``encode``, without its checks)."""
    return pack(_record_writer(type(record))(record))


def decode_state(cls: type[R], data: bytes) -> R:
    """Decode a state value this application wrote itself (trusted: no per-field checks).

    State values were encoded canonically by ``encode`` when they were stored, so
    the strict checks that guard wire input would only cost time here.
    """
    value: R = _record_reader(cls)(msgpack.unpackb(data, raw=False, use_list=True))
    return value


class RangeReader(StateReader, Protocol):
    """A state that also reads key ranges in order (the chain store, ``DictState``)."""

    def state_items(self, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1000
                    ) -> list[tuple[bytes, bytes]]: ...


_UNREAD = object()


class _EveryKey:
    """A base without a filter of its written keys: every key may hold a value."""

    def __contains__(self, key: object) -> bool:
        return True


_EVERY_KEY = _EveryKey()


class BlockReader:
    """The state before a block, each key read from the store at most once while the block executes.

    Rules read the same keys again and again (a signer's membership, a
    licence, a lot): the base does not change during the block, so a read is
    remembered.  Range reads go to the store.
    """

    __slots__ = ("_read", "_reads", "_written", "state_items")

    def __init__(self, base: StateReader) -> None:
        fast = getattr(base, "state_reader", None)  # the chain store's direct LevelDB reads
        self._read: Callable[[bytes], bytes | None] = fast() if fast is not None else base.get
        written = getattr(base, "written_state_keys", None)  # the chain store's filter: a key not in it is empty
        self._written: Container[bytes] = written() if written is not None else _EVERY_KEY
        self._reads: dict[bytes, bytes | None] = {}
        self.state_items = getattr(base, "state_items", None)

    def get(self, key: bytes) -> bytes | None:
        value = self._reads.get(key, _UNREAD)
        if value is _UNREAD:  # no exception on a miss: most of a block's reads are first reads
            value = self._reads[key] = self._read(key) if key in self._written else None
        return value  # type: ignore[return-value]


@dataclass(slots=True)
class Overlay:
    """Writes over a read-only base; decoded records are kept, so a key is decoded once.

    Records are immutable, so one decoded object serves every later ``load``
    until the key is written again.
    """

    base: StateReader
    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    _sorted: list[bytes] | None = None  # the written keys in order, built at the first range read
    _records: dict[bytes, Any] = field(default_factory=dict)  # key -> decoded record (of the value now)
    # While a transaction runs (``begin``): each key it wrote, and its value here before (_UNREAD: not written).
    _undo: dict[bytes, Any] | None = None

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        self._put(key, value)
        self._records.pop(key, None)

    def _put(self, key: bytes, value: bytes | None) -> None:
        """Write ``value``; the caller sets or drops the decoded record of ``key``."""
        writes = self.writes
        before = writes.get(key, _UNREAD)
        undo = self._undo
        if undo is not None and key not in undo:
            undo[key] = before
        if before is _UNREAD and self._sorted is not None:
            bisect.insort(self._sorted, key)
        writes[key] = value

    def begin(self) -> None:
        """Start a transaction's writes: ``rollback`` undoes them all, ``commit`` keeps them."""
        self._undo = {}

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        """Undo the transaction's writes; their decoded records are dropped (decoded again when loaded)."""
        undo, self._undo = self._undo or {}, None
        for key, before in undo.items():
            if before is _UNREAD:
                del self.writes[key]
                if self._sorted is not None:
                    del self._sorted[bisect.bisect_left(self._sorted, key)]
            else:
                self.writes[key] = before
            self._records.pop(key, None)

    def delete(self, key: bytes) -> None:
        self.put(key, None)

    def _written(self, prefix: bytes, after: bytes | None, limit: int) -> list[bytes]:
        if self._sorted is None:
            self._sorted = sorted(self.writes)
        keys = self._sorted
        start = bisect.bisect_right(keys, after) if after is not None and after >= prefix else \
            bisect.bisect_left(keys, prefix)
        out: list[bytes] = []
        for key in keys[start:]:
            if not key.startswith(prefix) or len(out) >= limit:
                break
            out.append(key)
        return out

    def load(self, cls: type[R], key: bytes) -> R | None:
        found = self._records.get(key)
        if found is not None and type(found) is cls:
            return found
        if key not in self.writes and isinstance(self.base, Overlay):
            return self.base.load(cls, key)
        raw = self.get(key)
        if raw is None:
            return None
        record = self._records[key] = decode_state(cls, raw)
        return record

    def store(self, key: bytes, record: Any) -> None:
        self.store_encoded(key, record, encode_state(record))

    def store_encoded(self, key: bytes, record: Any, encoded: bytes) -> None:
        """``store`` when the caller has ``encode_state(record)`` already (one record under many keys)."""
        self._put(key, encoded)
        self._records[key] = record

    def scan(self, prefix: bytes, limit: int, after: bytes | None = None) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` live (key, value) pairs under ``prefix`` (after ``after``, exclusive), in key order."""
        items: dict[bytes, bytes | None] = {}
        base_items = getattr(self.base, "state_items", None)
        if base_items is not None:
            items.update(base_items(prefix, after=after, limit=min(limit + len(self.writes), 10_000)))
        items.update((k, self.writes[k]) for k in self._written(prefix, after, limit + len(items)))
        live = sorted((k, v) for k, v in items.items() if v is not None)
        return live[:limit]

    def state_items(self, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1000
                    ) -> list[tuple[bytes, bytes]]:
        return self.scan(prefix, limit, after)


class DictState:
    """A plain in-memory state (tests, replays): ``get`` and ``state_items`` like the chain store."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def state_items(self, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1000
                    ) -> list[tuple[bytes, bytes]]:
        keys = sorted(k for k in self.data if k.startswith(prefix) and (after is None or k > after))
        return [(k, self.data[k]) for k in keys[:limit]]

    def apply(self, writes: dict[bytes, bytes | None]) -> None:
        for k, v in writes.items():
            if v is None:
                self.data.pop(k, None)
            else:
                self.data[k] = v


@dataclass(slots=True)
class Ctx:
    signer: bytes
    tx_id: bytes
    height: int
    time_ms: int
    state: Overlay
