"""The transport between nodes: mutually authenticated TLS, one WebSocket per peer pair, tagged wire records.

``transport`` moves frames (and applies injected link faults), ``wire`` says
what the frames hold, ``certs`` binds TLS certificates to node keys, ``setup``
builds a node's transport from its config.
"""
