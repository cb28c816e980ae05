"""Which validators decide which height: the genesis set and the changes the ledger scheduled.

A validator-set change is decided like any other transaction, and takes
effect at a height stated in it.  Every replica learns of it when it executes
the block that carries it, so all switch at the same block.  The rule that
makes this safe without a second protocol: a change committed in block ``c``
takes effect no earlier than ``c + ACTIVATION_DELAY``.  A replica that has
executed height ``e`` therefore knows the set of every height up to
``e + ACTIVATION_DELAY`` (its *horizon*); a message for a height beyond it
cannot be checked yet and is left for later (see ``Replica``).

Indices (``sender`` in a message, a vote's ``validator``) are positions in
the set in force at the message's height.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consensus.quorum import max_faulty, quorum, weak_quorum
from primitives.errors import UsageError
from primitives.signing import VerifyKey

ACTIVATION_DELAY = 2
"""A change committed at height c takes effect at c + 2 or later: with 2, the set of the height a replica
is deciding is known even before it has executed the block below (horizon = executed + 2)."""


@dataclass(frozen=True, slots=True)
class ValidatorChange:
    """From ``height`` on, ``validators`` (in this order) decide."""

    height: int
    validators: tuple[VerifyKey, ...]

    def __post_init__(self) -> None:
        if self.height < 2:
            raise UsageError("a validator-set change takes effect at height 2 or later")
        if not self.validators:
            raise UsageError("a validator set cannot be empty")
        if len({k.raw for k in self.validators}) != len(self.validators):
            raise UsageError("a validator set names one key twice")


class ValidatorSet:
    """One set: its keys in order, and its fault-tolerance arithmetic."""

    __slots__ = ("_position", "f", "keys", "n", "quorum", "weak_quorum")

    def __init__(self, keys: Sequence[VerifyKey]) -> None:
        self.keys = tuple(keys)
        self.n = len(self.keys)
        self.f = max_faulty(self.n)
        self.quorum = quorum(self.n)
        self.weak_quorum = weak_quorum(self.n)
        self._position = {k.raw: i for i, k in enumerate(self.keys)}

    def index_of(self, key: VerifyKey) -> int | None:
        return self._position.get(key.raw)


class Schedule:
    """The sets in force from height 1 on: genesis, then each change in height order."""

    def __init__(self, genesis: Sequence[VerifyKey], changes: Iterable[ValidatorChange] = ()) -> None:
        self._starts: list[int] = [1]
        self._sets: list[ValidatorSet] = [ValidatorSet(genesis)]
        for change in changes:
            self.add(change)

    def add(self, change: ValidatorChange) -> bool:
        """Schedule ``change``; False when it is already known (a replay of the same block).

        Changes arrive in the order the ledger scheduled them, each later than the last.
        """
        if change.height <= self._starts[-1]:
            at = bisect_right(self._starts, change.height) - 1
            if self._starts[at] == change.height and self._sets[at].keys == change.validators:
                return False
            raise UsageError(
                f"a validator-set change at height {change.height} comes after one at {self._starts[-1]}"
            )
        self._starts.append(change.height)
        self._sets.append(ValidatorSet(change.validators))
        return True

    def at(self, height: int) -> ValidatorSet:
        if len(self._sets) == 1:
            return self._sets[0]
        return self._sets[max(0, bisect_right(self._starts, height) - 1)]

    @property
    def genesis(self) -> ValidatorSet:
        return self._sets[0]

    @property
    def changes(self) -> tuple[ValidatorChange, ...]:
        return tuple(ValidatorChange(h, s.keys) for h, s in zip(self._starts[1:], self._sets[1:], strict=True))

    def starts(self) -> tuple[int, ...]:
        """The first height of each set, genesis's (1) included."""
        return tuple(self._starts)
