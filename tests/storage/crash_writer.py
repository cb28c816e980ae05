"""Child process for the crash test: commit blocks (and WAL records) until killed.

``python -m tests.storage.crash_writer DIR`` appends a signed PREPARE for the
next height to the WAL, prunes the WAL below that height (every record of a
committed one), commits the block and prints the committed height on its own line, flushed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from consensus.events import WalSigned
from consensus.messages import CONSENSUS_CODEC, Prepare
from tests.helpers import keys, sign
from tests.storage.builders import CHAIN, head_or_genesis, next_step, open_store, txs_for


def main(directory: str) -> None:
    key = keys(4)[1]
    with open_store(Path(directory)) as store:
        while True:
            tip = head_or_genesis(store)
            height = tip.height + 1
            step = next_step(tip, txs_for(height, 20, 200))
            vote = sign(Prepare(0, height, step.block.hash, 1, b""), key, CHAIN)
            store.append_wal([WalSigned(CONSENSUS_CODEC.encode(vote))])
            store.prune_wal(height)
            store.commit_block(step.block, step.certificate, step.writes, step.app_hash)
            print(height, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
