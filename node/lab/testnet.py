"""Generate a local network: genesis, keys, TLS material, a vault KEK and one home folder per node."""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from node.config import (
    DEFAULT_KEK_FILE,
    ConfigError,
    NodeConfig,
    Peer,
    check_host,
    http_url,
    join_address,
    read_key,
    write_key,
)
from node.genesis import Genesis, parse_genesis
from node.healthcare.kek import new_kek, write_kek_file
from node.lab.consortium import Consortium
from node.p2p.certs import write_node_tls
from primitives.errors import UsageError
from primitives.signing import SigningKey

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    role: str
    p2p_port: int
    api_port: int
    host: str = HOST  # the address peers dial and clients call (advertised)
    listen: str = HOST  # the address it binds

    @property
    def api_url(self) -> str:
        return http_url(self.host, self.api_port)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one node lives (``--hosts``): its advertised host, the address it binds, its two ports."""

    host: str
    listen: str
    p2p_port: int
    api_port: int


HOST_KEYS = {"name", "host", "listen", "p2p_port", "api_port"}
DEFAULT_P2P_PORT, DEFAULT_API_PORT = 26600, 26601


def load_hosts(path: Path) -> dict[str, Placement]:
    """A hosts file: ``[[node]]`` tables of ``name``, ``host`` (a host name, IPv4 or IPv6 address that peers and
    clients reach), and optionally ``listen`` (the address to bind: by default every interface of the host's
    family), ``p2p_port`` (26600) and ``api_port`` (26601).  ``UsageError`` names the entry at fault."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no hosts file at {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read hosts file {path}: {exc}") from None
    entries = raw.get("node")
    if set(raw) - {"node"} or not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: expected [[node]] tables (name, host, and optionally listen, p2p_port, api_port)")
    out: dict[str, Placement] = {}
    taken: dict[tuple[str, int], str] = {}
    for i, item in enumerate(entries):
        where = f"{path}: node {i + 1}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("host"), str):
            raise UsageError(f"{where} needs a 'name' and a 'host'")
        name, where = item["name"], f"{path}: node {item['name']!r}"
        unknown = sorted(set(item) - HOST_KEYS)
        if unknown:
            raise UsageError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(HOST_KEYS))})")
        if name in out:
            raise UsageError(f"{where} is listed twice")
        try:
            host = check_host(item["host"], f"{where}: host")
            default_listen = "::" if ":" in host else "0.0.0.0"
            listen = check_host(item.get("listen", default_listen), f"{where}: listen")
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        ports = []
        for key, default in (("p2p_port", DEFAULT_P2P_PORT), ("api_port", DEFAULT_API_PORT)):
            port = item.get(key, default)
            if type(port) is not int or not 1 <= port <= 65535:
                raise UsageError(f"{where}: {key} must be a port number 1-65535, got {port!r}")
            ports.append(port)
        if ports[0] == ports[1]:
            raise UsageError(f"{where}: p2p_port and api_port must differ")
        for port in ports:
            if (host, port) in taken:
                raise UsageError(f"{where}: {host} port {port} is already used by {taken[host, port]}")
            taken[host, port] = name
        out[name] = Placement(host, listen, ports[0], ports[1])
    return out


def place(plans: list[NodePlan], hosts: dict[str, Placement], source: str) -> list[NodePlan]:
    """The plans at the hosts file's addresses: every node of the network must have exactly one entry."""
    names = [p.name for p in plans]
    missing = [n for n in names if n not in hosts]
    extra = sorted(set(hosts) - set(names))
    if missing or extra:
        parts = ([f"no entry for {', '.join(missing)}"] if missing else []) + (
            [f"no such node {', '.join(extra)}"] if extra else [])
        raise UsageError(f"{source}: {'; '.join(parts)} (the network's nodes: {', '.join(names)})")
    return [replace(p, host=h.host, listen=h.listen, p2p_port=h.p2p_port, api_port=h.api_port)
            for p in plans for h in (hosts[p.name],)]


OPERATOR_KEY_FILE = "operator.json"


def plan_nodes(validators: int, observers: int, base_port: int, names: list[str] | None = None) -> list[NodePlan]:
    plans = []
    for i in range(validators + observers):
        role = "validator" if i < validators else "observer"
        name = names[i] if names else f"node{i}"
        plans.append(NodePlan(name, role, base_port + 2 * i, base_port + 2 * i + 1))
    return plans


def _consortium_members(out: Path, consortium: Consortium, plans: list[NodePlan]) -> list[dict[str, Any]]:
    """Admin keys (OUT/orgs/<id>/admin.json), genesis entries and OUT/consortium.json, the index tools read."""
    api = {p.name: p.api_url for p in plans}
    entries, index = [], {}
    for org in consortium.organisations:
        key = SigningKey.generate()
        key_file = out / "orgs" / org.id / "admin.json"
        write_key(key_file, key)
        nodes = [org.id] if org.node != "none" else []
        entries.append(
            {"id": org.id, "name": org.name, "kind": org.kind, "admin_key": key.verify_key.hex(), "nodes": nodes}
        )
        index[org.id] = {
            "name": org.name,
            "kind": org.kind,
            "node": org.id if nodes else None,
            "role": org.node if nodes else None,
            "admin_key_file": f"orgs/{org.id}/admin.json",
            "api": api.get(org.id),
        }
    (out / "consortium.json").write_text(json.dumps(index, indent=2) + "\n")
    return entries


def generate_testnet(
    out: Path,
    validators: int,
    observers: int = 0,
    base_port: int = 26600,
    chain_id: str | None = None,
    clients: int = 3,
    progress_timeout_ms: int | None = None,
    consortium: Consortium | None = None,
    hosts: Path | None = None,
) -> Genesis:
    """Write a network into ``out`` and return its genesis.

    Without ``consortium``: nodes node0, node1, ... and no organisations.  With it, the consortium decides the nodes
    (``validators`` and ``observers`` are ignored): one per organisation that runs one, named after it, validators
    first in file order, then observers; every organisation gets an admin key (OUT/orgs/<id>/admin.json) and an
    entry in genesis, and OUT/consortium.json indexes them.  Its chain id applies unless ``chain_id`` is given.
    With ``hosts`` (``load_hosts``), each node binds and is reached at the addresses that file gives, instead of
    127.0.0.1 and ports from ``base_port``.
    """
    names = None
    if consortium is not None:
        validators, observers = len(consortium.validators), len(consortium.observers)
        names = [o.id for o in (*consortium.validators, *consortium.observers)]
        chain_id = chain_id or consortium.chain_id
    if validators < 1:
        raise UsageError("a network needs at least one validator")
    if base_port < 1024 or base_port + 2 * (validators + observers) > 65535:
        raise UsageError(f"base port {base_port} leaves no room for {validators + observers} nodes (2 ports each)")
    if (out / "genesis.json").exists():
        raise UsageError(f"{out} already holds a network (genesis.json); choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_nodes(validators, observers, base_port, names)
    if hosts is not None:
        plans = place(plans, load_hosts(hosts), str(hosts))
    members: dict[str, list[dict[str, str]]] = {"validators": [], "observers": [], "clients": []}
    for plan in plans:
        home = out / plan.name
        key = SigningKey.generate()
        write_key(home / "node_key.json", key)
        write_kek_file(home / DEFAULT_KEK_FILE, new_kek())
        cert_pem = write_node_tls(home / "tls", key)
        members["validators" if plan.role == "validator" else "observers"].append(
            {"name": plan.name, "key": key.verify_key.hex(), "cert": cert_pem}
        )
    operator = SigningKey.generate()
    write_key(out / OPERATOR_KEY_FILE, operator)
    for j in range(clients):
        key = SigningKey.generate()
        write_key(out / "clients" / f"client{j}.json", key)
        members["clients"].append({"name": f"client{j}", "key": key.verify_key.hex()})
    raw: dict[str, Any] = {
        "chain_id": chain_id or f"medchain-local-{os.urandom(3).hex()}",
        "genesis_time_ms": int(time.time() * 1000),
        **members,
    }
    if consortium is not None:
        raw["organisations"] = _consortium_members(out, consortium, plans)
    genesis = parse_genesis(raw)
    (out / "genesis.json").write_text(json.dumps(raw, indent=2) + "\n")
    for plan in plans:
        peers = tuple(Peer(p.name, join_address(p.host, p.p2p_port)) for p in plans if p.name != plan.name)
        config = NodeConfig(
            name=plan.name,
            role=plan.role,
            genesis="../genesis.json",
            p2p_listen=join_address(plan.listen, plan.p2p_port),
            api_listen=join_address(plan.listen, plan.api_port),
            peers=peers,
            operator_key=operator.verify_key.hex(),
        )
        if progress_timeout_ms is not None:
            config = replace(config, consensus=replace(config.consensus, progress_timeout_ms=progress_timeout_ms))
        (out / plan.name / "config.toml").write_text(config.to_toml())
    return genesis


def operator_key(network: Path) -> SigningKey:
    """The key that signs the network's admin requests (``medchain fault``)."""
    return read_key(network / OPERATOR_KEY_FILE)


def client_key(network: Path, index: int = 0) -> SigningKey:
    return read_key(network / "clients" / f"client{index}.json")
