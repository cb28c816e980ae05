"""Equivocation evidence: stored as canonical message bytes, listed in arrival order."""

from __future__ import annotations

from pathlib import Path

from consensus.events import Evidence
from tests.helpers import block, pre_prepare, prepare
from tests.storage.builders import open_store


def _evidence(height: int) -> Evidence:
    a, b = block(height, txs=(b"a",)), block(height, txs=(b"b",))
    return Evidence(2, "prepare", prepare(a, 2), prepare(b, 2))


def test_evidence_round_trips_in_order_and_survives_reopening(data_dir: Path) -> None:
    one, two = _evidence(1), _evidence(2)
    three = Evidence(0, "pre-prepare", pre_prepare(block(3, txs=(b"x",))), pre_prepare(block(3, txs=(b"y",))))
    with open_store(data_dir) as store:
        assert store.add_evidence(one) and store.add_evidence(two)
        assert store.evidence() == [one, two]
    with open_store(data_dir) as store:
        assert store.add_evidence(three)
        assert store.evidence() == [one, two, three]
        assert store.evidence(limit=1) == [one]


def test_the_same_evidence_is_stored_once(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        assert store.add_evidence(_evidence(1))
        assert not store.add_evidence(_evidence(1))
        assert len(store.evidence()) == 1
