"""Identity commands: key files, patients, the consortium's organisations and members, supply-chain licences.

Conventions (``--node``, ``--key``, ``--json``, exit codes) are those of ``node.cli.common``.
"""

from __future__ import annotations

from pathlib import Path

import click

from node.cli.common import (
    Fail,
    api_options,
    committed_at,
    connect,
    find_org,
    licences_text,
    list_orgs,
    parse_public_key,
    print_json,
    report,
    signer_of,
    submit,
    table,
)
from node.config import read_key, write_key
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.identity import LICENCE_KINDS, ROLE_KINDS
from node.healthcare.ledger.records import patient_id
from primitives.signing import SigningKey

# ================================================================ key


@click.group("key")
def key_group() -> None:
    """Make and inspect key files: who you are on the ledger.

    A key file holds an Ed25519 key.  Organisation admins, their members (physicians, pharmacists, logistics
    staff, inspectors) and patients each sign with their own key file.  Keep
    it secret: anyone holding the file can act as you.
    """


def _show_key(path: Path, key: SigningKey, as_json: bool, made: bool) -> None:
    public, pid = key.verify_key.hex(), patient_id(key.verify_key.raw).hex()
    if as_json:
        print_json({"file": str(path), "public": public, "patient_id": pid})
        return
    if made:
        click.echo(f"wrote a new key to {path} (keep it secret: it signs for you)")
    click.echo(f"public key: {public}")
    click.echo(f"patient id: {pid}  (the pseudonymous id this key has if it registers as a patient)")


@key_group.command("new")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write the key to; it must not exist yet.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the file, public key and patient id as JSON.")
def key_new(out: Path, as_json: bool) -> None:
    """Write a new key to OUT and print its public key.

    Give the public key to your organisation's admin to be enrolled
    ('medchain org enrol'); as a patient, register the key with
    'medchain patient register'.  The file is readable by you only.
    """
    if out.exists():
        raise Fail(f"{out} already exists; refusing to overwrite a key (choose another --out)")
    key = SigningKey.generate()
    write_key(out, key)
    _show_key(out, key, as_json, made=True)


@key_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the file, public key and patient id as JSON.")
def key_show(file: Path, as_json: bool) -> None:
    """Print the public key of key FILE and the patient id it would have."""
    _show_key(file, read_key(file), as_json, made=False)


# ================================================================ patient


@click.group("patient")
def patient_group() -> None:
    """Patients: register a key to hold health records.

    Clinicians can then file records for the patient's pseudonymous id.

    The ledger never learns who a patient is: it knows them by a pseudonymous
    id derived from their key.
    """


@patient_group.command("register")
@api_options("the patient")
def patient_register(url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Register your key as a patient and print your pseudonymous patient id.

    Give the id to the clinicians who file records for you; manage who may
    read them with 'medchain consent'.
    """
    ledger = connect(url, key_file, signs=True)
    pid = patient_id(signer_of(ledger).verify_key.raw).hex()
    result = ledger.submit(b.RegisterPatient())
    report(
        {**result, "patient_id": pid}, as_json, lambda r: f"registered: your patient id is {pid} ({committed_at(r)})"
    )


# ================================================================ org


@click.group("org")
def org_group() -> None:
    """The consortium's organisations and their members.

    Organisations (hospitals, labs, pharmacies, manufacturers, distributors,
    the regulator) are fixed in the genesis file; each one's admin key enrols
    and revokes its members' keys.
    """


@org_group.command("list")
@api_options()
def org_list(url: str | None, as_json: bool) -> None:
    """List the organisations: id, name, kind, the nodes they run and their licences."""
    orgs = list_orgs(connect(url))
    if as_json:
        print_json(orgs)
        return
    rows = [{**o, "nodes": ", ".join(o["nodes"]) or None, "licences": licences_text(o["licences"])} for o in orgs]
    click.echo(table(rows, ["id", "name", "kind", "nodes", "licences"]))


ROLE_HELP = "; ".join(f"{role}: {', '.join(kinds)}" for role, kinds in ROLE_KINDS.items())


@org_group.command("enrol")
@click.argument("member")
@click.option(
    "--role",
    type=click.Choice(sorted(ROLE_KINDS)),
    required=True,
    help=f"The member's role; which kinds of organisation may enrol it: {ROLE_HELP}.",
)
@api_options("your organisation's admin")
def org_enrol(member: str, role: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Enrol MEMBER (a public key in hex, or a key file) in your organisation.

    Signed by the organisation's admin key; the member then acts for the
    organisation with ROLE.
    """
    key = parse_public_key(member, "MEMBER")
    ledger = connect(url, key_file, signs=True)
    submit(ledger, b.EnrolMember(key, role), as_json, lambda r: f"enrolled {key.hex()} as {role} ({committed_at(r)})")


@org_group.command("revoke")
@click.argument("member")
@api_options("your organisation's admin")
def org_revoke(member: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Revoke MEMBER (a public key in hex, or a key file): it no longer acts for your organisation."""
    key = parse_public_key(member, "MEMBER")
    ledger = connect(url, key_file, signs=True)
    submit(ledger, b.RevokeMember(key), as_json, lambda r: f"revoked {key.hex()} ({committed_at(r)})")


@org_group.command("member")
@click.argument("key")
@api_options()
def org_member(key: str, url: str | None, as_json: bool) -> None:
    """Show what the ledger knows of KEY (a public key in hex, or a key file): organisation, role, status."""
    raw = parse_public_key(key, "KEY")
    found = connect(url).call("GET", f"/members/{raw.hex()}")
    if as_json:
        print_json(found)
        return
    state = "active" if found["active"] else f"revoked at height {found['revoked_height']}"
    click.echo(f"member {found['key']}")
    click.echo(f"  organisation: {found['org']}")
    click.echo(f"  role:         {found['role']}")
    click.echo(f"  enrolled at:  height {found['enrolled_height']}")
    click.echo(f"  status:       {state}")


# ================================================================ license


@click.group("license")
def license_group() -> None:
    """Supply-chain licences, granted and revoked by the regulator.

    manufacture: commission packs whose GTIN starts with a GS1 company prefix;
    distribute: receive and ship packs; dispense: hand packs to patients.
    Signed by the regulator's admin key or an inspector's key.
    """


LICENCE_HELP = "; ".join(f"{kind}: {', '.join(kinds)}" for kind, kinds in LICENCE_KINDS.items())


def _licence(kind: str, prefix: str | None) -> str:
    if kind == "manufacture":
        if prefix is None or not (prefix.isdigit() and 6 <= len(prefix) <= 12):
            raise Fail("--prefix: a manufacture licence needs the GS1 company prefix it covers (6 to 12 digits)")
        return prefix
    if prefix is not None:
        raise Fail(f"--prefix: only a manufacture licence has a company prefix, not a {kind} licence")
    return ""


def _licence_command(
    name: str, body: type[b.GrantLicence] | type[b.RevokeLicence], verb: str, doc: str
) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("org")
    @click.argument("kind", type=click.Choice(sorted(LICENCE_KINDS)), metavar="KIND")
    @click.option(
        "--prefix",
        default=None,
        metavar="COMPANY_PREFIX",
        help="GS1 company prefix of a manufacture licence (6 to 12 digits).",
    )
    @api_options("the regulator's admin or an inspector")
    def command(org: str, kind: str, prefix: str | None, url: str | None, key_file: Path | None, as_json: bool) -> None:
        scope = _licence(kind, prefix)
        ledger = connect(url, key_file, signs=True)
        found = find_org(ledger, org, "ORG")
        if found["kind"] not in LICENCE_KINDS[kind]:
            raise Fail(f"ORG: {org} is a {found['kind']}; a {kind} licence is for a {' or '.join(LICENCE_KINDS[kind])}")
        what = f"{kind} licence" + (f" for prefix {scope}" if scope else "")
        submit(ledger, body(org, kind, scope), as_json, lambda r: f"{verb} {org}'s {what} ({committed_at(r)})")

    return command


license_group.add_command(
    _licence_command(
        "grant",
        b.GrantLicence,
        "granted",
        f"Grant ORG a licence of KIND (who may hold which: {LICENCE_HELP}).\n\n"
        "A manufacture licence needs --prefix, the GS1 company prefix of the GTINs it may commission.",
    )
)
license_group.add_command(
    _licence_command(
        "revoke",
        b.RevokeLicence,
        "revoked",
        "Revoke ORG's licence of KIND (name the same --prefix for a manufacture licence).\n\n"
        "Packs already made stay on the ledger; the organisation can no longer act under the licence.",
    )
)


IDENTITY_COMMANDS = [key_group, patient_group, org_group, license_group]
