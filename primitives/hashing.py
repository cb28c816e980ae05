"""SHA-256, the one hash of medchain: block ids, transaction ids, Merkle nodes."""

import hashlib

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
