"""A client of the healthcare ledger: ``node.client.http``'s client that also signs bodies with the caller's key.

``LedgerClient`` is asynchronous (``NodeClient`` plus signing, records and
pack look-ups); ``SyncLedger`` is its synchronous form for the command line
and scripts.  Both map failures as ``node.client.http`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from node.client.http import ApiFailure, NodeClient, NodeUnreachable, SyncNodeClient
from node.documents import TxStatus
from node.healthcare.documents import FiledRecord, PackDocument, ServedRecord, Verification
from node.healthcare.fhir import commitment, new_salt, validate_resource
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import patient_id
from node.healthcare.transactions import make_transaction
from primitives.codec import encode
from primitives.errors import UsageError
from primitives.signing import SigningKey

COMMIT_TIMEOUT = 40.0  # seconds: requests that wait for a block to commit


class LedgerClient(NodeClient):
    """``NodeClient`` that signs: ``key`` acts (may be None for reads); ``chain_id`` is asked once if not given."""

    def __init__(self, url: str, key: SigningKey | None = None, session: aiohttp.ClientSession | None = None,
                 chain_id: str | None = None, *, timeout: float = COMMIT_TIMEOUT) -> None:
        super().__init__(url, session, timeout=timeout)
        self.key = key
        self.chain_id = chain_id

    @property
    def patient_id(self) -> bytes:
        return patient_id(self._key().verify_key.raw)

    async def chain(self) -> str:
        if self.chain_id is None:
            self.chain_id = str((await self.status())["chain_id"])
        return self.chain_id

    def _key(self) -> SigningKey:
        if self.key is None:
            raise UsageError("this action signs: it needs a key (--key FILE)")
        return self.key

    async def sign(self, body: Any) -> bytes:
        return make_transaction(self._key(), await self.chain(), body, int(time.time() * 1000))

    async def submit(self, body: Any, wait: bool = True) -> TxStatus:
        data = await self.sign(body)
        result: TxStatus = await self.call("POST", "/txs" + ("?wait=commit" if wait else ""), data=data,
                                                 timeout=COMMIT_TIMEOUT)
        return result

    # ------------------------------------------------------------ EHR

    async def file_record(self, resource: Any, patient: bytes | None = None, record_id: bytes | None = None,
                          replaces: int | None = None) -> FiledRecord:
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
        result: FiledRecord = await self.call("POST", "/ehr/records", doc=doc, timeout=COMMIT_TIMEOUT)
        return result

    async def read_record(self, record_id: bytes, purpose: str = "treatment", break_glass: bool = False,
                          version: int = 0) -> ServedRecord:
        request = b.ReadRequest.signed(self._key(), await self.chain(), record_id, version, purpose, break_glass,
                                       int(time.time() * 1000), os.urandom(16))
        result: ServedRecord = await self.call("POST", f"/ehr/records/{record_id.hex()}/read",
                                               doc={"request": encode(request).hex()}, timeout=COMMIT_TIMEOUT)
        return result

    # ------------------------------------------------------------ drugs

    async def verify(self, code: str, scanned_by: str = "", proofs: bool = True, at_ms: int | None = None
                     ) -> Verification:
        doc: dict[str, Any] = {"code": code, "scanned_by": scanned_by, "proofs": proofs}
        if at_ms is not None:
            doc["at_ms"] = at_ms
        result: Verification = await self.call("POST", "/drugs/verify", doc=doc)
        return result

    async def pack(self, gtin: str, serial: str, proofs: bool = True) -> PackDocument:
        result: PackDocument = await self.call(
            "GET", f"/drugs/packs/{gtin}/{quote(serial, safe='')}" + ("" if proofs else "?proofs=0"))
        return result


class SyncLedger(SyncNodeClient):
    """``LedgerClient`` for synchronous code: each call runs to completion on the client's own event loop."""

    client: LedgerClient

    def __init__(self, url: str, key: SigningKey | None = None, *, timeout: float = COMMIT_TIMEOUT) -> None:
        self._signer = key
        super().__init__(url, timeout=timeout)

    def _make(self, url: str, timeout: float) -> LedgerClient:
        return LedgerClient(url, self._signer, timeout=timeout)

    @property
    def key(self) -> SigningKey | None:
        return self.client.key

    def submit(self, body: Any, wait: bool = True) -> TxStatus:
        return self.run(self.client.submit(body, wait))

    def file_record(self, resource: Any, patient: bytes | None = None, record_id: bytes | None = None,
                    replaces: int | None = None) -> FiledRecord:
        return self.run(self.client.file_record(resource, patient, record_id, replaces))

    def read_record(self, record_id: bytes, purpose: str = "treatment", break_glass: bool = False,
                    version: int = 0) -> ServedRecord:
        return self.run(self.client.read_record(record_id, purpose, break_glass, version))

    def verify(self, code: str, scanned_by: str = "", proofs: bool = True) -> Verification:
        return self.run(self.client.verify(code, scanned_by, proofs))


async def wait_height(session: aiohttp.ClientSession, apis: list[str], height: int, timeout: float = 30) -> None:
    """Wait until every node in ``apis`` has committed ``height`` (a read at one node after a write at another)."""
    deadline = time.monotonic() + timeout
    pending = [NodeClient(api, session, timeout=5) for api in apis]
    while pending:
        still = []
        for node in pending:
            try:
                if int((await node.status()).get("height", 0)) < height:
                    still.append(node)
            except (NodeUnreachable, ApiFailure, ValueError):
                still.append(node)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                names = ", ".join(n.base for n in pending)
                raise NodeUnreachable(f"{names} did not reach height {height} within {timeout:g}s")
            await asyncio.sleep(0.05)
