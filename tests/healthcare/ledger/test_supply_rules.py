"""Supply-chain rules: licences, custody, status, recalls, quarantine, destruction and alerts."""

from __future__ import annotations

from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import (
    Alert,
    Event,
    Lot,
    Pack,
    Shipment,
    ShipmentPacks,
    alert_key,
    event_key,
    lot_key,
    pack_key,
    shipment_key,
    shipment_packs_key,
)
from node.healthcare.ledger.state import Overlay
from node.healthcare.ledger.supply import load_pack, verify_code
from primitives.codec import decode
from primitives.signing import SigningKey
from tests.healthcare.ledger.world import DAY, GTIN, World

EXPIRY = "281231"


def _chain(serials: int = 4, lot: str = "L1") -> tuple[World, dict[str, SigningKey]]:
    w = World()
    k = w.licensed_chain()
    w.ok(k["maker"], b.Commission(GTIN, lot, EXPIRY, tuple(f"S{i}" for i in range(serials))))
    return w, k


def _pack(w: World, serial: str) -> Pack:
    """The pack as it stands (a received shipment settles its packs without rewriting them)."""
    found = load_pack(Overlay(w.state), GTIN, serial)
    assert found is not None
    return found


def _ref(*serials: str) -> tuple[b.PackRef, ...]:
    return tuple(b.PackRef(GTIN, s) for s in serials)


def _to_pharmacy(w: World, k: dict[str, SigningKey], *serials: str) -> None:
    w.ok(k["maker"], b.Ship(f"m-{serials[0]}", "dist", _ref(*serials), ()))
    w.ok(k["dist"], b.Receive(f"m-{serials[0]}"))
    w.ok(k["dist"], b.Ship(f"d-{serials[0]}", "pharmacy", _ref(*serials), ()))
    w.ok(k["pharmacist"], b.Receive(f"d-{serials[0]}"))


def test_commission_by_licensed_manufacturer() -> None:
    w, _k = _chain()
    pack = _pack(w, "S0")
    assert (pack.state, pack.custodian, pack.lot, pack.expiry) == ("active", "maker", "L1", EXPIRY)
    assert decode(Lot, w.state.get(lot_key(GTIN, "L1"))).packs == 4


def test_commission_refusals() -> None:
    w = World()
    w.refused(w.admin("maker"), b.Commission(GTIN, "L1", EXPIRY, ("S1",)), "not-licensed")
    k = w.licensed_chain()
    w.refused(k["dist"], b.Commission(GTIN, "L1", EXPIRY, ("S1",)), "not-manufacturer")
    w.refused(k["pharmacist"], b.Commission(GTIN, "L1", EXPIRY, ("S1",)), "not-authorised")
    w.refused(k["maker"], b.Commission("09506000134353", "L1", EXPIRY, ("S1",)), "bad-gs1")
    w.refused(k["maker"], b.Commission("00012345600012", "L1", EXPIRY, ("S1",)), "not-licensed")
    w.refused(k["maker"], b.Commission(GTIN, "L1", "271340", ("S1",)), "bad-gs1")
    w.refused(k["maker"], b.Commission(GTIN, "L1", "260101", ("S1",)), "expired")
    w.refused(k["maker"], b.Commission(GTIN, "L1", EXPIRY, ("S1", "S1")), "duplicate-serial")
    w.ok(k["maker"], b.Commission(GTIN, "L1", EXPIRY, ("S1",)))
    w.refused(k["maker"], b.Commission(GTIN, "L1", EXPIRY, ("S1",)), "duplicate-serial")
    w.refused(k["maker"], b.Commission(GTIN, "L1", "291231", ("S2",)), "lot-mismatch")


def test_ship_and_receive_move_custody() -> None:
    w, k = _chain()
    w.ok(k["maker"], b.Ship("SH1", "dist", _ref("S0", "S1"), ()))
    assert _pack(w, "S0").state == "in_transit"
    assert decode(Shipment, w.state.get(shipment_key("SH1"))).status == "open"
    w.ok(k["dist"], b.Receive("SH1"))
    pack = _pack(w, "S1")
    assert (pack.state, pack.custodian) == ("active", "dist")
    events = [decode(Event, w.state.get(event_key(tid))) for tid in pack.events]
    assert [(e.kind, e.org, e.other_org) for e in events] == [
        ("commission", "maker", ""), ("ship", "maker", "dist"), ("receive", "dist", "maker")]


def test_ship_a_whole_lot_takes_only_the_senders_active_packs() -> None:
    w, k = _chain(serials=6)
    w.ok(k["maker"], b.Ship("part", "dist", _ref("S0"), ()))
    w.ok(k["maker"], b.Ship("rest", "dist", (), (b.LotRef(GTIN, "L1"),)))
    shipped = decode(ShipmentPacks, w.state.get(shipment_packs_key("rest")))
    assert sorted(r.serial for r in shipped.packs) == ["S1", "S2", "S3", "S4", "S5"]


def test_ship_refusals() -> None:
    w, k = _chain()
    w.refused(k["dist"], b.Ship("X", "pharmacy", _ref("S0"), ()), "not-custodian")
    w.refused(k["maker"], b.Ship("X", "st-mary", _ref("S0"), ()), "not-licensed")
    w.refused(k["maker"], b.Ship("X", "nowhere", _ref("S0"), ()), "unknown-org")
    w.refused(k["maker"], b.Ship("X", "dist", _ref("NOPE"), ()), "unknown-pack")
    w.refused(k["maker"], b.Ship("X", "dist", _ref("S0", "S0"), ()), "duplicate-pack")
    w.ok(k["maker"], b.Ship("X", "dist", _ref("S0"), ()))
    w.refused(k["maker"], b.Ship("X", "dist", _ref("S1"), ()), "shipment-exists")
    w.refused(k["maker"], b.Ship("Y", "dist", _ref("S0"), ()), "in-transit")


def test_receive_refusals() -> None:
    w, k = _chain()
    w.ok(k["maker"], b.Ship("SH", "dist", _ref("S0"), ()))
    w.refused(k["pharmacist"], b.Receive("SH"), "not-recipient")
    w.refused(k["dist"], b.Receive("NOPE"), "unknown-shipment")
    w.ok(k["dist"], b.Receive("SH"))
    w.refused(k["dist"], b.Receive("SH"), "shipment-closed")


def test_dispense_by_licensed_pharmacist_holding_custody() -> None:
    w, k = _chain()
    _to_pharmacy(w, k, "S0", "S1")
    w.refused(k["pharmacist-b"], b.Dispense(GTIN, "S0"), "not-custodian")
    w.refused(w.admin("pharmacy"), b.Dispense(GTIN, "S0"), "not-authorised")
    w.ok(k["pharmacist"], b.Dispense(GTIN, "S0"))
    assert _pack(w, "S0").state == "dispensed"
    w.refused(k["pharmacist"], b.Dispense(GTIN, "S0"), "already-dispensed")
    w.refused(k["pharmacist"], b.Ship("back", "dist", _ref("S0"), ()), "already-dispensed")


def test_dispense_needs_a_dispense_licence() -> None:
    w, k = _chain()
    _to_pharmacy(w, k, "S0")
    w.ok(k["regulator"], b.RevokeLicence("pharmacy", "dispense", ""))
    w.refused(k["pharmacist"], b.Dispense(GTIN, "S0"), "not-licensed")


def test_recall_blocks_ship_receive_and_dispense() -> None:
    w, k = _chain()
    w.ok(k["maker"], b.Ship("SH", "dist", _ref("S0"), ()))
    w.refused(k["dist"], b.Recall(GTIN, "L1", "contamination"), "not-authorised")
    w.ok(k["maker"], b.Recall(GTIN, "L1", "contamination"))
    w.refused(k["regulator"], b.Recall(GTIN, "L1", "again"), "already-recalled")
    w.refused(k["dist"], b.Receive("SH"), "recalled")
    w.refused(k["maker"], b.Ship("SH2", "dist", _ref("S1"), ()), "recalled")
    w.refused(k["regulator"], b.Recall(GTIN, "NOLOT", "x"), "unknown-lot")


def test_quarantine_and_release_of_a_pack_and_a_lot() -> None:
    w, k = _chain()
    _to_pharmacy(w, k, "S0", "S1")
    w.refused(k["maker"], b.Quarantine(GTIN, None, "S0", "suspect seal"), "not-regulator")
    w.refused(k["regulator"], b.Quarantine(GTIN, "L1", "S0", "both"), "bad-target")
    w.ok(k["regulator"], b.Quarantine(GTIN, None, "S0", "suspect seal"))
    w.refused(k["pharmacist"], b.Dispense(GTIN, "S0"), "quarantined")
    w.ok(k["regulator"], b.Release(GTIN, None, "S0", "seal fine"))
    w.refused(k["regulator"], b.Release(GTIN, None, "S0", "again"), "not-quarantined")
    w.ok(k["regulator"], b.Quarantine(GTIN, "L1", None, "lab test pending"))
    w.refused(k["pharmacist"], b.Dispense(GTIN, "S1"), "quarantined")
    w.ok(k["regulator"], b.Release(GTIN, "L1", None, "lab test passed"))
    w.ok(k["pharmacist"], b.Dispense(GTIN, "S1"))


def test_expired_packs_cannot_move() -> None:
    w = World()
    k = w.licensed_chain()
    soon = "270131"  # the world's clock starts mid January 2027
    w.ok(k["maker"], b.Commission(GTIN, "SHORT", soon, ("E1",)))
    w.run(k["maker"], b.Commission(GTIN, "OTHER", EXPIRY, ("X",)), advance_ms=20 * DAY)
    w.refused(k["maker"], b.Ship("late", "dist", _ref("E1"), ()), "expired")


def test_destroy_by_custodian_or_regulator() -> None:
    w, k = _chain()
    w.refused(k["dist"], b.Destroy(_ref("S0"), "damaged"), "not-custodian")
    w.ok(k["maker"], b.Destroy(_ref("S0"), "damaged"))
    assert _pack(w, "S0").state == "destroyed"
    w.refused(k["maker"], b.Destroy(_ref("S0"), "again"), "destroyed")
    w.ok(k["regulator"], b.Destroy(_ref("S1"), "seized"))
    w.refused(k["maker"], b.Ship("D", "dist", _ref("S1"), ()), "destroyed")


def test_verify_code_verdicts() -> None:
    w, k = _chain()
    _to_pharmacy(w, k, "S0")
    w.ok(k["pharmacist"], b.Dispense(GTIN, "S0"))
    w.ok(k["regulator"], b.Quarantine(GTIN, None, "S2", "tampered"))
    state, now = Overlay(w.state), w.time_ms
    assert verify_code(state, GTIN, "S1", "L1", EXPIRY, now).verified
    cases = {
        ("NOPE", "L1", EXPIRY): ("unknown", "No_match_GTIN_Serial", ""),
        ("S1", "L9", EXPIRY): ("unknown", "No_match_GTIN_Serial_Lot", "Suspect"),
        ("S1", "L1", "290101"): ("unknown", "No_match_GTIN_Serial_Expiry", "Suspect"),
        ("S1", "L9", "290101"): ("unknown", "No_match_GTIN_Serial_Lot_Expiry", "Suspect"),
        ("S0", "L1", EXPIRY): ("dispensed", "Not_for_re-distribution", "AlreadyDispensed"),
        ("S2", "L1", EXPIRY): ("quarantined", "No_reason_provided", "Suspect"),
    }
    for (serial, lot, expiry), want in cases.items():
        v = verify_code(state, GTIN, serial, lot, expiry, now)
        assert not v.verified and (v.status, v.reason, v.info) == want
    assert verify_code(state, GTIN, "S1", "L1", EXPIRY, now + 3 * 365 * DAY).status == "expired"


def test_alert_recorded_only_when_founded() -> None:
    w, _k = _chain()
    node = w.node("pharmacy")
    w.ok(node, b.ScanAlert(GTIN, "FAKE", "L1", EXPIRY, "No_match_GTIN_Serial", "", "counter 1"))
    alert = decode(Alert, w.state.get(alert_key(0)))
    assert (alert.serial, alert.reporter_org, alert.reason) == ("FAKE", "pharmacy", "No_match_GTIN_Serial")
    w.refused(node, b.ScanAlert(GTIN, "S1", "L1", EXPIRY, "No_match_GTIN_Serial", "", "x"), "alert-unfounded")
    w.refused(node, b.ScanAlert(GTIN, "S1", "L1", EXPIRY, "Made_up", "", "x"), "bad-alert")
    patient, _ = w.patient("p")
    w.refused(patient, b.ScanAlert(GTIN, "FAKE", None, None, "No_match_GTIN_Serial", "", "x"), "not-authorised")
    w.ok(node, b.ScanAlert(GTIN, "S1", "L7", None, "No_match_GTIN_Serial_Lot", "Suspect", "counter 2"))
    assert decode(Alert, w.state.get(alert_key(1))).seq == 1


def test_refused_transaction_changes_nothing() -> None:
    w, k = _chain()
    before = dict(w.state.data)
    # The first pack is fine, the second is not held by the sender: nothing may move.
    w.ok(k["maker"], b.Ship("A", "dist", _ref("S3"), ()))
    w.ok(k["dist"], b.Receive("A"))
    before = dict(w.state.data)
    w.refused(k["maker"], b.Ship("B", "dist", _ref("S0", "S3"), ()), "not-custodian")
    assert w.state.data == before


def test_overlay_range_reads_page_past_the_first_page() -> None:
    from node.healthcare.ledger.records import lot_packs_prefix

    w, _ = _chain(serials=30)
    state = Overlay(w.state)
    prefix = lot_packs_prefix(GTIN, "L1")
    first = state.state_items(prefix, limit=10)
    second = state.state_items(prefix, after=first[-1][0], limit=10)
    assert len(first) == len(second) == 10 and first[-1][0] < second[0][0]
    state.put(prefix + b"S99", b"")  # an uncommitted write shows up in its place
    assert state.state_items(prefix, after=prefix + b"S98", limit=5) == [(prefix + b"S99", b"")]


def test_a_receive_settles_its_shipment_without_rewriting_the_packs() -> None:
    w, k = _chain()
    w.ok(k["maker"], b.Ship("SH", "dist", _ref("S0", "S1", "S2"), ()))
    before = {s: w.state.get(pack_key(GTIN, s)) for s in ("S0", "S1", "S2")}
    w.ok(k["dist"], b.Receive("SH"))
    assert {s: w.state.get(pack_key(GTIN, s)) for s in before} == before  # the pack records are untouched
    shipment = decode(Shipment, w.state.get(shipment_key("SH")))
    assert shipment.status == "received" and shipment.received_tx is not None
    assert shipment.lots == (b.LotRef(GTIN, "L1"),)
    # Every reader sees them at the recipient: rules, verification, and the pack's next event writes it so.
    assert (_pack(w, "S0").state, _pack(w, "S0").custodian, _pack(w, "S0").shipment) == ("active", "dist", None)
    verdict = verify_code(Overlay(w.state), GTIN, "S1", "L1", EXPIRY, w.time_ms)
    assert (verdict.verified, verdict.status) == (True, "active")
    w.refused(k["maker"], b.Ship("back", "pharmacy", _ref("S0"), ()), "not-custodian")
    w.ok(k["dist"], b.Ship("on", "pharmacy", _ref("S0"), ()))
    written = decode(Pack, w.state.get(pack_key(GTIN, "S0")))
    kinds = [decode(Event, w.state.get(event_key(tid))).kind for tid in written.events]
    assert (written.custodian, kinds) == ("dist", ["commission", "ship", "receive", "ship"])


def test_a_receive_is_refused_for_a_pack_or_lot_quarantined_or_a_lot_expired_in_transit() -> None:
    w, k = _chain()
    w.ok(k["maker"], b.Ship("SH", "dist", _ref("S0", "S1"), ()))
    w.ok(k["regulator"], b.Quarantine(GTIN, None, "S1", "seal broken"))
    assert decode(Shipment, w.state.get(shipment_key("SH"))).suspects == 1
    w.refused(k["dist"], b.Receive("SH"), "quarantined")
    w.ok(k["regulator"], b.Release(GTIN, None, "S1", "seal fine"))
    w.ok(k["regulator"], b.Quarantine(GTIN, "L1", None, "lab test pending"))
    w.refused(k["dist"], b.Receive("SH"), "quarantined")
    w.ok(k["regulator"], b.Release(GTIN, "L1", None, "lab test passed"))
    w.ok(k["dist"], b.Receive("SH"))
    # A pack quarantined after its shipment was received counts on no shipment.
    w.ok(k["regulator"], b.Quarantine(GTIN, None, "S0", "seal broken"))
    assert decode(Shipment, w.state.get(shipment_key("SH"))).suspects == 0
    assert _pack(w, "S0").suspect == "seal broken" and _pack(w, "S0").custodian == "dist"

    late = World()
    lk = late.licensed_chain()
    late.ok(lk["maker"], b.Commission(GTIN, "SHORT", "270131", ("E1",)))  # the world's clock starts mid January 2027
    late.ok(lk["maker"], b.Ship("slow", "dist", (b.PackRef(GTIN, "E1"),), ()))
    late.run(lk["maker"], b.Commission(GTIN, "OTHER", EXPIRY, ("X",)), advance_ms=20 * DAY)
    late.refused(lk["dist"], b.Receive("slow"), "expired")


def test_holds_in_force_list_recalls_and_quarantines_until_released() -> None:
    """The hold index behind GET /drugs/holds: recalls stay; quarantines go with their release."""
    from node.healthcare.ledger.records import parse_hold_key, recall_hold_key
    from node.healthcare.views import LedgerViews

    w, k = _chain()
    _to_pharmacy(w, k, "S0", "S1")
    w.ok(k["maker"], b.Commission(GTIN, "L2", EXPIRY, ("T0",)))

    def holds() -> list[tuple[str, str | None, str | None, str, str | None]]:
        return [(h["kind"], h["lot"], h["serial"], h["reason"], h["org"])
                for h in LedgerViews(w.state, None).holds()]  # type: ignore[arg-type]

    assert holds() == []
    w.ok(k["regulator"], b.Quarantine(GTIN, None, "S0", "suspect seal"))
    w.ok(k["regulator"], b.Quarantine(GTIN, "L1", None, "lab test pending"))
    w.ok(k["maker"], b.Recall(GTIN, "L2", "contamination"))
    assert sorted(holds()) == [
        ("lot-quarantine", "L1", None, "lab test pending", "regulator"),
        ("pack-quarantine", None, "S0", "suspect seal", "regulator"),
        ("recall", "L2", None, "contamination", "maker"),
    ]
    w.ok(k["regulator"], b.Release(GTIN, None, "S0", "seal fine"))
    w.ok(k["regulator"], b.Release(GTIN, "L1", None, "lab test passed"))
    assert holds() == [("recall", "L2", None, "contamination", "maker")]
    assert parse_hold_key(recall_hold_key(GTIN, "L2")) == ("recall", GTIN, "L2")
