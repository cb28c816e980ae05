"""A node's home folder: its config (TOML), keys and data directory.

Layout of ``--home DIR``::

    config.toml        this file's settings (see ``NodeConfig``)
    node_key.json      the node's Ed25519 seed (mode 0600)
    tls/cert.pem       self-signed X.509 certificate over the node key
    tls/key.pem        its private key (mode 0600)
    kek                the vault's key-encryption key (mode 0600; ``kek_file`` may put it elsewhere)
    data/              LevelDB: blocks, certificates, state, WAL
    vault/             the healthcare vault: content/ and keys/ (LevelDB each)

The genesis file is named in config.toml (a path relative to the home).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from primitives.errors import UsageError
from primitives.signing import SigningKey

DEFAULT_KEK_FILE = "kek"


class ConfigError(UsageError):
    """A config or key file is missing, unreadable or wrong."""


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    address: str  # host:port of its P2P listener


@dataclass(frozen=True, slots=True)
class ConsensusSettings:
    progress_timeout_ms: int = 2_000
    checkpoint_interval: int = 100
    max_block_txs: int = 2_000
    max_block_bytes: int = 4 * 1024 * 1024
    batch_timeout_ms: int = 50
    """How long a primary lets its oldest pending transaction wait for others before it proposes, counted from
    that transaction's admission (``node.mempool.proposal_delay``; measured: at 1,800 tx/s on 4 validators and
    2 cores, 20 ms made 18-20 blocks a second, each costing every node ~9 ms of CPU, and the machine 97-99%
    busy; 50 ms made 11-13, 78-93% busy, and p99 fell from 0.3-0.8 s to 0.15-0.19 s)."""


@dataclass(frozen=True, slots=True)
class MempoolSettings:
    max_txs: int = 50_000
    max_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Bounds of one ``POST /txs/batch`` request; a batch over either is refused whole (413)."""

    batch_max_txs: int = 1_000
    batch_max_bytes: int = 4 * 1024 * 1024  # the request body as sent


@dataclass(frozen=True, slots=True)
class P2PSettings:
    heartbeat_s: int = 15  # a silent link is pinged after this long, and dropped when the ping goes unanswered


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    role: str  # "validator" or "observer"
    genesis: str
    p2p_listen: str
    api_listen: str
    peers: tuple[Peer, ...] = ()
    data_dir: str = "data"
    # The vault's key-encryption key: relative to the home, or absolute (e.g. a
    # secrets mount), so it need not sit with the data an operator backs up.
    kek_file: str = DEFAULT_KEK_FILE
    # The operator's Ed25519 public key (hex): only requests it signs reach /admin/...; empty shuts the admin out.
    operator_key: str = ""
    consensus: ConsensusSettings = field(default_factory=ConsensusSettings)
    mempool: MempoolSettings = field(default_factory=MempoolSettings)
    p2p: P2PSettings = field(default_factory=P2PSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    home: Path = Path(".")

    def path(self, relative: str) -> Path:
        return (self.home / relative).resolve()

    def to_toml(self) -> str:
        raw: dict[str, Any] = asdict(self)
        raw.pop("home")
        raw["peers"] = [asdict(p) for p in self.peers]
        return tomli_w.dumps(raw)


def _section(raw: dict[str, Any], name: str, cls: type[Any], where: Path) -> Any:
    """``raw`` is the TOML as parsed, any shape until this checks it; returns a ``cls``."""
    data = raw.get(name, {})
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    known = set(cls.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    for key, value in data.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{where}: [{name}].{key} must be a positive integer, got {value!r}")
    return cls(**data)


def load_config(home: Path) -> NodeConfig:
    path = home / "config.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        hint = f"run 'medchain node init --home {home}' or 'medchain testnet'"
        raise ConfigError(f"no config at {path}: {hint}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    for key in ("name", "role", "genesis", "p2p_listen", "api_listen"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty string")
    if raw["role"] not in ("validator", "observer"):
        raise ConfigError(f"{path}: 'role' must be 'validator' or 'observer', got {raw['role']!r}")
    for key in ("p2p_listen", "api_listen"):
        parse_address(raw[key], f"{path}: {key}")
    operator_key = raw.get("operator_key", "")
    if not isinstance(operator_key, str) or (operator_key and not _is_hex_key(operator_key)):
        raise ConfigError(f"{path}: 'operator_key' must be a 32-byte Ed25519 public key in hex (64 digits)")
    for key in ("data_dir", "kek_file"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            raise ConfigError(f"{path}: '{key}' must be a non-empty string")
    peers = []
    for i, item in enumerate(raw.get("peers", [])):
        fields_ok = isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("name", "address"))
        if not fields_ok:
            raise ConfigError(f"{path}: peers[{i}] needs a 'name' and an 'address'")
        parse_address(item["address"], f"{path}: peers[{i}].address")
        peers.append(Peer(item["name"], item["address"]))
    return NodeConfig(
        name=raw["name"],
        role=raw["role"],
        genesis=raw["genesis"],
        p2p_listen=raw["p2p_listen"],
        api_listen=raw["api_listen"],
        peers=tuple(peers),
        data_dir=str(raw.get("data_dir", "data")),
        kek_file=raw.get("kek_file", DEFAULT_KEK_FILE),
        operator_key=operator_key,
        consensus=_section(raw, "consensus", ConsensusSettings, path),
        mempool=_section(raw, "mempool", MempoolSettings, path),
        p2p=_section(raw, "p2p", P2PSettings, path),
        api=_section(raw, "api", ApiSettings, path),
        home=home.resolve(),
    )


def _is_hex_key(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) == 32
    except ValueError:
        return False


LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){LABEL}(\.{LABEL})*")


def check_host(host: str, where: str = "host") -> str:
    """A host name, an IPv4 address or an IPv6 address (without brackets); ``ConfigError`` otherwise."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not HOSTNAME.fullmatch(host):
        raise ConfigError(f"{where}: {host!r} is neither an IP address nor a host name")
    return host


def parse_address(text: str, where: str = "address") -> tuple[str, int]:
    """``host:port``, with an IPv6 host in brackets (``[::1]:26600``); the host is returned without them."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ConfigError(f"{where}: {text!r}: brackets are for IPv6 addresses only")
    elif ":" in host:
        raise ConfigError(f"{where}: {text!r}: write an IPv6 address in brackets, e.g. [::1]:26600")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {text!r} is not host:port")
    return check_host(host, where), int(port)


def join_address(host: str, port: int) -> str:
    """The ``host:port`` text of an address (IPv6 in brackets), as ``parse_address`` reads it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_url(host: str, port: int) -> str:
    return f"http://{join_address(host, port)}"


def write_key(path: Path, key: SigningKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"type": "ed25519", "public": key.verify_key.hex(), "seed": key.seed.hex()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)


def read_key(path: Path) -> SigningKey:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no key file at {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read key file {path}: {exc}") from None
    try:
        key = SigningKey(bytes.fromhex(doc["seed"]))
    except (KeyError, TypeError, ValueError, UsageError):
        raise ConfigError(f"key file {path} has no valid 32-byte hex 'seed'") from None
    if doc.get("public") not in (None, key.verify_key.hex()):
        raise ConfigError(f"key file {path}: 'public' does not match the seed")
    return key
