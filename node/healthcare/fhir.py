"""FHIR content of an EHR record: validation, canonical bytes and the salted commitment.

The content of a record never goes on the chain.  The chain holds
``commitment(salt, canonical)``; the custodian's vault holds the canonical
bytes and the salt.  Rules:

* the models are those of ``fhir.resources`` 8, whose default package is
  FHIR R5 (``fhir.resources.__fhir_version__ == "5.0.0"``), hence
  ``FHIR_VERSION``; R4B and STU3 live in sub-packages this module does not use;
* only concrete resource types are accepted: data types (``HumanName``) and
  the abstract bases (``Resource``, ``DomainResource``, ...) are refused;
* the canonical bytes are the validated model dumped without empty fields,
  re-serialised with sorted keys, no spaces, UTF-8.  They are a fixed point:
  validating ``json.loads(canonical)`` gives the same bytes back, which the
  client and the custodian's node rely on to agree on the commitment;
* canonicalisation normalises the text, so the canonical bytes may differ from
  what was submitted: ``1.50`` becomes ``1.5`` (the library keeps FHIR decimals
  as floats), ``10:00:00.12`` becomes ``10:00:00.120000``, empty lists vanish;
* error messages name the field and the problem, never the submitted value:
  they end up in logs and API answers, and the value may be personal data;
* a resource is JSON of any shape until the models check it, hence ``Any``
  in the types of what this module takes in.

This module does no I/O; ``secrets`` is its only source of randomness.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from functools import cache
from typing import TYPE_CHECKING, Any

from primitives.errors import UsageError

if TYPE_CHECKING:
    from fhir.resources.resource import Resource
    from pydantic import ValidationError

FHIR_VERSION = "R5 (5.0.0)"


@cache
def _fhir() -> tuple[Any, type[Resource], type[ValidationError]]:
    """``fhir.resources`` (its model lookup and resource base) and pydantic's error, imported at first use:
    the models take about 0.3 s to import, which every node process would pay at start-up otherwise."""
    import fhir.resources
    from fhir.resources import get_fhir_model_class
    from fhir.resources.resource import Resource
    from pydantic import ValidationError

    if fhir.resources.__fhir_version__ != "5.0.0":
        raise ImportError(f"fhir.resources models FHIR {fhir.resources.__fhir_version__}, this code expects 5.0.0 (R5)")
    return get_fhir_model_class, Resource, ValidationError

MAX_RESOURCE_BYTES = 48 * 1024
# JSON text is refused before parsing above this size, so a huge body costs no
# parse; pretty-printed JSON of a resource within the canonical limit fits.
MAX_TEXT_BYTES = 8 * MAX_RESOURCE_BYTES
SALT_BYTES = 32
COMMITMENT_DOMAIN = b"medchain/v1/ehr-commitment"

# The ``field`` of an error about the document as a whole (not JSON, not an object).
DOCUMENT = "(document)"

# Abstract in R5: fhir.resources still gives them a model class, but no
# resource instance may claim one of these types.
ABSTRACT_RESOURCE_TYPES = frozenset({"Resource", "DomainResource", "CanonicalResource", "MetadataResource"})
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")


class FhirError(UsageError):
    """The content is not an acceptable FHIR resource; ``field`` is the path of the first problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid FHIR resource at {field}: {problem}")
        self.field = field
        self.problem = problem


def validate_resource(obj: Any) -> tuple[str, bytes]:
    """Validate a FHIR R5 resource (dict, or JSON as str/bytes); return its type and canonical bytes."""
    doc = _parse(obj) if isinstance(obj, str | bytes | bytearray) else obj
    if not isinstance(doc, dict):
        raise FhirError(DOCUMENT, f"expected a JSON object (a FHIR resource), got {_json_kind(doc)}")
    resource_type, model = _resource_model(doc)
    _refuse_null_members(resource_type, doc)
    validation_error = _fhir()[2]
    try:
        resource = model.model_validate(doc)
    except validation_error as exc:
        raise _from_pydantic(resource_type, exc) from None
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # fhir.resources lets some errors escape pydantic, e.g. KeyError for an
        # unknown resourceType inside ``contained``.
        raise FhirError(resource_type, f"not valid FHIR ({type(exc).__name__} inside the validator)") from None
    try:
        dumped = json.loads(resource.model_dump_json(exclude_none=True))
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise FhirError(resource_type, f"cannot be serialised as canonical JSON ({type(exc).__name__})") from None
    if len(canonical) > MAX_RESOURCE_BYTES:
        raise FhirError(
            resource_type,
            f"{len(canonical)} bytes of canonical JSON, over the limit of {MAX_RESOURCE_BYTES} "
            "(keep large attachments out of the record and refer to them by URL)",
        )
    return resource_type, canonical


def _parse(text: str | bytes | bytearray) -> Any:
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_TEXT_BYTES:
        raise FhirError(DOCUMENT, f"{size} bytes of JSON text, over the limit of {MAX_TEXT_BYTES}")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise FhirError(DOCUMENT, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, NaN, duplicate keys, absurd nesting
        raise FhirError(DOCUMENT, f"not acceptable JSON: {_reason(exc)}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # With a duplicate key, which value counts depends on the parser; refuse it.
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("an object repeats a key")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeError):
        return "not UTF-8"
    return str(exc)


def _json_kind(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list() | tuple():
            return "an array"
        case _:
            return type(value).__name__


def _resource_model(doc: dict[str, Any]) -> tuple[str, type[Resource]]:
    if "resourceType" not in doc:
        raise FhirError("resourceType", "missing (every FHIR resource names its type)")
    name = doc["resourceType"]
    if not isinstance(name, str):
        raise FhirError("resourceType", f"must be a string, got {_json_kind(name)}")
    if not _TYPE_NAME.fullmatch(name):
        raise FhirError("resourceType", "not a FHIR resource type name")
    get_fhir_model_class, resource_base, _ = _fhir()
    try:
        model = get_fhir_model_class(name)
    except ValueError:
        raise FhirError("resourceType", f"{name!r} is not a FHIR {FHIR_VERSION} resource type") from None
    if not issubclass(model, resource_base):
        raise FhirError("resourceType", f"{name!r} is a FHIR data type, not a resource")
    if name in ABSTRACT_RESOURCE_TYPES:
        raise FhirError("resourceType", f"{name!r} is abstract; name a concrete resource type")
    return name, model


def _refuse_null_members(resource_type: str, doc: dict[str, Any]) -> None:
    # FHIR JSON forbids a property whose value is null; fhir.resources would
    # take ``"code": null`` for an absent ``code`` even where ``code`` is
    # required, and the canonical bytes would then fail their own validation.
    # (Nulls inside arrays are legal: they align primitives with ``_name`` extensions.)
    stack: list[tuple[str, Any, bool]] = [(resource_type, doc, False)]  # (path, value, is an object member)
    while stack:
        path, value, member = stack.pop()
        if value is None and member:
            raise FhirError(path, "null is not allowed in FHIR JSON (leave the element out)")
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}", item, True) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, False) for i, item in reversed(list(enumerate(value))))


def _from_pydantic(resource_type: str, exc: ValidationError) -> FhirError:
    first = exc.errors(include_url=False, include_input=False)[0]
    path = resource_type
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        elif part != "root":  # an internal step of fhir.resources' type wrappers, not an element
            path += f".{part}"
    return FhirError(path, _problem(first["type"], first["msg"]))


def _problem(kind: str, message: str) -> str:
    if kind == "missing":
        return "required, missing"
    if kind == "extra_forbidden":
        return "not an element of this resource"
    if kind == "json_invalid":
        return "expected a JSON object"
    message = " ".join(message.split())
    message = message.removeprefix("Value error, ")
    return message if len(message) <= 200 else message[:197] + "..."


# ---------------------------------------------------------------- commitment


def new_salt() -> bytes:
    """32 random bytes: the salt that keeps the on-chain commitment from being guessed."""
    return secrets.token_bytes(SALT_BYTES)


def commitment(salt: bytes, canonical: bytes) -> bytes:
    """SHA-256 over the domain tag, the salt and the content, each prefixed by its 8-byte length."""
    if len(salt) != SALT_BYTES:
        raise UsageError(f"a commitment salt is {SALT_BYTES} bytes, got {len(salt)}")
    digest = hashlib.sha256()
    for part in (COMMITMENT_DOMAIN, salt, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def verify_commitment(salt: bytes, canonical: bytes, expected: bytes) -> bool:
    """True if ``salt`` and ``canonical`` hash to ``expected`` (a salt of the wrong size never does)."""
    if len(salt) != SALT_BYTES:
        return False
    return hmac.compare_digest(commitment(salt, canonical), expected)
