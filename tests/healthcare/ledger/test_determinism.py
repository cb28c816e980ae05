"""Replaying the same blocks on a fresh application reaches the same app_hash at every height."""

from __future__ import annotations

import os

from node.healthcare.application import Application
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.state import DictState
from primitives.hashing import sha256
from tests.healthcare.ledger.world import CHAIN, GTIN, World


def test_replay_from_genesis_matches_every_app_hash() -> None:
    w = World()
    k = w.licensed_chain()
    doc = w.member("st-mary", "physician", "doc")
    alice, pid = w.patient("alice")
    rid = os.urandom(16)
    w.ok(doc, b.AddRecord(rid, pid, "Observation", sha256(b"x")))
    w.ok(alice, b.GrantConsent("city-general", None, (), None))
    w.ok(k["maker"], b.Commission(GTIN, "L1", "281231", ("A", "B", "C")))
    w.ok(k["maker"], b.Ship("S", "dist", (), (b.LotRef(GTIN, "L1"),)))
    w.block([(k["dist"], b.Receive("S")), (k["dist"], b.Receive("S")), (alice, b.EraseRecords((), True))])
    replay = Application(CHAIN, set(), w.orgs, {
        f"{o}-node": w.node(o).verify_key.raw for o in (org.id for org in w.orgs)})
    state, app_hash = DictState(), sha256(b"genesis")
    for block, expected in zip(w.blocks, w.hashes, strict=True):
        result = replay.execute_block(block, state, app_hash)
        state.apply(result.writes)
        app_hash = result.app_hash
        assert app_hash == expected, f"app_hash differs at height {block.height}"
    assert state.data == w.state.data
