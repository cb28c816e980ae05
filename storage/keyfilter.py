"""In-memory filters of the keys a store holds, so a read of a key that was never written skips LevelDB.

Two reads on a node's hot path nearly always miss: a new transaction's
replay check (is its id in the tx index?) and a rule's existence check (is
this document anchored, this serial commissioned?).  In LevelDB a miss still
costs a memtable search and a bloom-filter probe per level-0 table and level,
a few microseconds per transaction per node.  A ``KeyFilter`` (a Bloom filter,
``rbloom``) answers "surely absent" from memory and leaves the rest to
LevelDB, so it never changes an answer:

* keys are added before the batch that writes them, so the filter never misses
  a stored key (a key added for a write that then fails, or later deleted, is
  only a false positive: LevelDB is read, and says no);
* a false positive (about 1% of absent keys) costs the read it saves otherwise;
* it is built at open by reading the keys under its prefix (opening a store
  of 600,000 such keys took 0.27-0.33 s here, 0.16-0.18 s of it reading the
  keys) and grows by filters of twice the capacity, so the
  false-positive rate stays bounded as the chain grows (about 1.2 MB of memory
  per million keys).
"""

from __future__ import annotations

from collections.abc import Iterable

from rbloom import Bloom

FALSE_POSITIVE_RATE = 0.01
FIRST_CAPACITY = 1 << 20


class KeyFilter:
    """A growable Bloom filter of keys: ``key in filter`` is False only for keys never added."""

    __slots__ = ("_capacity", "_count", "_filters", "_room")

    def __init__(self, expected: int = 0, first_capacity: int = FIRST_CAPACITY) -> None:
        self._filters: list[Bloom] = []
        self._count = 0
        self._capacity = 0
        self._room = 0  # keys the newest filter still takes at its rate
        self._grow(max(first_capacity, 2 * expected))

    def _grow(self, capacity: int) -> None:
        self._filters.append(Bloom(capacity, FALSE_POSITIVE_RATE))
        self._capacity += capacity
        self._room = capacity

    def add_many(self, keys: Iterable[bytes]) -> None:
        items = keys if isinstance(keys, list) else list(keys)
        start = 0
        while start < len(items):
            if self._room == 0:
                self._grow(2 * self._capacity)
            take = items[start : start + self._room]
            self._filters[-1].update(take)
            self._room -= len(take)
            self._count += len(take)
            start += len(take)

    def __contains__(self, key: object) -> bool:
        if len(self._filters) == 1:  # the usual case, kept to one probe
            return key in self._filters[0]
        return any(key in f for f in self._filters)

    def __len__(self) -> int:
        """Keys added (a repeated key counts again)."""
        return self._count

    @property
    def filters(self) -> int:
        return len(self._filters)
