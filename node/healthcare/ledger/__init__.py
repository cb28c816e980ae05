"""The healthcare ledger: the rules every validator applies when it executes a block.

``bodies`` are the transaction bodies (what a signer asks for), ``records`` the
state layout (keys and values), ``identity``, ``ehr`` and ``supply`` the rules.
Everything here is pure: it reads the state of the previous block and the
block itself, never the clock, the network or a vault.
"""
