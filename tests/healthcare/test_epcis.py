"""EPCIS 2.0 export of a pack's history: the CBV mapping, and validity under GS1's schema."""

import copy

import pytest

from node.healthcare.epcis import EPCIS_CONTEXT, MEDCHAIN_NAMESPACE, EpcisError, epcis_document, validate_epcis
from node.healthcare.gs1 import Gs1Error, sgtin_uri

GTIN = "09506000134352"
SERIAL = "AB/12"
EPC = "urn:epc:id:sgtin:95060001343.05.AB%2F12"  # GS1's table: 11-digit company prefix
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HISTORY = [
    {
        "kind": "commission",
        "time_ms": T0,
        "tx_id": "a1" * 32,
        "height": 10,
        "org": "maker",
        "lot": "L1",
        "expiry": "271200",
    },
    {
        "kind": "ship",
        "time_ms": T0 + 1_000,
        "tx_id": "b2" * 32,
        "height": 11,
        "org": "maker",
        "to_org": "whole sale",
        "shipment_id": "SH-1",
    },
    {
        "kind": "receive",
        "time_ms": T0 + 2_000,
        "tx_id": "c3" * 32,
        "height": 12,
        "org": "whole sale",
        "from_org": "maker",
        "shipment_id": "SH-1",
    },
    {"kind": "dispense", "time_ms": T0 + 3_000, "tx_id": "d4" * 32, "height": 13, "org": "pharmacy"},
    {
        "kind": "recall",
        "time_ms": T0 + 4_000,
        "tx_id": "e5" * 32,
        "height": 14,
        "org": "maker",
        "reason": "contamination",
    },
    {"kind": "quarantine", "time_ms": T0 + 5_000, "tx_id": "F6" * 32, "height": 15, "org": "pharmacy"},
    {"kind": "release", "time_ms": T0 + 6_000, "tx_id": "07" * 32, "height": 16, "org": "pharmacy"},
    {"kind": "destroy", "time_ms": T0 + 7_123, "tx_id": "08" * 32, "height": 17, "org": "pharmacy"},
]


def _document():
    return epcis_document(GTIN, SERIAL, HISTORY, T0 + 60_000)


def _events():
    return {event["medchain:event"]: event for event in _document()["epcisBody"]["eventList"]}


def test_a_full_history_exports_to_a_document_the_schema_accepts():
    doc = _document()
    assert validate_epcis(doc) == []
    assert doc["@context"] == [EPCIS_CONTEXT, {"medchain": MEDCHAIN_NAMESPACE}]
    assert doc["type"] == "EPCISDocument"
    assert doc["schemaVersion"] == "2.0"
    assert doc["creationDate"] == "2026-01-01T00:01:00.000Z"
    assert [e["medchain:event"] for e in doc["epcisBody"]["eventList"]] == [e["kind"] for e in HISTORY]


@pytest.mark.parametrize(
    ("kind", "action", "biz_step", "disposition"),
    [
        ("commission", "ADD", "commissioning", "active"),
        ("ship", "OBSERVE", "shipping", "in_transit"),
        ("receive", "OBSERVE", "receiving", "in_progress"),
        ("dispense", "OBSERVE", "dispensing", "dispensed"),
        ("recall", "OBSERVE", "holding", "recalled"),
        ("quarantine", "OBSERVE", "holding", "non_sellable_other"),
        ("release", "OBSERVE", "holding", "active"),
        ("destroy", "DELETE", "destroying", "destroyed"),
    ],
)
def test_each_kind_maps_to_an_object_event_with_its_cbv_step(kind, action, biz_step, disposition):
    event = _events()[kind]
    assert event["type"] == "ObjectEvent"
    assert (event["action"], event["bizStep"], event["disposition"]) == (action, biz_step, disposition)
    assert event["epcList"] == [EPC]
    assert event["eventTimeZoneOffset"] == "+00:00"
    assert event["eventTime"] == event["recordTime"]
    assert event["eventID"].startswith("urn:uuid:")


def test_commissioning_carries_lot_and_expiry_as_ilmd_and_no_other_event_does():
    events = _events()
    assert events["commission"]["ilmd"] == {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2027-12-31"}
    assert [kind for kind, event in events.items() if "ilmd" in event] == ["commission"]


def test_shipping_names_source_and_destination_owners_and_the_shipment():
    events = _events()
    ship, receive = events["ship"], events["receive"]
    assert ship["sourceList"] == [{"type": "owning_party", "source": "https://medchain.example/org/maker"}]
    assert ship["destinationList"] == [
        {"type": "owning_party", "destination": "https://medchain.example/org/whole%20sale"}
    ]
    assert receive["sourceList"] == ship["sourceList"]
    assert receive["destinationList"] == ship["destinationList"]
    shipment = [{"type": "desadv", "bizTransaction": "https://medchain.example/shipment/SH-1"}]
    assert ship["bizTransactionList"] == shipment
    assert receive["bizTransactionList"] == shipment
    assert "bizLocation" not in ship
    assert receive["bizLocation"] == {"id": "https://medchain.example/org/whole%20sale"}
    assert [kind for kind, event in events.items() if "sourceList" in event] == ["ship", "receive"]


def test_times_are_utc_with_milliseconds():
    events = _events()
    assert events["commission"]["eventTime"] == "2026-01-01T00:00:00.000Z"
    assert events["destroy"]["eventTime"] == "2026-01-01T00:00:07.123Z"


def test_medchain_facts_are_extension_fields_in_its_namespace():
    events = _events()
    assert events["commission"]["medchain:txId"] == "a1" * 32
    assert events["quarantine"]["medchain:txId"] == "f6" * 32
    assert events["commission"]["medchain:height"] == 10
    assert events["recall"]["medchain:reason"] == "contamination"
    assert "medchain:reason" not in events["dispense"]


def test_event_ids_are_deterministic_and_distinct():
    ids = [event["eventID"] for event in _document()["epcisBody"]["eventList"]]
    assert ids == [event["eventID"] for event in _document()["epcisBody"]["eventList"]]
    assert len(set(ids)) == len(ids)
    # One shipment transaction moving two packs gives two events with two ids.
    other = epcis_document(GTIN, "OTHER", HISTORY[1:2], T0)["epcisBody"]["eventList"][0]
    assert other["eventID"] != ids[1]


def test_a_deployment_chooses_its_own_iri_base():
    doc = epcis_document(GTIN, SERIAL, HISTORY[:2], T0, iri_base="https://ledger.example.net/")
    ship = doc["epcisBody"]["eventList"][1]
    assert ship["readPoint"] == {"id": "https://ledger.example.net/org/maker"}
    assert ship["bizTransactionList"][0]["bizTransaction"] == "https://ledger.example.net/shipment/SH-1"
    assert validate_epcis(doc) == []
    with pytest.raises(EpcisError, match="iri_base"):
        epcis_document(GTIN, SERIAL, HISTORY, T0, iri_base="https://ledger.example.net")


def test_an_empty_history_is_still_a_valid_document():
    assert validate_epcis(epcis_document(GTIN, SERIAL, [], T0)) == []


@pytest.mark.parametrize(
    ("where", "key", "value", "says"),
    [
        (0, "action", "FOO", "'FOO' is not one of"),
        (1, "bizStep", "teleporting", "not a 'uri'"),
        (1, "disposition", "lost in space", "not a 'uri'"),
        (2, "eventTime", "yesterday", "not a 'date-time'"),
        (2, "eventTimeZoneOffset", "Z", "does not match"),
        (3, "undeclaredField", 1, "undeclaredField"),
        (3, "epcList", ["not a uri"], "not a 'uri'"),
    ],
)
def test_a_tampered_event_is_rejected(where, key, value, says):
    doc = _document()
    doc["epcisBody"]["eventList"][where][key] = value
    errors = validate_epcis(doc)
    assert errors
    assert any(f"epcisBody/eventList/{where}" in e and says in e for e in errors), errors


def test_a_document_without_its_required_parts_is_rejected():
    doc = _document()
    del doc["creationDate"]
    assert validate_epcis(doc) == ["(document): 'creationDate' is a required property"]
    doc = _document()
    doc["epcisBody"]["eventList"][1]["sourceList"][0]["type"] = "owner"
    assert validate_epcis(doc)
    doc = copy.deepcopy(_document())
    doc["epcisBody"]["eventList"][0]["ilmd"]["lotNumber"] = "L2"  # ilmd keys are URIs
    assert validate_epcis(doc)
    assert validate_epcis([]) == ["(document): [] is not of type 'object'"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"kind": "teleport"}, "teleport"),
        ({"tx_id": "xyz"}, "hexadecimal"),
        ({"height": -1}, "non-negative"),
        ({"time_ms": True}, "non-negative"),
        ({"org": ""}, "non-empty"),
        ({"colour": "red"}, "unknown keys colour"),
    ],
)
def test_a_malformed_input_event_is_refused(change, says):
    with pytest.raises(EpcisError) as err:
        epcis_document(GTIN, SERIAL, [{**HISTORY[0], **change}], T0)
    assert says in str(err.value)


def test_an_input_event_missing_a_key_is_refused():
    event = dict(HISTORY[0])
    del event["tx_id"]
    with pytest.raises(EpcisError, match="lacks tx_id"):
        epcis_document(GTIN, SERIAL, [event], T0)


def test_bad_identifiers_are_refused_by_the_gs1_checks():
    with pytest.raises(Gs1Error) as err:
        epcis_document("09506000134353", SERIAL, HISTORY, T0)
    assert err.value.field == "gtin"
    with pytest.raises(Gs1Error) as err:
        epcis_document(GTIN, SERIAL, [{**HISTORY[0], "expiry": "271332"}], T0)
    assert err.value.field == "expiry"


# Every character of GS1 AI encodable set 82, the characters a serial (21) may hold.
SET_82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def test_every_serial_character_gives_an_export_the_schema_accepts():
    serials = [SET_82[i : i + 20] for i in range(0, len(SET_82), 20)] + list(SET_82)
    for serial in serials:
        doc = epcis_document(GTIN, serial, HISTORY, T0)
        assert validate_epcis(doc) == [], serial
        epcs = {epc for event in doc["epcisBody"]["eventList"] for epc in event["epcList"]}
        assert epcs == {sgtin_uri(GTIN, serial)}, serial

