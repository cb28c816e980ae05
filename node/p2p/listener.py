"""The P2P port's accept loop: TLS handshakes bounded in time and in number.

Until its TLS handshake completes, a connection is unauthenticated: anyone who
can reach the port can open one and then stay silent.  So the listener, not
the HTTP server, accepts connections and runs each TLS handshake itself:

* a handshake that has not completed within ``handshake_timeout`` seconds is
  aborted and its socket closed;
* at most ``max_pending`` handshakes run at once; one more makes the listener
  abort the *oldest* pending handshake, not refuse the newcomer.  A member's
  handshake completes in milliseconds, so a flood of silent connections keeps
  cycling through the slots while a real peer still gets in.

A completed connection is handed to the HTTP server's protocol factory; from
there on the transport's own application handshake (``node.p2p.transport``)
decides whether it is a member.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger("medchain.p2p")

TLS_HANDSHAKE_TIMEOUT = 3.0
MAX_PENDING_HANDSHAKES = 64


class TlsListener:
    def __init__(
        self,
        listen: tuple[str, int],
        ssl_context: ssl.SSLContext,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT,
        max_pending: int = MAX_PENDING_HANDSHAKES,
    ) -> None:
        self.listen = listen
        self.ssl_context = ssl_context
        self.protocol_factory = protocol_factory
        self.handshake_timeout = handshake_timeout
        self.max_pending = max_pending
        self.accepted = 0
        """Connections accepted on the port."""
        self.aborted = 0
        """Handshakes aborted: timed out, failed, or pushed out by newer ones."""
        self._pending: OrderedDict[asyncio.Task[None], None] = OrderedDict()
        self._socket: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """TLS handshakes under way now."""
        return len(self._pending)

    async def start(self) -> None:
        host, port = self.listen
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        try:
            self._socket = socket.create_server(address[:2], family=family, backlog=128)
        except OSError as exc:  # worded as asyncio's servers word it, which operators and the CLI already know
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, f"error while attempting to bind on address {address[:2]!r}: "
                                     f"{reason.lower()}") from None
        self._socket.setblocking(False)
        self._accepting = asyncio.create_task(self._accept_loop(self._socket), name="p2p-accept")

    async def stop(self) -> None:
        tasks = list(self._pending) + ([self._accepting] if self._accepting is not None else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._socket is not None:
            self._socket.close()

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:  # e.g. out of file descriptors: keep the port, try again
                log.warning("accepting a P2P connection failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            self.accepted += 1
            if len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                oldest.cancel()
                del self._pending[oldest]
            task = asyncio.create_task(self._tls(conn))
            self._pending[task] = None
            task.add_done_callback(lambda t: self._pending.pop(t, None))

    async def _tls(self, conn: socket.socket) -> None:
        try:
            peer = conn.getpeername()
        except OSError:
            peer = "?"
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self.protocol_factory, conn, ssl=self.ssl_context, ssl_handshake_timeout=self.handshake_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError) as exc:
            self.aborted += 1
            conn.close()
            if not isinstance(exc, asyncio.CancelledError):
                log.debug("TLS handshake from %s failed: %s", peer, exc)
