"""Generate a local network: genesis, keys, TLS material and one home folder per node."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from node.certs import write_node_tls
from node.config import NodeConfig, Peer, read_key, write_key
from node.genesis import Genesis, parse_genesis
from primitives.errors import UsageError
from primitives.signing import SigningKey

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    role: str
    p2p_port: int
    api_port: int


def plan_nodes(validators: int, observers: int, base_port: int) -> list[NodePlan]:
    plans = []
    for i in range(validators + observers):
        role = "validator" if i < validators else "observer"
        plans.append(NodePlan(f"node{i}", role, base_port + 2 * i, base_port + 2 * i + 1))
    return plans


def generate_testnet(
    out: Path,
    validators: int,
    observers: int = 0,
    base_port: int = 26600,
    chain_id: str | None = None,
    clients: int = 3,
    progress_timeout_ms: int | None = None,
) -> Genesis:
    if validators < 1:
        raise UsageError("a network needs at least one validator")
    if base_port < 1024 or base_port + 2 * (validators + observers) > 65535:
        raise UsageError(f"base port {base_port} leaves no room for {validators + observers} nodes (2 ports each)")
    if (out / "genesis.json").exists():
        raise UsageError(f"{out} already holds a network (genesis.json); choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_nodes(validators, observers, base_port)
    members: dict[str, list[dict[str, str]]] = {"validators": [], "observers": [], "clients": []}
    for plan in plans:
        home = out / plan.name
        key = SigningKey.generate()
        write_key(home / "node_key.json", key)
        cert_pem = write_node_tls(home / "tls", key)
        members["validators" if plan.role == "validator" else "observers"].append(
            {"name": plan.name, "key": key.verify_key.hex(), "cert": cert_pem}
        )
    for j in range(clients):
        key = SigningKey.generate()
        write_key(out / "clients" / f"client{j}.json", key)
        members["clients"].append({"name": f"client{j}", "key": key.verify_key.hex()})
    raw = {
        "chain_id": chain_id or f"medchain-local-{os.urandom(3).hex()}",
        "genesis_time_ms": int(time.time() * 1000),
        **members,
    }
    genesis = parse_genesis(raw)
    (out / "genesis.json").write_text(json.dumps(raw, indent=2) + "\n")
    for plan in plans:
        peers = tuple(Peer(p.name, f"{HOST}:{p.p2p_port}") for p in plans if p.name != plan.name)
        config = NodeConfig(
            name=plan.name,
            role=plan.role,
            genesis="../genesis.json",
            p2p_listen=f"{HOST}:{plan.p2p_port}",
            api_listen=f"{HOST}:{plan.api_port}",
            peers=peers,
        )
        if progress_timeout_ms is not None:
            from dataclasses import replace

            config = replace(config, consensus=replace(config.consensus, progress_timeout_ms=progress_timeout_ms))
        (out / plan.name / "config.toml").write_text(config.to_toml())
    return genesis


def client_key(network: Path, index: int = 0) -> SigningKey:
    return read_key(network / "clients" / f"client{index}.json")
