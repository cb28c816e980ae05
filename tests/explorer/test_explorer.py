"""The explorer (``/ui/``) in a real browser (Debian's Chromium, driven by Playwright) on a live consortium.

One 4-validator consortium cluster serves the module: real node processes,
TLS, LevelDB; the demo story fills it (records, consents, a lot shipped to a
pharmacy, a dispensed pack scanned again, a counterfeit code, a recall).
Every page is loaded and screenshotted (under ``out/test-run/explorer``);
the pages' verdicts, live updates, in-browser signing and proof checks are
compared with what the ledger and the medchain CLI say.  The JSON routes the
pages use are checked here too, without a browser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from node.config import write_key
from node.healthcare.ledger import bodies as b
from node.healthcare.transactions import BODY_CODEC
from node.lab.counterfeit import Network
from node.lab.story import OBSERVATION, Story
from node.transaction import DOMAIN_TX, Transaction
from primitives.codec import encode, pack
from primitives.signing import SigningKey
from tests.explorer.browser import LAUNCH_ARGS, OUT, ConsoleLog, find_chromium
from tests.harness import Cluster, next_event

ROOT = Path(__file__).resolve().parents[2]
CONSORTIUM = ROOT / "configs" / "consortium-4.toml"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class World:
    cluster: Cluster
    network: Network
    root: Path
    gtin: str
    lot: str  # the story's lot: recalled
    clone_serial: str  # dispensed, then scanned again


def medchain(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, check=check,
                          timeout=120)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("explorer")
    async with Cluster(root, consortium=CONSORTIUM) as cluster:
        await cluster.wait_all(lambda s: s is not None and len(s["peers"]) >= 3, 30, "a connected cluster")
        network = Network.load(root)
        await Story(network, say=lambda line: None).play()
        _, alerts = await cluster.get("regulator", "/alerts")
        clone = next(a for a in alerts if a["info"] == "AlreadyDispensed")
        yield World(cluster, network, root, clone["gtin"], clone["lot"], clone["serial"])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = find_chromium()  # MissingChromium fails every browser test, naming the package
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[tuple[Page, ConsoleLog]]:
    context = await browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    tab = await context.new_page()
    log = ConsoleLog()

    def on_console(message: Any) -> None:
        if message.type == "error":
            log.errors.append(f"{message.text} ({message.location.get('url', '')})")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: log.errors.append(f"uncaught: {exc}"))
    try:
        yield tab, log
    finally:
        await context.close()


def ui(world: World, node: str, path: str) -> str:
    return f"{world.cluster.api(node)}/ui/{path}"


async def until(tab: Page, expression: str, timeout: float = 15, arg: Any = None) -> None:
    """Poll a JavaScript function of ``arg`` until it is true.  Playwright's own polling evaluates strings with
    ``eval``, which the pages' content security policy forbids; ``evaluate`` is not subject to it."""
    deadline = time.monotonic() + timeout
    while not await tab.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        await asyncio.sleep(0.1)


async def shot(tab: Page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    await tab.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


async def verdict_of(tab: Page, world: World, code: str) -> str:
    await tab.goto(ui(world, "northside-pharmacy", "verify.html"))
    await tab.fill("#code", code)
    await tab.click("#verify-button")
    await tab.wait_for_selector("#verdict[data-status]")
    await until(tab, "code => new URLSearchParams(location.search).get('code') === code", arg=code)
    return await tab.get_attribute("#verdict", "data-verdict") or ""


# ---------------------------------------------------------------- pages


async def test_every_page_loads_without_console_errors_and_fits_a_phone(
    world: World, page: tuple[Page, ConsoleLog]
) -> None:
    tab, log = page
    _, head = await world.cluster.get("regulator", "/blocks?limit=1")
    _, block = await world.cluster.get("regulator", f"/blocks/{head[0]['height']}")
    _, alerts = await world.cluster.get("regulator", "/alerts")
    code = f"(01){world.gtin}(21){world.clone_serial}"
    pages = [
        ("network", "", "#height"),
        ("blocks", "blocks.html", "#blocks tbody tr"),
        ("block", f"block.html?h={head[0]['height']}", "#signers"),
        ("transaction", f"tx.html?id={block['txs'][0]}", "#tx-kind"),
        ("verify", f"verify.html?code={code}&scan=0", "#verdict"),
        ("patient", "patient.html", "#who"),
        ("regulator", "regulator.html", "#alerts tr[data-seq]"),
        ("search", f"search.html?q={alerts[0]['tx_id']}", "#tx-kind"),
    ]
    for name, path, ready in pages:
        for width, suffix in ((1200, ""), (390, "-phone")):
            await tab.set_viewport_size({"width": width, "height": 900})
            log.clear()
            await tab.goto(ui(world, "regulator", path))
            await tab.wait_for_selector(ready)
            await tab.wait_for_timeout(300)
            assert log.errors == [], f"{name} page: console errors {log.errors}"
            overflow = await tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} page is {overflow}px wider than a {width}px screen"
            await shot(tab, name + suffix)
    assert (OUT / "verify-phone.png").stat().st_size > 1000


async def test_every_field_has_a_label_and_the_keyboard_reaches_the_content(
    world: World, page: tuple[Page, ConsoleLog]
) -> None:
    tab, _ = page
    for path in ("", "verify.html", "patient.html", "regulator.html", "blocks.html"):
        await tab.goto(ui(world, "st-mary", path))
        await tab.wait_for_selector("main h1")
        unlabelled = await tab.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => !e.labels?.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
        assert unlabelled == [], f"/ui/{path}: fields without a label: {unlabelled}"
        await tab.keyboard.press("Tab")
        focused = await tab.evaluate("document.activeElement.textContent")
        assert focused == "Skip to content", f"/ui/{path}: the first Tab reaches {focused!r}"


async def test_the_network_page_shows_the_height_advancing_live(world: World, page: tuple[Page, ConsoleLog]) -> None:
    tab, log = page
    await tab.goto(ui(world, "city-general", ""))
    await tab.wait_for_selector("#live [data-state=live]")
    start = int(await tab.get_attribute("#height", "data-height") or 0)
    await tab.evaluate("window.__notReloaded = true")
    for i in range(3):
        status, _ = await world.cluster.post_tx("st-mary", world.cluster.anchor_tx(f"explorer-live-{i}"), wait=True)
        assert status == 200
    await until(tab, f"() => Number(document.getElementById('height').dataset.height) >= {start + 3}")
    assert await tab.evaluate("window.__notReloaded === true"), "the page reloaded instead of updating live"
    rows = await tab.eval_on_selector_all("#members tbody tr", "rows => rows.map(r => r.dataset.name)")
    assert sorted(rows) == sorted(world.cluster.names)
    assert log.errors == []


async def test_the_verify_page_gives_the_right_verdicts(world: World, page: tuple[Page, ConsoleLog]) -> None:
    tab, _ = page
    maker = world.root / "orgs" / "acme-pharma" / "admin.json"
    lot = f"GEN{int(time.time()) % 100000}"
    medchain("drug", "commission", "--gtin", world.gtin, "--lot", lot, "--expiry", "301231", "--serials", "G001",
             "--key", str(maker), "--node", world.cluster.api("st-mary"))
    genuine = f"(01){world.gtin}(17)301231(10){lot}(21)G001"
    assert await verdict_of(tab, world, genuine) == "genuine"
    await tab.click("#check-proofs")
    await tab.wait_for_selector("#proof-summary[data-total]")
    assert await tab.get_attribute("#proof-summary", "data-good") == "1"
    await shot(tab, "verify-genuine")

    assert await verdict_of(tab, world, f"(01){world.gtin}(21){world.clone_serial}") == "clone"
    assert await tab.is_visible("#alert-filed")
    await shot(tab, "verify-clone")
    _, lot_doc = await world.cluster.get("regulator", f"/drugs/lots/{world.gtin}/{world.lot}")
    recalled = next(s for s in lot_doc["serials"] if s != world.clone_serial)
    assert await verdict_of(tab, world, f"(01){world.gtin}(21){recalled}") == "recalled"
    await tab.click("#check-proofs")
    await tab.wait_for_selector("#proof-summary[data-total]")
    total = await tab.get_attribute("#proof-summary", "data-total")
    assert total is not None and int(total) >= 5
    assert await tab.get_attribute("#proof-summary", "data-good") == total
    await shot(tab, "verify-recalled")
    assert await verdict_of(tab, world, f"(01){world.gtin}(21)NEVER404") == "unknown"
    await shot(tab, "verify-unknown")


async def test_the_patient_page_grants_and_revokes_a_consent(
    world: World, page: tuple[Page, ConsoleLog], tmp_path: Path
) -> None:
    tab, log = page
    key_file = tmp_path / "patient.json"
    patient = SigningKey.generate()
    write_key(key_file, patient)
    api = world.cluster.api("st-mary")
    pid = json.loads(medchain("patient", "register", "--key", str(key_file), "--node", api, "--json").stdout)[
        "patient_id"]
    medchain("consent", "grant", "--org", "st-mary", "--key", str(key_file), "--node", api)

    await tab.goto(ui(world, "city-general", "patient.html"))
    await tab.set_input_files("#key-file", str(key_file))
    await tab.wait_for_selector("#patient-id")
    assert await tab.text_content("#patient-id") == pid
    await tab.click("[data-revoke=st-mary]")
    await tab.wait_for_selector("#done")
    revoked_tx = (await tab.get_attribute("#done a.mono", "href") or "").split("id=")[1]
    await tab.wait_for_selector("#no-consents")
    await tab.select_option("#grant-org", "city-general")
    await tab.fill("#grant-types", "Observation,Condition")
    await tab.click("#grant")
    await tab.wait_for_selector("[data-revoke=city-general]")
    granted_tx = (await tab.get_attribute("#done a.mono", "href") or "").split("id=")[1]
    await shot(tab, "patient-after-grant")
    assert log.errors == []

    for tid, kind in ((revoked_tx, "RevokeConsent"), (granted_tx, "GrantConsent")):
        _, doc = await world.cluster.get("regulator", f"/txs/{tid}/decoded")
        assert doc["status"]["status"] == "committed" and doc["status"]["code"] == "ok", doc
        assert doc["kind"] == kind
        assert doc["signer"]["key"] == patient.verify_key.hex()
    _, consents = await world.cluster.get("regulator", f"/ehr/patients/{pid}/consents")
    active = {c["grantee_org"]: c["resource_types"] for c in consents if c["active"]}
    assert active == {"city-general": ["Condition", "Observation"]}


async def test_the_patient_page_shows_records_flags_break_glass_and_erases_after_confirmation(
    world: World, page: tuple[Page, ConsoleLog], tmp_path: Path
) -> None:
    tab, log = page
    api = world.cluster.api("st-mary")
    patient_file, physician_file, resource = tmp_path / "patient.json", tmp_path / "physician.json", tmp_path / "o.json"
    write_key(patient_file, SigningKey.generate())
    write_key(physician_file, SigningKey.generate())
    resource.write_text(json.dumps(OBSERVATION))
    pid = json.loads(medchain("patient", "register", "--key", str(patient_file), "--node", api, "--json").stdout)[
        "patient_id"]
    medchain("org", "enrol", str(physician_file), "--role", "physician",
             "--key", str(world.root / "orgs" / "st-mary" / "admin.json"), "--node", api)
    rid = json.loads(medchain("ehr", "add", "--patient", pid, "--file", str(resource), "--key", str(physician_file),
                              "--node", api, "--json").stdout)["record_id"]
    medchain("ehr", "read", rid, "--break-glass", "--purpose", "unconscious on arrival", "--key", str(physician_file),
             "--node", api)

    await tab.goto(ui(world, "regulator", "patient.html"))
    await tab.set_input_files("#key-file", str(patient_file))
    await tab.wait_for_selector(f"#records tr[data-record='{rid}']")
    assert "Observation (1)" in (await tab.text_content("#records") or "")
    flagged = await tab.eval_on_selector_all("#access-table tbody tr.flag", "rows => rows.map(r => r.textContent)")
    assert len(flagged) == 1 and "BREAK-GLASS" in flagged[0] and "unconscious on arrival" in flagged[0]
    assert await tab.is_disabled("#erase"), "erasure must wait for the confirmation"
    await tab.check("#erase-confirm")
    await tab.click("#erase")
    await tab.wait_for_selector("#done")
    await until(tab, f"() => document.querySelector(\"#records tr[data-record='{rid}']\").textContent"
                     ".includes('erased at')")
    await shot(tab, "patient-after-erasure")
    assert log.errors == []
    _, record = await world.cluster.get("regulator", f"/ehr/records/{rid}")
    assert record["erased"] is True


async def test_the_regulator_page_quarantines_a_pack_with_an_inspector_key(
    world: World, page: tuple[Page, ConsoleLog]
) -> None:
    tab, _ = page
    _, lot_doc = await world.cluster.get("regulator", f"/drugs/lots/{world.gtin}/{world.lot}")
    serial = lot_doc["serials"][-1]
    await tab.goto(ui(world, "regulator", "regulator.html"))
    await tab.wait_for_selector("#holds-table tr[data-kind=recall]")
    await tab.set_input_files("#inspector-key", str(world.root / "orgs" / "regulator" / "admin.json"))
    await tab.wait_for_selector("#inspector-role")
    assert await tab.text_content("#inspector-role") == "admin of regulator"
    await tab.select_option("#hold-action", "Quarantine")
    await tab.fill("#hold-gtin", world.gtin)
    await tab.fill("#hold-serial", serial)
    await tab.fill("#hold-reason", "seal broken")
    await tab.click("#hold-submit")
    await tab.wait_for_selector(f"#holds-table tr[data-serial='{serial}']")
    _, holds = await world.cluster.get("st-mary", "/drugs/holds")
    assert {"kind": "pack-quarantine", "serial": serial, "reason": "seal broken"}.items() <= next(
        h for h in holds if h["serial"] == serial).items()
    await shot(tab, "regulator-after-quarantine")


async def test_a_proof_downloaded_from_the_transaction_page_passes_proof_verify(
    world: World, page: tuple[Page, ConsoleLog], tmp_path: Path
) -> None:
    tab, _ = page
    _, alerts = await world.cluster.get("regulator", "/alerts")
    await tab.goto(ui(world, "st-mary", f"tx.html?id={alerts[0]['tx_id']}"))
    await tab.wait_for_selector("#tx-kind")
    assert await tab.text_content("#tx-kind") == "ScanAlert"
    async with tab.expect_download() as download:
        await tab.click("#download-proof")
    saved = tmp_path / "proof.json"
    await (await download.value).save_as(saved)
    result = medchain("proof", "verify", str(saved), "--genesis", str(world.root / "genesis.json"), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ScanAlert" in result.stdout


async def test_the_in_browser_proof_check_refuses_what_the_cli_refuses(
    world: World, page: tuple[Page, ConsoleLog], tmp_path: Path
) -> None:
    tab, _ = page
    _, alerts = await world.cluster.get("regulator", "/alerts")
    _, proof = await world.cluster.get("regulator", f"/proofs/{alerts[0]['tx_id']}")
    genesis = json.loads((world.root / "genesis.json").read_text())
    cert = proof["certificate"]
    forged_sig = dict(proof, certificate=cert[:-2] + ("00" if cert[-2:] != "00" else "01"))
    other_tx = dict(proof, tx_id="ab" * 32)
    tampered_tx = dict(proof, tx=proof["tx"][:-4] + ("0000" if proof["tx"][-4:] != "0000" else "0101"))
    # the page does not replay validator-set changes (node/governance.py): it says so rather than judge them
    with_changes = dict(proof, validator_changes=[[proof]])
    await tab.goto(ui(world, "regulator", "tx.html"))
    verdicts = await tab.evaluate("""async ([docs, genesis]) => {
        const { checkProof } = await import('./js/ledger.js');
        const out = [];
        for (const doc of docs) {
          try { const p = await checkProof(doc, genesis); out.push('ok ' + p.kind); } catch (e) { out.push(e.message); }
        }
        return out;
    }""", [[proof, forged_sig, other_tx, tampered_tx, with_changes], genesis])
    assert verdicts[0] == "ok ScanAlert"
    assert "bad signature from validator" in verdicts[1]
    assert verdicts[2].startswith("tx_id says")
    assert "Merkle path" in verdicts[3] or "signature" in verdicts[3]
    assert "1 validator-set change" in verdicts[4] and "medchain proof verify" in verdicts[4]
    for doc, said in zip((forged_sig, other_tx, tampered_tx, with_changes), verdicts[1:], strict=True):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        result = medchain("proof", "verify", str(path), "--genesis", str(world.root / "genesis.json"), check=False)
        assert result.returncode != 0, f"the CLI accepted what the browser refused ({said})"


async def test_transactions_signed_in_the_browser_are_the_cli_bytes(
    world: World, page: tuple[Page, ConsoleLog]
) -> None:
    tab, _ = page
    key = SigningKey.generate()
    chain = world.cluster.genesis.chain_id
    nonce, at = bytes(range(16)), 1_796_000_000_123
    cases = [
        ("GrantConsent", b.GrantConsent("city-general", None, ("Observation", "Condition"), 2**40 + 7)),
        ("GrantConsent", b.GrantConsent("", bytes(range(32)), (), None)),
        ("RevokeConsent", b.RevokeConsent("st-mary", None)),
        ("EraseRecords", b.EraseRecords((), True)),
        ("Recall", b.Recall("09506000000428", "LOT-É1", "x" * 200)),
        ("Quarantine", b.Quarantine("09506000000428", None, "PK0001", "seal")),
    ]

    def cli_bytes(body: Any) -> bytes:
        encoded = BODY_CODEC.encode(body)
        unsigned = Transaction(chain, key.verify_key.raw, nonce, at, encoded, b"")
        signature = key.sign(DOMAIN_TX, chain, unsigned.signing_payload())
        return encode(Transaction(chain, key.verify_key.raw, nonce, at, encoded, signature))

    def wire(body: Any) -> list[Any]:
        values = []
        for f in dataclasses.fields(body):
            v = getattr(body, f.name)
            values.append(v.hex() if isinstance(v, bytes) else list(v) if isinstance(v, tuple) else v)
        return values

    await tab.goto(ui(world, "regulator", "patient.html"))
    signed = await tab.evaluate("""async ([seed, pub, chain, nonce, at, cases]) => {
        const L = await import('./js/ledger.js');
        const key = await L.signer(L.hexToBytes(seed), L.hexToBytes(pub));
        const bytesOf = (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? L.hexToBytes(v) : v;
        const out = [];
        for (const [kind, fields] of cases) {
          const body = L.encodeBody(kind, fields.map(bytesOf));
          const tx = await L.signTransaction(key, chain, body, { nonce: L.hexToBytes(nonce), timestampMs: at });
          out.push(L.bytesToHex(tx));
        }
        return out;
    }""", [key.seed.hex(), key.verify_key.hex(), chain, nonce.hex(), at, [[k, wire(v)] for k, v in cases]])
    for (kind, body), got in zip(cases, signed, strict=True):
        assert got == cli_bytes(body).hex(), f"{kind}: the browser's bytes differ from the CLI's"


async def test_the_browser_codec_packs_every_boundary_as_python_does(
    world: World, page: tuple[Page, ConsoleLog]
) -> None:
    tab, _ = page
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1]
    texts = ["", "a" * 31, "a" * 32, "é" * 127, "a" * 255, "a" * 256, "a" * 65535, "a" * 65536]
    sizes = [0, 1, 255, 256, 65535, 65536]
    arrays = [list(range(15)), list(range(16)), list(range(65536))]
    await tab.goto(ui(world, "regulator", "blocks.html"))
    got = await tab.evaluate("""async ([ints, texts, sizes, arrays]) => {
        const M = await import('./js/msgpack.js');
        const hex = (v) => M.bytesToHex(M.pack(v));
        return [ints.map(hex), texts.map(hex), sizes.map((n) => hex(new Uint8Array(n).fill(7))), arrays.map(hex),
                [hex(null), hex(true), hex(false), hex(2n ** 64n - 1n)],
                ints.map((n) => M.unpack(M.pack(n)) === n)];
    }""", [ints, texts, sizes, arrays])
    assert got[0] == [pack(n).hex() for n in ints]
    assert got[1] == [pack(t).hex() for t in texts]
    assert got[2] == [pack(bytes([7]) * n).hex() for n in sizes]
    assert got[3] == [pack(a).hex() for a in arrays]
    assert got[4] == [pack(None).hex(), pack(True).hex(), pack(False).hex(), pack(2**64 - 1).hex()]
    assert all(got[5])


async def test_the_network_page_marks_a_view_change_as_it_happens(world: World, page: tuple[Page, ConsoleLog]) -> None:
    tab, log = page
    await tab.goto(ui(world, "st-mary", ""))
    await tab.wait_for_selector("#live [data-state=live]")
    await tab.wait_for_selector("#members tbody tr")
    _, status = await world.cluster.get("st-mary", "/status")
    primary = status["primary"]
    assert primary != "st-mary", "the test pauses the primary, not the node serving the page"
    world.cluster.pause(primary)
    try:
        code, _ = await world.cluster.post_tx("st-mary", world.cluster.anchor_tx("view-change"), wait=True)
        assert code == 200
    finally:
        world.cluster.resume(primary)
    await tab.wait_for_selector("#log li.flag:has-text('view change')", timeout=15000)
    assert int(await tab.get_attribute("#chart", "data-marks") or 0) >= 1
    await until(tab, "() => Number(document.getElementById('view-changes').textContent) >= 1", timeout=10)
    await shot(tab, "network-view-change")
    assert log.errors == []


async def test_pages_keep_working_when_their_node_is_paused_and_resumed(
    world: World, page: tuple[Page, ConsoleLog]
) -> None:
    tab, _ = page
    served_by = "northside-pharmacy"
    await tab.goto(ui(world, served_by, ""))
    await tab.wait_for_selector("#live [data-state=live]")
    await tab.evaluate("window.__notReloaded = true")
    world.cluster.pause(served_by)
    try:
        # longer than the page's 20 s watchdog: the stalled stream is dropped and retried
        for i in range(3):
            status, _ = await world.cluster.post_tx("st-mary", world.cluster.anchor_tx(f"paused-{i}"), wait=True)
            assert status == 200
        await tab.wait_for_selector("#live [data-state=reconnecting]", timeout=40000)
        _, head = await world.cluster.get("st-mary", "/status")
    finally:
        world.cluster.resume(served_by)
    await tab.wait_for_selector("#live [data-state=live]", timeout=30000)
    async with world.cluster.events("st-mary") as events:
        status, _ = await world.cluster.post_tx("st-mary", world.cluster.anchor_tx("after-resume"), wait=True)
        assert status == 200
        after = await next_event(events)
    await until(tab, "h => Number(document.getElementById('height').dataset.height) >= h",
                timeout=30, arg=max(head["height"], after["height"]))
    assert await tab.evaluate("window.__notReloaded === true")


# ---------------------------------------------------------------- the JSON routes the pages use


async def test_network_blocks_search_and_decoded_routes(world: World) -> None:
    c = world.cluster
    status, net = await c.get("st-mary", "/network")
    assert status == 200
    members = {m["name"]: m for m in net["members"]}
    assert set(members) == set(c.names)
    assert members["st-mary"]["self"] and sum(m["primary"] for m in members.values()) == 1
    assert all(m["connected"] for m in members.values())
    assert members["st-mary"]["peers"] == sorted(n for n in c.names if n != "st-mary")
    deadline = time.monotonic() + 10  # peers report every 2 s
    while any(m["view"] is None for m in members.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        members = {m["name"]: m for m in (await c.get("st-mary", "/network"))[1]["members"]}
    for m in members.values():
        assert m["view"] == net["node"]["view"], m
        assert m["mempool_txs"] is not None and m["last_commit_ms"] is not None, m
        assert (m["reported_ms"] is None) == m["self"], m
    assert net["node"]["height"] >= 20 and net["last_commit_ms"] is not None

    _, blocks = await c.get("st-mary", "/blocks?limit=5")
    heights = [blk["height"] for blk in blocks]
    assert heights == list(range(heights[0], heights[0] - 5, -1))
    _, older = await c.get("st-mary", f"/blocks?limit=3&before={heights[-1]}")
    assert [blk["height"] for blk in older] == [heights[-1] - 1, heights[-1] - 2, heights[-1] - 3]
    assert (await c.get("st-mary", "/blocks?limit=0"))[0] == 400
    assert (await c.get("st-mary", "/blocks?limit=101"))[0] == 400

    _, block = await c.get("st-mary", f"/blocks/{heights[1]}")
    for query, kind in ((str(heights[1]), "block"), (block["hash"], "block"), (block["txs"][0], "tx"),
                        (f"(01){world.gtin}(21){world.clone_serial}", "pack"),
                        (f"https://id.gs1.org/01/{world.gtin}/21/{world.clone_serial}", "pack")):
        status, hit = await c.get("st-mary", f"/search?q={query}")
        assert status == 200 and hit["kind"] == kind, (query, hit)
    assert (await c.get("st-mary", "/search?q=" + "cd" * 32))[0] == 404
    status, miss = await c.get("st-mary", f"/search?q=(01){world.gtin}(21)NOSUCH")
    assert status == 404 and "no such pack was commissioned" in miss["message"]
    assert (await c.get("st-mary", "/search?q="))[0] == 400

    status, tx = await c.get("st-mary", f"/txs/{block['txs'][0]}/decoded")
    assert status == 200 and tx["kind"] and tx["signer"]["key"] and tx["status"]["status"] == "committed"
    assert (await c.get("st-mary", "/txs/" + "ee" * 32 + "/decoded"))[0] == 404
    assert (await c.get("st-mary", "/txs/zz/decoded"))[0] == 400

    status, genesis = await c.get("st-mary", "/genesis")
    assert status == 200 and genesis == json.loads((world.root / "genesis.json").read_text())


async def test_commit_events_carry_proposer_latency_and_evidence(world: World) -> None:
    c = world.cluster
    async with c.events("city-general") as events:
        status, _ = await c.post_tx("city-general", c.anchor_tx("event-fields"), wait=True)
        assert status == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            event = await asyncio.wait_for(next_event(events), 10)
            if event["txs"]:
                break
    assert event["proposer"] in c.names
    assert event["evidence"] == 0
    assert event["latency_ms"] is not None and event["latency_ms"] >= 0  # the tx was admitted at city-general


async def test_the_ui_routes_serve_only_their_files(world: World) -> None:
    session = world.cluster.session
    assert session is not None
    base = world.cluster.api("st-mary")
    async with session.get(f"{base}/ui/verify.html") as reply:
        assert reply.status == 200
        assert reply.content_type == "text/html"
        assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
    async with session.get(f"{base}/ui", allow_redirects=False) as reply:
        assert reply.status == 308 and reply.headers["Location"] == "/ui/"
    async with session.get(f"{base}/ui/js/ledger.js") as reply:
        assert reply.status == 200 and reply.content_type == "text/javascript"
    for path in ("/ui/..%2F__init__.py", "/ui/js/missing.js", "/ui/.hidden", "/ui/css", "/ui/js//common.js",
                 "/ui/%2e%2e/%2e%2e/pyproject.toml"):
        async with session.get(f"{base}{path}") as reply:
            assert reply.status == 404, path
            assert (await reply.json())["error"] == "not-found"
