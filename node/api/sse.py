"""Server-sent event streams: live commits and alerts pushed to HTTP clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import TypeVar

from aiohttp import web

# A document sent as one event: a commit, an alert.
Item = TypeVar("Item", bound=Mapping[str, object])


async def event_stream(
    request: web.Request,
    title: str,
    event: str,
    id_field: str,
    subscribe: Callable[[], asyncio.Queue[Item | None]],
    unsubscribe: Callable[[asyncio.Queue[Item | None]], None],
) -> web.StreamResponse:
    """A server-sent event stream of what ``subscribe``'s queue receives, until the client or the node goes.

    Each item is sent as ``event: <event>`` with its ``id_field`` as the id; a
    comment every 15 s keeps idle proxies from closing it; ``None`` means the
    node is shutting down.
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
            if item is None:
                break
            payload = json.dumps(item, separators=(",", ":"))
            await response.write(f"event: {event}\nid: {item[id_field]}\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe(queue)
    return response


