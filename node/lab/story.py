"""The demo story on a 4-validator consortium: a patient's records and a lot of medicine.

``play`` runs every step against live nodes, prints what happens, checks each
outcome (``StoryError`` when one differs) and returns the steps for tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from node.client.http import ApiFailure, NodeClient
from node.client.ledger import LedgerClient, wait_height
from node.client.sse import SseComment
from node.documents import TxStatus
from node.genesis import load_genesis
from node.healthcare.epcis import validate_epcis
from node.healthcare.gs1 import gtin_with_check_digit
from node.healthcare.ledger import bodies as b
from node.lab.counterfeit import Network, hri
from node.proofs import verify_proof
from primitives.errors import MedchainError
from primitives.signing import SigningKey

PREFIX = "9506000"
SUBSCRIBE_TIMEOUT_S = 10  # for the regulator's alert stream to open


class StoryError(MedchainError):
    """A step of the story did not turn out as the ledger's rules say it must."""


@dataclass(slots=True)
class Step:
    title: str
    outcome: str
    data: dict[str, Any] = field(default_factory=dict)


OBSERVATION = {
    "resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
    "valueString": "142/91 mmHg",
}
CONDITION = {
    "resourceType": "Condition",
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   "code": "active"}]},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
    "subject": {"reference": "Patient/example"},
}
MEDICATION = {
    "resourceType": "MedicationRequest", "status": "active", "intent": "order",
    "medication": {"concept": {"text": "amlodipine 5 mg"}},
    "subject": {"reference": "Patient/example"},
}


class Story:
    def __init__(self, net: Network, say: Callable[[str], None] = print) -> None:
        self.net = net
        self.say = say
        self.steps: list[Step] = []
        self.genesis = load_genesis(net.root / "genesis.json")

    def org(self, kind: str, index: int = 0) -> str:
        return self.net.of_kind(kind)[index]

    def step(self, title: str, outcome: str, **data: Any) -> None:
        self.steps.append(Step(title, outcome, data))
        self.say(f"  - {title}: {outcome}")

    def expect(self, cond: bool, what: str) -> None:
        if not cond:
            raise StoryError(what)

    def client(self, session: aiohttp.ClientSession, org: str, key: SigningKey | None) -> LedgerClient:
        return LedgerClient(self.net.api_for(org), key, session)

    async def must(self, client: LedgerClient, body: Any) -> TxStatus:
        result = await client.submit(body)
        self.expect(result.get("status") == "committed",
                    f"{type(body).__name__} refused: {result.get('code')}: {result.get('message')}")
        # The next step may read at another organisation's node: let every node commit this block first.
        await wait_height(client.session, list(self.net.apis.values()), int(result["height"]))
        return result

    async def refused(self, client: LedgerClient, body: Any, code: str) -> TxStatus:
        result = await client.submit(body)
        self.expect(result.get("status") == "rejected" and result.get("code") == code,
                    f"{type(body).__name__} should be refused with {code}, got {result}")
        return result

    async def api_error(self, coro: Any, status: int, code: str) -> ApiFailure:
        try:
            await coro
        except ApiFailure as exc:
            self.expect(exc.status == status and exc.code == code, f"expected {status} {code}, got {exc}")
            return exc
        raise StoryError(f"expected {status} {code}, the call succeeded")

    # ------------------------------------------------------------ the story

    async def play(self) -> list[Step]:
        async with aiohttp.ClientSession() as session:
            people = await self.cast(session)
            await self.ehr(session, people)
            await self.drugs(session, people)
        return self.steps

    async def cast(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        self.say("\n== The consortium enrols its people and licenses the supply chain")
        regulator, maker, dist = self.org("regulator"), self.org("manufacturer"), self.org("distributor")
        hosp_a, hosp_b, pharmacy = self.org("hospital", 0), self.org("hospital", 1), self.org("pharmacy")
        keys = {name: SigningKey.generate() for name in ("dr_a", "dr_b", "nurse_b", "pharmacist", "maker", "dist",
                                                         "patient")}
        enrol = [(hosp_a, "dr_a", "physician"), (hosp_b, "dr_b", "physician"), (hosp_b, "nurse_b", "nurse"),
                 (pharmacy, "pharmacist", "pharmacist"), (maker, "maker", "logistics"), (dist, "dist", "logistics")]
        await asyncio.gather(*(self.must(self.client(session, org, self.net.admin(org)),
                                         b.EnrolMember(keys[who].verify_key.raw, role)) for org, who, role in enrol))
        self.step("enrol", f"physicians at {hosp_a} and {hosp_b}, a nurse, a pharmacist, logistics staff")
        reg = self.client(session, regulator, self.net.admin(regulator))
        await self.refused(self.client(session, maker, keys["maker"]),
                           b.Commission(gtin_with_check_digit(f"0{PREFIX}00042"), "L-EARLY", "301231", ("X1",)),
                           "not-licensed")
        self.step("unlicensed commission", "refused (not-licensed): the manufacturer holds no licence yet")
        for lic in (b.GrantLicence(maker, "manufacture", PREFIX), b.GrantLicence(dist, "distribute", ""),
                    b.GrantLicence(pharmacy, "dispense", "")):
            await self.must(reg, lic)
        self.step("licences", f"{maker} may manufacture prefix {PREFIX}; {dist} distribute; {pharmacy} dispense")
        patient = self.client(session, hosp_a, keys["patient"])
        await self.must(patient, b.RegisterPatient())
        self.step("patient", f"registered under pseudonymous id {patient.patient_id.hex()}")
        return {"keys": keys, "orgs": {"regulator": regulator, "maker": maker, "dist": dist, "hosp_a": hosp_a,
                                       "hosp_b": hosp_b, "pharmacy": pharmacy}, "reg": reg, "patient": patient}

    async def ehr(self, session: aiohttp.ClientSession, p: dict[str, Any]) -> None:
        keys, orgs, patient = p["keys"], p["orgs"], p["patient"]
        pid = patient.patient_id
        self.say("\n== A patient treated at two hospitals")
        dr_a = self.client(session, orgs["hosp_a"], keys["dr_a"])
        dr_b = self.client(session, orgs["hosp_a"], keys["dr_b"])  # reads go to the custodian's node
        obs = await dr_a.file_record(OBSERVATION, patient=pid)
        self.expect(obs["status"] == "committed", f"filing refused: {obs}")
        cond = await dr_a.file_record(CONDITION, patient=pid)
        obs_id, cond_id = bytes.fromhex(obs["record_id"]), bytes.fromhex(cond["record_id"])
        self.step("records filed", f"{orgs['hosp_a']} keeps an Observation and a Condition, encrypted in its vault; "
                  "the chain holds their commitments", observation=obs["record_id"], condition=cond["record_id"],
                  filed_tx=obs["tx_id"])
        bad = dict(OBSERVATION)
        del bad["code"]
        err = await self.api_error(self._post_invalid(dr_a, pid, bad), 422, "invalid-fhir")
        self.step("invalid FHIR", f"refused with 422: {err}")
        await self.api_error(dr_b.read_record(obs_id, "second opinion"), 403, "no-consent")
        self.step("read before consent", f"{orgs['hosp_b']}'s physician is refused (403 no-consent)")
        until = int(time.time() * 1000) + 30 * 86_400_000
        await self.must(patient, b.GrantConsent(orgs["hosp_b"], None, (), until))
        served = await dr_b.read_record(obs_id, "second opinion")
        self.expect(served["resource"]["valueString"] == OBSERVATION["valueString"], "served content differs")
        self.step("read after consent", f"served {served['resource_type']} v{served['version']} to "
                  f"{orgs['hosp_b']}; access filed at height {served['access_height']}", access_tx=served["access_tx"])
        await self.must(patient, b.RevokeConsent(orgs["hosp_b"], None))
        await self.api_error(dr_b.read_record(obs_id, "follow-up"), 403, "no-consent")
        self.step("read after revoke", "refused again (403 no-consent) from the next block on")
        glass = await dr_b.read_record(cond_id, "emergency: unconscious patient", break_glass=True)
        self.expect(glass["break_glass"], "break-glass access not flagged")
        self.step("break-glass", "an emergency physician reads the Condition: served, recorded and flagged")
        accesses = await patient.call("GET", f"/ehr/patients/{pid.hex()}/accesses")
        self.expect([a["basis"] for a in accesses] == ["consent", "break-glass"], f"accesses: {accesses}")
        self.step("patient's audit", f"{len(accesses)} accesses: "
                  + "; ".join(f"{a['reader_org']} {a['basis']} for '{a['purpose']}'" for a in accesses),
                  accesses=accesses)
        await self.must(patient, b.EraseRecords((obs_id,), False))
        await self.api_error(dr_a.read_record(obs_id, "audit"), 410, "erased")
        history = await patient.call("GET", f"/ehr/records/{obs_id.hex()}")
        self.expect(history["erased"] and history["versions"][0]["commitment"], "erasure not on the ledger")
        proof = await patient.call("GET", f"/proofs/{obs['tx_id']}")
        reason = verify_proof(proof, self.genesis)
        self.expect(reason is None, f"the filing proof no longer verifies: {reason}")
        self.step("erasure", "the Observation is erased: content gone from the vault, commitment and history "
                  "kept, the filing's inclusion proof still verifies", record=obs["record_id"])

    async def _post_invalid(self, client: LedgerClient, pid: bytes, resource: dict[str, Any]) -> Any:
        """Send content that is not valid FHIR straight to the node (the client library would refuse it)."""
        import os

        from node.healthcare.fhir import commitment, new_salt

        salt = new_salt()
        canonical = json.dumps(resource, sort_keys=True, separators=(",", ":")).encode()
        data = await client.sign(b.AddRecord(os.urandom(16), pid, "Observation", commitment(salt, canonical)))
        return await client.call("POST", "/ehr/records", doc={"tx": data.hex(), "salt": salt.hex(),
                                                              "resource": resource})

    async def drugs(self, session: aiohttp.ClientSession, p: dict[str, Any]) -> None:
        keys, orgs = p["keys"], p["orgs"]
        self.say("\n== A lot of medicine, from the manufacturer to a pharmacy counter")
        gtin = gtin_with_check_digit(f"0{PREFIX}00042")
        expiry = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=730)).strftime("%y%m%d")
        lot = f"LOT{int(time.time()) % 100000:05d}"
        serials = tuple(f"PK{i:04d}" for i in range(20))
        maker = self.client(session, orgs["maker"], keys["maker"])
        dist = self.client(session, orgs["dist"], keys["dist"])
        pharmacist = self.client(session, orgs["pharmacy"], keys["pharmacist"])
        await self.must(maker, b.Commission(gtin, lot, expiry, serials))
        self.step("commission", f"{len(serials)} packs of GTIN {gtin}, lot {lot}, expiry {expiry}")
        await self.must(maker, b.Ship(f"{lot}-M", orgs["dist"], (), (b.LotRef(gtin, lot),)))
        await self.must(dist, b.Receive(f"{lot}-M"))
        await self.must(dist, b.Ship(f"{lot}-D", orgs["pharmacy"], tuple(b.PackRef(gtin, s) for s in serials[:10]),
                                     ()))
        await self.refused(self.client(session, orgs["maker"], keys["maker"]),
                           b.Ship("again", orgs["pharmacy"], (b.PackRef(gtin, serials[15]),), ()), "not-custodian")
        await self.must(pharmacist, b.Receive(f"{lot}-D"))
        self.step("custody", f"{orgs['maker']} -> {orgs['dist']} -> {orgs['pharmacy']} (10 packs); the manufacturer "
                  "can no longer ship what it handed over (not-custodian)")
        code = hri(gtin, serials[0], lot, expiry)
        scan = await pharmacist.verify(code, "counter 1")
        pack = scan["pack"]
        self.expect(scan["verified"] and scan["status"] == "active" and pack is not None,
                    f"genuine pack not verified: {scan}")
        assert pack is not None
        await self.must(pharmacist, b.Dispense(gtin, serials[0]))
        self.step("dispense", f"{code} verified ({len(pack['history'])} events, each with a proof) "
                  "and dispensed")
        subscribed = asyncio.Event()
        stream = asyncio.create_task(self._watch_alerts(session, orgs["regulator"], 2, subscribed))
        await self._until_subscribed(stream, subscribed)
        clone = await pharmacist.verify(code, "counter 2")
        self.expect(not clone["verified"] and clone["additionalInfo"] == "AlreadyDispensed"
                    and clone["alert"] is not None,
                    f"clone not caught: {clone}")
        self.step("cloned pack", f"scanned again: NOT VERIFIED, {clone['verificationFailureReason']} / "
                  f"{clone['additionalInfo']}; alert filed")
        fake = hri(gtin, "PK9999", lot, expiry)
        counterfeit = await pharmacist.verify(fake, "counter 2")
        self.expect(not counterfeit["verified"] and counterfeit["status"] == "unknown"
                    and counterfeit["alert"] is not None,
                    f"counterfeit not caught: {counterfeit}")
        self.step("counterfeit", f"{fake}: NOT VERIFIED, {counterfeit['verificationFailureReason']}; alert filed")
        seen = await asyncio.wait_for(stream, 30)
        self.step("regulator's live alerts", "; ".join(f"#{a['seq']} {a['serial']} {a['reason']} "
                                                       f"{a['info'] or ''}".strip() for a in seen), alerts=seen)
        await self.must(p["reg"], b.Recall(gtin, lot, "out-of-specification dissolution"))
        recalled = await pharmacist.verify(hri(gtin, serials[1], lot, expiry), "counter 1")
        self.expect(recalled["status"] == "recalled" and not recalled["verified"], f"recall not seen: {recalled}")
        await self.refused(pharmacist, b.Dispense(gtin, serials[1]), "recalled")
        self.step("recall", f"lot {lot} recalled: its packs verify as recalled and cannot be dispensed")
        doc = await pharmacist.call("GET", f"/drugs/packs/{gtin}/{serials[0]}/epcis")
        problems = validate_epcis(doc)
        self.expect(not problems, f"EPCIS export invalid: {problems[:3]}")
        steps = [e["bizStep"].rsplit(":", 1)[-1].rsplit("/", 1)[-1] for e in doc["epcisBody"]["eventList"]]
        self.step("EPCIS export", f"{len(steps)} ObjectEvents ({', '.join(steps)}), valid against the EPCIS 2.0 "
                  "schema", epcis=doc)

    async def _watch_alerts(self, session: aiohttp.ClientSession, org: str, count: int, subscribed: asyncio.Event
                            ) -> list[dict[str, Any]]:
        """The first ``count`` alerts on ``org``'s node's live stream; ``subscribed`` is set once it listens."""
        seen: list[dict[str, Any]] = []
        async for item in NodeClient(self.net.api_for(org), session).events("/alerts/stream"):
            if isinstance(item, SseComment):  # the node's greeting: no alert filed from now on is missed
                subscribed.set()
            elif item.event == "alert":
                seen.append(item.json())
                if len(seen) >= count:
                    return seen
        return seen

    async def _until_subscribed(self, stream: asyncio.Task[list[dict[str, Any]]], subscribed: asyncio.Event) -> None:
        """Wait for the alert watcher to be subscribed; its error, if it failed first."""
        listening = asyncio.ensure_future(subscribed.wait())
        try:
            await asyncio.wait((stream, listening), timeout=SUBSCRIBE_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
        if stream.done():
            stream.result()
        self.expect(subscribed.is_set(), f"the alert stream did not open within {SUBSCRIBE_TIMEOUT_S} s")


def play(root: Path, say: Callable[[str], None]) -> list[Step]:
    """Play the story on the running consortium cluster in ``root``; ``StoryError`` names the step that failed."""
    return asyncio.run(Story(Network.load(root), say).play())
