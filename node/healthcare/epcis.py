"""EPCIS 2.0 JSON-LD export of one pack's history, and its check against GS1's schema.

Each medchain event of a pack becomes one ``ObjectEvent`` about the pack's
SGTIN (its company prefix length from GS1's table, never from ledger state),
mapped through ``_MAPPING`` below (action, CBV 2.0 bizStep and
disposition).  The choices that the standards leave to us:

- ``eventID`` is a ``urn:uuid`` (name-based, version 5) of the medchain tx id,
  the event kind and the SGTIN.  Not ``ni:///sha-256;…?ver=CBV2.0``: that form
  promises the CBV 2.0 canonical hash of the event itself, which a receiver
  can recompute and would find different from a medchain tx id; and one
  transaction (a shipment) may move many packs, whose events must still have
  distinct ids.  The uuid is the same on every node and in every export.
- Organisations (readPoint, bizLocation, source and destination parties) are
  IRIs ``<iri_base>org/<org id>``: medchain organisations have ids, not GLNs,
  so ``urn:epc:id:pgln:`` does not apply.  The shipment id of a ship or
  receive event is a ``desadv`` business transaction ``<iri_base>shipment/<id>``.
  ``iri_base`` defaults to a placeholder under the reserved ``.example`` domain;
  a deployment passes its own.
- eventTime and recordTime are both the block time (when the ledger recorded
  the event); offsets are always ``+00:00``.
- medchain's own facts (tx id, height, kind, reason) are extension fields in
  the ``medchain:`` namespace, declared in ``@context``; the schema accepts any
  property whose name is a URI (a compact IRI such as ``medchain:txId`` is one).

``validate_epcis`` checks a document against the packaged GS1 schema with the
draft the schema declares, and checks formats too: without a ``uri`` check the
schema would accept any string as a bizStep, a disposition or a property name.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypedDict
from urllib.parse import quote

from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from node.healthcare.documents import (
    EpcisBizTransaction,
    EpcisDestination,
    EpcisDocument,
    EpcisId,
    EpcisIlmd,
    EpcisObjectEvent,
    EpcisSource,
)
from node.healthcare.gs1 import check_expiry, check_lot, sgtin_uri
from primitives.errors import UsageError

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# The vocabulary of medchain's extension fields: fixed, whatever the deployment.
MEDCHAIN_NAMESPACE = "https://medchain.example/epcis/"
IRI_BASE = "https://medchain.example/"

# Fixed namespace of the event ids: changing it would change every exported id.
_EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, MEDCHAIN_NAMESPACE + "event")


@dataclass(frozen=True, slots=True)
class _Step:
    action: str
    biz_step: str
    disposition: str
    at_org: bool  # the pack stays at the acting organisation: it is the bizLocation
    parties: bool  # source and destination owning parties
    shipment: bool  # the shipment id is a business transaction


# medchain event kind -> EPCIS ObjectEvent (CBV 2.0 names, as the schema's enums spell them).
_MAPPING: dict[str, _Step] = {
    "commission": _Step("ADD", "commissioning", "active", at_org=True, parties=False, shipment=False),
    "ship": _Step("OBSERVE", "shipping", "in_transit", at_org=False, parties=True, shipment=True),
    "receive": _Step("OBSERVE", "receiving", "in_progress", at_org=True, parties=True, shipment=True),
    "dispense": _Step("OBSERVE", "dispensing", "dispensed", at_org=False, parties=False, shipment=False),
    "recall": _Step("OBSERVE", "holding", "recalled", at_org=True, parties=False, shipment=False),
    "quarantine": _Step("OBSERVE", "holding", "non_sellable_other", at_org=True, parties=False, shipment=False),
    "release": _Step("OBSERVE", "holding", "active", at_org=True, parties=False, shipment=False),
    "destroy": _Step("DELETE", "destroying", "destroyed", at_org=False, parties=False, shipment=False),
}

_REQUIRED_KEYS = frozenset({"kind", "time_ms", "tx_id", "height", "org"})
_OPTIONAL_KEYS = frozenset({"from_org", "to_org", "shipment_id", "lot", "expiry", "reason"})
_HEX = re.compile(r"[0-9a-fA-F]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})*")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


class EpcisError(UsageError):
    """The history handed to the exporter is not a valid list of pack events."""


@dataclass(frozen=True, slots=True)
class PackEvent:
    """One medchain event of a pack, checked once at the boundary."""

    kind: str
    time_ms: int
    tx_id: str
    height: int
    org: str
    from_org: str | None = None
    to_org: str | None = None
    shipment_id: str | None = None
    lot: str | None = None
    expiry: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _MAPPING:
            raise EpcisError(f"event kind {self.kind!r} is not one of {', '.join(_MAPPING)}")
        for name in ("time_ms", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise EpcisError(f"{self.kind} event: {name} must be a non-negative integer, not {value!r}")
        if not isinstance(self.tx_id, str) or not _HEX.fullmatch(self.tx_id):
            raise EpcisError(f"{self.kind} event: tx_id must be hexadecimal, not {self.tx_id!r}")
        for name in ("org", "from_org", "to_org", "shipment_id", "reason"):
            value = getattr(self, name)
            if (name == "org" or value is not None) and (not isinstance(value, str) or not value):
                raise EpcisError(f"{self.kind} event: {name} must be a non-empty string, not {value!r}")
        if self.lot is not None:
            check_lot(self.lot)
        if self.expiry is not None:
            check_expiry(self.expiry)

    @classmethod
    def from_mapping(cls, event: Mapping[str, Any]) -> PackEvent:
        keys = set(event)
        if missing := _REQUIRED_KEYS - keys:
            raise EpcisError(f"pack event lacks {', '.join(sorted(missing))}")
        if unknown := keys - _REQUIRED_KEYS - _OPTIONAL_KEYS:
            raise EpcisError(f"pack event has unknown keys {', '.join(sorted(unknown))}")
        return cls(**{key: event[key] for key in keys})


def epcis_document(
    gtin: str,
    serial: str,
    events: Sequence[Mapping[str, Any]],
    created_ms: int,
    *,
    iri_base: str = IRI_BASE,
) -> EpcisDocument:
    """An EPCISDocument with one ObjectEvent per event of the pack, in the order given.

    The pack's EPC is its SGTIN split by GS1's prefix table (``gs1.sgtin_uri``):
    a function of the GTIN and serial only, so it is the same in every export.
    """
    epc = sgtin_uri(gtin, serial)
    if not iri_base.startswith(("https://", "http://")) or not iri_base.endswith("/"):
        raise EpcisError(f"iri_base {iri_base!r} must be an http(s) URL ending with '/'")
    if isinstance(created_ms, bool) or not isinstance(created_ms, int) or created_ms < 0:
        raise EpcisError(f"created_ms must be a non-negative integer, not {created_ms!r}")
    checked = [PackEvent.from_mapping(event) for event in events]
    return {
        "@context": [EPCIS_CONTEXT, {"medchain": MEDCHAIN_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _iso(created_ms),
        "epcisBody": {"eventList": [_object_event(epc, event, iri_base) for event in checked]},
    }


def validate_epcis(doc: Any) -> list[str]:
    """Messages for every way ``doc`` breaks the EPCIS 2.0 JSON schema; empty when it is valid."""
    errors = sorted(_validator().iter_errors(doc), key=_path_key)
    # dict.fromkeys: the schema reaches one place through several branches.
    return list(dict.fromkeys(_describe(error) for error in errors))


def _object_event(epc: str, event: PackEvent, iri_base: str) -> EpcisObjectEvent:
    step = _MAPPING[event.kind]
    when = _iso(event.time_ms)
    return {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": "+00:00",
        "recordTime": when,
        "eventID": _event_id(event, epc),
        "epcList": [epc],
        "action": step.action,
        "bizStep": step.biz_step,
        "disposition": step.disposition,
        "readPoint": {"id": _iri(iri_base, "org", event.org)},
        **_whereabouts(step, event, iri_base),
        **_ilmd(step, event),
        "medchain:event": event.kind,
        "medchain:txId": event.tx_id.lower(),
        "medchain:height": event.height,
        **_reason(event),
    }


class _Whereabouts(TypedDict, total=False):
    bizLocation: EpcisId
    bizTransactionList: list[EpcisBizTransaction]
    sourceList: list[EpcisSource]
    destinationList: list[EpcisDestination]


class _IlmdPart(TypedDict, total=False):
    ilmd: EpcisIlmd


_ReasonPart = TypedDict("_ReasonPart", {"medchain:reason": str}, total=False)


def _whereabouts(step: _Step, event: PackEvent, iri_base: str) -> _Whereabouts:
    out: _Whereabouts = {}
    if step.at_org:
        out["bizLocation"] = {"id": _iri(iri_base, "org", event.org)}
    if step.shipment and event.shipment_id is not None:
        out["bizTransactionList"] = [
            {"type": "desadv", "bizTransaction": _iri(iri_base, "shipment", event.shipment_id)}
        ]
    if step.parties:
        source = event.from_org or (event.org if event.kind == "ship" else None)
        destination = event.to_org or (event.org if event.kind == "receive" else None)
        if source is not None:
            out["sourceList"] = [{"type": "owning_party", "source": _iri(iri_base, "org", source)}]
        if destination is not None:
            out["destinationList"] = [{"type": "owning_party", "destination": _iri(iri_base, "org", destination)}]
    return out


def _ilmd(step: _Step, event: PackEvent) -> _IlmdPart:
    if step.action != "ADD" or (event.lot is None and event.expiry is None):
        return {}
    ilmd: EpcisIlmd = {}
    if event.lot is not None:
        ilmd["cbvmda:lotNumber"] = event.lot
    if event.expiry is not None:
        ilmd["cbvmda:itemExpirationDate"] = check_expiry(event.expiry).isoformat()
    return {"ilmd": ilmd}


def _reason(event: PackEvent) -> _ReasonPart:
    return {"medchain:reason": event.reason} if event.reason is not None else {}


def _event_id(event: PackEvent, epc: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{event.tx_id.lower()}/{event.kind}/{epc}"))


def _iri(base: str, collection: str, name: str) -> str:
    return f"{base}{collection}/{quote(name, safe='')}"


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"{dt.datetime.fromtimestamp(seconds, dt.UTC):%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def _path_key(error: ValidationError) -> list[str]:
    return [f"{p:09d}" if isinstance(p, int) else p for p in error.absolute_path]


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(document)"
    if error.validator in ("anyOf", "oneOf") and error.context:
        # Such a failure repeats the whole instance; name the closest reason instead.
        inner = best_match(error.context)
        inner_where = "/".join(str(p) for p in inner.relative_path)
        return (
            f"{where}: matches none of the allowed forms ({inner_where + ': ' if inner_where else ''}{inner.message})"
        )
    return f"{where}: {error.message}"


@functools.cache
def _validator() -> Validator:
    text = (resources.files("node.healthcare") / "schemas" / "epcis-2.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=_format_checker(cls.FORMAT_CHECKER))


def _format_checker(base: FormatChecker) -> FormatChecker:
    # jsonschema checks "uri" and "date-time" only with optional packages that
    # medchain does not install; these two small checks stand in for them.
    checker = FormatChecker()
    checker.checkers = dict(base.checkers)
    checker.checks("uri")(_is_uri)
    checker.checks("date-time")(_is_date_time)
    return checker


def _is_uri(value: object) -> bool:
    """An absolute URI (RFC 3986): a scheme, then only URI characters."""
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


def _is_date_time(value: object) -> bool:
    """An RFC 3339 date-time with an offset, that names a real instant."""
    if not isinstance(value, str):
        return True
    if _DATE_TIME.fullmatch(value) is None:
        return False
    try:
        dt.datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True
