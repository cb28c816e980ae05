"""FHIR content: what is accepted, the canonical bytes, the field named by each refusal, the commitment."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import fhir.resources
import pytest

from node.healthcare.fhir import (
    DOCUMENT,
    FHIR_VERSION,
    MAX_RESOURCE_BYTES,
    SALT_BYTES,
    FhirError,
    commitment,
    new_salt,
    validate_resource,
    verify_commitment,
)
from primitives.errors import UsageError

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "country": "AU"}],
}
OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "Patient/pat-1"},
    "effectiveDateTime": "2024-03-01T09:30:00+01:00",
    "valueQuantity": {"value": 72, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
}
CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "code": {
        "coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2"}]
    },
    "subject": {"reference": "Patient/pat-1"},
    "onsetDateTime": "2019-05-14",
}
MEDICATION_REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "status": "active",
    "intent": "order",
    "medication": {
        "concept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}]}
    },
    "subject": {"reference": "Patient/pat-1"},
    "authoredOn": "2024-03-01",
    "dosageInstruction": [{"text": "500 mg twice a day with meals"}],
}
VALID = [PATIENT, OBSERVATION, CONDITION, MEDICATION_REQUEST]


def _without(resource: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != field}


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def _refusal(obj: Any) -> FhirError:
    with pytest.raises(FhirError) as caught:
        validate_resource(obj)
    return caught.value


# ---------------------------------------------------------------- accepted


def test_the_version_is_what_the_library_models() -> None:
    assert fhir.resources.__fhir_version__ == "5.0.0"
    assert FHIR_VERSION == "R5 (5.0.0)"


@pytest.mark.parametrize("resource", VALID, ids=lambda r: r["resourceType"])
def test_valid_resources_are_accepted_with_their_type(resource: dict[str, Any]) -> None:
    resource_type, canonical = validate_resource(resource)
    assert resource_type == resource["resourceType"]
    assert json.loads(canonical)["resourceType"] == resource_type


@pytest.mark.parametrize("resource", VALID, ids=lambda r: r["resourceType"])
def test_canonical_bytes_do_not_depend_on_key_order_or_input_form(resource: dict[str, Any]) -> None:
    _, canonical = validate_resource(resource)
    assert validate_resource(_reversed_keys(resource))[1] == canonical
    assert validate_resource(json.dumps(resource, indent=2))[1] == canonical
    assert validate_resource(json.dumps(_reversed_keys(resource)).encode())[1] == canonical


@pytest.mark.parametrize("resource", VALID, ids=lambda r: r["resourceType"])
def test_canonical_bytes_are_a_fixed_point(resource: dict[str, Any]) -> None:
    # The client sends json.loads(canonical) and the node re-validates it: both must commit to the same bytes.
    _, canonical = validate_resource(resource)
    assert validate_resource(json.loads(canonical))[1] == canonical
    assert validate_resource(canonical)[1] == canonical


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    named = copy.deepcopy(PATIENT)
    named["name"][0]["family"] = "Müller"
    _, canonical = validate_resource(named)
    tidy = json.dumps(json.loads(canonical), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical == tidy.encode("utf-8")
    assert "Müller".encode() in canonical


def test_text_is_normalised_and_the_commitment_covers_the_normalised_form() -> None:
    submitted = {**OBSERVATION, "valueQuantity": {"value": 1.50, "unit": "mg"}}
    as_text = json.dumps(submitted).replace("1.5", "1.50")
    _, canonical = validate_resource(as_text)
    assert json.loads(canonical)["valueQuantity"] == {"unit": "mg", "value": 1.5}


# ---------------------------------------------------------------- refused, with the field


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        pytest.param(_without(OBSERVATION, "resourceType"), "resourceType", id="no-resourceType"),
        pytest.param({**OBSERVATION, "resourceType": 7}, "resourceType", id="resourceType-not-a-string"),
        pytest.param({**OBSERVATION, "resourceType": "observation"}, "resourceType", id="resourceType-lowercase"),
        pytest.param({**OBSERVATION, "resourceType": "HumanName"}, "resourceType", id="a-data-type"),
        pytest.param({**OBSERVATION, "resourceType": "DomainResource"}, "resourceType", id="abstract"),
        pytest.param({**OBSERVATION, "resourceType": "Spaceship"}, "resourceType", id="unknown-type"),
        pytest.param({**OBSERVATION, "resourceType": "Patient"}, "Patient.status", id="wrong-resourceType"),
        pytest.param(_without(OBSERVATION, "code"), "Observation.code", id="missing-required"),
        pytest.param({**OBSERVATION, "code": None}, "Observation.code", id="required-as-null"),
        pytest.param({**PATIENT, "active": "perhaps"}, "Patient.active", id="wrong-type"),
        pytest.param({**PATIENT, "birthDate": "25/12/1974"}, "Patient.birthDate", id="bad-date"),
        pytest.param({**OBSERVATION, "subject": 5}, "Observation.subject", id="object-expected"),
        pytest.param(
            {**PATIENT, "name": [{"family": "A"}, {"given": [1]}]}, "Patient.name[1].given[0]", id="nested-in-lists"
        ),
        pytest.param({**PATIENT, "shoeSize": 44}, "Patient.shoeSize", id="unknown-element"),
        pytest.param("{'resourceType': 'Patient'}", DOCUMENT, id="not-json"),
        pytest.param(b"\xff\xfe{}", DOCUMENT, id="not-utf8"),
        pytest.param('{"resourceType":"Patient","active":NaN}', DOCUMENT, id="nan"),
        pytest.param('{"resourceType":"Patient","resourceType":"Patient"}', DOCUMENT, id="duplicate-key"),
        pytest.param("[" * 100_000, DOCUMENT, id="deep-nesting"),
        pytest.param(json.dumps([PATIENT]), DOCUMENT, id="json-list"),
        pytest.param([PATIENT], DOCUMENT, id="python-list"),
        pytest.param(42, DOCUMENT, id="number"),
        pytest.param(None, DOCUMENT, id="none"),
    ],
)
def test_each_refusal_names_the_field(obj: Any, field: str) -> None:
    error = _refusal(obj)
    assert error.field == field
    assert field in str(error)
    assert isinstance(error, UsageError)


def test_messages_name_the_problem_but_never_the_value() -> None:
    error = _refusal({**PATIENT, "birthDate": "Peter-Chalmers-1974"})
    assert "birthDate" in str(error) and "Peter-Chalmers" not in str(error)
    assert "required" in str(_refusal(_without(OBSERVATION, "status")))


def test_an_unknown_contained_type_is_refused_not_crashed() -> None:
    # fhir.resources raises a bare KeyError here; it must surface as a FhirError.
    error = _refusal({**OBSERVATION, "contained": [{"resourceType": "Spaceship"}]})
    assert error.field.startswith("Observation")


def test_the_size_limit_is_on_the_canonical_bytes() -> None:
    def with_note(size: int) -> dict[str, Any]:
        return {**OBSERVATION, "note": [{"text": "x" * size}]}

    base = len(validate_resource(with_note(0))[1])
    fits = with_note(MAX_RESOURCE_BYTES - base)
    assert len(validate_resource(fits)[1]) == MAX_RESOURCE_BYTES
    assert len(json.dumps(fits, indent=8)) > MAX_RESOURCE_BYTES  # pretty text over the limit is fine
    validate_resource(json.dumps(fits, indent=8))
    error = _refusal(with_note(MAX_RESOURCE_BYTES - base + 1))
    assert error.field == "Observation" and str(MAX_RESOURCE_BYTES) in str(error)


def test_huge_text_is_refused_before_parsing() -> None:
    assert _refusal(" " * (10 * MAX_RESOURCE_BYTES) + "{}").field == DOCUMENT


# ---------------------------------------------------------------- commitment


def test_a_commitment_verifies_and_binds_salt_and_content() -> None:
    _, canonical = validate_resource(OBSERVATION)
    salt = new_salt()
    digest = commitment(salt, canonical)
    assert len(digest) == 32 and len(salt) == SALT_BYTES
    assert verify_commitment(salt, canonical, digest)
    assert commitment(salt, canonical) == digest


def test_the_commitment_changes_with_the_salt() -> None:
    _, canonical = validate_resource(OBSERVATION)
    salt = new_salt()
    other = bytes([salt[0] ^ 1]) + salt[1:]
    assert commitment(other, canonical) != commitment(salt, canonical)
    assert not verify_commitment(other, canonical, commitment(salt, canonical))
    assert new_salt() != new_salt()


@pytest.mark.parametrize("position", [0, 100, -1])
def test_the_commitment_changes_with_one_byte_of_content(position: int) -> None:
    _, canonical = validate_resource(OBSERVATION)
    salt = new_salt()
    changed = bytearray(canonical)
    changed[position] ^= 0x01
    assert commitment(salt, bytes(changed)) != commitment(salt, canonical)
    assert not verify_commitment(salt, bytes(changed), commitment(salt, canonical))


def test_the_salt_size_is_enforced() -> None:
    with pytest.raises(UsageError):
        commitment(b"short", b"{}")
    assert not verify_commitment(b"short", b"{}", commitment(new_salt(), b"{}"))


def test_the_commitment_is_domain_separated_and_length_prefixed() -> None:
    import hashlib

    salt = bytes(range(32))
    plain = hashlib.sha256(salt + b"{}").digest()
    assert commitment(salt, b"{}") != plain
    expected = hashlib.sha256(
        (26).to_bytes(8, "big") + b"medchain/v1/ehr-commitment" + (32).to_bytes(8, "big") + salt
        + (2).to_bytes(8, "big") + b"{}"
    ).digest()  # fmt: skip
    assert commitment(salt, b"{}") == expected


def test_a_node_starts_without_importing_the_fhir_models() -> None:
    """The models take a third of a node's import time; they are loaded at the first validation."""
    code = ("import sys, node.main, node.healthcare.node_app; "
            "print(sorted(m for m in ('fhir.resources', 'pydantic') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr
