"""The genesis file: the network's chain id, its validators, observers, clients and organisations.

JSON, written once by ``medchain testnet`` and shared by every node.  Its
hash (SHA-256 of the canonical JSON: sorted keys, no spaces) is stored in each
node's database, so a node never opens a data directory of another network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from primitives.errors import UsageError
from primitives.hashing import sha256
from primitives.signing import VerifyKey


class GenesisError(UsageError):
    """The genesis file is missing, unreadable or inconsistent."""


ORG_KINDS = ("hospital", "pharmacy", "manufacturer", "distributor", "regulator", "lab")


@dataclass(frozen=True, slots=True)
class Organisation:
    """A consortium member: its admin key enrols member keys; ``nodes`` names the nodes it runs."""

    id: str
    name: str
    kind: str
    admin_key: VerifyKey
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    key: VerifyKey
    cert_pem: str = ""


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    validators: tuple[Member, ...]
    observers: tuple[Member, ...]
    clients: tuple[Member, ...]
    raw: dict[str, Any]  # the file as read, any JSON: its canonical hash names the chain
    organisations: tuple[Organisation, ...] = ()
    governance_quorum: Fraction = Fraction(2, 3)
    """The share of validator organisations whose admins decide a validator-set change (node.governance)."""

    @property
    def hash(self) -> bytes:
        return sha256(canonical_json(self.raw))

    def validator_index(self, key: VerifyKey) -> int | None:
        for i, member in enumerate(self.validators):
            if member.key == key:
                return i
        return None

    def node(self, name: str) -> Member | None:
        for member in (*self.validators, *self.observers):
            if member.name == name:
                return member
        return None

    @property
    def nodes(self) -> tuple[Member, ...]:
        return (*self.validators, *self.observers)

    def organisation(self, org_id: str) -> Organisation | None:
        for org in self.organisations:
            if org.id == org_id:
                return org
        return None

    def org_of_node(self, name: str) -> Organisation | None:
        for org in self.organisations:
            if name in org.nodes:
                return org
        return None


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _members(raw: Any, where: str) -> tuple[Member, ...]:
    if not isinstance(raw, list):
        raise GenesisError(f"genesis: '{where}' must be a list")
    out = []
    names = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("key"), str):
            raise GenesisError(f"genesis: {where}[{i}] needs a 'name' and a hex 'key'")
        if item["name"] in names:
            raise GenesisError(f"genesis: {where}[{i}]: name {item['name']!r} is used twice")
        names.add(item["name"])
        try:
            key = VerifyKey(bytes.fromhex(item["key"]))
        except (ValueError, Exception) as exc:
            raise GenesisError(f"genesis: {where}[{i}].key is not a 32-byte hex Ed25519 key: {exc}") from None
        out.append(Member(item["name"], key, str(item.get("cert", ""))))
    return tuple(out)


def _organisations(raw: Any, node_names: set[str]) -> tuple[Organisation, ...]:
    if not isinstance(raw, list):
        raise GenesisError("genesis: 'organisations' must be a list")
    out = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"organisations[{i}]"
        if not isinstance(item, dict):
            raise GenesisError(f"genesis: {where} must be an object")
        org_id, name, kind = item.get("id"), item.get("name"), item.get("kind")
        if not isinstance(org_id, str) or not 0 < len(org_id) <= 32 or not org_id.replace("-", "").isalnum():
            raise GenesisError(f"genesis: {where}.id must be 1 to 32 letters, digits or '-'")
        if org_id in seen:
            raise GenesisError(f"genesis: {where}: organisation id {org_id!r} is used twice")
        seen.add(org_id)
        if not isinstance(name, str) or not name:
            raise GenesisError(f"genesis: {where}.name must be a non-empty string")
        if kind not in ORG_KINDS:
            raise GenesisError(f"genesis: {where}.kind must be one of {', '.join(ORG_KINDS)}, got {kind!r}")
        try:
            admin = VerifyKey(bytes.fromhex(item.get("admin_key", "")))
        except (ValueError, TypeError, Exception):
            raise GenesisError(f"genesis: {where}.admin_key is not a 32-byte hex Ed25519 key") from None
        nodes = item.get("nodes", [])
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise GenesisError(f"genesis: {where}.nodes must be a list of node names")
        for n in nodes:
            if n not in node_names:
                raise GenesisError(f"genesis: {where}.nodes names {n!r}, which is not a validator or observer")
        out.append(Organisation(org_id, name, kind, admin, tuple(nodes)))
    return tuple(out)


def parse_genesis(raw: Any) -> Genesis:
    if not isinstance(raw, dict):
        raise GenesisError("genesis: the top level must be an object")
    chain_id = raw.get("chain_id")
    if not isinstance(chain_id, str) or not 0 < len(chain_id) <= 64:
        raise GenesisError("genesis: 'chain_id' must be a string of 1 to 64 characters")
    time_ms = raw.get("genesis_time_ms")
    if not isinstance(time_ms, int) or time_ms < 0:
        raise GenesisError("genesis: 'genesis_time_ms' must be a non-negative integer")
    validators = _members(raw.get("validators"), "validators")
    if not validators:
        raise GenesisError("genesis: at least one validator is needed")
    observers = _members(raw.get("observers", []), "observers")
    clients = _members(raw.get("clients", []), "clients")
    keys = [m.key for m in (*validators, *observers)]
    if len(set(keys)) != len(keys):
        raise GenesisError("genesis: two nodes share one key")
    orgs = _organisations(raw.get("organisations", []), {m.name for m in (*validators, *observers)})
    return Genesis(chain_id, time_ms, validators, observers, clients, raw, orgs, _governance_quorum(raw))


def _governance_quorum(raw: dict[str, Any]) -> Fraction:
    """``governance.quorum`` ("2/3" when absent): a fraction over 1/2 and at most 1."""
    section = raw.get("governance", {})
    if not isinstance(section, dict):
        raise GenesisError("genesis: 'governance' must be an object")
    text = section.get("quorum", "2/3")
    try:
        value = Fraction(text) if isinstance(text, str) else None
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None or not Fraction(1, 2) < value <= 1:
        raise GenesisError(f"genesis: governance.quorum must be a fraction over 1/2 and at most 1, like \"2/3\"; "
                           f"got {text!r}")
    return value


def load_genesis(path: Path) -> Genesis:
    try:
        text = path.read_text()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis file {path} is not valid JSON: {exc}") from None
    return parse_genesis(raw)
