"""The P2P port bounds unauthenticated TLS handshakes in time and in number (``node.p2p.listener``).

Real sockets against a real ``Transport`` on 127.0.0.1: silent clients connect
and never send a byte, the way a slow-loris attacker or a stuck scanner would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from node.p2p.listener import MAX_PENDING_HANDSHAKES, TLS_HANDSHAKE_TIMEOUT
from tests.node.test_p2p import Net, mesh, round_trip, wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    network = Net(tmp_path)
    try:
        yield network
    finally:
        await network.stop_all()


@asynccontextmanager
async def silent_clients(port: int, count: int) -> AsyncIterator[list[asyncio.Task[bytes]]]:
    """``count`` TCP connections to ``port`` that send nothing; each task ends with what it read before EOF."""
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    reads = [asyncio.create_task(reader.read()) for reader, _ in streams]
    try:
        yield reads
    finally:
        for task in reads:
            task.cancel()
        for _, writer in streams:
            writer.close()
        await asyncio.gather(*reads, return_exceptions=True)


async def test_a_client_that_connects_and_sends_nothing_is_closed_within_the_handshake_bound(net: Net):
    (a,) = net.identities("a")
    await net.start(a, [a])
    async with silent_clients(a.port, 1) as (read,):
        async with asyncio.timeout(TLS_HANDSHAKE_TIMEOUT + 5):
            assert await read == b""  # the server hung up without a word


async def test_a_flood_of_silent_connections_is_bounded_and_a_real_peer_still_connects(net: Net):
    a, b = net.identities("a", "b")  # a has the lower key: it dials b
    nb = await net.start(b, [a, b])
    flood = 3 * MAX_PENDING_HANDSHAKES
    listener = nb.transport.listener
    assert listener is not None
    async with silent_clients(b.port, flood) as reads:
        await wait_for(lambda: listener.accepted >= flood, what=f"{flood} connections accepted")
        # past the bound, each newcomer pushed out the oldest pending handshake
        assert listener.pending <= MAX_PENDING_HANDSHAKES
        assert listener.aborted >= flood - MAX_PENDING_HANDSHAKES
        await wait_for(lambda: sum(r.done() for r in reads) >= flood - MAX_PENDING_HANDSHAKES,
                       what="the pushed-out connections to be closed")
        na = await net.start(a, [a, b])
        await mesh(na, nb)
        await round_trip(na, nb, b"after the flood")
