"""Medicine commands: packs from commissioning to dispensing, recalls and quarantines, verification, alerts.

Conventions (``--node``, ``--key``, ``--json``, exit codes) are those of ``node.cli.common``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from node.cli.common import (
    Fail,
    api_options,
    check_gs1,
    check_length,
    committed_at,
    connect,
    find_org,
    flag_target,
    format_time,
    json_option,
    node_option,
    parse_gtin,
    parse_lot_ref,
    parse_pack_code,
    parse_reason,
    parse_serials,
    print_json,
    progress,
    report,
    shorten,
    submit,
    table,
)
from node.client.ledger import LedgerClient
from node.client.sse import SseComment
from node.healthcare.gs1 import check_expiry, check_lot
from node.healthcare.ledger import bodies as b

ALERT_COLUMNS = ["seq", "time", "gtin", "serial", "lot", "reason", "info", "scanned_by", "reporter_org", "height"]


# ================================================================ drug


@click.group("drug")
def drug_group() -> None:
    """Medicine packs: commission, ship, receive, dispense, verify.

    Also recall, quarantine, release and destroy, and each pack's history.
    A pack is named by its GS1 code as printed on the box: (01)GTIN(17)EXPIRY
    (10)LOT(21)SERIAL, the raw scanner text, a GS1 Digital Link URL, or simply
    GTIN:SERIAL.  Each step is signed by a member of a licensed organisation.
    """


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
    gtin = parse_gtin(gtin)
    check_gs1(check_lot, lot, "--lot")
    check_gs1(check_expiry, expiry, "--expiry")
    todo = parse_serials(serials, count, serial_prefix, start)
    ledger = connect(url, key_file, signs=True)
    chunks = [todo[i : i + b.MAX_SERIALS] for i in range(0, len(todo), b.MAX_SERIALS)]
    results: list[dict[str, Any]] = []
    done = 0
    with progress(len(todo), "commissioning", enabled=len(chunks) > 1 and not as_json) as advance:
        for chunk in chunks:
            result = ledger.submit(b.Commission(gtin, lot, expiry, tuple(chunk)))
            results.append({**result, "serials": len(chunk)})
            if result.get("status") != "committed":
                break
            done += len(chunk)
            advance(len(chunk))
    if results[-1].get("status") != "committed":
        if not as_json and done:
            click.echo(f"{done} of {len(todo)} serials were committed before this transaction", err=True)
        report(results[-1] if not as_json else {"transactions": results, **results[-1]}, as_json, str)
    if as_json:
        print_json(
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
    check_length(shipment_id, "--shipment", 64)
    if not codes and not lots:
        raise Fail("nothing to ship: list pack codes and/or --lot GTIN:LOT")
    if len(codes) > b.MAX_PACKS:
        raise Fail(f"a shipment lists at most {b.MAX_PACKS} packs, got {len(codes)}; ship --lot or split it")
    if len(lots) > 16:
        raise Fail(f"a shipment names at most 16 lots, got {len(lots)}")
    packs = tuple(b.PackRef(c.gtin, c.serial) for c in (parse_pack_code(text, "CODE") for text in codes))
    lot_refs = tuple(parse_lot_ref(text) for text in lots)
    ledger = connect(url, key_file, signs=True)
    find_org(ledger, to_org, "--to")
    result = ledger.submit(b.Ship(shipment_id, to_org, packs, lot_refs))
    if result.get("status") == "committed" and not as_json:
        sent = ledger.call("GET", f"/drugs/shipments/{quote(shipment_id, safe='')}")
        shown: dict[str, Any] = {**result, "packs": len(sent["packs"])}
    else:
        shown = {**result}
    report(
        shown,
        as_json,
        lambda r: (
            f"shipped {r['packs']} pack(s) to {to_org} as shipment {shipment_id} ({committed_at(r)}); "
            f"the receiver runs: medchain drug receive {shipment_id}"
        ),
    )


@drug_group.command("receive")
@click.argument("shipment_id")
@api_options("a logistics member, pharmacist or admin of the receiver")
def drug_receive(shipment_id: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Take custody of every pack of SHIPMENT_ID, addressed to your organisation."""
    check_length(shipment_id, "SHIPMENT_ID", 64)
    ledger = connect(url, key_file, signs=True)
    result = ledger.submit(b.Receive(shipment_id))
    if result.get("status") == "committed" and not as_json:
        got = ledger.call("GET", f"/drugs/shipments/{quote(shipment_id, safe='')}")
        shown: dict[str, Any] = {**result, "packs": len(got["packs"]), "from": got["from"]}
    else:
        shown = {**result}
    report(
        shown,
        as_json,
        lambda r: f"received shipment {shipment_id}: {r['packs']} pack(s) from {r['from']} ({committed_at(r)})",
    )


@drug_group.command("dispense")
@click.argument("code")
@api_options("a pharmacist of the pack's custodian")
def drug_dispense(code: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Record that the pack CODE was handed to a patient; a later scan of it raises an alert."""
    pack = parse_pack_code(code, "CODE")
    ledger = connect(url, key_file, signs=True)
    submit(
        ledger,
        b.Dispense(pack.gtin, pack.serial),
        as_json,
        lambda r: f"dispensed {pack.gtin}/{pack.serial} ({committed_at(r)})",
    )


@drug_group.command("recall")
@click.option("--gtin", required=True, help="The product's GTIN.")
@click.option("--lot", required=True, help="The lot to recall.")
@click.option("--reason", required=True, help="Why (recorded on the ledger, shown at every scan).")
@api_options("the regulator (admin or inspector) or the lot's manufacturer")
def drug_recall(gtin: str, lot: str, reason: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Recall a whole lot: none of its packs can be shipped or dispensed any more."""
    gtin = parse_gtin(gtin)
    check_gs1(check_lot, lot, "--lot")
    ledger = connect(url, key_file, signs=True)
    submit(
        ledger,
        b.Recall(gtin, lot, parse_reason(reason)),
        as_json,
        lambda r: f"recalled lot {lot} of GTIN {gtin} ({committed_at(r)})",
    )


def _flag_command(name: str, body: type[b.Quarantine] | type[b.Release], verb: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("code", required=False)
    @click.option("--gtin", default=None, help="The GTIN of the lot (with --lot).")
    @click.option("--lot", default=None, help="The lot (with --gtin).")
    @click.option("--reason", required=True, help="Why (recorded on the ledger).")
    @api_options("the regulator's admin or an inspector")
    def command(
        code: str | None,
        gtin: str | None,
        lot: str | None,
        reason: str,
        url: str | None,
        key_file: Path | None,
        as_json: bool,
    ) -> None:
        g, lot_id, serial, what = flag_target(code, gtin, lot)
        ledger = connect(url, key_file, signs=True)
        submit(
            ledger,
            body(g, lot_id, serial, parse_reason(reason)),
            as_json,
            lambda r: f"{verb} {what} ({committed_at(r)})",
        )

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
def drug_destroy(codes: tuple[str, ...], reason: str, url: str | None, key_file: Path | None, as_json: bool) -> None:
    """Record that packs were destroyed; a later scan of one raises an alert."""
    if len(codes) > b.MAX_PACKS:
        raise Fail(f"at most {b.MAX_PACKS} packs per destruction, got {len(codes)}")
    packs = tuple(b.PackRef(c.gtin, c.serial) for c in (parse_pack_code(text, "CODE") for text in codes))
    text = parse_reason(reason)
    ledger = connect(url, key_file, signs=True)
    submit(ledger, b.Destroy(packs, text), as_json, lambda r: f"destroyed {len(packs)} pack(s) ({committed_at(r)})")


def _history_table(events: list[dict[str, Any]]) -> str:
    rows = [
        {**e, "time": format_time(e["time_ms"]), "with": e.get("other_org"), "tx": shorten(e["tx_id"])} for e in events
    ]
    return table(rows, ["kind", "time", "height", "org", "with", "ref", "tx"])


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
def drug_verify(code: str, scanned_by: str, no_proofs: bool, url: str | None, as_json: bool) -> None:
    """Check a scanned pack against the ledger; exit 0 if it is genuine and sellable, 1 if not.

    A suspicious scan (unknown serial, wrong lot or expiry, a pack already
    dispensed or destroyed) is filed as an alert for the regulator.
    """
    pack = parse_pack_code(code, "CODE")
    check_length(scanned_by, "--scanned-by", 64)
    found = connect(url).verify(pack.scan, scanned_by=scanned_by, proofs=not no_proofs)
    if as_json:
        print_json(found)
    else:
        _print_verdict(found)
    if not found.get("verified"):
        raise SystemExit(1)


def _print_verdict(found: Mapping[str, Any]) -> None:
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
            f"reported to the ledger (tx {shorten(alert['tx_id'])}, {alert.get('status', 'pending')})"
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
def drug_history(code: str, proofs: bool, url: str | None, as_json: bool) -> None:
    """Show a pack's status and every event of it and its lot, in ledger order (no scan is recorded)."""
    pack = parse_pack_code(code, "CODE")
    path = f"/drugs/packs/{pack.gtin}/{quote(pack.serial, safe='')}" + ("" if proofs and as_json else "?proofs=0")
    found = connect(url).call("GET", path)
    if as_json:
        print_json(found)
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
@node_option
@json_option("With --out: print what was written as JSON (the document itself is JSON either way).")
def drug_export_epcis(code: str, out: Path | None, url: str | None, as_json: bool) -> None:
    """Export a pack's history as a GS1 EPCIS 2.0 JSON-LD document, for partners' systems.

    Without --out, stdout carries the document and nothing else.
    """
    pack = parse_pack_code(code, "CODE")
    doc = connect(url).call("GET", f"/drugs/packs/{pack.gtin}/{quote(pack.serial, safe='')}/epcis")
    if out is None:
        print_json(doc)
        return
    out.write_text(json.dumps(doc, indent=2) + "\n")
    events = len(doc.get("epcisBody", {}).get("eventList", []))
    if as_json:
        print_json({"gtin": pack.gtin, "serial": pack.serial, "events": events, "out": str(out)})
    else:
        click.echo(f"wrote {events} EPCIS event(s) of {pack.gtin}/{pack.serial} to {out}")


# ================================================================ alerts


def _alert_row(a: dict[str, Any]) -> dict[str, Any]:
    return {**a, "time": format_time(a.get("time_ms"))}


ALERT_WIDTHS = [5, 20, 14, 12, 10, 26, 16, 20, 14, 6]


def _alert_line(alert: dict[str, Any]) -> str:
    row = _alert_row(alert)
    cells = ["-" if row.get(c) is None else str(row[c]) for c in ALERT_COLUMNS]
    return "  ".join(v.ljust(w) for v, w in zip(cells, ALERT_WIDTHS, strict=True)).rstrip()


async def _follow(node: LedgerClient, after: int | None, as_json: bool) -> None:
    """Print alerts after ``after`` (if given), then each new one as it commits; returns when the node ends it."""

    def emit(alert: dict[str, Any]) -> None:
        click.echo(json.dumps(alert) if as_json else _alert_line(alert))

    subscribed = False
    last = -1 if after is None else after
    async for item in node.events("/alerts/stream"):
        if isinstance(item, SseComment):
            if not subscribed:  # the node's greeting: every alert committed from now on arrives as an event
                subscribed = True
                if not as_json:
                    click.echo(
                        "  ".join(c.upper().ljust(w) for c, w in zip(ALERT_COLUMNS, ALERT_WIDTHS, strict=True)).rstrip()
                    )
                if after is not None:
                    last = await _catch_up(node, after, emit)
        elif item.event == "alert":
            alert = item.json()
            if alert["seq"] > last:
                emit(alert)
                last = alert["seq"]


async def _catch_up(node: LedgerClient, after: int, emit: Callable[[dict[str, Any]], None]) -> int:
    """Print the alerts filed after ``after``, a page at a time; the last sequence number printed."""
    last = after
    while True:
        since = f"&after={last}" if last >= 0 else ""
        page = await node.call("GET", f"/alerts?limit=1000{since}")
        for alert in page:
            emit(alert)
            last = alert["seq"]
        if len(page) < 1000:
            return last


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
def alerts(after: int | None, limit: int, follow: bool, url: str | None, as_json: bool) -> None:
    """List suspicious scans filed on the ledger, or follow them live.

    An alert is filed when a scan finds an unknown serial, a wrong lot or
    expiry, or a pack already dispensed or destroyed.  With --json --follow,
    one JSON object per line.
    """
    ledger = connect(url)
    if follow:
        try:
            ledger.run(_follow(ledger.client, after, as_json))
        except KeyboardInterrupt:
            return
        raise Fail(f"the node at {ledger.url} ended the alert stream (is it shutting down?)")
    query = f"?limit={limit}" + (f"&after={after}" if after is not None and after >= 0 else "")
    found = ledger.call("GET", "/alerts" + query)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no alerts" + (f" after {after}" if after is not None else ""))
        return
    click.echo(table([_alert_row(a) for a in found], ALERT_COLUMNS))
    if len(found) == limit:
        click.echo(f"(more may follow: medchain alerts --after {found[-1]['seq']})", err=True)


DRUG_COMMANDS = [drug_group, alerts]
