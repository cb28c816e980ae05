"""A validator's Byzantine switch: its consensus traffic through ``consensus.byzantine.Adversary``.

Off by default.  Switched on (by the operator, through the admin interface)
the node's own replica keeps running honestly underneath, and what it sends
goes through the same ``Adversary`` the simulator uses, holding only this
node's key, so everything it signs is evidence against it.  Two behaviours also
act on their own: ``stale`` replays recorded messages and ``garbage`` sends
bursts of random raw frames to every peer (peers penalise each undecodable
frame and close the link after ten), both every ``TICK_S``.
"""

from __future__ import annotations

import asyncio
import logging
import random

from consensus.byzantine import BEHAVIOURS, Adversary
from consensus.events import Send
from consensus.messages import CommitCertificate
from node.p2p.transport import Transport
from node.p2p.wire import NODE_CODEC, ConsensusFrame
from primitives.signing import SigningKey

log = logging.getLogger("medchain.byzantine")

TICK_S = 0.2


class ByzantineSwitch:
    """Holds the node's ``Adversary`` while a behaviour is on, and the task that acts on its own."""

    def __init__(self, transport: Transport, validators: list[str], index: int, key: SigningKey, chain_id: str):
        self.transport = transport
        self.validators = validators
        self.index = index
        self.key = key
        self.chain_id = chain_id
        self.adversary: Adversary | None = None
        self._seed: int | str = f"{transport.name}/byzantine"
        self._task: asyncio.Task[None] | None = None

    @property
    def behaviour(self) -> str | None:
        return None if self.adversary is None else self.adversary.behaviour

    def reseed(self, seed: int | str) -> None:
        """The seed of the next behaviour switched on (and of the current one, from now on)."""
        self._seed = seed
        if self.adversary is not None:
            self.adversary.rng = random.Random(seed)

    def switch(self, behaviour: str | None, seed: int | None = None) -> None:
        """Turn ``behaviour`` on (replacing any other), or every behaviour off with None."""
        if behaviour is not None and behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; choose one of {', '.join(BEHAVIOURS)} or none")
        if seed is not None:
            self._seed = seed
        old = self.behaviour
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.adversary = None
        if behaviour is not None:
            rng = random.Random(self._seed)
            self.adversary = Adversary(behaviour, {self.index: self.key}, len(self.validators), self.chain_id, rng)
            if behaviour in ("stale", "garbage"):
                self._task = asyncio.get_running_loop().create_task(self._tick(), name=f"byzantine-{behaviour}")
        if behaviour is not None:
            log.warning("Byzantine behaviour %r switched on (was %s)", behaviour, old or "honest",
                        extra={"event": "byzantine-on", "behaviour": behaviour})
        elif old is not None:
            log.warning("Byzantine behaviour %r switched off: honest again", old,
                        extra={"event": "byzantine-off", "behaviour": old})

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # ------------------------------------------------------------ the node's hooks

    def send(self, send: Send) -> None:
        """Put one of the replica's messages on the wire as the behaviour has it."""
        assert self.adversary is not None
        for target, data in self.adversary.outgoing(self.index, send):
            self.transport.send(self.validators[target], NODE_CODEC.encode(ConsensusFrame(data)))

    def received(self, data: bytes) -> None:
        if self.adversary is not None:
            self.adversary.received(self.index, data)

    @property
    def silent(self) -> bool:
        """No consensus frames out (not even relayed ones), no blocks served."""
        return self.adversary is not None and not self.adversary.serves_blocks

    def served(self, cert: CommitCertificate) -> CommitCertificate:
        return cert if self.adversary is None else self.adversary.served_certificate(cert)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            adversary = self.adversary
            if adversary is None:
                return
            for target, data in adversary.replays(self.index):
                self.transport.send(self.validators[target], NODE_CODEC.encode(ConsensusFrame(data)))
            flood = adversary.flood(self.index)
            for target, data in flood:  # raw frames, not even a wire record
                self.transport.send(self.validators[target], data)
            if flood:
                log.debug("sent %d garbage frames to the other validators (%d so far)", len(flood),
                          adversary.garbage_sent)
