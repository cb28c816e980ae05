"""The bench's batch submission (``--submit batch``): many pre-signed transactions per ``POST /txs/batch``.

A batch request carries whatever a connection's lane has waiting when the
connection is free, up to the batch size, so batches grow with the load and a
lone transaction is not held back.  Its answer is read back as one HTTP status
per transaction, the one ``POST /txs`` would have answered (202 admitted, 503
mempool full, 409 already committed, 4xx refused), so the submitter counts,
retries after Retry-After and fails them exactly as in single mode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from node.api.batch import MEDIA_TYPE, encode_batch

MAX_BATCH = 1_000  # a node's default [api] batch_max_txs
REFUSAL_STATUS = {"malformed": 400, "duplicate": 400, "already-committed": 409, "mempool-full": 503}
STATE_STATUS = {"pending": 202, "committed": 200, "rejected": 200, "timeout": 504}


def batch_request(host: str, port: int, txs: Sequence[bytes]) -> bytes:
    """The whole HTTP/1.1 request submitting ``txs`` in one batch."""
    body = encode_batch(txs)
    head = (
        f"POST /txs/batch HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {MEDIA_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def item_statuses(status: int, body: bytes, count: int) -> list[int]:
    """Per transaction of a batch of ``count``, the status ``POST /txs`` would have answered; ValueError if unreadable.

    A batch refused whole (400, 413, 503 shutting down) gives its status to every transaction.
    """
    if status not in (200, 202):
        return [status] * count
    results = json.loads(body)["results"]
    if not isinstance(results, list) or len(results) != count:
        raise ValueError(f"a batch of {count} transactions answered results {str(results)[:80]}")
    out = []
    for item in results:
        state = item["status"]
        out.append(REFUSAL_STATUS.get(item.get("error", ""), 422) if state == "refused" else STATE_STATUS[state])
    return out
