"""The state overlay: trusted decoding matches strict decoding; range reads merge writes in key order."""

from __future__ import annotations

from node.healthcare.ledger.bodies import LotRef, PackRef
from node.healthcare.ledger.records import (
    Access,
    Alert,
    Consent,
    Event,
    Lot,
    Member,
    Pack,
    Patient,
    Record,
    RecordVersion,
    Shipment,
    ShipmentPacks,
)
from node.healthcare.ledger.state import DictState, Overlay, decode_state
from primitives.codec import decode, encode

SAMPLES = [
    Member("st-mary", "physician", True, 3, None),
    Patient(b"k" * 32, 4, (b"r" * 16, b"s" * 16)),
    Record(b"p" * 16, "st-mary", "Observation", 2, 5, 1, None, None),
    Record(b"p" * 16, "st-mary", "Observation", 2, 5, 1, 9, b"t" * 32),
    RecordVersion(b"c" * 32, b"a" * 32, 1, "Observation", 6, 7, b"x" * 32),
    Access(b"r" * 32, "city-general", 1, "care", "consent", False, 8, 9, 10, b"y" * 32),
    Consent("", b"g" * 32, ("Condition", "Observation"), 99, 3, b"z" * 32),
    Event("ship", b"e" * 32, 4, 5, "maker", "dist", "S1"),
    Pack("L1", "291231", "active", "maker", "maker", None, "S1", (b"e" * 32, b"f" * 32)),
    Lot("291231", "maker", 20, "recall", None, (b"e" * 32,)),
    Alert(0, "09506000134352", "X", None, "291231", "No_match_GTIN_Serial", "", "c", "pharmacy", 3, 4, b"q" * 32),
    Shipment("maker", "dist", 3, b"t" * 32, (LotRef("09506000134352", "L1"),), 0, b"u" * 32),
    ShipmentPacks((PackRef("09506000134352", "S1"), PackRef("09506000134352", "S2"))),  # one field, nested records
]


def test_trusted_decoding_equals_strict_decoding_for_every_record() -> None:
    for record in SAMPLES:
        raw = encode(record)
        assert decode_state(type(record), raw) == decode(type(record), raw) == record


def test_range_reads_merge_base_and_writes_and_see_deletions() -> None:
    base = DictState()
    base.apply({b"a/1": b"1", b"a/3": b"3", b"b/1": b"x"})
    overlay = Overlay(base)
    assert [k for k, _ in overlay.scan(b"a/", 10)] == [b"a/1", b"a/3"]
    overlay.put(b"a/2", b"2")
    overlay.delete(b"a/3")
    overlay.put(b"a/4", b"4")
    assert [k for k, _ in overlay.scan(b"a/", 10)] == [b"a/1", b"a/2", b"a/4"]
    assert [k for k, _ in overlay.scan(b"a/", 10, after=b"a/2")] == [b"a/4"]
    nested = Overlay(overlay)
    nested.put(b"a/0", b"0")
    assert [k for k, _ in nested.scan(b"a/", 2)] == [b"a/0", b"a/1"]


def test_trusted_encoding_gives_the_canonical_bytes() -> None:
    from node.healthcare.ledger.state import encode_state

    for record in SAMPLES:
        assert encode_state(record) == encode(record)


def test_a_rolled_back_transaction_leaves_writes_and_range_reads_as_they_were_and_no_stale_record() -> None:
    base = DictState()
    old_pack = SAMPLES[8]
    base.apply({b"sc/k/1": encode(old_pack), b"sc/k/3": b"3"})
    overlay = Overlay(base)
    overlay.put(b"sc/k/2", b"2")
    assert overlay.load(Pack, b"sc/k/1") == old_pack  # decoded and kept
    overlay.scan(b"sc/k/", 10)  # builds the sorted write index
    before_writes, before_records = dict(overlay.writes), dict(overlay._records)
    overlay.begin()
    moved = Pack("L1", "291231", "in_transit", "maker", "maker", None, "S2", ())
    overlay.store(b"sc/k/1", moved)
    overlay.put(b"sc/k/2", b"two")
    overlay.put(b"sc/k/2", b"2b")  # a key written twice keeps its value from before the transaction
    overlay.delete(b"sc/k/3")
    overlay.put(b"sc/k/4", b"4")
    assert overlay.load(Pack, b"sc/k/1") == moved
    assert [k for k, _ in overlay.scan(b"sc/k/", 10)] == [b"sc/k/1", b"sc/k/2", b"sc/k/4"]
    overlay.rollback()
    assert overlay.writes == before_writes
    assert overlay._records.items() <= before_records.items()  # the transaction's records are dropped, none kept
    assert overlay.load(Pack, b"sc/k/1") == old_pack
    assert [k for k, _ in overlay.scan(b"sc/k/", 10)] == [b"sc/k/1", b"sc/k/2", b"sc/k/3"]
    overlay.begin()
    overlay.put(b"sc/k/5", b"5")
    overlay.commit()
    overlay.rollback()  # nothing open: nothing undone
    assert overlay.get(b"sc/k/5") == b"5"
