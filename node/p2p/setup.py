"""Build a node's P2P transport from its config, genesis and TLS folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from node.config import ConfigError, NodeConfig, parse_address
from node.genesis import Genesis
from node.p2p.certs import client_context, server_context
from node.p2p.transport import Transport
from primitives.signing import SigningKey, VerifyKey


def build_transport(
    config: NodeConfig, genesis: Genesis, key: SigningKey, home: Path,
    added: Sequence[tuple[str, VerifyKey, str, str]] = (),
) -> Transport:
    """``added``: (name, key, certificate PEM, address) of each node the ledger added (``node.governance``):
    members like genesis's."""
    tls_dir = home / "tls"
    for name in ("cert.pem", "key.pem"):
        if not (tls_dir / name).exists():
            raise ConfigError(f"missing {tls_dir / name}: run 'medchain node init' or 'medchain testnet'")
    trusted = [m.cert_pem for m in genesis.nodes if m.cert_pem]
    if not trusted:
        raise ConfigError("the genesis file lists no node certificates")
    members = {m.name: m.key for m in genesis.nodes}
    peers = {p.name: parse_address(p.address, f"peer {p.name}") for p in config.peers}
    for name, node_key, cert, address in added:
        members[name] = node_key
        if cert:
            trusted.append(cert)
        if address and name not in peers and name != config.name:
            peers[name] = parse_address(address, f"node {name}")
    unknown = set(peers) - set(members)
    if unknown:
        raise ConfigError(f"config names peers that are neither in genesis nor added by the ledger: "
                          f"{', '.join(sorted(unknown))}")
    return Transport(
        name=config.name,
        key=key,
        chain_id=genesis.chain_id,
        members=members,
        listen=parse_address(config.p2p_listen, "p2p_listen"),
        peers=peers,
        server_ssl=server_context(tls_dir, trusted),
        client_ssl=client_context(tls_dir, trusted),
        heartbeat_s=config.p2p.heartbeat_s,
    )
