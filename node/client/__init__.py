"""The one client of a node's HTTP API, used by the command line, the lab tools and the tests.

``http`` is the client itself (``NodeClient``, asynchronous; ``SyncNodeClient``)
with node address parsing and one error mapping; ``sse`` parses server-sent
event streams (bytes in, events out); ``ledger`` adds signing with the
caller's key for the healthcare ledger (``LedgerClient``, ``SyncLedger``).
"""
