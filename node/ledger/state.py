"""The state a block executes against: the previous block's state plus this block's writes.

``Overlay`` buffers writes (``None`` deletes) over a read-only base; ``scan``
merges both for a key prefix, in key order.  ``Ctx`` is what one rule sees:
the transaction, its id, the block's height and time, and the state.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgpack

from primitives.codec import Kind, ListOf, Nested, Optional, pack

R = TypeVar("R")


Convert = Callable[[Any], Any]
_READERS: dict[type, Convert] = {}


def _reader(kind: Kind) -> Convert | None:
    """How a field of ``kind`` goes from unpacked msgpack to Python (None: as it is)."""
    if isinstance(kind, Nested):
        return _record_reader(kind.cls)
    if isinstance(kind, Optional):
        opt = _reader(kind.inner)
        if opt is None:
            return None
        return lambda v: None if v is None else opt(v)
    if isinstance(kind, ListOf):
        each = _reader(kind.inner)
        if each is None:
            return tuple
        return lambda v: tuple(map(each, v))
    return None


def _record_reader(cls: type) -> Convert:
    found = _READERS.get(cls)
    if found is None:
        fields = [_reader(k) for k in cls.SCHEMA]  # type: ignore[attr-defined]
        if all(f is None for f in fields):
            def found(v: Any) -> Any:
                return cls(*v)
        else:
            def found(v: Any) -> Any:
                return cls(*[x if f is None else f(x) for f, x in zip(fields, v, strict=True)])
        _READERS[cls] = found
    return found


_WRITERS: dict[type, Convert] = {}


def _writer(kind: Kind) -> Convert | None:
    if isinstance(kind, Nested):
        return _record_writer(kind.cls)
    if isinstance(kind, Optional):
        opt = _writer(kind.inner)
        if opt is None:
            return None
        return lambda v: None if v is None else opt(v)
    if isinstance(kind, ListOf):
        each = _writer(kind.inner)
        if each is None:
            return None
        return lambda v: [each(x) for x in v]
    return None


def _record_writer(cls: type) -> Convert:
    found = _WRITERS.get(cls)
    if found is None:
        names = [f.name for f in dataclasses.fields(cls)]
        fields = list(zip(names, [_writer(k) for k in cls.SCHEMA], strict=True))  # type: ignore[attr-defined]

        def found(v: Any) -> Any:
            return [getattr(v, n) if f is None else f(getattr(v, n)) for n, f in fields]

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


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class RangeReader(StateReader, Protocol):
    """A state that also reads key ranges in order (the chain store, ``DictState``)."""

    def state_items(self, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1000
                    ) -> list[tuple[bytes, bytes]]: ...


class Rejected(Exception):
    """A rule refused the transaction: ``code`` is machine-readable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Overlay:
    base: StateReader
    writes: dict[bytes, bytes | None] = field(default_factory=dict)
    _sorted: list[bytes] | None = None  # the written keys in order, built at the first range read

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        if self._sorted is not None and key not in self.writes:
            bisect.insort(self._sorted, key)
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.put(key, None)

    def update(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            self.put(key, value)

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
        raw = self.get(key)
        return None if raw is None else decode_state(cls, raw)

    def store(self, key: bytes, record: Any) -> None:
        self.put(key, encode_state(record))

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
