"""One full medchain node process.

The modules here are the node core: the runtime that drives the consensus
engine (``runtime``), the mempool, metrics, config, genesis, transactions'
envelope, block validation, proofs and the JSON documents the core answers
with (``documents``).  Sub-packages, one concern each:

* ``p2p``: the transport between nodes (TLS, WebSocket frames, wire records, link faults);
* ``api``: the HTTP API core (errors, SSE, the node's own routes);
* ``app``: the application interface, all the core knows of the application;
* ``healthcare``: the healthcare application (ledger rules, vault, FHIR, GS1, EPCIS, its routes);
* ``client``: the HTTP client of a node's API, sync and async;
* ``cli``: the ``medchain`` command line;
* ``lab``: local clusters, the demo story, experiments and benchmarks.

The layering is written as import-linter contracts in ``pyproject.toml``.
"""
