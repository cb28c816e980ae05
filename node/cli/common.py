"""Shared plumbing of the healthcare commands: options, node and key resolution, output, GS1 code parsing.

The commands themselves live in ``node.cli.identity`` (key, patient, org,
license), ``node.cli.ehr`` (ehr, consent) and ``node.cli.drugs`` (drug,
alerts); ``node.cli.main`` registers them.  All of them follow the rules below.

Every command talks to one node's API, named with ``--node URL`` or the
``MEDCHAIN_NODE`` environment variable.  Commands that act sign a transaction
with ``--key FILE`` and wait until it commits.  Output is for people; ``--json``
prints the node's JSON answer for scripts.

Exit codes: 0 done; 1 the ledger refused (``rejected: <code>: <message>``) or a
scanned pack did not verify; 2 bad input or no answer (``error: ...``).
Input is checked here before any node is contacted, so a typo costs no round trip.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from node.cli.ops import Fail
from node.config import read_key
from node.healthcare.gs1 import Gs1Error, PackCode, check_gtin, check_lot, check_serial, parse_code
from node.healthcare.ledger import bodies as b
from primitives.signing import SigningKey

if TYPE_CHECKING:
    from node.client.ledger import SyncLedger

F = TypeVar("F", bound=Callable[..., Any])
NODE_ENV = "MEDCHAIN_NODE"
GTIN_SERIAL = re.compile(r"(\d{8,14}):(.+)")


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
        return node_option(fn)

    return wrap


def node_option(fn: F) -> F:
    """--node URL (default: $MEDCHAIN_NODE), for a command that talks to a node but has no --json form."""
    return click.option(
        "--node",
        "url",
        envvar=NODE_ENV,
        metavar="URL",
        help=f"API of the node to talk to, e.g. http://127.0.0.1:26601 (default: ${NODE_ENV}).",
    )(fn)


def _connect(url: str | None, key_file: Path | None = None, signs: bool = False) -> SyncLedger:
    """A client for the node at ``url``; checks only local things (no request yet)."""
    if not url:
        raise Fail(f"which node? pass --node URL (e.g. http://127.0.0.1:26601) or set {NODE_ENV}")
    if not re.match(r"https?://[^/\s]+", url):
        raise Fail(f"--node: {url!r} is not an http:// or https:// URL")
    if signs and key_file is None:
        raise Fail("this command signs a transaction: pass --key FILE (make one with 'medchain key new')")
    key = read_key(key_file) if key_file is not None else None
    from node.client.ledger import SyncLedger

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
    """A pack code in any form ``gs1.parse_code`` reads ((01)..(21).., raw, Digital Link) or GTIN:SERIAL."""
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
    """Run one of node.healthcare.gs1's checks on an option's value; the error names the option."""
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
