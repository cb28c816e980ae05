"""GS1 identifiers of a medicine pack: GTIN, serial, lot and expiry.

Rules this module keeps (GS1 General Specifications; EPC Tag Data Standard):

- A pack code is read from any of its three written forms: the parenthesised
  human-readable form ``(01)…(21)…``, the raw element string with FNC1/GS
  separators (optionally after a symbology identifier such as ``]d2``), and a
  GS1 Digital Link URI.  ``biip`` reads the Application Identifiers (AIs);
  this module only checks that what it read is a well-formed serialised pack.
- A pack code has (01) GTIN and (21) serial; (10) lot and (17) expiry are
  optional; other AIs (national reimbursement numbers, ...) are accepted and
  not kept.  One of these four AIs repeated with another value is refused.
- GTINs are kept in their 14-digit form.  Serial and lot are 1-20 characters
  of the GS1 AI encodable character set 82.
- Expiry is kept exactly as printed (YYMMDD) and as a date; day ``00`` means
  the last day of the month.  The century is fixed (see ``check_expiry``) so
  every node reads the same date from the same code, whatever its clock says.
- A pack's EPC (SGTIN URI) splits the GTIN at its GS1 company prefix, whose
  length comes from GS1's prefix table (``company_prefix_length``): a fact of
  the GTIN, so a pack's EPC never changes with licences or any other state.

Every refusal is a ``Gs1Error`` whose ``field`` names the part at fault.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from biip import ParseConfig, ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from biip.gs1_element_strings import GS1ElementString, GS1ElementStrings
from biip.gs1_messages import GS1Message
from biip.gs1_prefixes import GS1CompanyPrefix
from biip.symbology import GS1Symbology, SymbologyIdentifier

from primitives.errors import UsageError

GS = "\x1d"
DIGITAL_LINK_HOST = "https://id.gs1.org"

# GS1 AI encodable character set 82 (General Specifications, figure 7.11-1).
_CSET82 = re.compile(r"""[!"%-?A-Z_a-z]{1,20}""")
_CSET82_CHAR = re.compile(r"""[!"%-?A-Z_a-z]""")
_DIGITS = re.compile(r"[0-9]+")
_GTIN_LENGTHS = (8, 12, 13, 14)

# EPC URI form of a serial (TDS, table A-1): these characters of set 82 are
# not allowed as such in a URN and are percent-escaped; the others stay.
_EPC_ESCAPES = str.maketrans({'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"})

# The split of a GTIN that GS1's prefix table does not cover (unassigned
# ranges, restricted circulation numbers 02 and 20-29, ISBN and ISSN): a fixed
# rule of the GTIN alone, so its EPC never depends on anything else either.
DEFAULT_PREFIX_LEN = 7

# Two-digit years (General Specifications 7.12) are read in a fixed window,
# 1977-2076: the standard's sliding window evaluated in 2026.  biip slides the
# window with the wall clock, which would let two nodes (or one node replaying
# the chain years later) read different dates from the same code.
_CENTURY_PIVOT = 76

_FIELD_OF_AI = {"01": "gtin", "21": "serial", "10": "lot", "17": "expiry"}
_CONFIG = ParseConfig()
_GS1_MESSAGE_SYMBOLOGIES = frozenset(GS1Symbology.with_gs1_messages())
# biip's wording when a value does not match an AI's pattern; read only to say
# which field is wrong (the fallback names the whole code).
_BIIP_FAILURES = (
    re.compile(r"Failed to match '(?P<ai_and_value>.*)' with GS1 AI \((?P<ai>\d+)\)", re.DOTALL),
    re.compile(r"Failed to parse GS1 AI \((?P<ai>\d+)\) date/time from '(?P<value>.*)'", re.DOTALL),
)
_SPACE = re.compile(r"\s")
_HRI_SPACING = re.compile(r"\s*([()])\s*")


class Gs1Error(UsageError):
    """A GS1 code or identifier is not acceptable; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class PackCode:
    """The identifiers of one serialised pack; validates (and normalises the GTIN) on construction."""

    gtin: str
    serial: str
    lot: str | None = None
    expiry: str | None = None
    expiry_date: dt.date | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gtin", check_gtin(self.gtin))
        check_serial(self.serial)
        if self.lot is not None:
            check_lot(self.lot)
        expiry_date = None if self.expiry is None else check_expiry(self.expiry)
        object.__setattr__(self, "expiry_date", expiry_date)

    def element_string(self) -> str:
        """The parenthesised human-readable form, AIs in the order 01, 17, 10, 21."""
        parts = [f"(01){self.gtin}"]
        if self.expiry is not None:
            parts.append(f"(17){self.expiry}")
        if self.lot is not None:
            parts.append(f"(10){self.lot}")
        parts.append(f"(21){self.serial}")
        return "".join(parts)

    def digital_link(self, host: str = DIGITAL_LINK_HOST) -> str:
        """A GS1 Digital Link URI on ``host`` (scheme, domain and optional path prefix)."""
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise Gs1Error("host", f"Digital Link host {_show(host)} must look like https://domain[/prefix]")
        values = [("01", self.gtin), ("21", self.serial)]
        if self.lot is not None:
            values.append(("10", self.lot))
        if self.expiry is not None:
            values.append(("17", self.expiry))
        elements = GS1ElementStrings(GS1ElementString.parse(ai + value, config=_CONFIG) for ai, value in values)
        uri = GS1DigitalLinkURI.from_element_strings(elements).as_uri(
            domain=parts.netloc, prefix=parts.path.strip("/") or None
        )
        # biip always writes https; keep the scheme the caller asked for.
        return uri if parts.scheme == "https" else "http" + uri.removeprefix("https")

    def sgtin_uri(self, prefix_len: int | None = None) -> str:
        """The EPC pure identity URI (``sgtin_uri``)."""
        return sgtin_uri(self.gtin, self.serial, prefix_len)


def parse_code(text: str) -> PackCode:
    """Read a pack code from any of its written forms (see the module docstring)."""
    if not isinstance(text, str):
        raise Gs1Error("code", f"a pack code is text, not {type(text).__name__}")
    s = text.strip()
    if not s:
        raise Gs1Error("code", "the pack code is empty")
    if s.startswith("("):
        return _pack_from(_read_hri(s))
    if s.startswith("]"):
        s = _strip_symbology(s)
    if s[:8].lower().startswith(("https://", "http://")):
        return _pack_from(_read_digital_link(s))
    return _pack_from(_read_raw(s))


def check_gtin(gtin: str) -> str:
    """Check a GTIN-8, -12, -13 or -14 and return its 14-digit form."""
    if not isinstance(gtin, str):
        raise Gs1Error("gtin", f"GTIN {_show(gtin)} must be made of the digits 0-9 only")
    return _gtin14(gtin)


@functools.lru_cache(maxsize=8192)
def _gtin14(gtin: str) -> str:
    """``check_gtin`` of a string (a chain holds few distinct GTINs: remembered; errors are not)."""
    if not _DIGITS.fullmatch(gtin):
        raise Gs1Error("gtin", f"GTIN {_show(gtin)} must be made of the digits 0-9 only")
    if len(gtin) not in _GTIN_LENGTHS:
        raise Gs1Error("gtin", f"GTIN {_show(gtin)} has {len(gtin)} digits; a GTIN has 8, 12, 13 or 14")
    expected = gs1_standard_check_digit(gtin[:-1])
    if int(gtin[-1]) != expected:
        raise Gs1Error("gtin", f"GTIN {_show(gtin)} has a bad check digit: {gtin[-1]}, expected {expected}")
    return gtin.zfill(14)


def check_serial(serial: str) -> str:
    """Check a serial number, AI (21): 1-20 characters of set 82."""
    return _check_cset82("serial", "21", serial)


def check_lot(lot: str) -> str:
    """Check a batch or lot number, AI (10): 1-20 characters of set 82."""
    return _check_cset82("lot", "10", lot)


def check_expiry(yymmdd: str) -> dt.date:
    """Check an expiry date, AI (17), and return it; day 00 is the last day of the month.

    Years 77-99 are 1977-1999 and 00-76 are 2000-2076, always (the GS1
    sliding window frozen in 2026, so the answer does not depend on a clock).
    """
    if not isinstance(yymmdd, str) or len(yymmdd) != 6 or not _DIGITS.fullmatch(yymmdd):
        raise Gs1Error("expiry", f"expiry {_show(yymmdd)} must be 6 digits YYMMDD")
    yy, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    year = 2000 + yy if yy <= _CENTURY_PIVOT else 1900 + yy
    if not 1 <= month <= 12:
        raise Gs1Error("expiry", f"expiry {yymmdd!r} has month {month:02d}; months are 01-12")
    last = calendar.monthrange(year, month)[1]
    if day > last:
        raise Gs1Error("expiry", f"expiry {yymmdd!r} has day {day:02d}; {year}-{month:02d} has {last} days")
    return dt.date(year, month, day or last)


def gtin_with_check_digit(body13: str) -> str:
    """Complete 13 digits (indicator, company prefix, item reference) into a GTIN-14."""
    if not isinstance(body13, str) or len(body13) != 13 or not _DIGITS.fullmatch(body13):
        raise Gs1Error("gtin", f"GTIN body {_show(body13)} must be 13 digits")
    return body13 + str(gs1_standard_check_digit(body13))


def company_prefix_length(gtin: str) -> int:
    """The length of the GS1 company prefix ``gtin`` was allocated under, from GS1's prefix table.

    The table is the one biip ships (GS1's company prefix length list); a GTIN
    it does not cover gets ``DEFAULT_PREFIX_LEN``.  The answer depends on the
    GTIN alone, never on who holds which licence, so a pack keeps one EPC.
    """
    return _prefix_len(check_gtin(gtin))


@functools.lru_cache(maxsize=8192)
def _prefix_len(gtin14: str) -> int:
    found = GS1CompanyPrefix.extract(gtin14[1:])
    if found is None or not 6 <= len(found.value) <= 12:
        return DEFAULT_PREFIX_LEN
    return len(found.value)


def sgtin_uri(gtin: str, serial: str, prefix_len: int | None = None) -> str:
    """``urn:epc:id:sgtin:<CompanyPrefix>.<Indicator><ItemRef>.<Serial>`` (EPC Tag Data Standard).

    The company prefix is the ``prefix_len`` digits after the indicator digit
    (by default its length in GS1's table: ``company_prefix_length``); the item
    reference is what remains before the check digit.  The serial is written
    in its escaped form (``epc_serial``).
    """
    g = check_gtin(gtin)
    check_serial(serial)
    if prefix_len is None:
        prefix_len = _prefix_len(g)
    if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or not 6 <= prefix_len <= 12:
        raise Gs1Error("prefix_len", f"company prefix length {prefix_len!r} must be an integer from 6 to 12")
    company, item = g[1 : 1 + prefix_len], g[1 + prefix_len : 13]
    return f"urn:epc:id:sgtin:{company}.{g[0]}{item}.{epc_serial(serial)}"


def epc_serial(serial: str) -> str:
    """A serial of set 82 as an EPC URI writes it: what a URN cannot hold as such is percent-escaped."""
    return check_serial(serial).translate(_EPC_ESCAPES)


def company_prefix_matches(gtin: str, prefix: str) -> bool:
    """Whether the GTIN was issued under the GS1 company prefix ``prefix``."""
    g = check_gtin(gtin)
    if not isinstance(prefix, str) or not _DIGITS.fullmatch(prefix) or len(prefix) > 12:
        raise Gs1Error("company_prefix", f"company prefix {_show(prefix)} must be 1-12 digits")
    return g[1:].startswith(prefix)


def expired(expiry_yymmdd: str, at_ms: int) -> bool:
    """Whether a pack is past its expiry at ``at_ms`` (UTC); the expiry day itself is still valid."""
    return at_ms // 86_400_000 > _expiry_day(expiry_yymmdd)


@functools.lru_cache(maxsize=4096)
def _expiry_day(expiry_yymmdd: str) -> int:
    """The expiry as days since 1970-01-01 (a chain holds few distinct expiries: remembered)."""
    return (check_expiry(expiry_yymmdd) - dt.date(1970, 1, 1)).days


def _check_cset82(field: str, ai: str, value: str) -> str:
    if not isinstance(value, str):
        raise Gs1Error(field, f"{field} must be text, not {type(value).__name__}")
    if _CSET82.fullmatch(value):
        return value
    if not value:
        raise Gs1Error(field, f"{field} (AI {ai}) is empty")
    for i, char in enumerate(value):
        if not _CSET82_CHAR.fullmatch(char):
            raise Gs1Error(
                field,
                f"{field} {_show(value)} has {char!r} at position {i + 1}, "
                "outside the GS1 AI encodable character set 82",
            )
    raise Gs1Error(field, f"{field} {_show(value)} has {len(value)} characters; AI ({ai}) allows at most 20")


def _check_ai_value(ai: str, value: str) -> None:
    """Raise the precise error for a value of one of our AIs, if it has one."""
    match ai:
        case "01":
            if len(value) != 14:
                raise Gs1Error("gtin", f"(01) GTIN {_show(value)} must be written with 14 digits")
            check_gtin(value)
        case "21":
            check_serial(value)
        case "10":
            check_lot(value)
        case "17":
            check_expiry(value)


def _strip_symbology(s: str) -> str:
    try:
        symbology = SymbologyIdentifier.extract(s)
    except ParseError as exc:
        raise Gs1Error("code", f"unreadable symbology identifier: {exc}") from None
    rest = s[len(symbology) :]
    # A Digital Link may sit in a plain QR Code or Data Matrix (]Q1, ]d1).
    is_link = rest[:8].lower().startswith(("https://", "http://"))
    if not is_link and symbology.gs1_symbology not in _GS1_MESSAGE_SYMBOLOGIES:
        raise Gs1Error("code", f"symbology {symbology.value} does not carry GS1 element strings")
    return rest


def _read_hri(s: str) -> GS1ElementStrings:
    try:
        elements = GS1Message.parse_hri(s, config=_CONFIG).element_strings
    except ParseError as exc:
        raise _diagnose(exc) from None
    # biip skips text that is not an "(AI)value" pair and drops spaces inside
    # values; refuse both rather than read a different code than was written.
    written = _HRI_SPACING.sub(r"\1", s) if _SPACE.search(s) else s
    pos = 0
    for es in elements:
        piece = f"({es.ai.ai}){es.value}"
        if not written.startswith(piece, pos):
            end = written.find("(", pos + 1)
            segment = written[pos : None if end < 0 else end]
            ai = es.ai.ai
            if not segment.startswith(f"({ai})"):
                raise Gs1Error("code", f"unreadable text {_show(segment)} before ({ai})")
            _check_ai_value(ai, segment[len(ai) + 2 :])
            raise Gs1Error(_FIELD_OF_AI.get(ai, "code"), f"unreadable element {_show(segment)}")
        pos += len(piece)
    if pos != len(written):
        raise Gs1Error("code", f"unreadable text {_show(written[pos:])} after the last element")
    return elements


def _read_digital_link(s: str) -> GS1ElementStrings:
    try:
        return GS1DigitalLinkURI.parse(s, config=_CONFIG).element_strings
    except ParseError as exc:
        raise _diagnose(exc) from None


def _read_raw(s: str) -> GS1ElementStrings:
    # The loop of biip's GS1Message.parse, kept here to know where it stops.
    elements = GS1ElementStrings()
    rest = s
    while rest:
        try:
            es = GS1ElementString.extract(rest, config=_CONFIG)
        except ParseError as exc:
            raise _diagnose_raw(s, rest, elements, exc) from None
        elements.append(es)
        rest = rest[len(es) :].lstrip(GS)
    return elements


def _diagnose_raw(s: str, rest: str, elements: GS1ElementStrings, exc: ParseError) -> Gs1Error:
    previous = elements[-1] if elements else None
    glued = previous is not None and s[len(s) - len(rest) - 1] != GS
    if previous is not None and glued and previous.ai.ai in ("10", "21"):
        # A variable-length value stopped early: a character outside set 82,
        # or more than 20 characters with no GS after them.
        value = previous.value + rest.split(GS, 1)[0]
        _check_ai_value(previous.ai.ai, value)
    elif rest[:2] in _FIELD_OF_AI:
        fixed = {"01": 14, "17": 6}.get(rest[:2])
        _check_ai_value(rest[:2], rest[2 : 2 + fixed] if fixed else rest[2:].split(GS, 1)[0])
    after = f" after ({previous.ai.ai}){previous.value}" if previous is not None else ""
    return Gs1Error("code", f"unreadable element string {_show(rest)}{after}: {exc}")


def _diagnose(exc: ParseError) -> Gs1Error:
    for pattern in _BIIP_FAILURES:
        m = pattern.search(str(exc))
        if m is None or m["ai"] not in _FIELD_OF_AI:
            continue
        ai = m["ai"]
        groups = m.groupdict()
        value = groups["value"] if groups.get("value") is not None else groups["ai_and_value"][len(ai) :]
        _check_ai_value(ai, value)
        return Gs1Error(_FIELD_OF_AI[ai], str(exc))
    return Gs1Error("code", f"not a GS1 pack code: {exc}")


def _pack_from(elements: GS1ElementStrings) -> PackCode:
    values: dict[str, str] = {}
    for es in elements:
        ai = es.ai.ai
        if ai not in _FIELD_OF_AI:
            continue
        seen = values.setdefault(ai, es.value)
        if seen != es.value:
            raise Gs1Error(_FIELD_OF_AI[ai], f"AI ({ai}) appears twice with different values")
    if "01" not in values:
        raise Gs1Error("gtin", "the code has no (01) GTIN")
    if "21" not in values:
        raise Gs1Error("serial", "the code has no (21) serial number; a serialised pack needs (01) and (21)")
    return PackCode(values["01"], values["21"], values.get("10"), values.get("17"))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 48 else text[:45] + "..."
