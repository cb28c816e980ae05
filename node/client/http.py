"""The one HTTP client of a node's API: asynchronous ``NodeClient``, synchronous ``SyncNodeClient``.

Every tool that talks to a node goes through here, so every one of them reads
node addresses the same way and reports failures the same way:

* ``node_url(text)`` turns what a person typed (``host:port``,
  ``http://host:port``, ``https://host/prefix``) into a base URL, or raises
  ``BadNodeUrl`` with a one-line reason.
* Failures are two exceptions, both one-line ``UsageError``\\ s:
  ``NodeUnreachable`` (no connection, no answer in time, an answer that is not
  HTTP) and ``ApiFailure`` (the node answered with an error: ``status`` is
  the HTTP status, ``code`` the API's error code, e.g. ``not-found``).

Asynchronous use (the bench, the lab tools, the tests)::

    async with NodeClient("127.0.0.1:26601") as node:     # its own session
        status = await node.status()
        block = await node.call("GET", "/blocks/3")
        result = await node.call("POST", "/txs?wait=commit", data=tx_bytes, timeout=40)
        batch = await node.submit_batch([tx1, tx2], wait=True, timeout=30)   # one result per tx
        reply = await node.send("POST", "/txs", data=tx_bytes)   # any status: reply.status, .json()
        async for event in node.events("/events"):         # server-sent events
            ...

A caller that already holds an ``aiohttp.ClientSession`` (to share one
connection pool between many nodes) passes it: ``NodeClient(url, session)``;
the client then never closes it.  ``events`` yields ``node.client.sse``
items: ``SseComment`` (the node's greeting once subscribed, keep-alives)
and ``ServerSentEvent``.

Synchronous use (the command line, scripts)::

    with SyncNodeClient("127.0.0.1:26601") as node:
        print(node.status()["height"])

The synchronous client keeps one event loop and one session for its life.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncGenerator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import aiohttp

from node.api.batch import MEDIA_TYPE, encode_batch
from node.client.sse import SseItem, SseParser
from node.documents import BatchReply, NodeStatus
from primitives.errors import UsageError

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0


class NodeUnreachable(UsageError):
    """No answer from the node: refused, timed out, or not an HTTP server."""


class ApiFailure(UsageError):
    """The node answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code


class BadNodeUrl(UsageError):
    """A node address that is not one."""


def node_url(text: str) -> str:
    """The base URL of the node at ``text``: ``host:port`` gets ``http://``; no trailing slash."""
    given = text.strip()
    what = f"{text!r} is not a node address; expected host:port or http://host:port"
    if not given or any(ch.isspace() for ch in given):
        raise BadNodeUrl(what)
    has_scheme = "://" in given
    try:
        url = urlsplit(given if has_scheme else "http://" + given)
        port = url.port
    except ValueError as exc:
        raise BadNodeUrl(f"{what} ({exc})") from None
    if url.scheme not in ("http", "https"):
        raise BadNodeUrl(f"{text!r}: a node speaks http:// or https://, not {url.scheme}://")
    if not url.hostname or url.query or url.fragment or url.username is not None:
        raise BadNodeUrl(what)
    if port is None and not has_scheme:
        raise BadNodeUrl(f"{what} (no port)")
    return f"{url.scheme}://{url.netloc}{url.path}".rstrip("/")


class NodeClient:
    """Asynchronous client of one node's API; every failure is ``NodeUnreachable`` or ``ApiFailure``."""

    def __init__(
        self, url: str, session: aiohttp.ClientSession | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.base = node_url(url)
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session requests go through (made on first use when none was given)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        doc: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send a request and return the node's answer whatever its status; only transport failures raise.

        For callers that act on the status themselves (a 503 to retry, a 404 to
        expect).  ``data`` goes as ``content_type`` (octet-stream unless given),
        ``doc`` as JSON.
        """
        headers = {}
        if doc is not None:
            data = json.dumps(doc).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        url = self.base + path
        seconds = timeout or self.timeout
        limit = aiohttp.ClientTimeout(total=seconds)
        try:
            async with self.session.request(method, url, data=data, headers=headers, timeout=limit) as resp:
                return Reply(resp.status, resp.headers, await resp.text(errors="replace"))
        except TimeoutError:
            raise NodeUnreachable(f"the node at {self.base} did not answer within {seconds:g}s") from None
        except aiohttp.ClientError as exc:
            raise unreachable(self.base, exc) from None

    async def call(
        self, method: str, path: str, *, data: bytes | None = None, doc: Any = None, timeout: float | None = None
    ) -> Any:
        """Send a request (``data`` as octet-stream, or ``doc`` as JSON) and return the JSON answer."""
        return (await self.send(method, path, data=data, doc=doc, timeout=timeout)).result()

    async def status(self) -> NodeStatus:
        found: NodeStatus = await self.call("GET", "/status")
        return found

    async def submit_batch(self, txs: Sequence[bytes], wait: bool = False, timeout: float = 30) -> BatchReply:
        """``POST /txs/batch``: signed transactions in one request, one result each in order.

        A refused transaction is its own result (``status`` refused, with ``error``);
        only a batch refused whole (undecodable, over the node's limits) raises ``ApiFailure``.
        With ``wait``, what has not committed within ``timeout`` seconds comes back as ``timeout``.
        """
        path = "/txs/batch" + (f"?wait=commit&timeout={timeout:g}" if wait else "")
        reply = await self.send("POST", path, data=encode_batch(txs), content_type=MEDIA_TYPE,
                                timeout=max(self.timeout, timeout + self.timeout if wait else 0))
        found: BatchReply = reply.result()
        return found

    async def events(
        self, path: str, connect_timeout: float | None = None, read_timeout: float | None = None
    ) -> AsyncGenerator[SseItem, None]:
        """The server-sent events of ``path`` (``/events``, ``/alerts/stream``) until the node ends the stream.

        ``read_timeout`` bounds the silence between two chunks (the node sends
        keep-alives); without it the stream may be quiet for ever.
        """
        limit = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout or self.timeout, sock_read=read_timeout)
        parser = SseParser()
        try:
            async with self.session.get(self.base + path, timeout=limit) as resp:
                if resp.status != 200:
                    Reply(resp.status, resp.headers, await resp.text(errors="replace")).result()
                    raise ApiFailure(resp.status, "not-a-stream", f"{path} is not an event stream")
                async for chunk in resp.content.iter_any():
                    for item in parser.feed(chunk):
                        yield item
        except TimeoutError:
            raise NodeUnreachable(f"the node at {self.base} did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise unreachable(self.base, exc) from None


def unreachable(base: str, exc: BaseException) -> NodeUnreachable:
    """The one-line error for a transport failure talking to ``base``."""
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):  # the OS's reason, without aiohttp's ssl and host details
        code = exc.os_error.errno
        reason = (os.strerror(code) if code and code > 0 else exc.os_error.strerror or reason).lower()
    return NodeUnreachable(f"cannot reach the node at {base}: {reason} (is a node running at that address?)")


@dataclass(frozen=True, slots=True)
class Reply:
    """A node's answer as received: HTTP status, headers and body text."""

    status: int
    headers: Mapping[str, str]  # case-insensitive names
    text: str

    def json(self) -> Any:
        """The body parsed as JSON (the API answers JSON everywhere but ``/metrics``)."""
        try:
            return json.loads(self.text)
        except ValueError:
            raise ApiFailure(self.status, "bad-response", f"the answer is not JSON: {self.text[:120]!r}") from None

    def result(self) -> Any:
        """The JSON body of a success; ``ApiFailure`` with the API's error code otherwise."""
        body = self.json()
        if self.status >= 400:
            found = body if isinstance(body, dict) else {}
            raise ApiFailure(self.status, str(found.get("error", "error")), str(found.get("message", "")))
        return body


class SyncNodeClient:
    """``NodeClient`` for synchronous code: one event loop and one session for the client's life."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._runner = asyncio.Runner()
        self.client = self._make(url, timeout)

    def _make(self, url: str, timeout: float) -> NodeClient:
        return NodeClient(url, timeout=timeout)

    @property
    def url(self) -> str:
        return self.client.base

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one of the asynchronous client's coroutines to completion."""
        return self._runner.run(coro)

    def call(
        self, method: str, path: str, *, data: bytes | None = None, doc: Any = None, timeout: float | None = None
    ) -> Any:
        return self.run(self.client.call(method, path, data=data, doc=doc, timeout=timeout))

    def send(
        self, method: str, path: str, *, data: bytes | None = None, doc: Any = None, content_type: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        return self.run(self.client.send(method, path, data=data, doc=doc, content_type=content_type, timeout=timeout))

    def status(self) -> NodeStatus:
        return self.run(self.client.status())

    def submit_batch(self, txs: Sequence[bytes], wait: bool = False, timeout: float = 30) -> BatchReply:
        return self.run(self.client.submit_batch(txs, wait, timeout))

    def close(self) -> None:
        try:
            self._runner.run(self.client.close())
        finally:
            self._runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

