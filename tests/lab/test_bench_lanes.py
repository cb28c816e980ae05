"""The bench's client sends each transaction to the node with the least outstanding, over real sockets.

Two HTTP servers on loopback stand in for two nodes' APIs: one answers every
request at once with 202, the other accepts connections and reads requests
but never answers, as a node stopped with SIGSTOP would (its kernel still
accepts and buffers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from node.lab.bench import Submitter, build_load

CONNECTIONS = 2


class _Answering(asyncio.Protocol):
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            length = next(int(line.split(b":")[1]) for line in self.buf[:end].split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            if self.answer:
                assert self.transport is not None
                self.transport.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
async def apis() -> AsyncIterator[list[tuple[str, int]]]:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(lambda a=answer: _Answering(a), "127.0.0.1", 0) for answer in (True, False)]
    try:
        yield [("127.0.0.1", s.sockets[0].getsockname()[1]) for s in servers]
    finally:
        for s in servers:
            s.close()


async def _settle(submitter: Submitter, answered: int) -> None:
    async with asyncio.timeout(10):
        while submitter.accepted < answered:
            await asyncio.sleep(0.001)


async def test_a_node_that_stops_answering_keeps_what_it_holds_and_is_offered_no_more(
    apis: list[tuple[str, int]],
) -> None:
    txs = [bytes([i % 256, i // 256]) * 8 for i in range(400)]
    submitter = Submitter(build_load(txs, apis), apis, CONNECTIONS)
    await submitter.open()
    try:
        healthy, stopped = submitter.lanes
        for i in range(len(txs)):  # a closed loop's way: the next goes out as one is answered
            submitter.offer(i, 0.0)
            await _settle(submitter, i + 1 - stopped.outstanding)
        assert submitter.offered == 400
        assert stopped.outstanding <= 2 and healthy.outstanding == 0
        assert submitter.accepted == 400 - stopped.outstanding
    finally:
        submitter.close()


async def test_an_even_load_goes_to_the_nodes_in_turn(apis: list[tuple[str, int]]) -> None:
    txs = [bytes([i]) * 16 for i in range(10)]
    submitter = Submitter(build_load(txs, apis), apis, CONNECTIONS)
    await submitter.open()
    try:
        for i in range(len(txs)):  # all at once: nobody has answered yet
            submitter.offer(i, 0.0)
        assert [lane.outstanding for lane in submitter.lanes] == [5, 5]
    finally:
        submitter.close()
