"""Small pieces shared by consensus, storage and node: canonical encoding,
hashing, Ed25519 signing and Merkle trees. Imported, never re-written."""
