"""A virtual clock with an event queue, and a seeded model of the links between replicas.

Rules:

* time is an integer number of virtual milliseconds; nothing here reads a
  clock, and an action runs only when the queue reaches its time;
* actions at the same time run in the order they were scheduled, so the run
  is a function of the seed alone;
* a message between two replicas takes ``delay + uniform(0, jitter)`` ms (so
  messages reorder), is lost with probability ``drop`` (until the faults
  heal, unless the scenario keeps links lossy), and arrives a second time with
  probability ``duplicate``; a partition cuts every link between two groups
  until it heals.  Whether the receiving end is up is the
  cluster's business (see ``cluster.py``).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.sim.geography import Geography

Action = Callable[[], None]


class Scheduler:
    """A priority queue of actions keyed by virtual time."""

    def __init__(self) -> None:
        self.now = 0
        self._queue: list[tuple[int, int, Action]] = []
        self._seq = 0

    def at(self, time_ms: int, action: Action) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(time_ms, self.now), self._seq, action))

    def after(self, delay_ms: int, action: Action) -> None:
        self.at(self.now + delay_ms, action)

    def next_time(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def run_next(self) -> bool:
        """Run the earliest action; False when nothing is left."""
        if not self._queue:
            return False
        time_ms, _seq, action = heapq.heappop(self._queue)
        self.now = time_ms
        action()
        return True

    def __len__(self) -> int:
        return len(self._queue)


@dataclass(frozen=True, slots=True)
class LinkModel:
    delay_ms: int = 5
    jitter_ms: int = 45
    drop: float = 0.0
    duplicate: float = 0.0


class Network:
    """Which links are up, and what happens to one message on a link."""

    def __init__(self, n: int, model: LinkModel, rng: random.Random, geo: Geography | None = None) -> None:
        self.n = n
        self.model = model
        self.rng = rng
        self.geo = geo
        """With a geography, a message's delay is its link's latency, jitter and transmission time instead
        of ``model``'s delay and jitter (``consensus.sim.geography``)."""
        self.bytes_sent = 0
        self._group: list[int] | None = None
        self.lossy = model.drop > 0
        self.sent = 0
        self.lost = 0
        self.duplicated = 0

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        group = [0] * self.n
        for g, members in enumerate(groups):
            for i in members:
                group[i] = g
        self._group = group

    def heal(self) -> None:
        self._group = None

    def stop_loss(self) -> None:
        """Link loss is a fault too: from now on every message on a connected link arrives."""
        self.lossy = False

    @property
    def partitioned(self) -> bool:
        return self._group is not None

    def connected(self, a: int, b: int) -> bool:
        return self._group is None or self._group[a] == self._group[b]

    def delay(self, a: int = 0, b: int = 0, size: int = 0) -> int:
        geo = self.geo
        if geo is None:
            return self.model.delay_ms + self.rng.randint(0, self.model.jitter_ms)
        latency = geo.latency_ms(a, b)
        return max(1, round(latency + self.rng.uniform(0, geo.jitter * latency) + geo.transmission_ms(size)))

    def transit(self, a: int, b: int, size: int = 0) -> list[int]:
        """Delays of the copies of one ``size``-byte message from ``a`` to ``b`` that will arrive (maybe none)."""
        self.sent += 1
        self.bytes_sent += size
        if not self.connected(a, b) or (self.lossy and self.rng.random() < self.model.drop):
            self.lost += 1
            return []
        delays = [self.delay(a, b, size)]
        if self.model.duplicate and self.rng.random() < self.model.duplicate:
            self.duplicated += 1
            delays.append(self.delay(a, b, size))
        return delays
