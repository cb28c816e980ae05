"""Health record commands: file, amend, read, erase and audit records; a patient's consents.

Conventions (``--node``, ``--key``, ``--json``, exit codes) are those of ``node.cli.common``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from node.cli.common import (
    F,
    Fail,
    api_options,
    check_length,
    committed_at,
    connect,
    find_org,
    format_time,
    parse_hex,
    parse_public_key,
    print_json,
    report,
    shorten,
    submit,
    table,
)
from node.client.http import ApiFailure
from node.config import read_key
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.records import patient_id

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")


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
    from node.healthcare.fhir import FhirError, validate_resource

    text = path.read_text()
    try:
        validate_resource(text)
    except FhirError as exc:
        raise Fail(f"{path}: {exc}") from None
    return json.loads(text)


def _filed(result: Mapping[str, Any], as_json: bool, what: str) -> None:
    report(
        result,
        as_json,
        lambda r: (
            f"{what} record {r.get('record_id')} version {r.get('version')} ({r.get('resource_type')}, held by "
            f"{r.get('custodian')}; {committed_at(r)})"
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
def ehr_add(
    patient: str, file: Path, record_id: str | None, url: str | None, key_file: Path | None, as_json: bool
) -> None:
    """File a new record for a patient; prints its record id, version and height.

    Run it against your own organisation's node: that node keeps the content.
    """
    pid = parse_hex(patient, "--patient", 16)
    rid = parse_hex(record_id, "--record-id", 16) if record_id is not None else None
    resource = _resource(file)
    ledger = connect(url, key_file, signs=True)
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
def ehr_amend(record_id: str, replaces: int, file: Path, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """File a new version of RECORD_ID; earlier versions stay on the ledger."""
    rid = parse_hex(record_id, "RECORD_ID", 16)
    resource = _resource(file)
    ledger = connect(url, key_file, signs=True)
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
    rid = parse_hex(record_id, "RECORD_ID", 16)
    check_length(purpose, "--purpose", 64)
    ledger = connect(url, key_file, signs=True)
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
        print_json(found)
    elif out is None:
        print_json(found["resource"])
    else:
        click.echo(
            f"wrote {found.get('resource_type')} version {found.get('version')} of {rid.hex()} to {out}; "
            f"the access is logged at height {found.get('access_height')}"
        )


@ehr_group.command("erase")
@click.argument("record_ids", nargs=-1, metavar="[RECORD_ID ...]")
@click.option("--all", "all_records", is_flag=True, help="Erase every record of yours.")
@api_options("the patient")
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
    rids = tuple(parse_hex(r, "RECORD_ID", 16) for r in record_ids)
    ledger = connect(url, key_file, signs=True)
    what = "all your records" if all_records else f"{len(rids)} record(s)"
    submit(ledger, b.EraseRecords(rids, all_records), as_json, lambda r: f"erased {what} ({committed_at(r)})")


@ehr_group.command("history")
@click.argument("record_id")
@click.option("--proofs", is_flag=True, help="With --json: include the inclusion proof of each version, read and "
              "the erasure.")
@api_options()
def ehr_history(record_id: str, proofs: bool, url: str | None, as_json: bool) -> None:
    """Show RECORD_ID's versions (commitment, author, height), erasure and access log."""
    rid = parse_hex(record_id, "RECORD_ID", 16)
    found = connect(url).call("GET", f"/ehr/records/{rid.hex()}" + ("?proofs=1" if proofs and as_json else ""))
    if as_json:
        print_json(found)
        return
    erased = f"yes, at height {found['erased_height']} (tx {shorten(found['erase_tx'])})" if found["erased"] else "no"
    click.echo(f"record     {found['record_id']}  ({found['resource_type']}, version {found['version']})")
    click.echo(f"patient    {found['patient']}")
    click.echo(f"custodian  {found['custodian']}  (created at height {found['created_height']})")
    click.echo(f"erased     {erased}")
    versions = [
        {**v, "author": shorten(v["author"]), "time": format_time(v["time_ms"]), "tx": shorten(v["tx_id"])}
        for v in found["versions"]
    ]
    click.echo("\nversions:")
    click.echo(table(versions, ["version", "resource_type", "commitment", "author", "height", "time", "tx"]))
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
            "reader": shorten(a["reader"]),
            "time": format_time(a["time_ms"]),
            "break_glass": "BREAK-GLASS" if a["break_glass"] else "no",
        }
        for a in accesses
    ]
    columns = ["time", "height", "reader", "reader_org", "version", "purpose", "basis", "break_glass"]
    click.echo(table(rows, (["record"] if with_record else []) + columns))


def _patient_arg(patient: str | None, key_file: Path | None) -> bytes:
    if patient is not None:
        return parse_hex(patient, "--patient", 16)
    if key_file is None:
        raise Fail("whose? pass --patient PID, or --key FILE for your own records")
    return patient_id(read_key(key_file).verify_key.raw)


@ehr_group.command("accesses")
@click.option("--patient", default=None, metavar="PID", help="The patient's id (default: the id of --key).")
@api_options(key_help="Your patient key file (to list accesses to your own records).")
def ehr_accesses(patient: str | None, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """List every read of a patient's records: who, when, why, on what basis."""
    pid = _patient_arg(patient, key_file)
    found = connect(url).call("GET", f"/ehr/patients/{pid.hex()}/accesses")
    if as_json:
        print_json(found)
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
        return "", parse_public_key(practitioner, "--practitioner")
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


def expiry_ms(until: str | None, days: int | None, now: dt.datetime) -> int | None:
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
    expires = expiry_ms(until, days, dt.datetime.now(dt.UTC))
    ledger = connect(url, key_file, signs=True)
    if grantee_org:
        find_org(ledger, grantee_org, "--org")
    who = grantee_org or f"practitioner {grantee_key.hex() if grantee_key else ''}"
    scope = ", ".join(names) if names else "all records"
    end = f"until {format_time(expires)}" if expires is not None else "until revoked"
    submit(
        ledger,
        b.GrantConsent(grantee_org, grantee_key, names, expires),
        as_json,
        lambda r: f"consent granted to {who}: {scope}, {end} ({committed_at(r)})",
    )


@consent_group.command("revoke")
@_grantee_options
@api_options("the patient")
def consent_revoke(
    org: str | None, practitioner: str | None, url: str | None, key_file: Path | None, as_json: bool
) -> None:
    """Withdraw a consent you gave to an organisation or a practitioner."""
    grantee_org, grantee_key = _grantee(org, practitioner)
    ledger = connect(url, key_file, signs=True)
    who = grantee_org or f"practitioner {grantee_key.hex() if grantee_key else ''}"
    submit(
        ledger,
        b.RevokeConsent(grantee_org, grantee_key),
        as_json,
        lambda r: f"consent of {who} revoked ({committed_at(r)})",
    )


@consent_group.command("list")
@click.option("--patient", default=None, metavar="PID", help="The patient's id (default: the id of --key).")
@api_options(key_help="Your patient key file (to list your own consents).")
def consent_list(patient: str | None, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """List a patient's consents: grantee, resource types, expiry, whether still in force."""
    pid = _patient_arg(patient, key_file)
    found = connect(url).call("GET", f"/ehr/patients/{pid.hex()}/consents")
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo(f"patient {pid.hex()} has granted no consent")
        return
    rows = [
        {
            "grantee": c["grantee_org"] or f"key {shorten(c['grantee_key'])}",
            "types": c["resource_types"] if isinstance(c["resource_types"], str) else ", ".join(c["resource_types"]),
            "expires": format_time(c["expires_ms"]) or "never",
            "active": "yes" if c["active"] else "expired",
            "height": c["height"],
        }
        for c in found
    ]
    click.echo(table(rows, ["grantee", "types", "expires", "active", "height"]))


EHR_COMMANDS = [ehr_group, consent_group]
