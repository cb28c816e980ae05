"""Clients of a node's HTTP API, used by the command line, the lab tools and the tests.

``http`` makes requests and turns failures into one-line errors; ``ledger``
signs healthcare bodies with the caller's key and submits them.
"""
