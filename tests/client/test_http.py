"""The one HTTP client, asynchronous and synchronous, against a real HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from node.client.http import ApiFailure, BadNodeUrl, NodeClient, NodeUnreachable, SyncNodeClient, node_url
from node.client.ledger import LedgerClient, SyncLedger, wait_height
from node.client.sse import ServerSentEvent, SseComment
from tests.harness import free_base_port

# ---------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:26601", "http://127.0.0.1:26601"),
        ("localhost:8080/", "http://localhost:8080"),
        ("http://127.0.0.1:26601/", "http://127.0.0.1:26601"),
        ("https://node.example.org", "https://node.example.org"),
        ("https://node.example.org/medchain/", "https://node.example.org/medchain"),
        (" [::1]:26601 ", "http://[::1]:26601"),
    ],
)
def test_node_addresses_with_or_without_a_scheme(text: str, url: str):
    assert node_url(text) == url


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "not a node address"),
        ("foo bar:1", "not a node address"),
        ("127.0.0.1", "no port"),
        ("127.0.0.1:99999", "out of range"),
        ("127.0.0.1:http", "not a node address"),
        ("ftp://127.0.0.1:21", "http:// or https://"),
        ("http://127.0.0.1:1/?x=1", "not a node address"),
    ],
)
def test_a_bad_node_address_says_why_in_one_line(text: str, says: str):
    with pytest.raises(BadNodeUrl, match=says) as err:
        node_url(text)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- a real server

HEIGHT = web.AppKey("height", int)


async def _status(request: web.Request) -> web.Response:
    return web.json_response({"chain_id": "test-chain", "height": request.app[HEIGHT]})


async def _missing(request: web.Request) -> web.Response:
    return web.json_response({"error": "not-found", "message": "no such block"}, status=404)


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html>not a node</html>", content_type="text/html")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"type": request.content_type, "bytes": len(await request.read())})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1)
    return web.json_response({})


async def _quiet(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.sleep(1)  # longer than the read timeout under test; the server's shutdown waits for it
    return response


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b": hello\n\n")
    for seq in range(3):
        await response.write(f'event: alert\nid: {seq}\ndata: {{"seq": {seq}}}\n\n'.encode())
    return response


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A small HTTP server in its own thread and event loop; yields its host:port."""
    app = web.Application()
    app[HEIGHT] = 5
    app.add_routes(
        [
            web.get("/status", _status),
            web.get("/missing", _missing),
            web.get("/html", _html),
            web.post("/echo", _echo),
            web.get("/slow", _slow),
            web.get("/stream", _stream),
            web.get("/quiet", _quiet),
        ]
    )
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    port = free_base_port(1)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_answers_are_json_and_errors_carry_status_and_code(server: str):
    async with NodeClient(server) as node:
        assert node.base == f"http://{server}"
        assert await node.status() == {"chain_id": "test-chain", "height": 5}
        with pytest.raises(ApiFailure) as err:
            await node.call("GET", "/missing")
        assert (err.value.status, err.value.code) == (404, "not-found")
        assert str(err.value) == "not-found: no such block (HTTP 404)"
        with pytest.raises(ApiFailure) as err:
            await node.call("GET", "/html")
        assert err.value.code == "bad-response" and "not JSON" in str(err.value)


async def test_send_returns_any_answer_with_its_status_headers_and_text(server: str):
    async with NodeClient(server) as node:
        missing = await node.send("GET", "/missing")
        assert missing.status == 404 and missing.json()["error"] == "not-found"
        assert missing.headers["content-type"].startswith("application/json")  # names are case-insensitive
        with pytest.raises(ApiFailure) as err:
            missing.result()
        assert err.value.code == "not-found"
        html = await node.send("GET", "/html")
        assert html.status == 200 and html.text == "<html>not a node</html>"
        with pytest.raises(ApiFailure, match="not JSON"):
            html.json()
        echoed = await node.send("POST", "/echo", data=b"{oops", content_type="application/json")
        assert echoed.result() == {"type": "application/json", "bytes": 5}


def test_the_synchronous_client_sends_too(server: str):
    with SyncNodeClient(server) as sync:
        assert sync.send("GET", "/missing").status == 404
        assert sync.send("GET", "/status").json()["height"] == 5


async def test_a_silent_stream_ends_after_the_read_timeout(server: str):
    async with NodeClient(server) as node:
        with pytest.raises(NodeUnreachable, match="did not answer in time"):
            _ = [item async for item in node.events("/quiet", read_timeout=0.2)]


async def test_bodies_go_as_octet_stream_or_json(server: str):
    async with NodeClient(server) as node:
        assert await node.call("POST", "/echo", data=b"\x00" * 10) == {"type": "application/octet-stream", "bytes": 10}
        assert await node.call("POST", "/echo", doc={"a": 1}) == {"type": "application/json", "bytes": 8}


async def test_no_answer_in_time_and_no_node_are_node_unreachable(server: str):
    async with NodeClient(server, timeout=0.2) as node:
        with pytest.raises(NodeUnreachable, match=r"did not answer within 0\.2s"):
            await node.call("GET", "/slow")
    async with NodeClient(f"127.0.0.1:{free_base_port(1)}") as node:
        with pytest.raises(NodeUnreachable, match="connection refused"):
            await node.status()


async def test_a_shared_session_is_left_open(server: str):
    async with aiohttp.ClientSession() as session:
        async with NodeClient(server, session) as node:
            await node.status()
        assert not session.closed
        assert (await NodeClient(server, session).status())["height"] == 5


async def test_events_are_parsed_from_the_stream(server: str):
    async with NodeClient(server) as node:
        items = [item async for item in node.events("/stream")]
        assert items[0] == SseComment("hello")
        assert [e.json()["seq"] for e in items[1:] if isinstance(e, ServerSentEvent)] == [0, 1, 2]
        with pytest.raises(ApiFailure) as err:
            _ = [item async for item in node.events("/missing")]
        assert err.value.status == 404


def test_the_synchronous_client_keeps_one_loop_and_session(server: str):
    with SyncNodeClient(server) as node:
        first = node.status()
        session = node.client.session
        assert node.status() == first and node.client.session is session
        with pytest.raises(ApiFailure):
            node.call("GET", "/missing")
    assert session.closed


async def test_the_ledger_client_builds_on_it(server: str):
    async with LedgerClient(server) as ledger:
        assert await ledger.chain() == "test-chain"
        with pytest.raises(ApiFailure) as err:
            await ledger.call("GET", "/missing")
        assert err.value.code == "not-found"
        await wait_height(ledger.session, [server], 5, timeout=5)
        with pytest.raises(NodeUnreachable, match="did not reach height 6"):
            await wait_height(ledger.session, [server], 6, timeout=0.3)


def test_the_synchronous_ledger_client_builds_on_the_synchronous_client(server: str):
    with SyncLedger(server) as sync:
        assert sync.status()["chain_id"] == "test-chain" and sync.key is None
