"""Operators' commands: testnet, node, cluster, status, anchor, proof."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import click

from node.client.http import ApiFailure, call
from node.config import load_config, read_key, write_key
from node.genesis import load_genesis
from node.healthcare.transactions import Anchor, make_transaction
from node.lab import cluster as clusters
from node.lab.consortium import Consortium, load_consortium
from node.proofs import verify_proof
from primitives.errors import MedchainError
from primitives.signing import SigningKey

F = TypeVar("F", bound=Callable[..., Any])


class Fail(click.ClickException):
    """A one-line error, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def friendly(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MedchainError as exc:
            raise Fail(str(exc)) from None
        except OSError as exc:
            raise Fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    return wrapper  # type: ignore[return-value]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------- testnet


CONSORTIUM_OPTION = click.option(
    "--consortium",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A consortium file (e.g. configs/consortium-4.toml): the organisations, their kinds and the nodes they run. "
    "Replaces --nodes/--observers.",
)


def _load_plan(consortium: Path | None) -> Consortium | None:
    """The consortium named by --consortium, refusing --nodes/--observers beside it."""
    if consortium is None:
        return None
    ctx = click.get_current_context()
    for name, flag in (("validators", "--nodes"), ("observers", "--observers")):
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            raise Fail(f"--consortium decides the nodes: drop {flag}")
    return load_consortium(consortium)


def _same_consortium(root: Path, plan: Consortium) -> bool:
    """Whether the network in ``root`` was written from a consortium with these organisations and nodes."""
    try:
        index = json.loads((root / "consortium.json").read_text())
        have = {org: (v["kind"], v["role"]) for org, v in index.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return have == {o.id: (o.kind, None if o.node == "none" else o.node) for o in plan.organisations}


def _echo_orgs(out: Path) -> None:
    index_file = out / "consortium.json"
    if not index_file.exists():
        return
    index = json.loads(index_file.read_text())
    rows = [
        {
            "org": org,
            "name": v["name"],
            "kind": v["kind"],
            "node": v["role"],
            "api": v["api"],
            "admin key": v["admin_key_file"],
        }
        for org, v in index.items()
    ]
    click.echo(_table(rows, ["org", "name", "kind", "node", "api", "admin key"]))


@click.command()
@click.option(
    "--nodes", "validators", type=click.IntRange(1, 64), default=4, show_default=True, help="Number of validators."
)
@click.option(
    "--observers", type=click.IntRange(0, 32), default=0, show_default=True, help="Number of non-voting observer nodes."
)
@CONSORTIUM_OPTION
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write the network into."
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65000),
    default=26600,
    show_default=True,
    help="First port; node i uses base+2i (P2P) and base+2i+1 (API).",
)
@click.option("--chain-id", default=None, help="Chain id (default: a random medchain-local-XXXXXX).")
@friendly
def testnet(
    validators: int, observers: int, consortium: Path | None, out: Path, base_port: int, chain_id: str | None
) -> None:
    """Write a local network: genesis.json, keys, TLS material, one folder per node.

    Each node folder (node0, node1, ... or, with --consortium, named after its
    organisation) holds config.toml, node_key.json and tls/; client keys for
    anchoring go to OUT/clients/, organisation admin keys to OUT/orgs/<id>/.
    """
    from node.lab.testnet import generate_testnet

    plan = _load_plan(consortium)
    genesis = generate_testnet(out, validators, observers, base_port, chain_id, consortium=plan)
    validators = len(genesis.validators)
    click.echo(
        f"wrote network {genesis.chain_id} to {out}: {validators} validators, {len(genesis.observers)} observers"
    )
    width = max(len(m.name) for m in genesis.nodes)
    for i, m in enumerate(genesis.nodes):
        role = "validator" if i < validators else "observer "
        click.echo(f"  {m.name.ljust(width)}  {role}  key {m.key.hex()[:16]}...")
    click.echo(f"  clients: {', '.join(c.name for c in genesis.clients)} (keys in {out / 'clients'})")
    _echo_orgs(out)
    click.echo(f"start it with: medchain cluster up --dir {out}")


# ---------------------------------------------------------------- node


@click.group("node")
def node_group() -> None:
    """Operate one node: init, show-id, reset, start."""


@node_group.command("init")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), required=True, help="The node's folder.")
@click.option("--name", default=None, help="Node name (default: the folder's name).")
@friendly
def node_init(home: Path, name: str | None) -> None:
    """Create a node key and TLS certificate in HOME, to join an existing network.

    Send the printed key and certificate to the network's operators so they
    list the node in the genesis file; then put genesis.json and config.toml
    in HOME.
    """
    from node.p2p.certs import write_node_tls

    if (home / "node_key.json").exists():
        raise Fail(f"{home} already has a node key; refusing to overwrite it")
    key = SigningKey.generate()
    write_key(home / "node_key.json", key)
    cert = write_node_tls(home / "tls", key)
    click.echo(json.dumps({"name": name or home.name, "key": key.verify_key.hex(), "cert": cert}, indent=2))


@node_group.command("show-id")
@click.option("--home", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@friendly
def node_show_id(home: Path) -> None:
    """Print this node's public key (its identity in the genesis file)."""
    click.echo(read_key(home / "node_key.json").verify_key.hex())


@node_group.command("reset")
@click.option("--home", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def node_reset(home: Path, yes: bool) -> None:
    """Delete the node's chain data (blocks, state, WAL); keep its keys, config and EHR vault.

    The vault holds record content that exists nowhere else: it is never deleted
    here (erasure on the ledger is what shreds it).
    """
    config = load_config(home)
    data = config.path(config.data_dir)
    if not data.exists():
        click.echo(f"nothing to reset: {data} does not exist")
        return
    if not yes:
        click.confirm(f"delete all chain data in {data}?", abort=True)
    shutil.rmtree(data)
    click.echo(f"deleted {data}; keys and config kept")


@node_group.command("start")
@click.option("--home", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info")
@friendly
def node_start(home: Path, log_level: str) -> None:
    """Run the node in the foreground (JSON log lines on stderr; Ctrl-C or SIGTERM stops it)."""
    from node.healthcare.node_app import healthcare_app
    from node.main import run_node

    asyncio.run(run_node(home, healthcare_app(home), log_level))


# ---------------------------------------------------------------- cluster


@click.group("cluster")
def cluster_group() -> None:
    """Run a local cluster in the background: up, status, down, kill, pause, resume, restart."""


def _status_rows(root: Path) -> list[dict[str, Any]]:
    nodes = clusters.load_cluster(root)

    async def go() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            return list(await asyncio.gather(*(clusters.fetch_status(session, n) for n in nodes)))

    return asyncio.run(go())


def _wait_first_commit(root: Path, timeout: float) -> None:
    nodes = clusters.load_cluster(root)
    client = read_key(root / "clients" / "client0.json")
    genesis = load_genesis(root / "genesis.json")
    deadline = time.monotonic() + timeout
    validators = [n for n in nodes if n.role == "validator"]
    marker = hashlib.sha256(f"cluster-up {time.time()}".encode()).digest()
    tx = make_transaction(client, genesis.chain_id, Anchor(marker, "cluster up"), int(time.time() * 1000))
    while time.monotonic() < deadline:
        try:
            call("POST", f"{validators[0].api}/txs?wait=commit&timeout=5", tx, timeout=8)
            return
        except MedchainError:
            time.sleep(0.3)
    raise Fail(f"the cluster did not commit a block within {timeout:.0f}s; see node.log in each node folder of {root}")


@cluster_group.command("up")
@click.option(
    "--nodes",
    "validators",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Number of validators of a new network.",
)
@click.option(
    "--observers",
    type=click.IntRange(0, 32),
    default=0,
    show_default=True,
    help="Number of observers of a new network.",
)
@CONSORTIUM_OPTION
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Cluster folder (created with a new network if it holds none).",
)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=26600, show_default=True)
@click.option("--timeout", type=float, default=60, show_default=True, help="Seconds to wait for the first block.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def cluster_up(
    validators: int, observers: int, consortium: Path | None, root: Path, base_port: int, timeout: float, as_json: bool
) -> None:
    """Start every node of DIR in the background and wait until a block commits.

    If DIR holds no network yet, write one first (as 'medchain testnet' does):
    --nodes/--observers nodes, or with --consortium one node per organisation
    that runs one.  Client key DIR/clients/client0.json anchors a first
    document to check that blocks commit.
    """
    plan = _load_plan(consortium)
    if not (root / "genesis.json").exists():
        from node.lab.testnet import generate_testnet

        generate_testnet(root, validators, observers, base_port, consortium=plan)
    elif plan is not None and not _same_consortium(root, plan):
        raise Fail(f"{root} already holds another network; choose a new --dir, or drop --consortium to start it")
    clusters.start_all(root)
    _wait_first_commit(root, timeout)
    rows = _status_rows(root)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(_table(rows, ["name", "role", "api", "p2p", "pid", "height", "view"]))
        _echo_orgs(root)
        click.echo(f"stop it with: medchain cluster down --dir {root}")


@cluster_group.command("status")
@click.option("--dir", "root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list, an object per node.")
@friendly
def cluster_status(root: Path, as_json: bool) -> None:
    """Show every node of the cluster: pid, addresses, height, head, view."""
    rows = _status_rows(root)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        row["head"] = (row.get("head_hash") or "")[:12] or None
        row["state"] = "up" if row["alive"] and "error" not in row else ("no answer" if row["alive"] else "down")
    click.echo(_table(rows, ["name", "role", "state", "api", "pid", "height", "head", "view"]))


@cluster_group.command("down")
@click.option("--dir", "root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@friendly
def cluster_down(root: Path) -> None:
    """Stop every node (SIGTERM, then SIGKILL after 10 s)."""
    for name, outcome in clusters.stop_all(root):
        click.echo(f"{name}: {outcome}")


def _signal_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @click.argument("node")
    @click.option("--dir", "root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
    @friendly
    def command(node: str, root: Path) -> None:
        proc = clusters.signal_node(root, node, action)
        click.echo(f"{node}: {action} done (pid {proc.pid})")

    return command


for _action, _help in (
    ("kill", "Kill NODE with SIGKILL (a crash)."),
    ("pause", "Freeze NODE with SIGSTOP."),
    ("resume", "Unfreeze NODE with SIGCONT."),
    ("restart", "Start a killed NODE again from its data on disk."),
):
    cluster_group.add_command(_signal_command(_action, _help))


# ---------------------------------------------------------------- clients


@click.command("status")
@click.option("--node", "url", required=True, help="Node API base URL, e.g. http://127.0.0.1:26601")
@click.option("--json", "as_json", is_flag=True)
@friendly
def status(url: str, as_json: bool) -> None:
    """Show one node's status."""
    doc = call("GET", f"{url.rstrip('/')}/status")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for key in (
        "chain_id",
        "node_id",
        "role",
        "height",
        "head_hash",
        "app_hash",
        "view",
        "primary",
        "peers",
        "mempool",
        "syncing",
    ):
        click.echo(f"{key:>10}: {doc.get(key)}")


@click.group("anchor")
def anchor_group() -> None:
    """Anchor a document's SHA-256 on the chain, and prove it later."""


def _file_hash(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


@anchor_group.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--node", "url", required=True, help="Node API base URL.")
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Client key file (enrolled in genesis).",
)
@click.option("--label", default=None, help="Label stored with the hash (default: the file name).")
@click.option("--wait", is_flag=True, help="Wait until the transaction is committed.")
@friendly
def anchor_put(file: Path, url: str, key_file: Path, label: str | None, wait: bool) -> None:
    """Anchor FILE's SHA-256."""
    key = read_key(key_file)
    base = url.rstrip("/")
    chain_id = call("GET", f"{base}/status")["chain_id"]
    digest = _file_hash(file)
    tx = make_transaction(key, chain_id, Anchor(digest, label or file.name), int(time.time() * 1000))
    result = call("POST", f"{base}/txs" + ("?wait=commit" if wait else ""), tx, timeout=40)
    click.echo(json.dumps({"sha256": digest.hex(), **result}, indent=2))
    if result.get("status") == "rejected":
        sys.exit(1)


@anchor_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--node", "url", required=True, help="Node API base URL.")
@friendly
def anchor_verify(file: Path, url: str) -> None:
    """Print the inclusion proof of FILE's anchor as JSON (stdout carries nothing else)."""
    base = url.rstrip("/")
    digest = _file_hash(file)
    try:
        where = call("GET", f"{base}/anchors/{digest.hex()}")
    except ApiFailure as exc:
        if exc.status == 404:
            raise Fail(f"{file} (sha256 {digest.hex()}) is not anchored on this chain") from None
        raise
    click.echo(json.dumps(call("GET", f"{base}/proofs/{where['tx_id']}"), indent=2))


@click.group("proof")
def proof_group() -> None:
    """Check inclusion proofs offline."""


@proof_group.command("verify")
@click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--genesis", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@friendly
def proof_verify(proof: Path, genesis: Path) -> None:
    """Verify PROOF against GENESIS alone: Merkle path and commit certificate. Exit 0 if valid."""
    try:
        doc = json.loads(proof.read_text())
    except json.JSONDecodeError as exc:
        raise Fail(f"{proof} is not JSON: {exc}") from None
    reason = verify_proof(doc, load_genesis(genesis))
    if reason is not None:
        click.echo(f"invalid: {reason}", err=True)
        sys.exit(1)
    click.echo(f"valid: transaction {doc['tx_id']} is committed at height {doc['height']} of {doc['chain_id']}")


COMMANDS = [testnet, node_group, cluster_group, status, anchor_group, proof_group]
