"""The deterministic application every validator runs on committed blocks.

``execute_block`` takes a block and a read view of the state after the
previous block, and returns per-transaction results, the state writes and the
new ``app_hash``.  It never reads the clock or anything but its inputs, so a
fresh node replaying the chain reaches the same ``app_hash`` at every height.

A transaction that breaks a rule is still part of the block (it was ordered)
but is *rejected* with a machine-readable reason and changes nothing.

``app_hash`` chains: sha256(previous app_hash, height, digest of the sorted
state writes, digest of the results).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from consensus.messages import Block
from node.app import BlockResult, Prechecked, Rejected, StateReader, TxResult
from node.genesis import Genesis, Organisation
from node.governance import ApproveValidators, Governance, ProposeValidators, load_org, org_of_admin
from node.healthcare.ledger import bodies as b
from node.healthcare.ledger.ehr import Ehr
from node.healthcare.ledger.identity import Directory
from node.healthcare.ledger.state import BlockReader, Ctx, Overlay
from node.healthcare.ledger.supply import Supply, static_problem
from node.healthcare.transactions import Anchor, parse_with_body
from node.transaction import Transaction
from primitives.codec import pack
from primitives.errors import DecodeError
from primitives.hashing import sha256

ANCHOR_PREFIX = b"anchor/"
NOTICED = (b.EraseRecords, b.ScanAlert)  # accepted bodies a node acts on after commit (shred, publish)
__all__ = ["ANCHOR_PREFIX", "Application", "admission_problem", "check_transaction", "decode_trusted", "precheck"]


def check_transaction(data: bytes, chain_id: str) -> Transaction:
    """Stateless checks (decode, chain, signatures); raises ``Rejected`` with a reason."""
    return precheck(data, chain_id)[0]


def precheck(data: bytes, chain_id: str) -> tuple[Transaction, Any]:
    """The checks of a transaction that need no state, done once per node before ordering.

    Decoding, the chain id, the signer's signature and the signature of a
    reader's request inside an access.  Raises ``Rejected``; returns the decoded
    transaction and body for execution to reuse.
    """
    return _checked(data, chain_id, verify=True)


def decode_trusted(data: bytes, chain_id: str) -> tuple[Transaction, Any]:
    """``precheck`` without its signature checks, for a transaction whose signatures were checked already.

    Either this node verified them (its ``TxChecker`` verdict), or a verified
    commit certificate vouches for the block: every honest validator runs
    ``precheck`` on each transaction of a block before it votes, and refuses
    the whole block if one fails (the signer's signature and a reader's request
    signature alike), so a committed block holds none that fails it and these
    checks can never change its results.  Decoding and the chain id are still
    checked.  Never use it on anything else: it accepts forged signatures.
    """
    return _checked(data, chain_id, verify=False)


def admission_problem(body: Any) -> tuple[str, str] | None:
    """Malformed GS1 fields in a body a client submits: (code, 'field: why'), refused before ordering.

    Only the node a client talks to asks (a 422 naming the field); execution
    refuses the same bodies on every validator.
    """
    problem = static_problem(body)
    return None if problem is None else ("invalid-gs1", problem)


def _checked(data: bytes, chain_id: str, verify: bool) -> tuple[Transaction, Any]:
    try:
        tx, body = parse_with_body(data)
    except DecodeError as exc:
        raise Rejected("malformed", str(exc)) from None
    if tx.chain_id != chain_id:
        raise Rejected("wrong-chain", f"transaction for chain {tx.chain_id!r}, this is {chain_id!r}")
    if verify:
        if not tx.check_signature():
            raise Rejected("bad-signature", "the signature does not verify for the signer key")
        if isinstance(body, b.RecordAccess) and not body.request.check_signature():
            raise Rejected("bad-request-signature", "the reader's signature on the read request does not verify")
    return tx, body


class GovernedOrgs:
    """Organisations that validator-set changes brought into the consortium (``node.governance``), from state."""

    def by_id(self, state: Overlay, org_id: str) -> Organisation | None:
        record = load_org(state, org_id)
        return record.organisation() if record is not None else None

    def by_admin(self, state: Overlay, key: bytes) -> Organisation | None:
        record = org_of_admin(state, key)
        return record.organisation() if record is not None else None


class Application:
    """Document anchoring and the healthcare ledger, dispatched on the body's type."""

    def __init__(
        self,
        chain_id: str,
        clients: set[bytes],
        organisations: tuple[Organisation, ...] = (),
        node_keys: dict[str, bytes] | None = None,
        governance: Governance | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.governance = governance
        self.clients = clients
        self._action = ""
        self.directory = Directory(organisations, node_keys or {}, GovernedOrgs() if governance else None)
        self.ehr = Ehr(chain_id, self.directory)
        self.supply = Supply(self.directory)
        self._rules: dict[type, Callable[[Ctx, Any], None]] = {
            b.EnrolMember: self.directory.enrol,
            b.RevokeMember: self.directory.revoke,
            b.GrantLicence: self.directory.grant_licence,
            b.RevokeLicence: self.directory.revoke_licence,
            b.RegisterPatient: self.directory.register_patient,
            b.AddRecord: self.ehr.add,
            b.AmendRecord: self.ehr.amend,
            b.GrantConsent: self.ehr.grant,
            b.RevokeConsent: self.ehr.revoke,
            b.RecordAccess: self.ehr.access,
            b.EraseRecords: self.ehr.erase,
            b.Commission: self.supply.commission,
            b.Ship: self.supply.ship,
            b.Receive: self.supply.receive,
            b.Dispense: self.supply.dispense,
            b.Recall: self.supply.recall,
            b.Quarantine: self.supply.flag,
            b.Release: self.supply.flag,
            b.Destroy: self.supply.destroy,
            b.ScanAlert: self.supply.alert,
            ProposeValidators: self._propose_validators,
            ApproveValidators: self._approve_validators,
        }

    def precheck(self, data: bytes) -> tuple[Transaction, Any]:
        """``precheck`` on this chain: the decoded transaction and body."""
        return precheck(data, self.chain_id)

    def admission_problem(self, decoded: tuple[Transaction, Any]) -> tuple[str, str] | None:
        return admission_problem(decoded[1])

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> Application:
        return cls(
            genesis.chain_id,
            {m.key.raw for m in genesis.clients},
            genesis.organisations,
            {m.name: m.key.raw for m in genesis.nodes},
            Governance(genesis),
        )

    def execute_block(
        self,
        block: Block,
        state: StateReader,
        prev_app_hash: bytes,
        prechecked: Prechecked | None = None,
    ) -> BlockResult:
        """``prechecked`` holds what this node checked before (decoded, signatures verified), or vouches for
        a certified block's transactions (``node.validation.CertifiedTxs``): not done again."""
        steps = self.execute_steps(block, state, prev_app_hash, prechecked, len(block.txs) + 1)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: BlockResult = done.value
                return result

    def execute_steps(
        self,
        block: Block,
        state: StateReader,
        prev_app_hash: bytes,
        prechecked: Prechecked | None = None,
        slice_txs: int = 64,
    ) -> Generator[None, None, BlockResult]:
        """``execute_block`` in slices: pauses (yields) after every ``slice_txs`` transactions.

        A node drives it on its event loop and lets other work run between slices,
        rather than on a second thread that would contend for the interpreter lock
        at every state read.  ``state`` must not change until the generator returns.
        """
        overlay = Overlay(BlockReader(state))
        results = []
        notices: list[tuple[bytes, bytes, Any]] = []
        time_ms = block.header.timestamp_ms
        for index, (data, tid) in enumerate(zip(block.txs, block.tx_hashes(), strict=True), 1):
            if index % slice_txs == 0:
                yield
            self._action = ""
            try:
                done = prechecked.take(tid) if prechecked is not None else None
                if done is not None:
                    tx, body = done
                elif prechecked is not None and prechecked.verified_ok(tid):
                    tx, body = decode_trusted(data, self.chain_id)
                else:
                    tx, body = precheck(data, self.chain_id)
                self._apply(tx, body, tid, block.height, time_ms, overlay)
            except Rejected as exc:
                results.append(TxResult(tid, False, exc.code, exc.message, self._action))
                continue
            results.append(TxResult(tid, True, action=self._action))
            if isinstance(body, NOTICED):
                notices.append((tid, tx.signer, body))
        writes = overlay.writes
        keys = sorted(writes)  # the (key, value) pairs in key order: zip's tuples pack as arrays
        writes_digest = sha256(pack(list(zip(keys, map(writes.__getitem__, keys), strict=True))))
        results_digest = sha256(pack([[r.tx_id, r.ok, r.code] for r in results]))
        app_hash = sha256(pack([prev_app_hash, block.height, writes_digest, results_digest]))
        return BlockResult(block.height, results, overlay.writes, app_hash, notices)

    def _apply(self, tx: Transaction, body: Any, tid: bytes, height: int, time_ms: int, state: Overlay) -> Any:
        self._action = type(body).__name__
        if isinstance(body, Anchor):
            self._anchor(tx, body, tid, height, state)
            return body
        rule = self._rules.get(type(body))
        if rule is None:
            raise Rejected("unknown-action", f"no rule for {type(body).__name__}")
        # A refused transaction must change nothing: the block's overlay undoes what the rule wrote.
        state.begin()
        try:
            rule(Ctx(tx.signer, tid, height, time_ms, state), body)
        except BaseException:
            state.rollback()
            raise
        state.commit()
        return body

    def _propose_validators(self, ctx: Ctx, body: ProposeValidators) -> None:
        self._governed().propose(ctx.signer, ctx.tx_id, ctx.height, body, ctx.state)

    def _approve_validators(self, ctx: Ctx, body: ApproveValidators) -> None:
        self._governed().approve(ctx.signer, ctx.tx_id, ctx.height, body, ctx.state)

    def _governed(self) -> Governance:
        if self.governance is None:
            raise Rejected("no-governance", "this ledger was started without a genesis: it takes no validator changes")
        return self.governance

    def _anchor(self, tx: Transaction, body: Anchor, tid: bytes, height: int, state: Overlay) -> None:
        if tx.signer not in self.clients:
            raise Rejected("not-enrolled", "the signer is not a client enrolled in genesis")
        key = ANCHOR_PREFIX + body.doc_hash
        if state.get(key) is not None:
            raise Rejected("already-anchored", f"document {body.doc_hash.hex()} is already anchored")
        state.put(key, pack([height, tid, body.label, tx.signer]))
