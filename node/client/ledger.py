"""A client of the healthcare ledger: signs bodies with the caller's key and talks to one node.

Used by the CLI, the demo, the end-to-end tests, the counterfeit experiment and
the benchmark.  ``LedgerClient`` is asynchronous (one aiohttp session);
``SyncLedger`` wraps it for scripts and the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from node.client.http import ApiFailure, NodeUnreachable
from node.healthcare.fhir import commitment, new_salt, validate_resource
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import patient_id
from node.healthcare.transactions import make_transaction
from primitives.codec import encode
from primitives.signing import SigningKey

T = TypeVar("T")


class LedgerClient:
    def __init__(self, url: str, key: SigningKey | None, session: aiohttp.ClientSession,
                 chain_id: str | None = None) -> None:
        self.base = url.rstrip("/")
        self.key = key
        self.session = session
        self.chain_id = chain_id

    @property
    def patient_id(self) -> bytes:
        assert self.key is not None
        return patient_id(self.key.verify_key.raw)

    async def call(self, method: str, path: str, *, data: bytes | None = None, doc: Any = None,
                   timeout: float = 40) -> Any:
        headers = {}
        if doc is not None:
            data = json.dumps(doc).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = "application/octet-stream"
        url = self.base + path
        try:
            async with self.session.request(method, url, data=data, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = {"error": "bad-response", "message": (await resp.text())[:200]}
                if resp.status >= 400:
                    raise ApiFailure(resp.status, str(body.get("error", "error")), str(body.get("message", "")))
                return body
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise NodeUnreachable(f"cannot reach the node at {url}: {exc or type(exc).__name__}") from None

    async def chain(self) -> str:
        if self.chain_id is None:
            self.chain_id = str((await self.call("GET", "/status"))["chain_id"])
        return self.chain_id

    def _key(self) -> SigningKey:
        if self.key is None:
            raise ValueError("this action needs a key (--key)")
        return self.key

    async def sign(self, body: Any) -> bytes:
        return make_transaction(self._key(), await self.chain(), body, int(time.time() * 1000))

    async def submit(self, body: Any, wait: bool = True) -> dict[str, Any]:
        data = await self.sign(body)
        result: dict[str, Any] = await self.call("POST", "/txs" + ("?wait=commit" if wait else ""), data=data)
        return result

    # ------------------------------------------------------------ EHR

    async def file_record(self, resource: Any, patient: bytes | None = None, record_id: bytes | None = None,
                          replaces: int | None = None) -> dict[str, Any]:
        """File a new record (patient given) or amend one (record_id and replaces given)."""
        rtype, canonical = validate_resource(resource)
        salt = new_salt()
        digest = commitment(salt, canonical)
        if replaces is None:
            assert patient is not None
            body: Any = b.AddRecord(record_id or os.urandom(16), patient, rtype, digest)
        else:
            assert record_id is not None
            body = b.AmendRecord(record_id, replaces, rtype, digest)
        data = await self.sign(body)
        doc = {"tx": data.hex(), "salt": salt.hex(), "resource": json.loads(canonical)}
        result: dict[str, Any] = await self.call("POST", "/ehr/records", doc=doc)
        return result

    async def read_record(self, record_id: bytes, purpose: str = "treatment", break_glass: bool = False,
                          version: int = 0) -> dict[str, Any]:
        request = b.ReadRequest.signed(self._key(), await self.chain(), record_id, version, purpose, break_glass,
                                       int(time.time() * 1000), os.urandom(16))
        result: dict[str, Any] = await self.call("POST", f"/ehr/records/{record_id.hex()}/read",
                                                 doc={"request": encode(request).hex()})
        return result

    # ------------------------------------------------------------ drugs

    async def verify(self, code: str, scanned_by: str = "", proofs: bool = True, at_ms: int | None = None
                     ) -> dict[str, Any]:
        doc: dict[str, Any] = {"code": code, "scanned_by": scanned_by, "proofs": proofs}
        if at_ms is not None:
            doc["at_ms"] = at_ms
        result: dict[str, Any] = await self.call("POST", "/drugs/verify", doc=doc)
        return result

    async def pack(self, gtin: str, serial: str, proofs: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", f"/drugs/packs/{gtin}/{quote(serial, safe='')}" + ("" if proofs else "?proofs=0"))
        return result


class SyncLedger:
    """The same client for scripts: each call runs to completion."""

    def __init__(self, url: str, key: SigningKey | None = None) -> None:
        self.url = url
        self.key = key
        self.chain_id: str | None = None

    def _run(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        async def go() -> Any:
            async with aiohttp.ClientSession() as session:
                client = LedgerClient(self.url, self.key, session, self.chain_id)
                try:
                    method = getattr(client, fn)
                    return await method(*args, **kwargs)
                finally:
                    self.chain_id = client.chain_id

        return _run(go())

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._run("call", method, path, **kwargs)

    def submit(self, body: Any, wait: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self._run("submit", body, wait)
        return result

    def file_record(self, resource: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._run("file_record", resource, **kwargs)
        return result

    def read_record(self, record_id: bytes, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._run("read_record", record_id, **kwargs)
        return result

    def verify(self, code: str, scanned_by: str = "", proofs: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self._run("verify", code, scanned_by, proofs)
        return result


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def wait_height(session: aiohttp.ClientSession, apis: list[str], height: int, timeout: float = 30) -> None:
    """Wait until every node in ``apis`` has committed ``height`` (a read at one node after a write at another)."""
    deadline = time.monotonic() + timeout
    pending = list(apis)
    while pending:
        still = []
        for api in pending:
            try:
                async with session.get(api.rstrip("/") + "/status", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    doc = await resp.json(content_type=None)
                    if int(doc.get("height", 0)) < height:
                        still.append(api)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                still.append(api)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise NodeUnreachable(f"{', '.join(pending)} did not reach height {height} within {timeout:g}s")
            await asyncio.sleep(0.05)
