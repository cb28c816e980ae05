"""The PBFT consensus engine: pure, deterministic, no I/O, no clock, no disk.

A ``replica.Replica`` takes one event at a time (a message, a timer, a batch,
a verdict) and returns an ``events.Output``: what to persist, send, validate,
commit and time.  ``sim`` runs the same engine on a seeded simulated network.
Nothing here imports storage or node (an import-linter contract and an AST
test check it).
"""
