"""The state a block executes against: the previous block's state plus this block's writes.

``Overlay`` buffers writes (``None`` deletes) over a read-only base; ``scan``
merges both for a key prefix, in key order.  ``Ctx`` is what one rule sees:
the transaction, its id, the block's height and time, and the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from primitives.codec import decode, encode

R = TypeVar("R")


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

    def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def load(self, cls: type[R], key: bytes) -> R | None:
        raw = self.get(key)
        return None if raw is None else decode(cls, raw)

    def store(self, key: bytes, record: Any) -> None:
        self.writes[key] = encode(record)

    def scan(self, prefix: bytes, limit: int, after: bytes | None = None) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` live (key, value) pairs under ``prefix`` (after ``after``, exclusive), in key order."""
        items: dict[bytes, bytes | None] = {}
        base_items = getattr(self.base, "state_items", None)
        if base_items is not None:
            items.update(base_items(prefix, after=after, limit=min(limit + len(self.writes), 10_000)))
        items.update((k, v) for k, v in self.writes.items()
                     if k.startswith(prefix) and (after is None or k > after))
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
