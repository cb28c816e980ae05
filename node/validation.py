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


def validate_block(block: Block, checker: TxChecker, is_committed: Callable[[bytes], bool]) -> str | None:
    """None when ``block`` may be voted for, else the reason."""
    if merkle_root(block.txs) != block.header.tx_root:
        return "transactions do not match the header's tx_root"
    seen: set[bytes] = set()
    for i, data in enumerate(block.txs):
        tid = tx_id(data)
        if tid in seen:
            return f"transaction {i} appears twice"
        seen.add(tid)
        problem = checker.check(data, tid)
        if problem is not None:
            return f"transaction {i} {tid.hex()[:16]}: {problem}"
        if is_committed(tid):
            return f"transaction {i} {tid.hex()[:16]} was already committed"
    return None
