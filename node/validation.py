"""Block validation on behalf of the consensus engine (its ``ValidateBlock`` request).

A block is valid when its transactions match the header's ``tx_root``, none
appears twice, none was committed before (replay) and each passes the
stateless checks (the application's ``precheck``: decoding, chain id,
signatures).  Application rules are *not*
block validity: a transaction that breaks one is ordered and then rejected by
execution with a reason, like every validator does deterministically.

``TxChecker`` remembers the verdict per tx id, so a transaction verified at
mempool admission is not verified again when it arrives inside a block, and
keeps the decoded transaction until execution takes it (decoded once per node).

A block that comes with a verified commit certificate (catch-up) is not
checked that way: ``CertifiedTxs`` tells execution its transactions passed
these checks on the validators that voted for it (see there why that holds),
so a catching-up node decodes and executes them without verifying client
signatures again.  A block decided live never takes that path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from consensus.messages import Block
from node.app import Rejected
from node.transaction import tx_id
from primitives.merkle import merkle_root


class TxChecker:
    """Stateless verdicts per tx id, and the decoded form of the good ones until execution takes it.

    Bounded both ways (oldest out first): a verdict or a decoded transaction
    that was dropped only costs a second check.
    """

    def __init__(
        self, precheck: Callable[[bytes], Any], memo_size: int = 200_000, decoded_size: int = 100_000
    ) -> None:
        self._precheck = precheck
        self._memo: OrderedDict[bytes, str | None] = OrderedDict()
        self._memo_size = memo_size
        self._decoded: dict[bytes, Any] = {}
        self._decoded_size = decoded_size
        self.verified = 0

    def forget(self, tids: list[bytes]) -> None:
        """Committed: drop their verdicts and decoded forms (the chain answers for them from now on).

        Without this the verdicts of committed transactions filled the memo to
        its bound and stayed, a few hundred bytes each, in every node's memory.
        """
        memo, decoded = self._memo, self._decoded
        for tid in tids:
            memo.pop(tid, None)
            decoded.pop(tid, None)

    def verified_ok(self, tid: bytes) -> bool:
        """True when this transaction already passed the checks here (signatures included)."""
        return self._memo.get(tid, "") is None

    def take(self, tid: bytes) -> Any | None:
        """The decoded transaction and body of a checked transaction, handed over once."""
        return self._decoded.pop(tid, None)

    def peek(self, tid: bytes) -> Any | None:
        return self._decoded.get(tid)

    def check(self, data: bytes, tid: bytes | None = None) -> str | None:
        """None when the transaction passes the stateless checks, else 'code: message'."""
        tid = tid or tx_id(data)
        if tid in self._memo:
            return self._memo[tid]
        try:
            decoded = self._precheck(data)
            verdict = None
        except Rejected as exc:
            verdict = f"{exc.code}: {exc.message}"
        else:
            self._decoded[tid] = decoded
            while len(self._decoded) > self._decoded_size:
                self._decoded.pop(next(iter(self._decoded)), None)
        self.verified += 1
        self._memo[tid] = verdict
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return verdict


class CertifiedTxs:
    """``Prechecked`` for executing a block whose commit certificate was verified: it vouches for every transaction.

    Why that is safe: an honest validator votes PREPARE for a block only after
    ``validate_block`` passed it (every transaction through ``precheck``,
    signatures included, the block refused if one fails) or when it built the
    block itself from its mempool, which admits only checked transactions; a
    commit certificate holds 2f+1 signatures, so at least f+1 honest validators
    checked each transaction of the block it names (the replica argues the
    same for a re-proposed block).  A verdict of those checks never shows in a
    committed block's results, so skipping them changes no ``app_hash``.

    Only for that case: a block from catch-up whose certificate was checked
    against the validator set (the replica's ``SyncedBlock`` handling, an
    observer's ``validate_block(certified=True)``) and whose transactions
    match its header (``transactions_problem``: the certificate covers the
    header only).  A block decided live executes with the ``TxChecker``, which
    verifies what this node has not.
    """

    def __init__(self, checker: TxChecker) -> None:
        self._checker = checker

    def take(self, tid: bytes) -> Any | None:
        return self._checker.take(tid)

    def verified_ok(self, tid: bytes) -> bool:
        return True


def transactions_problem(block: Block) -> str | None:
    """None when ``block``'s transactions are the ones its header names (and so a certificate of it), else why."""
    if block.header.tx_count != len(block.txs) or merkle_root(block.txs) != block.header.tx_root:
        return "transactions do not match the header's tx_root"
    return None


def validate_block(
    block: Block, checker: TxChecker, is_committed: Callable[[bytes], bool], certified: bool = False
) -> str | None:
    """None when ``block`` may be voted for (or applied, when ``certified``), else the reason.

    ``certified`` only for a block whose commit certificate was verified: the
    stateless checks of its transactions (``precheck``) are then left to the
    validators that voted for it (``CertifiedTxs``).
    """
    mismatch = transactions_problem(block)
    if mismatch is not None:
        return mismatch
    seen: set[bytes] = set()
    for i, (data, tid) in enumerate(zip(block.txs, block.tx_hashes(), strict=True)):
        if tid in seen:
            return f"transaction {i} appears twice"
        seen.add(tid)
        if is_committed(tid):  # first: a replay costs an index read, not a signature check
            return f"transaction {i} {tid.hex()[:16]} was already committed"
        problem = None if certified else checker.check(data, tid)
        if problem is not None:
            return f"transaction {i} {tid.hex()[:16]}: {problem}"
    return None
