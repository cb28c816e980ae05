"""An in-memory filter of the committed transaction ids, so a new transaction's replay check reads no LevelDB.

Every transaction a node admits is first looked up in the tx index (is it
committed already?), and nearly every answer is no.  In LevelDB a miss still
costs a memtable search and a bloom-filter probe per level-0 table and level,
a few microseconds per transaction per node.  ``CommittedTxs`` answers "surely
not committed" from memory (a Bloom filter, ``rbloom``) and leaves the rest to
the index, so it never changes an answer:

* ids are added before the block that commits them is written, so the filter
  never misses a committed transaction (an id added for a write that then
  fails is only a false positive: the index is read, and says no);
* a false positive (about 1% of new ids) costs the LevelDB read it saves
  otherwise;
* it is built at open by reading the tx index's keys (about 0.6 s per million
  transactions here) and grows by filters of twice the capacity, so the
  false-positive rate stays bounded as the chain grows (about 1.2 MB of memory
  per million transactions).
"""

from __future__ import annotations

from collections.abc import Iterable

from rbloom import Bloom

FALSE_POSITIVE_RATE = 0.01
FIRST_CAPACITY = 1 << 20


class CommittedTxs:
    """A growable Bloom filter of transaction ids: ``tid in filter`` is False only for ids never added."""

    __slots__ = ("_capacity", "_count", "_filters", "_room")

    def __init__(self, expected: int = 0, first_capacity: int = FIRST_CAPACITY) -> None:
        self._filters: list[Bloom] = []
        self._count = 0
        self._capacity = 0
        self._room = 0  # ids the newest filter still takes at its rate
        self._grow(max(first_capacity, 2 * expected))

    def _grow(self, capacity: int) -> None:
        self._filters.append(Bloom(capacity, FALSE_POSITIVE_RATE))
        self._capacity += capacity
        self._room = capacity

    def add_many(self, ids: Iterable[bytes]) -> None:
        items = ids if isinstance(ids, list) else list(ids)
        start = 0
        while start < len(items):
            if self._room == 0:
                self._grow(2 * self._capacity)
            take = items[start : start + self._room]
            self._filters[-1].update(take)
            self._room -= len(take)
            self._count += len(take)
            start += len(take)

    def __contains__(self, tid: object) -> bool:
        if len(self._filters) == 1:  # the usual case, kept to one probe
            return tid in self._filters[0]
        return any(tid in f for f in self._filters)

    def __len__(self) -> int:
        """Ids added (a repeated id counts again)."""
        return self._count

    @property
    def filters(self) -> int:
        return len(self._filters)
