"""The JSON documents the node core hands to its HTTP API and live subscribers.

Each is a ``TypedDict``: the API serialises it as it is, so the keys here are
the wire format clients read (in the order the code that builds each one
writes them).  Bytes travel as hex strings.
"""

# No ``from __future__ import annotations``: ``NotRequired`` must be seen when the
# class is built, so that ``__required_keys__`` is right for whoever inspects it.

from typing import Literal, NotRequired, TypedDict

TxState = Literal["pending", "unknown", "committed", "rejected"]


class MempoolSize(TypedDict):
    txs: int
    bytes: int


class NodeStatus(TypedDict):
    """``GET /status``: who this node is and where its chain stands."""

    chain_id: str
    node_id: str
    role: Literal["validator", "observer"]
    node_key: str
    height: int
    head_hash: str
    app_hash: str
    view: int
    primary: str
    in_view_change: bool
    peers: list[str]
    mempool: MempoolSize
    syncing: bool
    best_peer_height: int
    stable_checkpoint: int | None
    uptime_s: float


class Liveness(TypedDict):
    """What ``GET /health`` reports after ``ok`` (false once the node is stopping)."""

    height: int
    peers: int


class TxStatus(TypedDict):
    """A transaction's state here; a committed or rejected one also says where and with what outcome."""

    tx_id: str
    status: TxState
    height: NotRequired[int]
    index: NotRequired[int]
    code: NotRequired[str]
    message: NotRequired[str]


BatchState = Literal["pending", "committed", "rejected", "refused", "timeout"]


class BatchItem(TypedDict):
    """One transaction's outcome in ``POST /txs/batch``, in the order it was sent.

    ``pending``: admitted (or already pending here); ``committed`` / ``rejected``:
    where and with what outcome, as in ``TxStatus``; ``refused``: not admitted,
    with the ``error`` code and ``message`` ``POST /txs`` would have answered;
    ``timeout``: admitted, not committed within the request's timeout (it may
    still commit).
    """

    tx_id: str
    status: BatchState
    height: NotRequired[int]
    index: NotRequired[int]
    code: NotRequired[str]
    message: NotRequired[str]
    error: NotRequired[str]


class BatchCounts(TypedDict):
    pending: int
    committed: int
    rejected: int
    refused: int
    timeout: int


class BatchReply(TypedDict):
    """``POST /txs/batch``: how many were sent, how many ended in each state, and each one's result."""

    count: int
    counts: BatchCounts
    results: list[BatchItem]


class BlockHeaderDocument(TypedDict):
    chain_id: str
    height: int
    prev_hash: str
    proposer: str  # the validator's name
    view: int
    timestamp_ms: int
    tx_root: str
    tx_count: int
    app_hash: str


class VoteDocument(TypedDict):
    validator: str  # the validator's name
    signature: str


class CertificateDocument(TypedDict):
    height: int
    view: int
    block_hash: str
    votes: list[VoteDocument]


class BlockDocument(TypedDict):
    """``GET /blocks/{height}``: a committed block, its transactions by id, and its commit certificate."""

    height: int
    hash: str
    header: BlockHeaderDocument
    txs: list[str]
    certificate: CertificateDocument


class BlockSummary(TypedDict):
    """One line of ``GET /blocks``: a committed block's header, without its transactions."""

    height: int
    hash: str
    proposer: str  # the validator's name
    view: int
    timestamp_ms: int
    tx_count: int


class NetworkMember(TypedDict):
    """A validator or observer of the genesis file, as this node knows it."""

    name: str
    role: Literal["validator", "observer"]
    org: str | None  # the organisation whose node it is, when the genesis names one
    key: str
    self: bool  # this node
    connected: bool  # this node, or a peer with an open link to it
    height: int | None  # this node's height, or the last height the peer announced (None: not heard yet)
    peers: list[str] | None  # the nodes it is connected to, as it last told this node (None: not told yet)
    primary: bool  # the primary of this node's current view
    view: int | None  # this node's, or the view the peer last reported (None: no report yet)
    in_view_change: bool | None
    mempool_txs: int | None
    last_commit_ms: int | None  # wall clock of its last commit since it started, as reported
    reported_ms: int | None  # when this node received the peer's last report (None for this node itself)
    bytes_in: int
    bytes_out: int


class NetworkDocument(TypedDict):
    """``GET /network``: this node's status and every member of the network as this node sees it."""

    node: NodeStatus
    members: list[NetworkMember]
    last_commit_ms: int | None  # wall time of this node's last commit since it started
    view_changes: int  # views entered after a view change since this node started
    evidence: int  # equivocation evidence items this node holds


class ValidatorEntry(TypedDict):
    name: str
    key: str
    org: str | None
    address: str | None  # its P2P address when the ledger added it (genesis nodes' come from configs)


class ScheduledChange(TypedDict):
    height: int  # the first height the set decides
    validators: list[str]
    txs: list[str]  # the proposal and the approvals that made the quorum
    in_force: bool


class ProposalEntry(TypedDict):
    proposal: str  # the proposal's transaction id: what `validators approve` names
    action: str
    name: str
    key: str
    org: str
    address: str
    height: int  # where it would take effect
    proposer_org: str
    approvals: list[str]  # organisations that approved
    counted: int  # approvals from organisations that run a validator now
    needed: int
    status: Literal["pending", "scheduled", "expired"]
    decided: int | None  # the block that scheduled it


class ValidatorsDocument(TypedDict):
    """``GET /validators``: the set deciding the next height, the changes scheduled, and the proposals."""

    height: int
    quorum: str  # the share of validator organisations whose approval decides a change
    validators: list[ValidatorEntry]
    changes: list[ScheduledChange]
    proposals: list[ProposalEntry]


class ProofDocument(TypedDict):
    """A self-contained inclusion proof (``node.proofs``): canonical encodings as hex, plus readable fields."""

    format: str
    chain_id: str
    height: int
    block_hash: str
    tx_id: str
    tx_index: int
    tx: str
    merkle_proof: str
    header: str
    certificate: str
    validator_changes: NotRequired[list[list["ProofDocument"]]]
    """Each validator-set change in force at the proof's height: proofs of the proposal and approvals that
    made it, in ledger order (``node.governance``).  Absent while genesis's validators decide."""


class EvidenceDocument(TypedDict):
    """Two conflicting signed messages from one validator, each as hex of its canonical encoding."""

    validator: str | int  # its name, or its index when the index is outside the genesis validator set
    kind: str
    height: int
    first: str
    second: str


class CommitEvent(TypedDict):
    """What ``GET /events`` sends for each committed block."""

    height: int
    hash: str
    txs: int
    rejected: int
    view: int
    time_ms: int
    app_hash: str
    proposer: str  # the validator's name
    latency_ms: float | None  # median from admission here to commit of the block's txs admitted here
    evidence: int  # equivocation evidence items this node holds
