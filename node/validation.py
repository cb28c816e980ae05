"""Block validation on behalf of the consensus engine (its ``ValidateBlock`` request).

A block is valid when its transactions match the header's ``tx_root``, none
appears twice, none was committed before (replay) and each passes the
stateless checks (decoding, chain id, signature).  Application rules are *not*
block validity: a transaction that breaks one is ordered and then rejected by
execution with a reason, like every validator does deterministically.

``TxChecker`` remembers the verdict per tx id, so a transaction verified at
mempool admission is not verified again when it arrives inside a block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from consensus.messages import Block
from node.application import Rejected, check_transaction
from node.transaction import tx_id
from primitives.merkle import merkle_root


class TxChecker:
    def __init__(self, chain_id: str, memo_size: int = 200_000) -> None:
        self.chain_id = chain_id
        self._memo: OrderedDict[bytes, str | None] = OrderedDict()
        self._memo_size = memo_size
        self.verified = 0

    def verified_ok(self, tid: bytes) -> bool:
        """True when this transaction already passed the checks here (signature included)."""
        return tid in self._memo and self._memo[tid] is None

    def check(self, data: bytes, tid: bytes | None = None) -> str | None:
        """None when the transaction passes the stateless checks, else 'code: message'."""
        tid = tid or tx_id(data)
        if tid in self._memo:
            return self._memo[tid]
        try:
            check_transaction(data, self.chain_id)
            verdict = None
        except Rejected as exc:
            verdict = f"{exc.code}: {exc.message}"
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
