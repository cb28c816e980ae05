"""Validator-set governance from the command line: who validates, and proposals to change it.

An organisation's admin proposes (``propose-add``, ``propose-remove``, ``propose-replace``), admins of other
validator organisations ``approve``, and the change takes effect at its height once a quorum of them has
(``node.governance``).  Conventions (``--node``, ``--key``, ``--json``, exit codes) are those of
``node.cli.common``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from node.cli.common import Fail, api_options, connect, parse_hex, parse_public_key, print_json, submit, table
from node.client.ledger import SyncLedger
from node.config import ConfigError, parse_address
from node.governance import ApproveValidators, ProposeValidators
from node.p2p.certs import certificate_key_of_pem

DEFAULT_AFTER = 10


@click.group("validators")
def validators_group() -> None:
    """Who validates, and changing it on the ledger: list, pending, propose-add, propose-remove,
    propose-promote, propose-replace, approve.

    A change takes effect at a stated height once admins of a quorum of the organisations running
    validators (genesis's governance.quorum, 2/3 by default) have signed it: the proposer's
    organisation counts as the first.
    """


def _validators(ledger: SyncLedger) -> dict[str, Any]:
    found: dict[str, Any] = ledger.call("GET", "/validators")
    return found


@validators_group.command("list")
@api_options()
def validators_list(url: str | None, as_json: bool) -> None:
    """The validators deciding the next height, then the changes the ledger scheduled."""
    doc = _validators(connect(url))
    if as_json:
        print_json(doc)
        return
    click.echo(f"validators from height {doc['height']} (a change needs {doc['quorum']} of validator organisations):")
    click.echo(table([{**v, "key": v["key"][:16]} for v in doc["validators"]], ["name", "org", "key", "address"]))
    for change in doc["changes"]:
        state = "in force" if change["in_force"] else "scheduled"
        click.echo(f"from height {change['height']} ({state}): {', '.join(change['validators'])}")


@validators_group.command("pending")
@api_options()
@click.option("--all", "show_all", is_flag=True, help="Also list proposals already scheduled or expired.")
def validators_pending(url: str | None, as_json: bool, show_all: bool) -> None:
    """Proposals waiting for approvals: how many count now, and how many are needed."""
    doc = _validators(connect(url))
    rows = [p for p in doc["proposals"] if show_all or p["status"] == "pending"]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no pending proposals")
        return
    click.echo(table([
        {**p, "approved": f"{p['counted']}/{p['needed']}", "by": ", ".join(p["approvals"]) or None} for p in rows
    ], ["proposal", "action", "name", "org", "height", "approved", "by", "status"]))


def _height(ledger: SyncLedger, height: int | None, after: int) -> int:
    if height is not None:
        return height
    return ledger.status()["height"] + 1 + after


def _done(what: str) -> Any:
    def text(result: Mapping[str, Any]) -> str:
        return f"{what}: proposal {result.get('tx_id')} (committed at height {result.get('height')}); " \
               "other admins approve it with 'medchain validators approve'"
    return text


WHEN = [
    click.option("--height", type=click.IntRange(min=2), default=None,
                 help="The first height the new set decides (default: the next height + --after)."),
    click.option("--after", type=click.IntRange(min=2), default=DEFAULT_AFTER, show_default=True,
                 help="Without --height: this many heights after the next one, time for the approvals."),
]


def _when(fn: Any) -> Any:
    for option in reversed(WHEN):
        fn = option(fn)
    return fn


def _read_joiner(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Fail(f"--joiner {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("name", "key", "cert")):
        raise Fail(f"--joiner {path}: not a node description (name, key, cert), as 'medchain node join' writes")
    return doc


@validators_group.command("propose-add")
@api_options(signer="your organisation's admin")
@click.option("--joiner", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The node's description as 'medchain node join' wrote it (HOME/join.json).")
@click.option("--name", default=None, help="The node's name (default: the --joiner file's).")
@click.option("--node-key", default=None, help="The node's public key, 64 hex digits (default: the file's).")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The node's TLS certificate, a PEM file (default: the --joiner file's).")
@click.option("--org", default=None, help="The node's organisation, as in genesis (default: the file's).")
@click.option("--address", default=None, help="The node's P2P address, HOST:PORT (default: the file's).")
@click.option("--org-name", default=None, help="For a new organisation: its name (default: the file's).")
@click.option("--org-kind", default=None, help="For a new organisation: its kind (default: the file's).")
@click.option("--org-admin", default=None, metavar="KEY",
              help="For a new organisation: its admin public key, hex or a key file (default: the file's).")
@_when
def propose_add(url: str | None, as_json: bool, key_file: Path | None, joiner: Path | None, name: str | None,
                node_key: str | None, cert_file: Path | None, org: str | None, address: str | None,
                org_name: str | None, org_kind: str | None, org_admin: str | None,
                height: int | None, after: int) -> None:
    """Propose adding a validator node at a future height.

    Its organisation is one of the consortium, or a new one (with --org-name, --org-kind and
    --org-admin, or as the --joiner file gives them): that organisation joins when the change is
    decided, and its admin signs like any other's from then on.  An admin of the consortium proposes.
    """
    doc = _read_joiner(joiner) if joiner is not None else {}
    name = name or doc.get("name")
    key_hex = node_key or doc.get("key")
    cert = cert_file.read_text() if cert_file is not None else doc.get("cert")
    org = org or doc.get("org")
    address = address or doc.get("address")
    missing = [flag for flag, v in (("--name", name), ("--node-key", key_hex), ("--cert", cert), ("--org", org),
                                    ("--address", address)) if not v]
    if missing:
        raise Fail(f"propose-add needs {', '.join(missing)} (or a --joiner file that has them)")
    assert name and key_hex and cert and org and address
    key = parse_hex(key_hex, "--node-key", 32)
    try:
        if certificate_key_of_pem(cert) != key:
            raise Fail("--cert: the certificate's key is not the node key")
        parse_address(address, "--address")
    except ValueError as exc:
        raise Fail(f"--cert: {exc}") from None
    except ConfigError as exc:
        raise Fail(str(exc)) from None
    org_name = org_name if org_name is not None else str(doc.get("org_name", ""))
    org_kind = org_kind if org_kind is not None else str(doc.get("org_kind", ""))
    admin_text = org_admin if org_admin is not None else str(doc.get("org_admin", ""))
    admin = parse_public_key(admin_text, "--org-admin") if admin_text else b""
    ledger = connect(url, key_file, signs=True)
    body = ProposeValidators("add", name, key, org, cert, address, _height(ledger, height, after),
                             org_name, org_kind, admin)
    submit(ledger, body, as_json, _done(f"proposed adding {name} from height {body.height}"))


@validators_group.command("propose-remove")
@api_options(signer="your organisation's admin")
@click.argument("name")
@_when
def propose_remove(url: str | None, as_json: bool, key_file: Path | None, name: str, height: int | None,
                   after: int) -> None:
    """Propose removing validator NAME at a future height (its node may run on as an observer)."""
    ledger = connect(url, key_file, signs=True)
    found = next((v for v in _validators(ledger)["validators"] if v["name"] == name), None)
    if found is None:
        raise Fail(f"{name!r} is not a validator now ('medchain validators list')")
    body = ProposeValidators("remove", name, bytes.fromhex(found["key"]), "", "", "", _height(ledger, height, after))
    submit(ledger, body, as_json, _done(f"proposed removing {name} from height {body.height}"))


@validators_group.command("propose-promote")
@api_options(signer="your organisation's admin")
@click.argument("name")
@click.option("--address", default="", help="Its P2P address, HOST:PORT, if the other nodes do not know it yet.")
@_when
def propose_promote(url: str | None, as_json: bool, key_file: Path | None, name: str, address: str,
                    height: int | None, after: int) -> None:
    """Propose that NAME, an observer or a validator removed before, validates from a future height."""
    ledger = connect(url, key_file, signs=True)
    network: dict[str, Any] = ledger.call("GET", "/network")
    found = next((m for m in network["members"] if m["name"] == name), None)
    if found is None:
        raise Fail(f"no node named {name!r} in the network ('medchain validators propose-add' adds a new one)")
    if found["role"] == "validator":
        raise Fail(f"{name!r} is a validator already")
    body = ProposeValidators("promote", name, bytes.fromhex(found["key"]), "", "", address,
                             _height(ledger, height, after))
    submit(ledger, body, as_json, _done(f"proposed that {name} validates from height {body.height}"))


@validators_group.command("propose-replace")
@api_options(signer="your organisation's admin")
@click.argument("name")
@click.option("--joiner", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The node's new description ('medchain node join' on the new machine): key, cert, address.")
@_when
def propose_replace(url: str | None, as_json: bool, key_file: Path | None, name: str, joiner: Path,
                    height: int | None, after: int) -> None:
    """Propose that validator NAME validates with a new key (a replaced machine) from a future height."""
    doc = _read_joiner(joiner)
    ledger = connect(url, key_file, signs=True)
    body = ProposeValidators("replace", name, parse_hex(doc["key"], "key", 32), "", doc["cert"],
                             str(doc.get("address", "")), _height(ledger, height, after))
    submit(ledger, body, as_json, _done(f"proposed a new key for {name} from height {body.height}"))


@validators_group.command("approve")
@api_options(signer="your organisation's admin")
@click.argument("proposal")
def approve(url: str | None, as_json: bool, key_file: Path | None, proposal: str) -> None:
    """Approve PROPOSAL (its transaction id, as 'medchain validators pending' lists it)."""
    ledger = connect(url, key_file, signs=True)
    body = ApproveValidators(parse_hex(proposal, "PROPOSAL", 32))

    def done(result: Mapping[str, Any]) -> str:
        return f"approved {proposal[:16]} (committed at height {result.get('height')})"

    submit(ledger, body, as_json, done)


VALIDATOR_COMMANDS = [validators_group]
