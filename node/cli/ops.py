"""Operators' commands: testnet, node, cluster, status, anchor, proof.

Conventions (``--node``, ``--key``, ``--json``, exit codes, one-line errors) are those of ``node.cli.common``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from node.cli.common import (
    F,
    Fail,
    cluster_dir_option,
    committed_at,
    connect,
    json_option,
    node_option,
    parse_public_key,
    print_json,
    table,
)
from node.client.http import ApiFailure
from node.config import DEFAULT_KEK_FILE, load_config, read_key, write_key
from node.genesis import ORG_KINDS, load_genesis
from node.healthcare.claims import Claim, anchored_hash, check_history, read_claim
from node.healthcare.transactions import Anchor
from node.lab import cluster as clusters
from node.lab import disk_faults
from node.lab.consortium import Consortium, load_consortium
from node.proofs import InvalidProof
from primitives.signing import SigningKey

# ---------------------------------------------------------------- testnet


CONSORTIUM_OPTION = click.option(
    "--consortium",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A consortium file (e.g. configs/consortium-4.toml): the organisations, their kinds and the nodes they run. "
    "Replaces --nodes/--observers.",
)


def network_options(of: str) -> Callable[[F], F]:
    """--nodes, --observers, --consortium and --base-port of a network to write; ``of`` ends each help text."""

    def decorate(fn: F) -> F:
        for option in reversed((
            click.option("--nodes", "validators", type=click.IntRange(1, 64), default=4, show_default=True,
                         help=f"Number of validators{of}."),
            click.option("--observers", type=click.IntRange(0, 32), default=0, show_default=True,
                         help=f"Number of non-voting observer nodes{of}."),
            CONSORTIUM_OPTION,
            click.option("--base-port", type=click.IntRange(1024, 65000), default=26600, show_default=True,
                         help=f"First port{of}; node i uses base+2i (P2P) and base+2i+1 (API)."),
        )):
            fn = option(fn)
        return fn

    return decorate


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
    click.echo(table(rows, ["org", "name", "kind", "node", "api", "admin key"]))


HOME_OPTION = click.option(
    "--home",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The node's folder (config.toml, node_key.json, tls/, data/).",
)
DIR_OPTION = cluster_dir_option()


@click.command()
@network_options("")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write the network into."
)
@click.option("--chain-id", default=None, help="Chain id (default: a random medchain-local-XXXXXX).")
@click.option(
    "--hosts",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A hosts file placing each node on its own host: [[node]] tables of name, host (a host name, IPv4 or IPv6 "
    "address that peers and clients reach), and optionally listen (the address to bind, default every interface), "
    "p2p_port (26600) and api_port (26601). Without it every node is on 127.0.0.1 at --base-port.",
)
@json_option("Print the chain id and the nodes (name, role, key) as JSON.")
def testnet(
    validators: int,
    observers: int,
    consortium: Path | None,
    out: Path,
    base_port: int,
    chain_id: str | None,
    hosts: Path | None,
    as_json: bool,
) -> None:
    """Write a network: genesis.json, keys, TLS material, one folder per node.

    Each node folder (node0, node1, ... or, with --consortium, named after its
    organisation) holds config.toml, node_key.json and tls/; client keys for
    anchoring go to OUT/clients/, organisation admin keys to OUT/orgs/<id>/.
    With --hosts, copy each node's folder and genesis.json to its host and run
    'medchain node start --home FOLDER' there.
    """
    from node.lab.testnet import generate_testnet

    plan = _load_plan(consortium)
    genesis = generate_testnet(out, validators, observers, base_port, chain_id, consortium=plan, hosts=hosts)
    validators = len(genesis.validators)
    roles = ["validator" if i < validators else "observer" for i in range(len(genesis.nodes))]
    if as_json:
        nodes = [{"name": m.name, "role": r, "key": m.key.hex()} for m, r in zip(genesis.nodes, roles, strict=True)]
        print_json({"chain_id": genesis.chain_id, "dir": str(out), "nodes": nodes})
        return
    click.echo(
        f"wrote network {genesis.chain_id} to {out}: {validators} validators, {len(genesis.observers)} observers"
    )
    width = max(len(m.name) for m in genesis.nodes)
    for m, role in zip(genesis.nodes, roles, strict=True):
        click.echo(f"  {m.name.ljust(width)}  {role:<9}  key {m.key.hex()[:16]}...")
    click.echo(f"  clients: {', '.join(c.name for c in genesis.clients)} (keys in {out / 'clients'})")
    _echo_orgs(out)
    click.echo(f"start it with: medchain cluster up --dir {out}")


# ---------------------------------------------------------------- node


@click.group("node")
def node_group() -> None:
    """Operate one node: init, join, show-id, reset, start, rotate-kek."""


@node_group.command("init")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), required=True, help="The node's folder.")
@click.option("--name", default=None, help="Node name (default: the folder's name).")
@json_option("Print the name, key and certificate as JSON (the default output is this JSON too).")
def node_init(home: Path, name: str | None, as_json: bool) -> None:
    """Create a node key, TLS certificate and vault KEK in HOME, to join an existing network.

    Send the printed key and certificate to the network's operators so they
    list the node in the genesis file; then put genesis.json and config.toml
    in HOME.  The KEK (HOME/kek, mode 0600) wraps the keys of the node's EHR
    vault: keep it out of the vault's backups.
    """
    _refuse_existing_key(home)
    key, cert = _write_node_identity(home)
    print_json({"name": name or home.name, "key": key.verify_key.hex(), "cert": cert})


def _refuse_existing_key(home: Path) -> None:
    if (home / "node_key.json").exists():
        raise Fail(f"{home} already has a node key; refusing to overwrite it")


def _write_node_identity(home: Path) -> tuple[SigningKey, str]:
    """A new node key, its TLS certificate and (if none yet) a vault KEK in ``home``; the key and certificate."""
    from node.healthcare.kek import new_kek, write_kek_file
    from node.p2p.certs import write_node_tls

    key = SigningKey.generate()
    write_key(home / "node_key.json", key)
    if not (home / DEFAULT_KEK_FILE).exists():
        write_kek_file(home / DEFAULT_KEK_FILE, new_kek())
    return key, write_node_tls(home / "tls", key)


@node_group.command("join")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The new node's folder (it must not hold a node key yet).")
@click.option("--genesis", "genesis_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The network's genesis file (copied into HOME).")
@click.option("--name", default=None, help="Node name (default: the folder's name).")
@click.option("--org", required=True,
              help="The organisation that runs it: an id in genesis, or a new one (give --org-name, --org-kind and "
                   "--org-admin: it joins the consortium with this node).")
@click.option("--org-name", default="", help="A new organisation's name.")
@click.option("--org-kind", default="", help="A new organisation's kind: hospital, pharmacy, manufacturer, "
              "distributor, regulator or lab.")
@click.option("--org-admin", default="", metavar="KEY",
              help="A new organisation's admin public key: 64 hex digits or a key file ('medchain key new').")
@click.option("--p2p", "p2p_listen", required=True, metavar="HOST:PORT",
              help="Where it listens for peers; also the address other nodes dial (see --advertise).")
@click.option("--advertise", default=None, metavar="HOST:PORT",
              help="The P2P address other nodes dial when it differs from --p2p (e.g. behind NAT or 0.0.0.0).")
@click.option("--api", "api_listen", required=True, metavar="HOST:PORT", help="Where its HTTP API listens.")
@click.option("--peer", "peers", multiple=True, metavar="NAME=HOST:PORT",
              help="A node of the network to dial (repeat): genesis nodes, or ones the ledger added before.")
@click.option("--peers", "peer_list", default="", metavar="NAME=HOST:PORT,...",
              help="The same as several --peer, separated by commas.")
@click.option("--operator-key", default="", help="Hex public key allowed on /admin (default: none).")
@json_option("Print the node's description as JSON (the default output is this JSON too).")
def node_join(home: Path, genesis_file: Path, name: str | None, org: str, org_name: str, org_kind: str,
              org_admin: str, p2p_listen: str, advertise: str | None, api_listen: str, peers: tuple[str, ...],
              peer_list: str, operator_key: str, as_json: bool) -> None:
    """Prepare a node that joins a running network as a validator, through governance.

    Writes HOME: a node key, TLS certificate and vault KEK, the genesis file, and a
    config.toml (role validator) that dials the --peer nodes; and HOME/join.json, the
    node's description.  Start the node ('medchain node start --home HOME'): it follows
    the chain.  Its organisation's admin proposes it ('medchain validators propose-add
    --joiner HOME/join.json'), admins of other validator organisations approve, and it
    votes from the height the change names.
    """
    from node.config import ConfigError, NodeConfig, Peer, join_address, parse_address

    name = name or home.name
    _refuse_existing_key(home)
    genesis = load_genesis(genesis_file)
    new_org: dict[str, str] = {}
    if genesis.organisation(org) is not None:
        if org_name or org_kind or org_admin:
            raise Fail(f"--org {org!r} is in genesis already: leave out --org-name, --org-kind and --org-admin")
    elif not (org_name and org_kind and org_admin):
        known = ", ".join(o.id for o in genesis.organisations) or "none"
        raise Fail(f"--org {org!r} is not in the genesis file (it lists: {known}); a new organisation needs "
                   "--org-name, --org-kind and --org-admin")
    else:
        if org_kind not in ORG_KINDS:
            raise Fail(f"--org-kind must be one of {', '.join(ORG_KINDS)}")
        new_org = {"org_name": org_name, "org_kind": org_kind,
                   "org_admin": parse_public_key(org_admin, "--org-admin").hex()}
    if genesis.node(name) is not None:
        raise Fail(f"--name {name!r} is already a node in genesis: choose another name")
    try:
        listen = join_address(*parse_address(p2p_listen, "--p2p"))
        address = join_address(*parse_address(advertise or p2p_listen, "--advertise"))
        api = join_address(*parse_address(api_listen, "--api"))
        links = []
        for item in (*peers, *(p.strip() for p in peer_list.split(",") if p.strip())):
            peer, sep, where = item.partition("=")
            if not sep or not peer:
                raise Fail(f"--peer {item!r}: write NAME=HOST:PORT")
            links.append(Peer(peer, join_address(*parse_address(where, f"--peer {peer}"))))
    except ConfigError as exc:
        raise Fail(str(exc)) from None
    home.mkdir(parents=True, exist_ok=True)
    key, cert = _write_node_identity(home)
    shutil.copyfile(genesis_file, home / "genesis.json")
    config = NodeConfig(name=name, role="validator", genesis="genesis.json", p2p_listen=listen, api_listen=api,
                        peers=tuple(links), operator_key=operator_key)
    (home / "config.toml").write_text(config.to_toml())
    doc = {"name": name, "key": key.verify_key.hex(), "cert": cert, "org": org, "address": address, **new_org}
    (home / "join.json").write_text(json.dumps(doc, indent=2) + "\n")
    print_json(doc)


@node_group.command("show-id")
@HOME_OPTION
@json_option('Print {"key": ...} as JSON.')
def node_show_id(home: Path, as_json: bool) -> None:
    """Print this node's public key (its identity in the genesis file)."""
    key = read_key(home / "node_key.json").verify_key.hex()
    if as_json:
        print_json({"key": key})
    else:
        click.echo(key)


@node_group.command("reset")
@HOME_OPTION
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option("Print what was deleted as JSON.")
def node_reset(home: Path, yes: bool, as_json: bool) -> None:
    """Delete the node's chain data (blocks, state, WAL); keep its keys, config and EHR vault.

    The vault holds record content that exists nowhere else: it is never deleted
    here (erasure on the ledger is what shreds it).
    """
    config = load_config(home)
    data = config.path(config.data_dir)
    existed = data.exists()
    if existed:
        if not yes:
            click.confirm(f"delete all chain data in {data}?", abort=True)
        shutil.rmtree(data)
    if as_json:
        print_json({"data_dir": str(data), "deleted": existed})
    elif existed:
        click.echo(f"deleted {data}; keys and config kept")
    else:
        click.echo(f"nothing to reset: {data} does not exist")


@node_group.command("start")
@HOME_OPTION
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Least severe log lines written.",
)
def node_start(home: Path, log_level: str) -> None:
    """Run the node in the foreground (JSON log lines on stderr; Ctrl-C or SIGTERM stops it)."""
    from node.healthcare.node_app import healthcare_app
    from node.main import run_node

    asyncio.run(run_node(home, healthcare_app(home), log_level))


@node_group.command("rotate-kek")
@HOME_OPTION
@json_option("Print the vault, the KEK file and how many data keys were rewrapped as JSON.")
def node_rotate_kek(home: Path, as_json: bool) -> None:
    """Rewrap every data key of the node's EHR vault under a new KEK (the node must be stopped).

    The content store is not touched.  The new wrapped keys are written in one
    batch, then the new KEK replaces the KEK file (named by kek_file in
    config.toml) atomically; if the command is interrupted, run it again.

    Backups: key-store backups taken before the rotation are still wrapped
    under the old KEK, and the old KEK opens them.  Back up the key store
    again now; then destroy every copy of the old KEK, which makes those
    older backups useless (a backup restored from before the rotation needs
    the old KEK).  Keep the new KEK apart from the vault's backups.  A KEK
    given through MEDCHAIN_KEK is not rotated here: unset it and keep the key
    in the file.
    """
    from node.healthcare.kek import KEK_ENV, new_kek, read_kek_file, write_kek_file
    from node.healthcare.vault import VAULT_DIRNAME, kek_opens_store, rotate_kek
    from storage.database import sync_directory

    if KEK_ENV in os.environ:
        raise Fail(f"{KEK_ENV} is set: rotate-kek rotates the KEK file named in config.toml; unset {KEK_ENV}")
    config = load_config(home)
    kek_file = config.path(config.kek_file)
    vault = home / VAULT_DIRNAME
    pending = kek_file.with_name(kek_file.name + ".new")
    old = read_kek_file(kek_file)
    # A rotation interrupted after its batch left the store under the pending key: only the rename is left.
    finishing = pending.exists() and kek_opens_store(vault, read_kek_file(pending))
    count = 0
    if not finishing:
        kek_opens_store(vault, old)  # a running node's lock refuses us here, before any key file is written
        write_kek_file(pending, new_kek())
        count = rotate_kek(vault, old, read_kek_file(pending))
    os.replace(pending, kek_file)
    sync_directory(kek_file.parent)
    if as_json:
        print_json({"vault": str(vault), "kek_file": str(kek_file), "rewrapped": count, "resumed": finishing})
    elif finishing:
        click.echo(f"finished an interrupted rotation: {kek_file} now holds the vault's KEK")
    else:
        click.echo(
            f"rewrapped {count} data key(s) in {vault} under a new KEK, now in {kek_file}; "
            f"destroy every copy of the old KEK"
        )


# ---------------------------------------------------------------- cluster


@click.group("cluster")
def cluster_group() -> None:
    """Run a local cluster in the background: up, status, down; process and disk faults on its nodes."""


@cluster_group.command("up")
@network_options(" of a new network")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Cluster folder (created with a new network if it holds none).",
)
@click.option("--timeout", type=float, default=60, show_default=True, help="Seconds to wait for the first block.")
@json_option("Print one JSON list, an object per node.")
def cluster_up(
    validators: int, observers: int, consortium: Path | None, root: Path, base_port: int, timeout: float, as_json: bool
) -> None:
    """Start every node of DIR in the background and wait until a block commits.

    If DIR holds no network yet, write one first (as 'medchain testnet' does):
    --nodes/--observers nodes, or with --consortium one node per organisation
    that runs one.  Each node must answer as itself (its key, the genesis
    chain id): a node that cannot start, or a port answered by another
    cluster's node, stops the cluster again and fails naming the node.
    Client key DIR/clients/client0.json anchors a first document to check
    that blocks commit.
    """
    plan = _load_plan(consortium)
    if not (root / "genesis.json").exists():
        from node.lab.testnet import generate_testnet

        generate_testnet(root, validators, observers, base_port, consortium=plan)
    elif plan is not None and not _same_consortium(root, plan):
        raise Fail(f"{root} already holds another network; choose a new --dir, or drop --consortium to start it")
    nodes = clusters.start_all(root)
    try:
        clusters.wait_started(root, nodes, timeout)
        clusters.wait_first_commit(root, timeout)
    except clusters.ClusterError as exc:
        clusters.stop_all(root)
        raise Fail(f"{exc} (the cluster in {root} is stopped again)") from None
    rows = clusters.status_rows(root)
    if as_json:
        print_json(rows)
        return
    click.echo(table(rows, ["name", "role", "api", "p2p", "pid", "height", "view"]))
    _echo_orgs(root)
    click.echo(f"stop it with: medchain cluster down --dir {root}")


@cluster_group.command("status")
@DIR_OPTION
@json_option("Print one JSON list, an object per node.")
def cluster_status(root: Path, as_json: bool) -> None:
    """Show every node of the cluster: pid, addresses, height, head, view."""
    rows = clusters.status_rows(root)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["head"] = (row.get("head_hash") or "")[:12] or None
        row["state"] = "up" if row["alive"] and "error" not in row else (row.get("error") or "down")
    click.echo(table(rows, ["name", "role", "state", "api", "pid", "height", "head", "view"]))


@cluster_group.command("down")
@DIR_OPTION
@json_option("Print what became of each node as JSON.")
def cluster_down(root: Path, as_json: bool) -> None:
    """Stop every node (SIGTERM, then SIGKILL after 10 s); says which were already stopped.

    A node's processes are the one cluster.json names and any other started
    from the node's folder, so none is left running.
    """
    outcome = clusters.stop_all(root)
    if as_json:
        print_json([{"name": name, "outcome": what} for name, what in outcome])
        return
    for name, what in outcome:
        click.echo(f"{name}: {what}")


RESTART_TIMEOUT_S = 30


def _echo_node(proc: clusters.NodeProcess, action: str, as_json: bool, **extra: object) -> None:
    if as_json:
        print_json({"name": proc.name, "action": action, "pid": proc.pid, **extra})
    else:
        click.echo(f"{proc.name}: {action} done (pid {proc.pid})")


def _signal_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @click.argument("node")
    @DIR_OPTION
    @json_option("Print the node and its pid as JSON.")
    def command(node: str, root: Path, as_json: bool) -> None:
        proc = clusters.signal_node(root, node, action)
        if action == "restart":  # done means serving again, as itself, as after 'cluster up'
            try:
                clusters.wait_started(root, [proc], RESTART_TIMEOUT_S)
            except clusters.ClusterError as exc:
                raise Fail(str(exc)) from None
        _echo_node(proc, action, as_json)

    return command


for _action, _help in (
    ("kill", "Kill NODE with SIGKILL (a crash)."),
    ("pause", "Freeze NODE with SIGSTOP."),
    ("resume", "Unfreeze NODE with SIGCONT."),
    ("restart", "Start a killed NODE again from its data on disk; done once it answers as itself."),
):
    cluster_group.add_command(_signal_command(_action, _help))


@cluster_group.command("add")
@click.argument("node")
@DIR_OPTION
@json_option("Print the node and its pid as JSON.")
def cluster_add(node: str, root: Path, as_json: bool) -> None:
    """Start DIR/NODE, a node folder 'medchain node join' wrote, as part of the cluster; done once it answers.

    The node follows the chain; it validates once the consortium adds it ('medchain validators').
    """
    try:
        proc = clusters.add_node(root, node)
        clusters.wait_started(root, [proc], RESTART_TIMEOUT_S)
    except clusters.ClusterError as exc:
        raise Fail(str(exc)) from None
    _echo_node(proc, "add", as_json)


TIMEOUT_OPTION = click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), default=RESTART_TIMEOUT_S, show_default=True,
    help="Seconds to wait until the node answers again as itself.",
)


@cluster_group.command("wipe")
@click.argument("node")
@DIR_OPTION
@click.option("--with-vault", is_flag=True, help="Also delete the EHR vault's stores (content and data keys; the "
              "KEK file stays): the records' content, held by no other node, is lost for good.")
@TIMEOUT_OPTION
@json_option("Print the node and its new pid as JSON.")
def cluster_wipe(node: str, root: Path, with_vault: bool, timeout: float, as_json: bool) -> None:
    """Wipe-and-rejoin: kill NODE, delete its chain data (data/), start it; it catches up from its peers.

    Keys, TLS material, the KEK, config.toml and (without --with-vault) the
    EHR vault are kept.  Done once the node answers as itself.
    """
    _echo_node(disk_faults.wipe_node(root, node, timeout, vault=with_vault), "wipe", as_json)


@cluster_group.command("snapshot")
@click.argument("node")
@click.option("--to", "dest", type=click.Path(path_type=Path), required=True,
              help="A new (or empty) folder for the copy of the node's data directory.")
@DIR_OPTION
@json_option("Print the node, the folder and the height of the copy as JSON.")
def cluster_snapshot(node: str, dest: Path, root: Path, as_json: bool) -> None:
    """Copy NODE's data directory while it runs (frozen with SIGSTOP while copying); print the copy's height."""
    height = disk_faults.snapshot_node(root, node, dest)
    if as_json:
        print_json({"name": node, "to": str(dest), "height": height})
    else:
        click.echo(height)


@cluster_group.command("restore")
@click.argument("node")
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A folder written by 'medchain cluster snapshot' (copied, never changed).")
@DIR_OPTION
@TIMEOUT_OPTION
@json_option("Print the node and its new pid as JSON.")
def cluster_restore(node: str, source: Path, root: Path, timeout: float, as_json: bool) -> None:
    """Kill NODE, replace its data directory with a copy of a snapshot, start it; it catches up from its peers."""
    _echo_node(disk_faults.restore_node(root, node, source, timeout), "restore", as_json, source=str(source))


@cluster_group.command("check-store")
@click.argument("node")
@DIR_OPTION
@json_option('Print {"name": ..., "intact": ..., "problems": [...]} as JSON.')
def cluster_check_store(node: str, root: Path, as_json: bool) -> None:
    """Check the store of a stopped NODE offline: blocks, certificates, links, indexes, WAL; exit 1 if damaged.

    Certificate signatures and app_hash are not checked here (the chaos runner
    replays them).
    """
    homes = {home.name: home for home in clusters.node_homes(root)}
    if node not in homes:
        raise Fail(f"no node named {node!r}; the cluster has {', '.join(homes)}")
    problems = disk_faults.check_store(homes[node])
    if as_json:
        print_json({"name": node, "intact": not problems, "problems": problems})
    elif problems:
        click.echo("\n".join(problems))
    else:
        click.echo(f"{node}: store intact")
    if problems:
        raise SystemExit(1)


# ---------------------------------------------------------------- clients

STATUS_FIELDS = (
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
)


@click.command("status")
@node_option
@json_option("Print the node's JSON answer (for scripts).")
def status(url: str | None, as_json: bool) -> None:
    """Show one node's status: chain, role, height, head, view, peers, mempool."""
    doc = connect(url).status()
    if as_json:
        print_json(doc)
        return
    for key in STATUS_FIELDS:
        click.echo(f"{key:>10}: {_status_value(doc.get(key))}")


def _status_value(value: object) -> str:
    """A status field for people: lists comma-separated, the mempool as counts."""
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{v} {k}" for k, v in value.items())
    return "-" if value is None else str(value)


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
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Client key file (enrolled in genesis); it signs the transaction.",
)
@click.option("--label", default=None, help="Label stored with the hash (default: the file name).")
@click.option("--wait", is_flag=True, help="Wait until the transaction is committed.")
@node_option
@json_option("Print the file's sha256 and the node's answer as JSON.")
def anchor_put(
    file: Path, key_file: Path | None, label: str | None, wait: bool, url: str | None, as_json: bool
) -> None:
    """Anchor FILE's SHA-256; exit 1 if the ledger refuses it."""
    ledger = connect(url, key_file, signs=True)
    digest = _file_hash(file)
    result = {"sha256": digest.hex(), **ledger.submit(Anchor(digest, label or file.name), wait=wait)}
    state = result.get("status")
    if as_json:
        print_json(result)
    elif state == "committed":
        click.echo(f"anchored {file} (sha256 {digest.hex()}) at {committed_at(result)}")
    elif state == "rejected":
        click.echo(f"rejected: {result.get('code')}: {result.get('message')}", err=True)
    else:
        click.echo(
            f"submitted {file} (sha256 {digest.hex()}) as tx {result.get('tx_id')}; "
            f"'medchain anchor verify {file}' proves it once it commits"
        )
    if state == "rejected":
        raise SystemExit(1)


@anchor_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the proof to this file (default: print it).",
)
@node_option
@json_option("With --out: print where the proof went as JSON (the proof itself is JSON either way).")
def anchor_verify(file: Path, out: Path | None, url: str | None, as_json: bool) -> None:
    """Fetch the inclusion proof of FILE's anchor: a JSON document that 'medchain proof verify' checks offline.

    Without --out, stdout carries the proof and nothing else.
    """
    ledger = connect(url)
    digest = _file_hash(file)
    try:
        where = ledger.call("GET", f"/anchors/{digest.hex()}")
    except ApiFailure as exc:
        if exc.status == 404:
            raise Fail(f"{file} (sha256 {digest.hex()}) is not anchored on this chain") from None
        raise
    proof = ledger.call("GET", f"/proofs/{where['tx_id']}")
    if out is None:
        print_json(proof)
        return
    out.write_text(json.dumps(proof, indent=2) + "\n")
    summary = {
        "file": str(file),
        "sha256": digest.hex(),
        "tx_id": proof.get("tx_id"),
        "height": proof.get("height"),
        "proof": str(out),
    }
    if as_json:
        print_json(summary)
    else:
        click.echo(f"wrote the proof of {file} (height {summary['height']}, tx {summary['tx_id']}) to {out}")


@click.group("proof")
def proof_group() -> None:
    """Check inclusion proofs offline."""


@proof_group.command("verify")
@click.argument("proof", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--genesis",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The network's genesis.json: the validator set the certificate must come from.",
)
@click.option(
    "--file",
    "document",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The anchored document: valid only if the proof anchors exactly this file's SHA-256.",
)
@json_option("Print the verdict as JSON: valid, and what was proven (chain, height, block, time, signer, kind, "
             "subject) or the reason.")
def proof_verify(proof: Path, genesis: Path, document: Path | None, as_json: bool) -> None:
    """Verify PROOF against GENESIS alone; exit 0 if valid, 1 if not.

    Checks the commit certificate, the Merkle path, the transaction's signature
    and every readable field of the proof, then says what was proven, all read
    from the verified bytes: the block, its time, the signer, and the action's
    kind and subject (a document hash, a pack, a lot, a record).  With --file,
    the proof must be an anchor of that file.  A proof shows that the
    transaction was committed, not whether the ledger's rules accepted it.
    """
    doc = _read_json(proof)
    try:
        claim = read_claim(doc, load_genesis(genesis))
        if document is not None and anchored_hash(claim) != _file_hash(document):
            raise InvalidProof(f"{document}'s SHA-256 is {_file_hash(document).hex()}; the proof anchors "
                               f"{claim.subject['doc_hash']}")
    except InvalidProof as exc:
        _invalid(exc, as_json)
    if as_json:
        print_json({"valid": True, **claim.json()})
    else:
        click.echo(_proven_text(claim, document))


@proof_group.command("history")
@click.argument("history", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--genesis",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The network's genesis.json: the validator set the certificates must come from.",
)
@json_option("Print the verdict as JSON: valid, and what each event's proof proves, or the reason.")
def proof_history(history: Path, genesis: Path, as_json: bool) -> None:
    """Verify every proof of a saved pack or record history offline; exit 0 if all hold, 1 if not.

    HISTORY is the JSON of 'medchain drug history CODE --proofs --json', 'drug
    verify CODE --json' or 'ehr history RECORD_ID --proofs --json'.  Each
    event's proof must verify against GENESIS alone and prove that event: a
    transaction of the event's kind, about this pack or record, at the
    event's height and time.  A proof moved from another event is refused.
    """
    doc = _read_json(history)
    try:
        subject, claims = check_history(doc, load_genesis(genesis))
    except InvalidProof as exc:
        _invalid(exc, as_json)
    if as_json:
        print_json({"valid": True, "subject": subject, "events": [c.json() for c in claims]})
        return
    click.echo(f"valid: each of the {len(claims)} events of {subject} is proven by its own transaction")
    rows = [{"height": c.proven.height, "kind": c.kind, "signer": c.proven.signer.hex()[:16],
             "tx": c.proven.tx_id.hex()[:16]} for c in claims]
    click.echo(table(rows, ["height", "kind", "signer", "tx"]))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Fail(f"{path} is not JSON: {exc}") from None


def _invalid(exc: InvalidProof, as_json: bool) -> NoReturn:
    """Say why a proof did not verify, and exit 1."""
    if as_json:
        print_json({"valid": False, "reason": str(exc)})
    else:
        click.echo(f"invalid: {exc}", err=True)
    raise SystemExit(1) from None


def _proven_text(claim: Claim, document: Path | None) -> str:
    p = claim.proven
    when = dt.datetime.fromtimestamp(p.block_time_ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
    about = ", ".join(f"{k} {v}" for k, v in claim.subject.items() if not isinstance(v, list | dict))
    lines = [
        f"valid: transaction {p.tx_id.hex()} is committed at height {p.height} of {p.chain_id}",
        f"  block      {p.block_hash.hex()} at {when} (proposed by {p.proposer})",
        f"  signer     {p.signer.hex()}",
        f"  action     {claim.kind}" + (f": {about}" if about else ""),
    ]
    if document is not None:
        lines.append(f"  document   {document} (sha256 {claim.subject['doc_hash']}) is the one anchored")
    return "\n".join(lines)


COMMANDS = [testnet, node_group, cluster_group, status, anchor_group, proof_group]
