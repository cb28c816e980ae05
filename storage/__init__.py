"""The node's durable store on LevelDB: start at ``storage.chainstore.ChainStore``.

Key layout: storage/keys.py.  Imports point one way: storage uses primitives
and consensus data types, never node.
"""
