"""The application's state: an opaque key/value namespace under its own prefix.

The store does not interpret keys or values.  The application reads through
``get`` (a ``StateReader``) and hands the writes of a block to
``ChainStore.commit_block`` as ``StateWrites`` (value ``None`` deletes the
key); they land in the block's own batch, so the state on disk is always the
state after the head block.  Prefix scans are bounded (``MAX_STATE_ITEMS``)
and paged with ``after``.
"""

from __future__ import annotations

from collections.abc import Mapping

from primitives.errors import UsageError
from storage.database import Batch, Reader
from storage.keys import STATE, prefix_end, state_key

StateWrites = Mapping[bytes, bytes | None]
"""Puts (key -> value) and deletes (key -> None) of one block, applied together."""

MAX_STATE_ITEMS = 10_000


def add_state_writes(batch: Batch, writes: StateWrites) -> None:
    # A block of the healthcare mix writes about five keys per transaction: the loop makes no calls.
    ops, prefix = batch.ops, STATE
    for key, value in writes.items():
        if type(key) is not bytes or (value is not None and type(value) is not bytes):
            _refuse(key, value)
        ops.append((prefix + key, value))  # value None deletes


def _refuse(key: object, value: object) -> None:
    if type(key) is not bytes:
        raise UsageError(f"state keys are bytes, got {type(key).__name__}")
    raise UsageError(f"state value for {key!r} must be bytes or None, got {type(value).__name__}")


def read_state(reader: Reader, key: bytes) -> bytes | None:
    return reader.get(state_key(key))


def read_state_items(
    reader: Reader, prefix: bytes = b"", *, after: bytes | None = None, limit: int = 1_000
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` (key, value) pairs whose key starts with ``prefix``, in key order.

    ``after`` (exclusive) continues a previous page: pass its last key.
    """
    if not 0 < limit <= MAX_STATE_ITEMS:
        raise UsageError(f"limit must be in [1, {MAX_STATE_ITEMS}], got {limit}")
    start = state_key(prefix)
    if after is not None:
        if not after.startswith(prefix):
            raise UsageError("'after' must start with the prefix")
        start = state_key(after) + b"\x00"
    return [(key[len(STATE):], value) for key, value in reader.items(start, prefix_end(STATE + prefix), limit=limit)]
