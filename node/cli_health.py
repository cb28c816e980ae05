"""Healthcare commands: keys, patients, organisations, licences, records, consent, medicines, alerts.

Every command talks to one node's API, named with ``--node URL`` or the
``MEDCHAIN_NODE`` environment variable.  Commands that act sign a transaction
with ``--key FILE`` and wait until it commits.  Output is for people; ``--json``
prints the node's JSON answer for scripts.

Exit codes: 0 done; 1 the ledger refused (``rejected: <code>: <message>``) or a
scanned pack did not verify; 2 bad input or no answer (``error: ...``).
Input is checked here before any node is contacted, so a typo costs no round trip.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp
import click

from node.cli_ops import Fail, _table, friendly
from node.client import ApiFailure, NodeUnreachable
from node.config import read_key, write_key
from node.gs1 import Gs1Error, PackCode, check_expiry, check_gtin, check_lot, check_serial, parse_code
from node.ledger import bodies as b
from node.ledger.identity import LICENCE_KINDS, ROLE_KINDS
from node.ledger.records import patient_id
from primitives.signing import SigningKey

if TYPE_CHECKING:
    from node.ledger_client import SyncLedger

F = TypeVar("F", bound=Callable[..., Any])
NODE_ENV = "MEDCHAIN_NODE"
GTIN_SERIAL = re.compile(r"(\d{8,14}):(.+)")
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
ALERT_COLUMNS = ["seq", "time", "gtin", "serial", "lot", "reason", "info", "scanned_by", "reporter_org", "height"]


# ---------------------------------------------------------------- plumbing


def api_options(signer: str | None = None, key_help: str | None = None) -> Callable[[F], F]:
    """--node and --json on every command; --key where the command signs (``signer``) or reads a default from it."""

    def wrap(fn: F) -> F:
        fn = click.option("--json", "as_json", is_flag=True, help="Print the node's JSON answer (for scripts).")(fn)
        if signer or key_help:
            text = key_help or f"Key file of {signer}; it signs the transaction."
            fn = click.option(
                "--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help=text
            )(fn)
        return click.option(
            "--node",
            "url",
            envvar=NODE_ENV,
            metavar="URL",
            help=f"API of the node to talk to, e.g. http://127.0.0.1:26601 (default: ${NODE_ENV}).",
        )(fn)

    return wrap


def _connect(url: str | None, key_file: Path | None = None, signs: bool = False) -> SyncLedger:
    """A client for the node at ``url``; checks only local things (no request yet)."""
    if not url:
        raise Fail(f"which node? pass --node URL (e.g. http://127.0.0.1:26601) or set {NODE_ENV}")
    if not re.match(r"https?://[^/\s]+", url):
        raise Fail(f"--node: {url!r} is not an http:// or https:// URL")
    if signs and key_file is None:
        raise Fail("this command signs a transaction: pass --key FILE (make one with 'medchain key new')")
    key = read_key(key_file) if key_file is not None else None
    from node.ledger_client import SyncLedger

    return SyncLedger(url, key)


def _signer(ledger: SyncLedger) -> SigningKey:
    assert ledger.key is not None  # _connect(signs=True) made sure
    return ledger.key


def _print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def _report(result: dict[str, Any], as_json: bool, done: Callable[[dict[str, Any]], str]) -> None:
    """Print a submitted transaction's outcome; exit 1 unless it committed."""
    status = result.get("status")
    if as_json:
        _print_json(result)
    elif status == "committed":
        click.echo(done(result))
    elif status == "rejected":
        click.echo(f"rejected: {result.get('code')}: {result.get('message')}", err=True)
    else:
        click.echo(
            f"pending: transaction {result.get('tx_id')} was accepted but has not committed yet; "
            f"ask the node later: GET /txs/{result.get('tx_id')}",
            err=True,
        )
    if status != "committed":
        raise SystemExit(1)


def _submit(ledger: SyncLedger, body: Any, as_json: bool, done: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    result = ledger.submit(body)
    _report(result, as_json, done)
    return result


def _at(result: dict[str, Any]) -> str:
    return f"height {result.get('height')}, tx {str(result.get('tx_id', ''))[:16]}"


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _short(text: str | None, n: int = 16) -> str | None:
    return None if text is None else (text if len(text) <= n else text[:n] + "...")


def _hex(text: str, name: str, size: int) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise Fail(f"{name}: {text!r} is not hex; expected {2 * size} hex digits") from None
    if len(value) != size:
        raise Fail(f"{name}: expected {2 * size} hex digits, got {len(text)}")
    return value


def _public_key(text: str, name: str) -> bytes:
    """A public key given as 64 hex digits or as a key file."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    path = Path(text)
    if not path.is_file():
        raise Fail(f"{name}: {text!r} is neither a public key (64 hex digits) nor a key file")
    try:
        public = json.loads(path.read_text()).get("public")
    except (ValueError, AttributeError):
        public = None
    if isinstance(public, str) and re.fullmatch(r"[0-9a-fA-F]{64}", public):
        return bytes.fromhex(public)
    return read_key(path).verify_key.raw


def _limit(text: str, name: str, size: int) -> str:
    if len(text.encode()) > size:
        raise Fail(f"{name}: at most {size} bytes, got {len(text.encode())}")
    return text


# ---------------------------------------------------------------- organisations


def _orgs(ledger: SyncLedger) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ledger.call("GET", "/orgs")
    return found


def _org(ledger: SyncLedger, org_id: str, name: str = "organisation") -> dict[str, Any]:
    orgs = _orgs(ledger)
    for org in orgs:
        if org["id"] == org_id:
            return org
    known = ", ".join(o["id"] for o in orgs) or "none"
    raise Fail(f"{name}: no organisation {org_id!r} in this consortium (known: {known}; see 'medchain org list')")


def _licences_text(licences: list[dict[str, Any]]) -> str | None:
    parts = [lic["kind"] + (f" (prefix {lic['scope']})" if lic.get("scope") else "") for lic in licences]
    return ", ".join(parts) or None


# ---------------------------------------------------------------- GS1 codes


@dataclass(frozen=True, slots=True)
class Code:
    """A pack as named on the command line: its identifiers, and the text to send for a scan."""

    gtin: str
    serial: str
    lot: str | None
    expiry: str | None
    scan: str  # the code as given, or the element string of GTIN:SERIAL


def parse_pack_code(text: str, name: str = "CODE") -> Code:
    """A pack code in any form ``node.gs1.parse_code`` reads ((01)..(21).., raw, Digital Link) or GTIN:SERIAL."""
    text = text.strip()
    match = GTIN_SERIAL.fullmatch(text)
    try:
        code = PackCode(match[1], match[2]) if match else parse_code(text)
    except Gs1Error as exc:
        raise Fail(f"{name}: {exc.field}: {exc}") from None
    # A serial may hold "(" (GS1 character set 82), so GTIN:SERIAL is sent as a raw element string.
    scan = f"01{code.gtin}21{code.serial}" if match else text
    return Code(code.gtin, code.serial, code.lot, code.expiry, scan)


def _gs1(check: Callable[[str], object], text: str, name: str) -> None:
    """Run one of node.gs1's checks on an option's value; the error names the option."""
    try:
        check(text)
    except Gs1Error as exc:
        raise Fail(f"{name}: {exc}") from None


def _gtin(text: str, name: str = "--gtin") -> str:
    _gs1(check_gtin, text, name)
    return check_gtin(text)


def _lot_ref(text: str, name: str = "--lot") -> b.LotRef:
    gtin, sep, lot = text.partition(":")
    if not sep:
        raise Fail(f"{name}: {text!r} is not GTIN:LOT")
    _gs1(check_lot, lot, f"{name} {text!r}: lot")
    return b.LotRef(_gtin(gtin, f"{name} {text!r}: gtin"), lot)


def _reason(text: str) -> str:
    if not text.strip():
        raise Fail("--reason: say why (it is recorded on the ledger)")
    return _limit(text, "--reason", 200)


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
        _print_json({"file": str(path), "public": public, "patient_id": pid})
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
@friendly
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
@friendly
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
@friendly
def patient_register(url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Register your key as a patient and print your pseudonymous patient id.

    Give the id to the clinicians who file records for you; manage who may
    read them with 'medchain consent'.
    """
    ledger = _connect(url, key_file, signs=True)
    pid = patient_id(_signer(ledger).verify_key.raw).hex()
    result = ledger.submit(b.RegisterPatient())
    _report({**result, "patient_id": pid}, as_json, lambda r: f"registered: your patient id is {pid} ({_at(r)})")


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
@friendly
def org_list(url: str | None, as_json: bool) -> None:
    """List the organisations: id, name, kind, the nodes they run and their licences."""
    orgs = _orgs(_connect(url))
    if as_json:
        _print_json(orgs)
        return
    rows = [{**o, "nodes": ", ".join(o["nodes"]) or None, "licences": _licences_text(o["licences"])} for o in orgs]
    click.echo(_table(rows, ["id", "name", "kind", "nodes", "licences"]))


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
@friendly
def org_enrol(member: str, role: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Enrol MEMBER (a public key in hex, or a key file) in your organisation.

    Signed by the organisation's admin key; the member then acts for the
    organisation with ROLE.
    """
    key = _public_key(member, "MEMBER")
    ledger = _connect(url, key_file, signs=True)
    _submit(ledger, b.EnrolMember(key, role), as_json, lambda r: f"enrolled {key.hex()} as {role} ({_at(r)})")


@org_group.command("revoke")
@click.argument("member")
@api_options("your organisation's admin")
@friendly
def org_revoke(member: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Revoke MEMBER (a public key in hex, or a key file): it no longer acts for your organisation."""
    key = _public_key(member, "MEMBER")
    ledger = _connect(url, key_file, signs=True)
    _submit(ledger, b.RevokeMember(key), as_json, lambda r: f"revoked {key.hex()} ({_at(r)})")


@org_group.command("member")
@click.argument("key")
@api_options()
@friendly
def org_member(key: str, url: str | None, as_json: bool) -> None:
    """Show what the ledger knows of KEY (a public key in hex, or a key file): organisation, role, status."""
    raw = _public_key(key, "KEY")
    found = _connect(url).call("GET", f"/members/{raw.hex()}")
    if as_json:
        _print_json(found)
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
    @friendly
    def command(org: str, kind: str, prefix: str | None, url: str | None, key_file: Path | None, as_json: bool) -> None:
        scope = _licence(kind, prefix)
        ledger = _connect(url, key_file, signs=True)
        found = _org(ledger, org, "ORG")
        if found["kind"] not in LICENCE_KINDS[kind]:
            raise Fail(f"ORG: {org} is a {found['kind']}; a {kind} licence is for a {' or '.join(LICENCE_KINDS[kind])}")
        what = f"{kind} licence" + (f" for prefix {scope}" if scope else "")
        _submit(ledger, body(org, kind, scope), as_json, lambda r: f"{verb} {org}'s {what} ({_at(r)})")

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


# ================================================================ ehr


@click.group("ehr")
def ehr_group() -> None:
    """Health records: file, amend, read (audited), erase, audit.

    The content stays encrypted in the vault of the custodian's node (the
    organisation that filed it); the ledger keeps a salted commitment to each
    version and a signed entry for every read.  File and read at your own
    organisation's node.
    """


def _resource(path: Path) -> Any:
    from node.fhir_content import FhirError, validate_resource

    text = path.read_text()
    try:
        validate_resource(text)
    except FhirError as exc:
        raise Fail(f"{path}: {exc}") from None
    return json.loads(text)


def _filed(result: dict[str, Any], as_json: bool, what: str) -> None:
    _report(
        result,
        as_json,
        lambda r: (
            f"{what} record {r.get('record_id')} version {r.get('version')} ({r.get('resource_type')}, held by "
            f"{r.get('custodian')}; {_at(r)})"
        ),
    )


@ehr_group.command("add")
@click.option("--patient", required=True, metavar="PID", help="The patient's pseudonymous id (32 hex digits).")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The FHIR R5 resource, as a JSON file.",
)
@click.option("--record-id", default=None, metavar="HEX", help="Choose the record id (32 hex digits; default: random).")
@api_options("the clinician filing the record")
@friendly
def ehr_add(
    patient: str, file: Path, record_id: str | None, url: str | None, key_file: Path | None, as_json: bool
) -> None:
    """File a new record for a patient; prints its record id, version and height.

    Run it against your own organisation's node: that node keeps the content.
    """
    pid = _hex(patient, "--patient", 16)
    rid = _hex(record_id, "--record-id", 16) if record_id is not None else None
    resource = _resource(file)
    ledger = _connect(url, key_file, signs=True)
    _filed(ledger.file_record(resource, patient=pid, record_id=rid), as_json, "filed")


@ehr_group.command("amend")
@click.argument("record_id")
@click.option(
    "--replaces",
    type=click.IntRange(1),
    required=True,
    metavar="N",
    help="The version this amendment replaces (the current one; see 'medchain ehr history').",
)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The new content: a FHIR R5 resource as a JSON file.",
)
@api_options("a clinician of the custodian organisation")
@friendly
def ehr_amend(record_id: str, replaces: int, file: Path, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """File a new version of RECORD_ID; earlier versions stay on the ledger."""
    rid = _hex(record_id, "RECORD_ID", 16)
    resource = _resource(file)
    ledger = _connect(url, key_file, signs=True)
    _filed(ledger.file_record(resource, record_id=rid, replaces=replaces), as_json, "amended")


@ehr_group.command("read")
@click.argument("record_id")
@click.option("--purpose", default="treatment", show_default=True, help="Why you read it (logged on the ledger).")
@click.option(
    "--break-glass",
    is_flag=True,
    help="Emergency access without consent (physicians only); loudly logged for the patient and auditors.",
)
@click.option("--version", type=click.IntRange(1), default=None, help="Read this version (default: the current one).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the resource to this file instead of printing it.",
)
@api_options("the reader")
@friendly
def ehr_read(
    record_id: str,
    purpose: str,
    break_glass: bool,
    version: int | None,
    out: Path | None,
    url: str | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Read RECORD_ID and print its FHIR resource as JSON.

    The custodian's node serves it only to the patient, its own clinicians or
    a reader the patient consented to, and only after filing the access on
    the ledger: 'medchain ehr history' shows every read.
    """
    rid = _hex(record_id, "RECORD_ID", 16)
    _limit(purpose, "--purpose", 64)
    ledger = _connect(url, key_file, signs=True)
    try:
        found = ledger.read_record(rid, purpose=purpose, break_glass=break_glass, version=version or 0)
    except ApiFailure as exc:
        if exc.status in (401, 403, 410):
            click.echo(f"refused: {exc.code}: {str(exc).split(': ', 1)[-1]}", err=True)
            raise SystemExit(1) from None
        raise
    if found.get("break_glass"):
        click.echo(
            f"BREAK-GLASS ACCESS to record {rid.hex()}: filed on the ledger at height "
            f"{found.get('access_height')}; the patient and auditors will see it",
            err=True,
        )
    if out is not None:
        out.write_text(json.dumps(found["resource"], indent=2) + "\n")
    if as_json:
        _print_json(found)
    elif out is None:
        _print_json(found["resource"])
    else:
        click.echo(
            f"wrote {found.get('resource_type')} version {found.get('version')} of {rid.hex()} to {out}; "
            f"the access is logged at height {found.get('access_height')}"
        )


@ehr_group.command("erase")
@click.argument("record_ids", nargs=-1, metavar="[RECORD_ID ...]")
@click.option("--all", "all_records", is_flag=True, help="Erase every record of yours.")
@api_options("the patient")
@friendly
def ehr_erase(
    record_ids: tuple[str, ...], all_records: bool, url: str | None, key_file: Path | None, as_json: bool
) -> None:
    """Erase your records (the right to erasure): the listed ones, or --all.

    The custodians' nodes destroy the content; the ledger keeps only that the
    record existed and was erased.  This cannot be undone.
    """
    if bool(record_ids) == all_records:
        raise Fail("name the records to erase, or pass --all (not both)")
    if len(record_ids) > 256:
        raise Fail(f"at most 256 records per erasure, got {len(record_ids)}; erase them in parts")
    rids = tuple(_hex(r, "RECORD_ID", 16) for r in record_ids)
    ledger = _connect(url, key_file, signs=True)
    what = "all your records" if all_records else f"{len(rids)} record(s)"
    _submit(ledger, b.EraseRecords(rids, all_records), as_json, lambda r: f"erased {what} ({_at(r)})")


@ehr_group.command("history")
@click.argument("record_id")
@api_options()
@friendly
def ehr_history(record_id: str, url: str | None, as_json: bool) -> None:
    """Show RECORD_ID's versions (commitment, author, height), erasure and access log."""
    rid = _hex(record_id, "RECORD_ID", 16)
    found = _connect(url).call("GET", f"/ehr/records/{rid.hex()}")
    if as_json:
        _print_json(found)
        return
    erased = f"yes, at height {found['erased_height']} (tx {_short(found['erase_tx'])})" if found["erased"] else "no"
    click.echo(f"record     {found['record_id']}  ({found['resource_type']}, version {found['version']})")
    click.echo(f"patient    {found['patient']}")
    click.echo(f"custodian  {found['custodian']}  (created at height {found['created_height']})")
    click.echo(f"erased     {erased}")
    versions = [
        {**v, "author": _short(v["author"]), "time": _when(v["time_ms"]), "tx": _short(v["tx_id"])}
        for v in found["versions"]
    ]
    click.echo("\nversions:")
    click.echo(_table(versions, ["version", "resource_type", "commitment", "author", "height", "time", "tx"]))
    click.echo("\naccess log:")
    _print_accesses(found["access_log"], with_record=False)


def _print_accesses(accesses: list[dict[str, Any]], with_record: bool) -> None:
    if not accesses:
        click.echo("  no reads yet")
        return
    rows = [
        {
            **a,
            "record": a["record_id"],
            "reader": _short(a["reader"]),
            "time": _when(a["time_ms"]),
            "break_glass": "BREAK-GLASS" if a["break_glass"] else "no",
        }
        for a in accesses
    ]
    columns = ["time", "height", "reader", "reader_org", "version", "purpose", "basis", "break_glass"]
    click.echo(_table(rows, (["record"] if with_record else []) + columns))


def _patient_arg(patient: str | None, key_file: Path | None) -> bytes:
    if patient is not None:
        return _hex(patient, "--patient", 16)
    if key_file is None:
        raise Fail("whose? pass --patient PID, or --key FILE for your own records")
    return patient_id(read_key(key_file).verify_key.raw)


@ehr_group.command("accesses")
@click.option("--patient", default=None, metavar="PID", help="The patient's id (default: the id of --key).")
@api_options(key_help="Your patient key file (to list accesses to your own records).")
@friendly
def ehr_accesses(patient: str | None, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """List every read of a patient's records: who, when, why, on what basis."""
    pid = _patient_arg(patient, key_file)
    found = _connect(url).call("GET", f"/ehr/patients/{pid.hex()}/accesses")
    if as_json:
        _print_json(found)
        return
    click.echo(f"reads of patient {pid.hex()}'s records:")
    _print_accesses(found, with_record=True)


# ================================================================ consent


@click.group("consent")
def consent_group() -> None:
    """A patient's consents: who may read which records, until when.

    Grant to a whole organisation (--org) or to one practitioner's key
    (--practitioner).  Your custodians' clinicians need no consent.
    """


def _grantee(org: str | None, practitioner: str | None) -> tuple[str, bytes | None]:
    if (org is None) == (practitioner is None):
        raise Fail("name one grantee: --org ORG or --practitioner KEY (not both)")
    if practitioner is not None:
        return "", _public_key(practitioner, "--practitioner")
    assert org is not None
    return org, None


def _types(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    for name in names:
        if not RESOURCE_TYPE.fullmatch(name):
            raise Fail(f"--types: {name!r} is not a FHIR resource type name (e.g. Observation, Condition)")
    if len(set(names)) != len(names) or not names or len(names) > 32:
        raise Fail("--types: list 1 to 32 different resource types, comma-separated")
    return names


def _expiry_ms(until: str | None, days: int | None, now: dt.datetime) -> int | None:
    if until is not None and days is not None:
        raise Fail("give --until or --days, not both")
    if days is not None:
        return int((now + dt.timedelta(days=days)).timestamp() * 1000)
    if until is None:
        return None
    try:
        when = dt.datetime.fromisoformat(until)
    except ValueError:
        raise Fail(
            f"--until: {until!r} is not an ISO-8601 date or time (e.g. 2026-03-31 or 2026-03-31T17:00+01:00)"
        ) from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", until):
        when += dt.timedelta(days=1)  # a date alone: through the end of that day
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when <= now:
        raise Fail(f"--until: {until} is already past")
    return int(when.timestamp() * 1000)


def _grantee_options(fn: F) -> F:
    fn = click.option(
        "--practitioner",
        default=None,
        metavar="KEY",
        help="One practitioner: their public key (64 hex digits) or key file.",
    )(fn)
    return click.option("--org", default=None, help="Every member of this organisation (see 'medchain org list').")(fn)


@consent_group.command("grant")
@_grantee_options
@click.option(
    "--types",
    default=None,
    metavar="TYPES",
    help="Only these FHIR resource types, comma-separated, e.g. Observation,Condition (default: all).",
)
@click.option(
    "--until",
    default=None,
    metavar="WHEN",
    help="Expiry, ISO-8601: a date (through the end of that day) or a time; UTC unless it has an offset.",
)
@click.option("--days", type=click.IntRange(1, 36500), default=None, metavar="N", help="Expiry N days from now.")
@api_options("the patient")
@friendly
def consent_grant(
    org: str | None,
    practitioner: str | None,
    types: str | None,
    until: str | None,
    days: int | None,
    url: str | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Let an organisation or a practitioner read your records.

    Without --until or --days the consent lasts until you revoke it.  Granting
    again to the same grantee replaces the earlier consent.
    """
    grantee_org, grantee_key = _grantee(org, practitioner)
    names = _types(types)
    expires = _expiry_ms(until, days, dt.datetime.now(dt.UTC))
    ledger = _connect(url, key_file, signs=True)
    if grantee_org:
        _org(ledger, grantee_org, "--org")
    who = grantee_org or f"practitioner {grantee_key.hex() if grantee_key else ''}"
    scope = ", ".join(names) if names else "all records"
    end = f"until {_when(expires)}" if expires is not None else "until revoked"
    _submit(
        ledger,
        b.GrantConsent(grantee_org, grantee_key, names, expires),
        as_json,
        lambda r: f"consent granted to {who}: {scope}, {end} ({_at(r)})",
    )


@consent_group.command("revoke")
@_grantee_options
@api_options("the patient")
@friendly
def consent_revoke(
    org: str | None, practitioner: str | None, url: str | None, key_file: Path | None, as_json: bool
) -> None:
    """Withdraw a consent you gave to an organisation or a practitioner."""
    grantee_org, grantee_key = _grantee(org, practitioner)
    ledger = _connect(url, key_file, signs=True)
    who = grantee_org or f"practitioner {grantee_key.hex() if grantee_key else ''}"
    _submit(
        ledger, b.RevokeConsent(grantee_org, grantee_key), as_json, lambda r: f"consent of {who} revoked ({_at(r)})"
    )


@consent_group.command("list")
@click.option("--patient", default=None, metavar="PID", help="The patient's id (default: the id of --key).")
@api_options(key_help="Your patient key file (to list your own consents).")
@friendly
def consent_list(patient: str | None, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """List a patient's consents: grantee, resource types, expiry, whether still in force."""
    pid = _patient_arg(patient, key_file)
    found = _connect(url).call("GET", f"/ehr/patients/{pid.hex()}/consents")
    if as_json:
        _print_json(found)
        return
    if not found:
        click.echo(f"patient {pid.hex()} has granted no consent")
        return
    rows = [
        {
            "grantee": c["grantee_org"] or f"key {_short(c['grantee_key'])}",
            "types": c["resource_types"] if isinstance(c["resource_types"], str) else ", ".join(c["resource_types"]),
            "expires": _when(c["expires_ms"]) or "never",
            "active": "yes" if c["active"] else "expired",
            "height": c["height"],
        }
        for c in found
    ]
    click.echo(_table(rows, ["grantee", "types", "expires", "active", "height"]))


# ================================================================ drug


@click.group("drug")
def drug_group() -> None:
    """Medicine packs: commission, ship, receive, dispense, verify.

    Also recall, quarantine, release and destroy, and each pack's history.
    A pack is named by its GS1 code as printed on the box: (01)GTIN(17)EXPIRY
    (10)LOT(21)SERIAL, the raw scanner text, a GS1 Digital Link URL, or simply
    GTIN:SERIAL.  Each step is signed by a member of a licensed organisation.
    """


def _serials(serials: str | None, count: int | None, prefix: str, start: int) -> list[str]:
    if (serials is None) == (count is None):
        raise Fail("list the serials with --serials S1,S2,... or generate them with --count N (not both)")
    if serials is not None:
        out = [s.strip() for s in serials.split(",") if s.strip()]
    else:
        assert count is not None
        out = [f"{prefix}{n}" for n in range(start, start + count)]
    if not out:
        raise Fail("--serials: no serial numbers given")
    if len(set(out)) != len(out):
        raise Fail("--serials: a serial number is listed twice")
    for serial in (out[0], out[-1]) if count is not None else out:
        _gs1(check_serial, serial, "serial")
    return out


class _Progress:
    """Progress of long work on stderr: a bar on a terminal, a line per step otherwise."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled, self.done = total, label, enabled, 0
        self.tty = enabled and sys.stderr.isatty()

    def step(self, n: int, note: str) -> None:
        self.done += n
        if not self.enabled:
            return
        end = "\n" if not self.tty or self.done >= self.total else ""
        prefix = "\r" if self.tty else ""
        width = 30
        bar = "#" * (width * self.done // max(1, self.total))
        click.echo(f"{prefix}{self.label} [{bar:<{width}}] {self.done}/{self.total} {note}", err=True, nl=False)
        click.echo(end, err=True, nl=False)


@drug_group.command("commission")
@click.option("--gtin", required=True, help="The product's GTIN (8 to 14 digits, check digit included).")
@click.option("--lot", required=True, help="Batch/lot number as printed (GS1 AI 10, up to 20 characters).")
@click.option("--expiry", required=True, metavar="YYMMDD", help="Expiry date as printed (GS1 AI 17), e.g. 271231.")
@click.option("--serials", default=None, metavar="S1,S2,...", help="The serial numbers, comma-separated.")
@click.option(
    "--count",
    type=click.IntRange(1, 10_000_000),
    metavar="N",
    default=None,
    help="Generate N serial numbers instead: P+K, P+(K+1), ... (see --serial-prefix, --start).",
)
@click.option("--serial-prefix", "serial_prefix", default="", metavar="P", help="Text before each generated number.")
@click.option(
    "--start", type=click.IntRange(0), default=1, show_default=True, metavar="K", help="First generated number."
)
@api_options("a manufacturer's admin or logistics member")
@friendly
def drug_commission(
    gtin: str,
    lot: str,
    expiry: str,
    serials: str | None,
    count: int | None,
    serial_prefix: str,
    start: int,
    url: str | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Register new packs of one lot on the ledger (GS1/EPCIS commissioning).

    Needs a manufacture licence for the GTIN's company prefix.  Large runs are
    split into transactions of at most 2000 serials each.
    """
    gtin = _gtin(gtin)
    _gs1(check_lot, lot, "--lot")
    _gs1(check_expiry, expiry, "--expiry")
    todo = _serials(serials, count, serial_prefix, start)
    ledger = _connect(url, key_file, signs=True)
    chunks = [todo[i : i + b.MAX_SERIALS] for i in range(0, len(todo), b.MAX_SERIALS)]
    progress = _Progress(len(todo), "commissioning", enabled=len(chunks) > 1)
    results = []
    for chunk in chunks:
        result = ledger.submit(b.Commission(gtin, lot, expiry, tuple(chunk)))
        results.append({**result, "serials": len(chunk)})
        if result.get("status") != "committed":
            if not as_json and progress.done:
                click.echo(f"{progress.done} of {len(todo)} serials were committed before this transaction", err=True)
            _report(results[-1] if not as_json else {"transactions": results, **result}, as_json, str)
        progress.step(len(chunk), f"(height {result.get('height')})")
    if as_json:
        _print_json(
            {
                "status": "committed",
                "gtin": gtin,
                "lot": lot,
                "expiry": expiry,
                "serials": len(todo),
                "transactions": results,
            }
        )
        return
    heights = sorted({r["height"] for r in results})
    where = f"height {heights[0]}" if len(heights) == 1 else f"heights {heights[0]}-{heights[-1]}"
    click.echo(
        f"commissioned {len(todo)} pack(s) of GTIN {gtin} lot {lot} (expiry {expiry}) in "
        f"{len(results)} transaction(s), {where}"
    )


@drug_group.command("ship")
@click.argument("codes", nargs=-1, metavar="[CODE ...]")
@click.option("--to", "to_org", required=True, help="The receiving organisation (see 'medchain org list').")
@click.option(
    "--shipment",
    "shipment_id",
    required=True,
    help="Your id for this shipment (up to 64 characters); the receiver quotes it.",
)
@click.option(
    "--lot",
    "lots",
    multiple=True,
    metavar="GTIN:LOT",
    help="Also ship every active pack you hold of this lot (repeatable, up to 16).",
)
@api_options("a logistics member (or admin) of the sender")
@friendly
def drug_ship(
    codes: tuple[str, ...],
    to_org: str,
    shipment_id: str,
    lots: tuple[str, ...],
    url: str | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Send packs (CODE ...) and/or whole lots (--lot) to another organisation.

    The packs are in transit until the receiver runs 'medchain drug receive'.
    """
    if not shipment_id.strip():
        raise Fail("--shipment: give the shipment an id")
    _limit(shipment_id, "--shipment", 64)
    if not codes and not lots:
        raise Fail("nothing to ship: list pack codes and/or --lot GTIN:LOT")
    if len(codes) > b.MAX_PACKS:
        raise Fail(f"a shipment lists at most {b.MAX_PACKS} packs, got {len(codes)}; ship --lot or split it")
    if len(lots) > 16:
        raise Fail(f"a shipment names at most 16 lots, got {len(lots)}")
    packs = tuple(b.PackRef(c.gtin, c.serial) for c in (parse_pack_code(text, "CODE") for text in codes))
    lot_refs = tuple(_lot_ref(text) for text in lots)
    ledger = _connect(url, key_file, signs=True)
    _org(ledger, to_org, "--to")
    result = ledger.submit(b.Ship(shipment_id, to_org, packs, lot_refs))
    if result.get("status") == "committed" and not as_json:
        sent = ledger.call("GET", f"/drugs/shipments/{quote(shipment_id, safe='')}")
        result = {**result, "packs": len(sent["packs"])}
    _report(
        result,
        as_json,
        lambda r: (
            f"shipped {r['packs']} pack(s) to {to_org} as shipment {shipment_id} ({_at(r)}); "
            f"the receiver runs: medchain drug receive {shipment_id}"
        ),
    )


@drug_group.command("receive")
@click.argument("shipment_id")
@api_options("a logistics member, pharmacist or admin of the receiver")
@friendly
def drug_receive(shipment_id: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Take custody of every pack of SHIPMENT_ID, addressed to your organisation."""
    _limit(shipment_id, "SHIPMENT_ID", 64)
    ledger = _connect(url, key_file, signs=True)
    result = ledger.submit(b.Receive(shipment_id))
    if result.get("status") == "committed" and not as_json:
        got = ledger.call("GET", f"/drugs/shipments/{quote(shipment_id, safe='')}")
        result = {**result, "packs": len(got["packs"]), "from": got["from"]}
    _report(
        result, as_json, lambda r: f"received shipment {shipment_id}: {r['packs']} pack(s) from {r['from']} ({_at(r)})"
    )


@drug_group.command("dispense")
@click.argument("code")
@api_options("a pharmacist of the pack's custodian")
@friendly
def drug_dispense(code: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Record that the pack CODE was handed to a patient; a later scan of it raises an alert."""
    pack = parse_pack_code(code, "CODE")
    ledger = _connect(url, key_file, signs=True)
    _submit(
        ledger, b.Dispense(pack.gtin, pack.serial), as_json, lambda r: f"dispensed {pack.gtin}/{pack.serial} ({_at(r)})"
    )


@drug_group.command("recall")
@click.option("--gtin", required=True, help="The product's GTIN.")
@click.option("--lot", required=True, help="The lot to recall.")
@click.option("--reason", required=True, help="Why (recorded on the ledger, shown at every scan).")
@api_options("the regulator (admin or inspector) or the lot's manufacturer")
@friendly
def drug_recall(gtin: str, lot: str, reason: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Recall a whole lot: none of its packs can be shipped or dispensed any more."""
    gtin = _gtin(gtin)
    _gs1(check_lot, lot, "--lot")
    ledger = _connect(url, key_file, signs=True)
    _submit(
        ledger, b.Recall(gtin, lot, _reason(reason)), as_json, lambda r: f"recalled lot {lot} of GTIN {gtin} ({_at(r)})"
    )


def _flag_target(code: str | None, gtin: str | None, lot: str | None) -> tuple[str, str | None, str | None, str]:
    """(gtin, lot, serial, description) of a quarantine or release: one pack, or a whole lot."""
    if code is not None:
        if gtin is not None or lot is not None:
            raise Fail("name one pack (CODE) or one lot (--gtin G --lot L), not both")
        pack = parse_pack_code(code, "CODE")
        return pack.gtin, None, pack.serial, f"pack {pack.gtin}/{pack.serial}"
    if gtin is None or lot is None:
        raise Fail("name one pack (CODE) or one lot (--gtin G --lot L)")
    gtin = _gtin(gtin)
    _gs1(check_lot, lot, "--lot")
    return gtin, lot, None, f"lot {lot} of GTIN {gtin}"


def _flag_command(name: str, body: type[b.Quarantine] | type[b.Release], verb: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("code", required=False)
    @click.option("--gtin", default=None, help="The GTIN of the lot (with --lot).")
    @click.option("--lot", default=None, help="The lot (with --gtin).")
    @click.option("--reason", required=True, help="Why (recorded on the ledger).")
    @api_options("the regulator's admin or an inspector")
    @friendly
    def command(
        code: str | None,
        gtin: str | None,
        lot: str | None,
        reason: str,
        url: str | None,
        key_file: Path | None,
        as_json: bool,
    ) -> None:
        g, lot_id, serial, what = _flag_target(code, gtin, lot)
        ledger = _connect(url, key_file, signs=True)
        _submit(ledger, body(g, lot_id, serial, _reason(reason)), as_json, lambda r: f"{verb} {what} ({_at(r)})")

    return command


drug_group.add_command(
    _flag_command(
        "quarantine",
        b.Quarantine,
        "quarantined",
        "Flag one pack (CODE) or a lot (--gtin G --lot L) as suspect: it cannot move or be dispensed until released.",
    )
)
drug_group.add_command(
    _flag_command(
        "release",
        b.Release,
        "released",
        "Lift a quarantine of one pack (CODE) or a lot (--gtin G --lot L).\n\nName the target exactly as quarantined.",
    )
)


@drug_group.command("destroy")
@click.argument("codes", nargs=-1, required=True, metavar="CODE ...")
@click.option("--reason", required=True, help="Why (recorded on the ledger).")
@api_options("a member of the packs' custodian, or an inspector")
@friendly
def drug_destroy(codes: tuple[str, ...], reason: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Record that packs were destroyed; a later scan of one raises an alert."""
    if len(codes) > b.MAX_PACKS:
        raise Fail(f"at most {b.MAX_PACKS} packs per destruction, got {len(codes)}")
    packs = tuple(b.PackRef(c.gtin, c.serial) for c in (parse_pack_code(text, "CODE") for text in codes))
    text = _reason(reason)
    ledger = _connect(url, key_file, signs=True)
    _submit(ledger, b.Destroy(packs, text), as_json, lambda r: f"destroyed {len(packs)} pack(s) ({_at(r)})")


def _history_table(events: list[dict[str, Any]]) -> str:
    rows = [{**e, "time": _when(e["time_ms"]), "with": e.get("other_org"), "tx": _short(e["tx_id"])} for e in events]
    return _table(rows, ["kind", "time", "height", "org", "with", "ref", "tx"])


@drug_group.command("verify")
@click.argument("code")
@click.option(
    "--scanned-by",
    default="",
    metavar="TEXT",
    help="Where the scan happens, e.g. 'pharmacy counter 2' (recorded with an alert; no personal data).",
)
@click.option("--no-proofs", is_flag=True, help="Leave out the inclusion proofs of the history (smaller JSON).")
@api_options()
@friendly
def drug_verify(code: str, scanned_by: str, no_proofs: bool, url: str | None, as_json: bool) -> None:
    """Check a scanned pack against the ledger; exit 0 if it is genuine and sellable, 1 if not.

    A suspicious scan (unknown serial, wrong lot or expiry, a pack already
    dispensed or destroyed) is filed as an alert for the regulator.
    """
    pack = parse_pack_code(code, "CODE")
    _limit(scanned_by, "--scanned-by", 64)
    found = _connect(url).verify(pack.scan, scanned_by=scanned_by, proofs=not no_proofs)
    if as_json:
        _print_json(found)
    else:
        _print_verdict(found)
    if not found.get("verified"):
        raise SystemExit(1)


def _print_verdict(found: dict[str, Any]) -> None:
    code = found.get("code") or {}
    ident = f"GTIN {code.get('gtin')}  serial {code.get('serial')}"
    ident += "".join(f"  {k} {code[k]}" for k in ("lot", "expiry") if code.get(k))
    if found.get("verified"):
        click.echo(click.style("*** VERIFIED ***", fg="green", bold=True) + f"  {ident}")
    else:
        click.echo(click.style("*** NOT VERIFIED ***", fg="red", bold=True) + f"  {ident}")
    click.echo(f"  status:  {found.get('status')}")
    if found.get("verificationFailureReason"):
        click.echo(f"  reason:  {found['verificationFailureReason']}")
    if found.get("additionalInfo"):
        click.echo(f"  info:    {found['additionalInfo']}")
    alert = found.get("alert")
    if alert:
        filed = (
            f"reported to the ledger (tx {_short(alert['tx_id'])}, {alert.get('status', 'pending')})"
            if alert.get("tx_id")
            else f"not filed: {alert.get('error')}: {alert.get('message')}"
        )
        click.echo(f"  alert:   {filed}")
    pack = found.get("pack")
    if pack:
        click.echo(f"  custodian: {pack.get('custodian')}   manufacturer: {pack.get('manufacturer')}")
        click.echo("\nhistory:")
        click.echo(_history_table(pack.get("history", [])))


@drug_group.command("history")
@click.argument("code")
@click.option("--proofs", is_flag=True, help="With --json: include each event's inclusion proof.")
@api_options()
@friendly
def drug_history(code: str, proofs: bool, url: str | None, as_json: bool) -> None:
    """Show a pack's status and every event of it and its lot, in ledger order (no scan is recorded)."""
    pack = parse_pack_code(code, "CODE")
    path = f"/drugs/packs/{pack.gtin}/{quote(pack.serial, safe='')}" + ("" if proofs and as_json else "?proofs=0")
    found = _connect(url).call("GET", path)
    if as_json:
        _print_json(found)
        return
    click.echo(f"pack {found['gtin']}/{found['serial']}  lot {found['lot']}  expiry {found['expiry']}")
    click.echo(f"  status:       {found['status']}" + (f" ({found['info']})" if found.get("info") else ""))
    click.echo(
        f"  custodian:    {found['custodian']}"
        + (f"  (in shipment {found['shipment']})" if found.get("shipment") else "")
    )
    click.echo(f"  manufacturer: {found['manufacturer']}")
    for key in ("recalled", "quarantined"):
        if found.get(key):
            click.echo(f"  {key + ':':<13} {found[key]}")
    click.echo("\nhistory:")
    click.echo(_history_table(found["history"]))


@drug_group.command("export-epcis")
@click.argument("code")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the document to this file (default: print it).",
)
@click.option(
    "--node",
    "url",
    envvar=NODE_ENV,
    metavar="URL",
    help=f"API of the node to talk to, e.g. http://127.0.0.1:26601 (default: ${NODE_ENV}).",
)
@friendly
def drug_export_epcis(code: str, out: Path | None, url: str | None) -> None:
    """Export a pack's history as a GS1 EPCIS 2.0 JSON-LD document, for partners' systems."""
    pack = parse_pack_code(code, "CODE")
    doc = _connect(url).call("GET", f"/drugs/packs/{pack.gtin}/{quote(pack.serial, safe='')}/epcis")
    text = json.dumps(doc, indent=2)
    if out is None:
        click.echo(text)
        return
    out.write_text(text + "\n")
    click.echo(
        f"wrote {len(doc.get('epcisBody', {}).get('eventList', []))} EPCIS event(s) of "
        f"{pack.gtin}/{pack.serial} to {out}"
    )


# ================================================================ alerts


def _alert_row(a: dict[str, Any]) -> dict[str, Any]:
    return {**a, "time": _when(a.get("time_ms"))}


async def _follow(base: str, after: int | None, as_json: bool) -> None:
    """Print alerts after ``after`` (if given), then each new one as it commits; returns when the node ends it."""
    from node.ledger_client import LedgerClient

    widths = [5, 20, 14, 12, 10, 26, 16, 20, 14, 6]

    def emit(alert: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(alert))
            return
        row = _alert_row(alert)
        cells = ["-" if row.get(c) is None else str(row[c]) for c in ALERT_COLUMNS]
        click.echo("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip())

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession() as session, session.get(base + "/alerts/stream", timeout=timeout) as resp:
        if resp.status != 200:
            raise Fail(f"the node at {base} has no alert stream (HTTP {resp.status})")
        await resp.content.readline()  # the node subscribes us before its first comment line
        if not as_json:
            click.echo("  ".join(c.upper().ljust(w) for c, w in zip(ALERT_COLUMNS, widths, strict=True)).rstrip())
        last = -1
        if after is not None:
            client = LedgerClient(base, None, session)
            last = after
            while True:
                since = f"&after={last}" if last >= 0 else ""
                page = await client.call("GET", f"/alerts?limit=1000{since}")
                for alert in page:
                    emit(alert)
                    last = alert["seq"]
                if len(page) < 1000:
                    break
        event, data = "", ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line:
                if event == "alert" and data:
                    alert = json.loads(data)
                    if alert["seq"] > last:
                        emit(alert)
                        last = alert["seq"]
                event, data = "", ""


@click.command("alerts")
@click.option(
    "--after",
    type=click.IntRange(-1),
    default=None,
    metavar="N",
    help="Only alerts after sequence number N (alerts are numbered from 0; -1: from the first).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="At most this many alerts (without --follow).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep printing new alerts as they commit, until Ctrl-C (with --after N: catch up from N first).",
)
@api_options()
@friendly
def alerts(after: int | None, limit: int, follow: bool, url: str | None, as_json: bool) -> None:
    """List suspicious scans filed on the ledger, or follow them live.

    An alert is filed when a scan finds an unknown serial, a wrong lot or
    expiry, or a pack already dispensed or destroyed.  With --json --follow,
    one JSON object per line.
    """
    ledger = _connect(url)
    if follow:
        base = ledger.url.rstrip("/")
        try:
            asyncio.run(_follow(base, after, as_json))
        except KeyboardInterrupt:
            return
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise NodeUnreachable(f"cannot reach the node at {base}: {exc or type(exc).__name__}") from None
        raise Fail(f"the node at {base} ended the alert stream (is it shutting down?)")
    query = f"?limit={limit}" + (f"&after={after}" if after is not None and after >= 0 else "")
    found = ledger.call("GET", "/alerts" + query)
    if as_json:
        _print_json(found)
        return
    if not found:
        click.echo("no alerts" + (f" after {after}" if after is not None else ""))
        return
    click.echo(_table([_alert_row(a) for a in found], ALERT_COLUMNS))
    if len(found) == limit:
        click.echo(f"(more may follow: medchain alerts --after {found[-1]['seq']})", err=True)


HEALTH_COMMANDS = [key_group, patient_group, org_group, license_group, ehr_group, consent_group, drug_group, alerts]
