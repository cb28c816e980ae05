"""Consortium files (TOML): which organisations form a network and which nodes they run.

See configs/consortium-4.toml for the format.  ``load_consortium`` checks every
entry and names the file, the entry and the field of the first problem.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.genesis import ORG_KINDS
from primitives.errors import UsageError

NODE_ROLES = ("validator", "observer", "none")
# The network folder already has subfolders of these names; a node named so would land inside them.
RESERVED_IDS = ("clients", "orgs")
# An id names the organisation's node and its folders, and appears in commands: no leading '-'.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


class ConsortiumError(UsageError):
    """A consortium file is missing, unreadable or inconsistent."""


@dataclass(frozen=True, slots=True)
class OrgPlan:
    id: str
    name: str
    kind: str
    node: str  # validator | observer | none


@dataclass(frozen=True, slots=True)
class Consortium:
    chain_id: str
    organisations: tuple[OrgPlan, ...]

    @property
    def validators(self) -> tuple[OrgPlan, ...]:
        return tuple(o for o in self.organisations if o.node == "validator")

    @property
    def observers(self) -> tuple[OrgPlan, ...]:
        return tuple(o for o in self.organisations if o.node == "observer")


def _org(path: Path, i: int, raw: Any, seen: set[str]) -> OrgPlan:
    where = f"{path}: organisation[{i}]"
    if not isinstance(raw, dict):
        raise ConsortiumError(f"{where} must be a table")
    unknown = set(raw) - {"id", "name", "kind", "node"}
    if unknown:
        raise ConsortiumError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    org_id, name, kind, node = raw.get("id"), raw.get("name"), raw.get("kind"), raw.get("node", "none")
    if not isinstance(org_id, str) or not _ID.fullmatch(org_id):
        raise ConsortiumError(f"{where}.id must be 1 to 32 ASCII letters, digits or '-' (not first), got {org_id!r}")
    if org_id.lower() in RESERVED_IDS:
        raise ConsortiumError(f"{where}.id cannot be {org_id!r}: the network folder uses that name")
    if org_id.lower() in seen:  # ids name folders, and some file systems ignore case
        raise ConsortiumError(f"{where}.id: {org_id!r} is used twice (ids are compared ignoring case)")
    if not isinstance(name, str) or not name.strip():
        raise ConsortiumError(f"{where}.name must be a non-empty string")
    if kind not in ORG_KINDS:
        raise ConsortiumError(f"{where}.kind must be one of {', '.join(ORG_KINDS)}, got {kind!r}")
    if node not in NODE_ROLES:
        raise ConsortiumError(f"{where}.node must be one of {', '.join(NODE_ROLES)}, got {node!r}")
    seen.add(org_id.lower())
    return OrgPlan(org_id, name, kind, node)


def load_consortium(path: Path) -> Consortium:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConsortiumError(f"no consortium file at {path}") from None
    except OSError as exc:
        raise ConsortiumError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConsortiumError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(raw) - {"chain_id", "organisation"}
    if unknown:
        raise ConsortiumError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    chain_id = raw.get("chain_id", f"medchain-{path.stem}")
    if not isinstance(chain_id, str) or not 0 < len(chain_id) <= 64:
        raise ConsortiumError(f"{path}: chain_id must be a string of 1 to 64 characters")
    entries = raw.get("organisation")
    if not isinstance(entries, list) or not entries:
        raise ConsortiumError(f"{path}: list the organisations as [[organisation]] tables")
    seen: set[str] = set()
    orgs = tuple(_org(path, i, entry, seen) for i, entry in enumerate(entries))
    consortium = Consortium(chain_id, orgs)
    if not consortium.validators:
        raise ConsortiumError(f'{path}: no organisation runs a validator (node = "validator")')
    return consortium
