"""A consortium in memory for pure rule tests: organisations, keys and a chain of one-tx blocks."""

from __future__ import annotations

from typing import Any

from consensus.messages import Block, BlockHeader
from node.app import TxResult
from node.genesis import Organisation
from node.healthcare.application import Application
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import patient_id
from node.healthcare.ledger.state import DictState
from node.healthcare.transactions import make_transaction
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

CHAIN = "ledger-test"
T0 = 1_800_000_000_000  # 2027-01-15, UTC
DAY = 86_400_000
GTIN = "09506000134352"  # company prefix 9506000
PREFIX = "9506000"
ORGS = {
    "regulator": "regulator",
    "st-mary": "hospital",
    "city-general": "hospital",
    "pharmacy": "pharmacy",
    "pharmacy-b": "pharmacy",
    "maker": "manufacturer",
    "dist": "distributor",
}


def key(name: str) -> SigningKey:
    return SigningKey.from_seed_text(f"ledger-test/{name}")


class World:
    """Every organisation, its admin and node keys, and a state advanced one block per transaction."""

    def __init__(self) -> None:
        self.orgs = tuple(
            Organisation(org_id, org_id.title(), kind, key(f"{org_id}/admin").verify_key, (f"{org_id}-node",))
            for org_id, kind in ORGS.items()
        )
        node_keys = {f"{o}-node": key(f"{o}/node").verify_key.raw for o in ORGS}
        self.app = Application(CHAIN, set(), self.orgs, node_keys)
        self.state = DictState()
        self.height = 0
        self.time_ms = T0
        self.app_hash = sha256(b"genesis")
        self.hashes: list[bytes] = []
        self.blocks: list[Block] = []

    def admin(self, org: str) -> SigningKey:
        return key(f"{org}/admin")

    def node(self, org: str) -> SigningKey:
        return key(f"{org}/node")

    def run(self, signer: SigningKey, body: Any, *, advance_ms: int = 1000) -> TxResult:
        return self.block([(signer, body)], advance_ms=advance_ms)[0]

    def block(self, items: list[tuple[SigningKey, Any]], *, advance_ms: int = 1000) -> list[TxResult]:
        self.height += 1
        self.time_ms += advance_ms
        txs = tuple(make_transaction(k, CHAIN, body, self.time_ms) for k, body in items)
        header = BlockHeader(CHAIN, self.height, b"\0" * 32, 0, 0, self.time_ms, merkle_root(txs), len(txs),
                             self.app_hash)
        result = self.app.execute_block(Block(header, txs), self.state, self.app_hash)
        self.state.apply(result.writes)
        self.app_hash = result.app_hash
        self.hashes.append(result.app_hash)
        self.blocks.append(Block(header, txs))
        return result.results

    def ok(self, signer: SigningKey, body: Any) -> None:
        result = self.run(signer, body)
        assert result.ok, f"{type(body).__name__} refused: {result.code}: {result.message}"

    def refused(self, signer: SigningKey, body: Any, code: str) -> str:
        result = self.run(signer, body)
        assert not result.ok, f"{type(body).__name__} was accepted, expected {code}"
        assert result.code == code, f"expected {code}, got {result.code}: {result.message}"
        return result.message

    # ------------------------------------------------------------ set-ups

    def member(self, org: str, role: str, name: str | None = None) -> SigningKey:
        k = key(f"{org}/{name or role}")
        self.ok(self.admin(org), b.EnrolMember(k.verify_key.raw, role))
        return k

    def patient(self, name: str) -> tuple[SigningKey, bytes]:
        k = key(f"patient/{name}")
        self.ok(k, b.RegisterPatient())
        return k, patient_id(k.verify_key.raw)

    def licensed_chain(self) -> dict[str, SigningKey]:
        """Licences for maker (prefix), dist, pharmacy and pharmacy-b; a pharmacist at each pharmacy."""
        reg = self.admin("regulator")
        self.ok(reg, b.GrantLicence("maker", "manufacture", PREFIX))
        self.ok(reg, b.GrantLicence("dist", "distribute", ""))
        self.ok(reg, b.GrantLicence("pharmacy", "dispense", ""))
        self.ok(reg, b.GrantLicence("pharmacy-b", "dispense", ""))
        return {
            "maker": self.admin("maker"),
            "dist": self.member("dist", "logistics"),
            "pharmacist": self.member("pharmacy", "pharmacist"),
            "pharmacist-b": self.member("pharmacy-b", "pharmacist"),
            "regulator": reg,
        }
