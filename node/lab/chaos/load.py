"""The load of a chaos run: honest transactions offered open loop, each waiting for its commit; a flooding client.

Honest transactions are offered at ``rate`` per second whatever happens to the
cluster (open loop), each to the next validator that looks up, with
``wait=commit``.  A committed answer is an acknowledgement (``Ack``); a node
that does not answer, times out or says its mempool is full gets the same
transaction again at another node, until the run's deadline.  Refusals and
errors are counted by code in the record.  The flooding client offers its
own transactions without waiting, as fast as ``rate`` says; what it is told
is counted under ``flood:<code>`` (what it got accepted, in a note).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from node.client.http import ApiFailure, NodeClient, NodeUnreachable, Reply
from node.healthcare.transactions import Anchor, make_transaction
from node.lab.chaos.record import Ack, RunRecord
from node.transaction import tx_id
from primitives.hashing import sha256
from primitives.signing import SigningKey

WAIT_S = 8  # the node's wait for a commit, per attempt
ANSWER_S = 12.0  # the client's limit for one attempt
DOWN_S = 1.0  # a node that failed is skipped this long
FLOOD_IN_FLIGHT = 256


def anchor_maker(key: SigningKey, chain_id: str, tag: str) -> Callable[[int], bytes]:
    """Transaction ``i`` of a load of anchors signed by ``key`` (unique per ``tag`` and ``i``)."""

    def make(i: int) -> bytes:
        label = f"chaos {tag} {i}"
        return make_transaction(key, chain_id, Anchor(sha256(label.encode()), label), int(time.time() * 1000))

    return make


class Load:
    """Offers the run's transactions to the validators and records what they answer."""

    def __init__(self, record: RunRecord, apis: dict[str, str], clock: Callable[[], float]) -> None:
        self.record = record
        self.apis = apis  # the validators: name -> API URL
        self.now = clock  # seconds since the run's start
        self.down_until: dict[str, float] = {}
        self.unreachable: set[str] = set()  # nodes the sampler did not reach on its last poll
        self._turn = itertools.cycle(list(apis))
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.flood_accepted = 0

    async def __aenter__(self) -> Load:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()
        if self._session is not None:
            await self._session.close()

    def _count(self, code: str) -> None:
        self.record.refused[code] = self.record.refused.get(code, 0) + 1

    def _pick(self) -> tuple[str, NodeClient]:
        """The next validator in turn that is not known to be down (any, if all are)."""
        assert self._session is not None
        now = self.now()
        for _ in range(len(self.apis)):
            name = next(self._turn)
            if self.down_until.get(name, 0.0) <= now and name not in self.unreachable:
                break
        return name, NodeClient(self.apis[name], self._session, timeout=ANSWER_S)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def offer(self, make: Callable[[int], bytes | None], rate: float, duration_s: float, deadline: float) -> None:
        """Offer ``make(0), make(1), ...`` at ``rate``/s for ``duration_s``; each is retried until ``deadline``."""
        start = self.now()
        for i in itertools.count():
            due = start + i / rate
            if due >= start + duration_s:
                return
            await asyncio.sleep(max(0.0, due - self.now()))
            data = make(i)
            if data is None:
                self.record.notes.append(f"the load ran out of transactions after {i}")
                return
            self.record.submitted += 1
            self._spawn(self._until_committed(data, deadline))

    async def _until_committed(self, data: bytes, deadline: float) -> None:
        submitted = self.now()
        while self.now() < deadline:
            name, client = self._pick()
            try:
                reply = await client.send("POST", f"/txs?wait=commit&timeout={WAIT_S}", data=data)
            except NodeUnreachable:
                self.down_until[name] = self.now() + DOWN_S
                self._count("unreachable")
                await asyncio.sleep(0.1)
                continue
            if self._answered(reply, name, data, submitted):
                return
        self._count("not acknowledged by the deadline")

    def _answered(self, reply: Reply, name: str, data: bytes, submitted: float) -> bool:
        """True when ``reply`` settles the transaction (committed, rejected, refused for good)."""
        try:
            doc = reply.json()
        except ApiFailure:  # a garbled answer is counted, then retried elsewhere
            doc = None
        if not isinstance(doc, dict):
            self._count(f"http-{reply.status}")
            return False
        if reply.status == 200 and doc.get("status") == "committed":
            height = doc.get("height")
            self.record.acks.append(
                Ack(tx_id(data).hex(), name, submitted, self.now(), height if isinstance(height, int) else None)
            )
            return True
        code = str(doc.get("code") or doc.get("error") or f"http-{reply.status}")
        self._count(code)
        if reply.status == 503:
            self.down_until[name] = self.now() + min(float(reply.headers.get("Retry-After", "1") or 1), 5.0)
        return reply.status not in (503, 504, 500)

    async def flood(self, make: Callable[[int], bytes], rate: float, for_s: float) -> None:
        """The flooding client: ``rate`` transactions per second for ``for_s``, none waited for."""
        assert self._session is not None
        start, slots = self.now(), asyncio.Semaphore(FLOOD_IN_FLIGHT)
        names = itertools.cycle(list(self.apis))
        for i in itertools.count():
            due = start + i / rate
            if due >= start + for_s:
                self.record.notes.append(f"the flooding client offered {i:,} transactions in {for_s:g} s "
                                         f"({self.flood_accepted:,} accepted so far)")
                return
            await asyncio.sleep(max(0.0, due - self.now()))
            if slots.locked():
                self._count("flood:client-backlog")
                continue
            await slots.acquire()
            client = NodeClient(self.apis[next(names)], self._session, timeout=5)
            self._spawn(self._flood_one(client, make(i), slots))

    async def _flood_one(self, client: NodeClient, data: bytes, slots: asyncio.Semaphore) -> None:
        try:
            reply = await client.send("POST", "/txs", data=data)
            if reply.status == 202:
                self.flood_accepted += 1
            else:
                self._count(f"flood:{_code(reply)}")
        except NodeUnreachable:
            self._count("flood:unreachable")
        finally:
            slots.release()

    def in_flight(self) -> int:
        return len(self._tasks)

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _code(reply: Reply) -> str:
    try:
        doc = reply.json()
    except ApiFailure:  # any body: the status says enough
        return f"http-{reply.status}"
    return str(doc.get("error") or f"http-{reply.status}") if isinstance(doc, dict) else f"http-{reply.status}"
