"""What every ``medchain`` command shares: the root group, options, node and key resolution, output, GS1 codes.

The commands live in ``node.cli.ops`` (testnet, node, cluster, status,
anchor, proof), ``node.cli.identity`` (key, patient, org, license),
``node.cli.ehr`` (ehr, consent) and ``node.cli.drugs`` (drug, alerts);
``node.cli.main`` registers them.  All of them follow these rules:

* A command that talks to a node takes ``--node URL`` or the
  ``MEDCHAIN_NODE`` environment variable; ``host:port`` needs no scheme.
  Commands that act sign a transaction with ``--key FILE`` and wait until it
  commits.
* Output is for people; ``--json`` prints the data as JSON for scripts.
* Exit codes: 0 done; 1 the ledger refused (``rejected: <code>: <message>``),
  a proof or a scanned pack did not verify; 2 an error: bad input, no answer
  from the node.  An error is one line on stderr, ``error: ...``, saying what
  is wrong and what to do.  ``MedchainGroup`` makes it so for every command,
  click's own usage errors included.

Input is checked here before any node is contacted, so a typo costs no round trip.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from node.client.ledger import SyncLedger
from node.config import read_key
from node.documents import TxStatus
from node.healthcare.gs1 import Gs1Error, PackCode, check_gtin, check_lot, check_serial, parse_code
from node.healthcare.ledger import bodies as b
from primitives.errors import MedchainError
from primitives.signing import SigningKey

F = TypeVar("F", bound=Callable[..., Any])
NODE_ENV = "MEDCHAIN_NODE"
TRACEBACK_ENV = "MEDCHAIN_TRACEBACK"
GTIN_SERIAL = re.compile(r"(\d{8,14}):(.+)")


# ---------------------------------------------------------------- errors


class Fail(click.ClickException):
    """A one-line error, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def one_line(exc: click.ClickException) -> Fail:
    """Any click error as one line; a usage error points at the help of the command it concerns."""
    message = " ".join(exc.format_message().split())
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else "medchain"
        message += f" (see {where} --help)"
    return Fail(message)


def os_error_text(exc: OSError) -> str:
    return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")


class MedchainGroup(click.Group):
    """The root group: whatever goes wrong in any command ends as one line on stderr and exit code 2.

    Usage errors (a missing argument, a file that does not exist, an unknown
    option) come from parsing, so they are caught where contexts are made;
    errors of the commands themselves where they run.  A group called without
    a command still prints its help.
    """

    def main(self, args: Any = None, prog_name: str | None = None, *rest: Any, **extra: Any) -> Any:
        return super().main(args, prog_name or self.name, *rest, **extra)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except (click.exceptions.Exit, click.Abort, click.exceptions.NoArgsIsHelpError):
            raise
        except click.ClickException as exc:
            raise one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.exceptions.NoArgsIsHelpError, Fail):
            raise
        except click.ClickException as exc:
            raise one_line(exc) from None
        except MedchainError as exc:
            raise Fail(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            raise Fail(os_error_text(exc)) from None
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV):
                raise
            raise Fail(
                f"unexpected {type(exc).__name__}: {exc} (a bug: rerun with {TRACEBACK_ENV}=1 and report it)"
            ) from None


# ---------------------------------------------------------------- options


def json_option(help_text: str = "Print the data as JSON (for scripts).") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


CLUSTER_DIR_HELP = "The cluster's folder (as given to 'medchain cluster up')."


def cluster_dir_option(help_text: str = CLUSTER_DIR_HELP) -> Callable[[F], F]:
    """--dir, a running cluster's folder, passed to the command as ``root``."""
    return click.option(
        "--dir", "root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help=help_text
    )


def api_options(signer: str | None = None, key_help: str | None = None) -> Callable[[F], F]:
    """--node and --json on every command; --key where the command signs (``signer``) or reads a default from it."""

    def wrap(fn: F) -> F:
        fn = json_option("Print the node's JSON answer (for scripts).")(fn)
        if signer or key_help:
            text = key_help or f"Key file of {signer}; it signs the transaction."
            fn = click.option(
                "--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help=text
            )(fn)
        return node_option(fn)

    return wrap


def node_option(fn: F) -> F:
    """--node URL (default: $MEDCHAIN_NODE): the node a command talks to."""
    return click.option(
        "--node",
        "url",
        envvar=NODE_ENV,
        metavar="URL",
        help=f"API of the node to talk to: host:port or a URL, e.g. 127.0.0.1:26601 (default: ${NODE_ENV}).",
    )(fn)


# ---------------------------------------------------------------- node and keys


def connect(url: str | None, key_file: Path | None = None, signs: bool = False) -> SyncLedger:
    """A client for the node at ``url``, closed with the command; checks only local things (no request yet)."""
    if not url:
        raise Fail(f"which node? pass --node HOST:PORT (e.g. 127.0.0.1:26601) or set {NODE_ENV}")
    if signs and key_file is None:
        raise Fail("this command signs a transaction: pass --key FILE (make one with 'medchain key new')")
    key = read_key(key_file) if key_file is not None else None
    client = SyncLedger(url, key)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(client.close)
    return client


def signer_of(ledger: SyncLedger) -> SigningKey:
    assert ledger.key is not None  # connect(signs=True) made sure
    return ledger.key


def parse_public_key(text: str, name: str) -> bytes:
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


# ---------------------------------------------------------------- output


def print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned text columns with an upper-case header; a missing value shows as ``-``."""
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def report(result: Mapping[str, Any], as_json: bool, done: Callable[[Mapping[str, Any]], str]) -> None:
    """Print a submitted transaction's outcome; exit 1 unless it committed."""
    status = result.get("status")
    if as_json:
        print_json(result)
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


def submit(ledger: SyncLedger, body: Any, as_json: bool, done: Callable[[Mapping[str, Any]], str]) -> TxStatus:
    result = ledger.submit(body)
    report(result, as_json, done)
    return result


def committed_at(result: Mapping[str, Any]) -> str:
    return f"height {result.get('height')}, tx {str(result.get('tx_id', ''))[:16]}"


def format_time(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def shorten(text: str | None, n: int = 16) -> str | None:
    return None if text is None else (text if len(text) <= n else text[:n] + "...")


@contextmanager
def progress(total: int, label: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long work (``click.progressbar``); yields the function that advances it."""
    if not enabled:
        yield lambda n: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar.update


# ---------------------------------------------------------------- argument checks


def parse_hex(text: str, name: str, size: int) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise Fail(f"{name}: {text!r} is not hex; expected {2 * size} hex digits") from None
    if len(value) != size:
        raise Fail(f"{name}: expected {2 * size} hex digits, got {len(text)}")
    return value


def check_length(text: str, name: str, size: int) -> str:
    if len(text.encode()) > size:
        raise Fail(f"{name}: at most {size} bytes, got {len(text.encode())}")
    return text


# ---------------------------------------------------------------- organisations


def list_orgs(ledger: SyncLedger) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ledger.call("GET", "/orgs")
    return found


def find_org(ledger: SyncLedger, org_id: str, name: str = "organisation") -> dict[str, Any]:
    orgs = list_orgs(ledger)
    for org in orgs:
        if org["id"] == org_id:
            return org
    known = ", ".join(o["id"] for o in orgs) or "none"
    raise Fail(f"{name}: no organisation {org_id!r} in this consortium (known: {known}; see 'medchain org list')")


def licences_text(licences: list[dict[str, Any]]) -> str | None:
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


def check_gs1(check: Callable[[str], object], text: str, name: str) -> None:
    """Run one of node.healthcare.gs1's checks on an option's value; the error names the option."""
    try:
        check(text)
    except Gs1Error as exc:
        raise Fail(f"{name}: {exc}") from None


def parse_gtin(text: str, name: str = "--gtin") -> str:
    check_gs1(check_gtin, text, name)
    return check_gtin(text)


def parse_lot_ref(text: str, name: str = "--lot") -> b.LotRef:
    gtin, sep, lot = text.partition(":")
    if not sep:
        raise Fail(f"{name}: {text!r} is not GTIN:LOT")
    check_gs1(check_lot, lot, f"{name} {text!r}: lot")
    return b.LotRef(parse_gtin(gtin, f"{name} {text!r}: gtin"), lot)


def parse_reason(text: str) -> str:
    if not text.strip():
        raise Fail("--reason: say why (it is recorded on the ledger)")
    return check_length(text, "--reason", 200)


def parse_serials(serials: str | None, count: int | None, prefix: str, start: int) -> list[str]:
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
        check_gs1(check_serial, serial, "serial")
    return out


def flag_target(code: str | None, gtin: str | None, lot: str | None) -> tuple[str, str | None, str | None, str]:
    """(gtin, lot, serial, description) of a quarantine or release: one pack, or a whole lot."""
    if code is not None:
        if gtin is not None or lot is not None:
            raise Fail("name one pack (CODE) or one lot (--gtin G --lot L), not both")
        pack = parse_pack_code(code, "CODE")
        return pack.gtin, None, pack.serial, f"pack {pack.gtin}/{pack.serial}"
    if gtin is None or lot is None:
        raise Fail("name one pack (CODE) or one lot (--gtin G --lot L)")
    gtin = parse_gtin(gtin)
    check_gs1(check_lot, lot, "--lot")
    return gtin, lot, None, f"lot {lot} of GTIN {gtin}"
