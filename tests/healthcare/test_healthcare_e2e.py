"""The healthcare ledger on a real 4-validator consortium: processes, TLS, LevelDB, vaults.

One cluster serves the module: the demo story (every step asserted), consent
expiry, erasure checked in every node's API and directly in every vault's
LevelDB, the counterfeit experiment, and finally a replay of the whole chain
from genesis on a fresh application that must match ``app_hash`` at every height.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import plyvel
import pytest
import pytest_asyncio

from node.client.http import ApiFailure, NodeClient
from node.client.ledger import LedgerClient
from node.genesis import load_genesis
from node.healthcare.application import Application
from node.healthcare.documents import (
    AccessDocument,
    AlertDocument,
    CommittedRecord,
    ConsentDocument,
    EpcisDocument,
    LotDocument,
    MemberDocument,
    OrganisationDocument,
    PackDocument,
    PatientDocument,
    RecordDocument,
    ServedRecord,
    ShipmentDocument,
    Verification,
)
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.state import DictState
from node.lab import cluster as clusters
from node.lab.counterfeit import KINDS, Experiment, Network
from node.lab.story import Story
from node.runtime import genesis_tip
from primitives.signing import SigningKey
from storage.chainstore import ChainStore
from tests.harness import Cluster
from tests.node.shapes import assert_matches

CONSORTIUM = Path(__file__).resolve().parents[2] / "configs" / "consortium-4.toml"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Cluster, Network]]:
    root = tmp_path_factory.mktemp("consortium")
    async with Cluster(root, consortium=CONSORTIUM) as cluster:
        await cluster.wait_all(lambda s: s is not None and len(s["peers"]) >= 3, 30, "a connected cluster",
                               names=[n for n in cluster.names])
        yield cluster, Network.load(root)


@pytest.fixture
def session(net: tuple[Cluster, Network]) -> aiohttp.ClientSession:
    """The cluster's connection pool, shared by the clients of a test."""
    assert net[0].session is not None
    return net[0].session


@pytest.fixture(scope="module")
def story_steps() -> dict[str, object]:
    return {}


async def test_demo_story(net: tuple[Cluster, Network], story_steps: dict[str, object]) -> None:
    _, network = net
    story = Story(network, say=lambda line: None)
    steps = await story.play()
    titles = [s.title for s in steps]
    for expected in ("enrol", "unlicensed commission", "licences", "patient", "records filed", "invalid FHIR",
                     "read before consent", "read after consent", "read after revoke", "break-glass",
                     "patient's audit", "erasure", "commission", "custody", "dispense", "cloned pack", "counterfeit",
                     "regulator's live alerts", "recall", "EPCIS export"):
        assert expected in titles, f"story step {expected!r} missing"
    by_title = {s.title: s for s in steps}
    alerts = by_title["regulator's live alerts"].data["alerts"]
    assert [(a["reason"], a["info"]) for a in alerts] == [
        ("Not_for_re-distribution", "AlreadyDispensed"), ("No_match_GTIN_Serial", None)]
    accesses = by_title["patient's audit"].data["accesses"]
    assert [a["break_glass"] for a in accesses] == [False, True]
    story_steps["erased"] = by_title["erasure"].data["record"]
    story_steps["filed_tx"] = by_title["records filed"].data["filed_tx"]


async def test_erased_record_is_gone_from_every_node_and_vault(
    net: tuple[Cluster, Network], story_steps: dict[str, object],
    session: aiohttp.ClientSession,
) -> None:
    cluster, _network = net
    rid = str(story_steps["erased"])
    for name in cluster.names:
        status, body = await cluster.get(name, f"/ehr/records/{rid}")
        assert status == 200 and body["erased"] and body["versions"][0]["commitment"]
        reader = SigningKey.generate()
        api = cluster.api(name)
        client = LedgerClient(api, reader, session)
        with pytest.raises(ApiFailure) as err:
            await client.read_record(bytes.fromhex(rid), "after erasure")
        assert err.value.status == 410, f"{name} answered {err.value}"
        status, _proof = await cluster.get(name, f"/proofs/{story_steps['filed_tx']}")
        assert status == 200


async def test_garbage_and_invalid_input_get_clear_errors_and_the_node_goes_on(
    net: tuple[Cluster, Network],
    session: aiohttp.ClientSession,
) -> None:
    cluster, network = net
    api = network.api_for("northside-pharmacy")
    rid = "00" * 16
    cases = [
        ("POST", "/ehr/records", b"not json", 400, "bad-json"),
        ("POST", "/ehr/records", b"[1, 2]", 400, "bad-json"),
        ("POST", "/ehr/records", b'{"tx": "zz", "salt": "00"}', 400, "bad-json"),
        ("POST", f"/ehr/records/{rid}/read", b'{"request": "c0ffee"}', 400, "malformed"),
        ("POST", f"/ehr/records/{rid}/read", b"{}", 400, "bad-json"),
        ("GET", "/ehr/records/xyz", None, 400, "bad-hex"),
        ("GET", f"/ehr/records/{rid}", None, 404, "not-found"),
        ("POST", "/drugs/verify", b'{"code": "(01)09506000134353(21)X"}', 422, "invalid-gs1"),
        ("POST", "/drugs/verify", b'{"code": "hello"}', 422, "invalid-gs1"),
        ("POST", "/drugs/verify", b'{"code": 5}', 400, "bad-json"),
        ("GET", "/drugs/packs/123/ABC", None, 422, "invalid-gs1"),
        ("GET", "/drugs/lots/09506000134352/NOPE?limit=0", None, 400, "bad-limit"),
        ("GET", "/alerts?after=x", None, 400, "bad-integer"),
    ]
    node = NodeClient(api, session)
    for method, path, body, status, code in cases:
        reply = await node.send(method, path, data=body)
        doc = reply.json()
        assert (reply.status, doc.get("error")) == (status, code), f"{method} {path}: {reply.status} {doc}"
        assert doc.get("message"), f"{method} {path}: no message"
    query = urlencode({"code": "(01)09506000134352(21)X(17)271340"})
    invalid = await node.send("GET", f"/drugs/verify?{query}")
    doc = invalid.json()
    assert invalid.status == 422 and doc["message"].startswith("expiry"), doc
    assert (await cluster.status("northside-pharmacy")) is not None


async def test_consent_expiry_refuses_reads(net: tuple[Cluster, Network], session: aiohttp.ClientSession) -> None:
    _cluster, network = net
    hosp_a, hosp_b = network.of_kind("hospital")[:2]
    doc, other, patient = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    for org, key in ((hosp_a, doc), (hosp_b, other)):
        admin = LedgerClient(network.api_for(org), network.admin(org), session)
        assert (await admin.submit(b.EnrolMember(key.verify_key.raw, "physician")))["status"] == "committed"
    me = LedgerClient(network.api_for(hosp_a), patient, session)
    assert (await me.submit(b.RegisterPatient()))["status"] == "committed"
    filed = await LedgerClient(network.api_for(hosp_a), doc, session).file_record(
        {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}, "valueString": "6.1 %"},
        patient=me.patient_id)
    rid = bytes.fromhex(filed["record_id"])
    reader = LedgerClient(network.api_for(hosp_a), other, session)
    until = int(time.time() * 1000) + 4000
    assert (await me.submit(b.GrantConsent("", other.verify_key.raw, ("Observation",), until)))["status"] == \
        "committed"
    served = await reader.read_record(rid, "diabetes clinic")
    assert served["resource"]["valueString"] == "6.1 %"
    await asyncio.sleep(max(0.0, until / 1000 - time.time()) + 0.5)
    with pytest.raises(ApiFailure) as err:
        await reader.read_record(rid, "diabetes clinic")
    assert (err.value.status, err.value.code) == (403, "no-consent")
    log = await reader.call("GET", f"/ehr/records/{rid.hex()}")
    assert [(a["reader"], a["basis"]) for a in log["access_log"]] == [(other.verify_key.hex(), "consent")]


async def test_erasing_every_record_shreds_each_one_at_its_custodian(
    net: tuple[Cluster, Network], story_steps: dict[str, object],
    session: aiohttp.ClientSession,
) -> None:
    _cluster, network = net
    hosp_a = network.of_kind("hospital")[0]
    doc, patient = SigningKey.generate(), SigningKey.generate()
    admin = LedgerClient(network.api_for(hosp_a), network.admin(hosp_a), session)
    assert (await admin.submit(b.EnrolMember(doc.verify_key.raw, "physician")))["status"] == "committed"
    me = LedgerClient(network.api_for(hosp_a), patient, session)
    assert (await me.submit(b.RegisterPatient()))["status"] == "committed"
    physician = LedgerClient(network.api_for(hosp_a), doc, session)
    rids = []
    for value in ("5.9 %", "6.3 %"):
        filed = await physician.file_record(
            {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}, "valueString": value},
            patient=me.patient_id)
        rids.append(bytes.fromhex(filed["record_id"]))
    assert (await physician.read_record(rids[1], "review"))["resource"]["valueString"] == "6.3 %"
    assert (await me.submit(b.EraseRecords((), True)))["status"] == "committed"
    for rid in rids:
        with pytest.raises(ApiFailure) as err:
            await physician.read_record(rid, "review")
        assert err.value.status == 410, err.value
    story_steps["erased_all"] = [rid.hex() for rid in rids]  # checked in the vaults by the last test


async def test_counterfeit_experiment_catches_every_fake(net: tuple[Cluster, Network]) -> None:
    _, network = net
    report = await Experiment(network, packs=2000, seed=11, fakes_per_kind=10, dispense=60).run()
    summary = report.summary()
    for kind in KINDS:
        assert report.injected[kind] >= 10, f"no {kind} fakes were injected"
        assert report.detected[kind] == report.injected[kind], f"{kind}: {summary['missed']}"
    assert report.genuine_scanned >= 1000 and not report.genuine_flagged, summary["flagged"]
    assert report.alerts_recorded == report.alerts_expected > 0


async def test_every_healthcare_document_matches_its_type(
    net: tuple[Cluster, Network], story_steps: dict[str, object],
    session: aiohttp.ClientSession,
) -> None:
    cluster, network = net
    node = cluster.names[0]

    async def read(path: str) -> Any:
        status, body = await cluster.get(node, path)
        assert status == 200, f"{path}: {status} {body}"
        return body

    for i, org in enumerate(await read("/orgs")):
        assert_matches(org, OrganisationDocument, f"orgs[{i}]")
    assert_matches(await read(f"/ehr/records/{story_steps['erased']}"), RecordDocument, "erased record")

    hosp_a, hosp_b = network.of_kind("hospital")[:2]
    doctor, patient = SigningKey.generate(), SigningKey.generate()
    admin = LedgerClient(network.api_for(hosp_a), network.admin(hosp_a), session)
    assert (await admin.submit(b.EnrolMember(doctor.verify_key.raw, "physician")))["status"] == "committed"
    me = LedgerClient(network.api_for(hosp_a), patient, session)
    assert (await me.submit(b.RegisterPatient()))["status"] == "committed"
    assert (await me.submit(b.GrantConsent(hosp_b, None, (), None)))["status"] == "committed"
    physician = LedgerClient(network.api_for(hosp_a), doctor, session)
    filed = await physician.file_record(
        {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}, "valueString": "6.1 %"},
        patient=me.patient_id)
    assert_matches(filed, CommittedRecord, "filed record")
    served = await physician.read_record(bytes.fromhex(filed["record_id"]), "follow-up")
    assert_matches(served, ServedRecord, "served record")
    pid = me.patient_id.hex()
    assert_matches(await read(f"/ehr/records/{filed['record_id']}"), RecordDocument, "record")
    assert_matches(await read(f"/ehr/patients/{pid}"), PatientDocument, "patient")
    consents = await read(f"/ehr/patients/{pid}/consents")
    accesses = await read(f"/ehr/patients/{pid}/accesses")
    assert len(consents) == 1 and len(accesses) == 1
    assert_matches(consents[0], ConsentDocument, "consent")
    assert_matches(accesses[0], AccessDocument, "access")
    assert_matches(await read(f"/members/{doctor.verify_key.hex()}"), MemberDocument, "member")

    alerts = await read("/alerts")
    assert alerts
    for i, alert in enumerate(alerts):
        assert_matches(alert, AlertDocument, f"alerts[{i}]")
    gtin, serial, lot = alerts[0]["gtin"], alerts[0]["serial"], alerts[0]["lot"]
    pack = await read(f"/drugs/packs/{gtin}/{serial}")
    assert pack["history"] and all(event["proof"] for event in pack["history"])
    assert_matches(pack, PackDocument, "pack")
    assert_matches(await read(f"/drugs/packs/{gtin}/{serial}?proofs=0"), PackDocument, "pack without proofs")
    assert_matches(await read(f"/drugs/lots/{gtin}/{lot}"), LotDocument, "lot")
    assert_matches(await read(f"/drugs/shipments/{lot}-D"), ShipmentDocument, "shipment")
    assert_matches(await read(f"/drugs/packs/{gtin}/{serial}/epcis"), EpcisDocument, "EPCIS document")
    # A pack of the recalled lot: not verified, and no alert filed (the later tests count alerts).
    verification = await read(f"/drugs/verify?code=(01){gtin}(21)PK0001&scanned_by=types")
    assert verification["status"] == "recalled" and verification["alert"] is None, verification
    assert_matches(verification, Verification, "verification")


async def test_vaults_then_replay_from_genesis_with_the_cluster_stopped(
    net: tuple[Cluster, Network], story_steps: dict[str, object]
) -> None:
    cluster, _ = net
    clusters.stop_all(cluster.root, timeout=10)
    erased = [str(story_steps["erased"]), *story_steps.get("erased_all", [])]  # type: ignore[misc]
    # Every vault, opened directly as LevelDB, holds nothing of an erased record.
    held: dict[str, list[str]] = {rid: [] for rid in erased}
    for home in clusters.node_homes(cluster.root):
        vault = home / "vault"
        if not vault.exists():
            continue
        for store in ("content", "keys"):
            db = plyvel.DB(str(vault / store))
            try:
                for rid in erased:
                    keys = [k for k, _ in db if bytes.fromhex(rid) in k]
                    # Only the tombstone b"r" + record id may remain: no ciphertext or wrapped key of any version.
                    assert keys in ([], [b"r" + bytes.fromhex(rid)]), f"{home.name} vault {store} still holds {keys}"
                    if keys:
                        held[rid].append(home.name)
            finally:
                db.close()
    assert all(held.values()), f"no vault ever held an erased record: {held}"
    home = clusters.node_homes(cluster.root)[0]
    genesis = load_genesis(cluster.root / "genesis.json")
    store = ChainStore.open(home / "data", genesis.chain_id, genesis.hash)
    try:
        head = store.head()
        assert head is not None and head.height > 30
        app, state = Application.from_genesis(genesis), DictState()
        app_hash = genesis_tip(genesis).app_hash
        for height in range(1, head.height + 1):
            found = store.certified_block(height)
            assert found is not None
            block = found[0]
            assert block.header.app_hash == app_hash, f"state before height {height} differs"
            result = app.execute_block(block, state, app_hash)
            state.apply(result.writes)
            app_hash = result.app_hash
        assert app_hash == head.app_hash
    finally:
        store.close()
    cluster.start()  # leave it as the fixture expects (it stops it again)
