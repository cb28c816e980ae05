"""Equivocation evidence: two conflicting messages signed by one validator.

Stored as the messages' canonical tagged bytes (``CONSENSUS_CODEC``), so the
signatures can be checked again by anyone the evidence is shown to.  Records
are numbered in arrival order; a digest key makes storing the same evidence
twice a no-op.
"""

from __future__ import annotations

from consensus.events import Evidence
from consensus.messages import CONSENSUS_CODEC
from primitives.codec import encode
from primitives.errors import DecodeError
from primitives.hashing import sha256
from storage.database import Batch, Reader
from storage.errors import CorruptRecord
from storage.keys import EVIDENCE, evidence_digest_key, evidence_key, prefix_end, read_u64
from storage.records import EvidenceRecord, decode_stored


def read_next_seq(reader: Reader) -> int:
    last = reader.keys(EVIDENCE, prefix_end(EVIDENCE), reverse=True, limit=1)
    return read_u64(last[0][len(EVIDENCE):]) + 1 if last else 0


def add_evidence(reader: Reader, batch: Batch, seq: int, evidence: Evidence) -> bool:
    """Put ``evidence`` as number ``seq`` unless already stored; True if added."""
    record = EvidenceRecord(
        evidence.validator, evidence.kind,
        CONSENSUS_CODEC.encode(evidence.first), CONSENSUS_CODEC.encode(evidence.second),
    )
    data = encode(record)
    digest_key = evidence_digest_key(sha256(data))
    if reader.get(digest_key) is not None:
        return False
    batch.put(evidence_key(seq), data)
    batch.put(digest_key, b"")
    return True


def read_evidence(reader: Reader, limit: int | None = None) -> list[Evidence]:
    """Stored evidence, oldest first."""
    found: list[Evidence] = []
    for key, value in reader.items(EVIDENCE, prefix_end(EVIDENCE), limit=limit):
        what = f"evidence record {read_u64(key[len(EVIDENCE):])}"
        record = decode_stored(EvidenceRecord, value, what, key)
        try:
            first = CONSENSUS_CODEC.decode(record.first)
            second = CONSENSUS_CODEC.decode(record.second)
        except DecodeError as exc:
            raise CorruptRecord(what, key, str(exc)) from None
        found.append(Evidence(record.validator, record.kind, first, second))
    return found
