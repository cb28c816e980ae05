"""A small HTTP client for the node API, used by the CLI, the demo and the benchmark."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from primitives.errors import UsageError


class NodeUnreachable(UsageError):
    pass


class ApiFailure(UsageError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code


async def request(
    session: aiohttp.ClientSession, method: str, url: str, data: bytes | None = None, timeout: float = 10
) -> Any:
    headers = {"Content-Type": "application/octet-stream"} if data is not None else None
    try:
        async with session.request(
            method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = {"error": "bad-response", "message": (await resp.text())[:200]}
            if resp.status >= 400:
                raise ApiFailure(resp.status, str(body.get("error", "error")), str(body.get("message", "")))
            return body
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise NodeUnreachable(f"cannot reach the node at {url}: {exc or type(exc).__name__}") from None


def call(method: str, url: str, data: bytes | None = None, timeout: float = 10) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await request(session, method, url, data, timeout)

    return asyncio.run(go())
