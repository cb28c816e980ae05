"""Server-sent event streams: live commits and alerts pushed to HTTP clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web


async def event_stream(
    request: web.Request,
    title: str,
    event: str,
    id_field: str,
    subscribe: Callable[[], asyncio.Queue[dict[str, Any]]],
    unsubscribe: Callable[[asyncio.Queue[dict[str, Any]]], None],
) -> web.StreamResponse:
    """A server-sent event stream of what ``subscribe``'s queue receives, until the client or the node goes.

    Each item is sent as ``event: <event>`` with its ``id_field`` as the id; a
    comment every 15 s keeps idle proxies from closing it; an empty item means
    the node is shutting down.
    """
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue = subscribe()
    try:
        await response.write(f": medchain {title}\n\n".encode())
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if not item:
                break
            payload = json.dumps(item, separators=(",", ":"))
            await response.write(f"event: {event}\nid: {item[id_field]}\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe(queue)
    return response


