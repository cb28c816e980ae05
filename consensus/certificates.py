"""Checking signatures and certificates against a validator set.

``Verifier`` remembers which (key, domain, payload, signature) it has already
checked, so a vote seen alone and again inside a VIEW-CHANGE or a NEW-VIEW is
verified once.  The memo is small (a few heights' worth of votes): it exists
for those repeats, and a larger one only grows the engine's memory.

``verify_commit_certificate`` is what a lagging node, an observer or an
offline proof checker runs: it needs nothing but the genesis validator list.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from consensus.messages import (
    DOMAIN_COMMIT,
    DOMAIN_PREPARE,
    Block,
    CommitCertificate,
    PreparedCertificate,
    Vote,
    vote_payload,
)
from consensus.quorum import quorum
from primitives.signing import VerifyKey


class Verifier:
    """Signature checks for one chain and validator set, with a bounded memo."""

    def __init__(self, chain_id: str, validators: Sequence[VerifyKey], memo_size: int = 4_096):
        self.chain_id = chain_id
        self.validators = tuple(validators)
        self.n = len(self.validators)
        self.quorum = quorum(self.n)
        self._memo: OrderedDict[tuple[int, bytes, bytes, bytes], bool] = OrderedDict()
        self._memo_size = memo_size
        self.checked = 0  # signatures actually verified (memo misses)

    def verify(self, validator: int, domain: bytes, payload: bytes, signature: bytes) -> bool:
        if not 0 <= validator < self.n:
            return False
        key = (validator, domain, payload, signature)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        self.checked += 1
        ok = self.validators[validator].verify(domain, self.chain_id, payload, signature)
        self._memo[key] = ok
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return ok

    def _votes_ok(self, votes: Sequence[Vote], domain: bytes, payload: bytes) -> str | None:
        seen: set[int] = set()
        for vote in votes:
            if vote.validator in seen:
                return f"validator {vote.validator} voted twice"
            seen.add(vote.validator)
            if not self.verify(vote.validator, domain, payload, vote.signature):
                return f"bad signature from validator {vote.validator}"
        if len(seen) < self.quorum:
            return f"{len(seen)} votes, a quorum is {self.quorum}"
        return None

    def check_commit_certificate(self, cert: CommitCertificate, block: Block | None = None) -> str | None:
        """None when valid, else the reason.  With ``block``, also that it certifies it."""
        if block is not None:
            if block.hash != cert.block_hash:
                return "the certificate is for another block"
            if block.height != cert.height:
                return "the certificate is for another height"
            if block.header.chain_id != self.chain_id:
                return f"block of chain {block.header.chain_id!r}, expected {self.chain_id!r}"
        payload = vote_payload(cert.height, cert.view, cert.block_hash)
        return self._votes_ok(cert.votes, DOMAIN_COMMIT, payload)

    def check_prepared_certificate(self, cert: PreparedCertificate) -> str | None:
        if cert.block.header.chain_id != self.chain_id:
            return "prepared block of another chain"
        payload = vote_payload(cert.block.height, cert.view, cert.block.hash)
        return self._votes_ok(cert.votes, DOMAIN_PREPARE, payload)


class Verifiers:
    """A ``Verifier`` per validator set, for checks at heights decided by different sets (``membership.py``).

    Only a few sets are ever in use; past ``keep`` the oldest is dropped (its memo is of no use any more).
    """

    def __init__(self, chain_id: str, keep: int = 8) -> None:
        self.chain_id = chain_id
        self.keep = keep
        self._by_keys: dict[tuple[VerifyKey, ...], Verifier] = {}

    def of(self, keys: tuple[VerifyKey, ...]) -> Verifier:
        verifier = self._by_keys.get(keys)
        if verifier is None:
            verifier = self._by_keys[keys] = Verifier(self.chain_id, keys)
            if len(self._by_keys) > self.keep:
                del self._by_keys[next(iter(self._by_keys))]
        return verifier


def verify_commit_certificate(
    chain_id: str, validators: Sequence[VerifyKey], cert: CommitCertificate, block: Block | None = None
) -> str | None:
    """Stand-alone check (no memo): None when ``cert`` is valid, else the reason."""
    return Verifier(chain_id, validators, memo_size=0).check_commit_certificate(cert, block)
