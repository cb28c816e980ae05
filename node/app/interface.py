"""The application interface: all the node runtime knows of the application it runs.

The runtime orders opaque transactions; the application gives them meaning.
Rules of this boundary:

* ``precheck`` is stateless and runs once per node, before ordering: decoding,
  chain id, signatures.  It returns the decoded form (opaque to the runtime),
  which the runtime hands back to execution through ``Prechecked``.  A block
  that catch-up brings with a verified commit certificate was prechecked by
  the validators that voted for it: its ``Prechecked`` says so for every
  transaction, and execution verifies no signature of it again.
* ``execute_steps`` is deterministic: the same block on the same state gives the
  same ``BlockResult`` (and ``app_hash``) on every replica.
* ``after_commit`` runs off the event loop once the block is stored; what it
  returns, if anything, is called on the loop (to wake live subscribers).
* ``routes`` are the application's HTTP routes, served beside the node's own.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from consensus.messages import Block


class Rejected(Exception):
    """A rule refused the transaction: ``code`` is machine-readable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class TxResult:
    tx_id: bytes
    ok: bool
    code: str = "ok"
    message: str = ""
    action: str = ""  # the body's type, for metrics (not part of app_hash)


@dataclass(slots=True)
class BlockResult:
    height: int
    results: list[TxResult]
    writes: dict[bytes, bytes | None]
    app_hash: bytes
    notices: list[tuple[bytes, bytes, Any]] = field(default_factory=list)  # (tx id, signer, body) nodes act on


class StateReader(Protocol):
    """The committed state a block executes against (the chain store, or a dict in tests)."""

    def get(self, key: bytes) -> bytes | None: ...


class Prechecked(Protocol):
    """What a node already checked before a block came (or a commit certificate vouches for): execution skips it."""

    def take(self, tid: bytes) -> Any | None:
        """The decoded form ``precheck`` returned, once, when the transaction passed it here."""

    def verified_ok(self, tid: bytes) -> bool:
        """The transaction passed ``precheck`` here (its decoded form may be gone), or on the validators
        whose verified commit certificate names its block: execution decodes it without checking signatures."""


class Application(Protocol):
    """A deterministic state machine over the state store, with a node-side life around it."""

    def precheck(self, data: bytes) -> Any:
        """Stateless checks of a transaction's bytes; raises ``Rejected``; returns its decoded form."""

    def admission_problem(self, decoded: Any) -> tuple[str, str] | None:
        """(code, reason) when a client's transaction must be refused before ordering, else None."""

    def execute_steps(
        self, block: Block, state: StateReader, prev_app_hash: bytes, prechecked: Prechecked | None, slice_txs: int
    ) -> Generator[None, None, BlockResult]:
        """Execute ``block``, pausing (yielding) every ``slice_txs`` transactions."""

    def after_commit(self, result: BlockResult) -> Callable[[], None] | None:
        """Off the event loop, after ``result``'s block is stored; the callable returned runs on the loop."""

    def routes(self) -> list[web.RouteDef]:
        """HTTP routes the application adds to the node's API."""

    def on_shutdown(self) -> None:
        """The API is shutting down: end live streams."""

    def close(self) -> None:
        """The node stopped: release what the application holds (its own stores)."""
