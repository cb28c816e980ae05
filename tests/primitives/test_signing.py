"""Ed25519 signing (DESIGN.md section 2): standard RFC 8032, domain and chain separated."""

from __future__ import annotations

import msgpack
import nacl.exceptions
import nacl.signing
import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from primitives.errors import DecodeError, UsageError
from primitives.signing import (
    PUBLIC_KEY_SIZE,
    SEED_SIZE,
    SIGNATURE_SIZE,
    SigningKey,
    VerifyKey,
    signed_bytes,
)

PREPARE = b"medchain/v1/prepare"
COMMIT = b"medchain/v1/commit"
CHAIN = "medchain-test"
PAYLOAD = msgpack.packb([7, 3, b"\xab" * 32])
SEED = bytes(range(32))

# RFC 8032 section 7.1, TEST 1.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# The order of the Ed25519 base point (RFC 8032 section 5.1): a valid S is below it.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(SEED)


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


def test_sign_verify_round_trip(key: SigningKey) -> None:
    sig = key.sign(PREPARE, CHAIN, PAYLOAD)
    assert len(sig) == SIGNATURE_SIZE
    assert key.verify_key.verify(PREPARE, CHAIN, PAYLOAD, sig) is True


def test_signatures_are_deterministic(key: SigningKey) -> None:
    assert key.sign(PREPARE, CHAIN, PAYLOAD) == SigningKey(SEED).sign(PREPARE, CHAIN, PAYLOAD)


def test_empty_payload_signs_and_verifies(key: SigningKey) -> None:
    assert key.verify_key.verify(COMMIT, CHAIN, b"", key.sign(COMMIT, CHAIN, b""))


def test_prepare_signature_never_verifies_as_commit(key: SigningKey) -> None:
    sig = key.sign(PREPARE, CHAIN, PAYLOAD)
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD, sig) is False
    assert key.sign(COMMIT, CHAIN, PAYLOAD) != sig


def test_signature_is_bound_to_the_chain(key: SigningKey) -> None:
    sig = key.sign(COMMIT, CHAIN, PAYLOAD)
    assert key.verify_key.verify(COMMIT, CHAIN + "-2", PAYLOAD, sig) is False
    assert key.verify_key.verify(COMMIT, "", PAYLOAD, sig) is False


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((PREPARE, CHAIN, PAYLOAD), (COMMIT, CHAIN, PAYLOAD)),
        ((b"medchain/v1/prepare", "c", b"p"), (b"medchain/v1/prepar", "ec", b"p")),
        ((b"d", "chain", b"xy"), (b"d", "chainx", b"y")),
        ((b"d", "ab", b""), (b"d", "a", b"b")),
        ((b"d", "c", b"p"), (b"d", "c", b"p\x00")),
    ],
)
def test_signed_bytes_keep_domain_chain_and_payload_apart(
    a: tuple[bytes, str, bytes], b: tuple[bytes, str, bytes]
) -> None:
    # Length-prefixed fields: moving a boundary between fields changes the signed bytes.
    assert signed_bytes(*a) != signed_bytes(*b)


def test_signed_bytes_are_the_msgpack_triple() -> None:
    data = signed_bytes(COMMIT, CHAIN, PAYLOAD)
    assert msgpack.unpackb(data, raw=False) == [COMMIT, CHAIN, PAYLOAD]
    assert data.startswith(b"\x93\xc4" + bytes([len(COMMIT)]) + COMMIT)


def test_tampered_payload_fails(key: SigningKey) -> None:
    sig = key.sign(COMMIT, CHAIN, PAYLOAD)
    for i in range(len(PAYLOAD)):
        assert key.verify_key.verify(COMMIT, CHAIN, flip(PAYLOAD, i), sig) is False
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD + b"\x00", sig) is False
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD[:-1], sig) is False


@pytest.mark.parametrize("index", [0, 17, 31, 32, 45, 63])
@pytest.mark.parametrize("mask", [0x01, 0x80])
def test_tampered_signature_fails(key: SigningKey, index: int, mask: int) -> None:
    sig = key.sign(COMMIT, CHAIN, PAYLOAD)
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD, flip(sig, index, mask)) is False


def test_malleated_signature_is_rejected(key: SigningKey) -> None:
    # (R, S + L) satisfies the group equation too; RFC 8032 section 5.1.7 requires S < L,
    # otherwise one vote would have two valid encodings.
    sig = key.sign(COMMIT, CHAIN, PAYLOAD)
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + GROUP_ORDER).to_bytes(32, "little")
    assert malleated != sig
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD, malleated) is False


def test_wrong_key_fails(key: SigningKey) -> None:
    other = SigningKey.from_seed_text("someone else")
    sig = key.sign(COMMIT, CHAIN, PAYLOAD)
    assert other.verify_key != key.verify_key
    assert other.verify_key.verify(COMMIT, CHAIN, PAYLOAD, sig) is False
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD, other.sign(COMMIT, CHAIN, PAYLOAD)) is False


@pytest.mark.parametrize("length", [0, 1, 32, 63, 65, 128])
def test_wrong_length_signature_returns_false(key: SigningKey, length: int) -> None:
    sig = key.sign(COMMIT, CHAIN, PAYLOAD)
    bad = (sig * 2)[:length]
    assert key.verify_key.verify(COMMIT, CHAIN, PAYLOAD, bad) is False


def test_all_zero_signature_and_key_fail() -> None:
    # The all-zero public key is a small-order point: nothing may verify under it.
    zero_key = VerifyKey(bytes(PUBLIC_KEY_SIZE))
    assert zero_key.verify(COMMIT, CHAIN, PAYLOAD, bytes(SIGNATURE_SIZE)) is False


def test_interop_cryptography_signature_verifies_with_verify_key() -> None:
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    ours = SigningKey(SEED)
    assert private.public_key().public_bytes_raw() == ours.verify_key.raw
    sig = private.sign(signed_bytes(COMMIT, CHAIN, PAYLOAD))
    assert ours.verify_key.verify(COMMIT, CHAIN, PAYLOAD, sig) is True
    assert ours.verify_key.verify(PREPARE, CHAIN, PAYLOAD, sig) is False


def test_interop_verify_key_signature_verifies_with_cryptography() -> None:
    ours = SigningKey(SEED)
    public = Ed25519PublicKey.from_public_bytes(ours.verify_key.raw)
    sig = ours.sign(COMMIT, CHAIN, PAYLOAD)
    public.verify(sig, signed_bytes(COMMIT, CHAIN, PAYLOAD))  # raises if invalid
    with pytest.raises(CryptographyInvalidSignature):
        public.verify(sig, signed_bytes(PREPARE, CHAIN, PAYLOAD))


def test_interop_both_backends_give_identical_signatures() -> None:
    # RFC 8032 signatures are deterministic: same seed and message, same 64 bytes.
    message = signed_bytes(COMMIT, CHAIN, PAYLOAD)
    for label in ("a", "b", "c"):
        ours = SigningKey.from_seed_text(label)
        theirs = Ed25519PrivateKey.from_private_bytes(ours.seed)
        assert theirs.sign(message) == ours.sign(COMMIT, CHAIN, PAYLOAD)


def test_rfc8032_test_1_with_nacl() -> None:
    signing = nacl.signing.SigningKey(RFC_SECRET)
    assert bytes(signing.verify_key) == RFC_PUBLIC
    assert signing.sign(b"").signature == RFC_SIGNATURE
    assert nacl.signing.VerifyKey(RFC_PUBLIC).verify(b"", RFC_SIGNATURE) == b""
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(RFC_PUBLIC).verify(b"\x00", RFC_SIGNATURE)


def test_rfc8032_test_1_with_cryptography() -> None:
    private = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
    assert private.public_key().public_bytes_raw() == RFC_PUBLIC
    assert private.sign(b"") == RFC_SIGNATURE


def test_rfc8032_test_1_key_through_our_wrappers() -> None:
    key = SigningKey(RFC_SECRET)
    assert key.verify_key.raw == RFC_PUBLIC
    assert key.verify_key.hex() == RFC_PUBLIC.hex()
    assert key.seed == RFC_SECRET


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33), bytes(64), bytearray(32), "a" * 32, None])
def test_verify_key_rejects_wrong_raw_keys(raw: object) -> None:
    with pytest.raises(DecodeError, match="32 bytes"):
        VerifyKey(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), bytearray(32), "s" * 32])
def test_signing_key_rejects_wrong_seeds(seed: object) -> None:
    with pytest.raises(UsageError, match="32 bytes"):
        SigningKey(seed)  # type: ignore[arg-type]


def test_seed_round_trips_and_keys_are_deterministic_from_text() -> None:
    key = SigningKey.generate()
    assert len(key.seed) == SEED_SIZE
    assert SigningKey(key.seed).verify_key == key.verify_key
    assert SigningKey.from_seed_text("x").verify_key == SigningKey.from_seed_text("x").verify_key
    assert SigningKey.from_seed_text("x").verify_key != SigningKey.from_seed_text("y").verify_key
    assert SigningKey.generate().seed != key.seed


def test_verify_key_is_a_hashable_value() -> None:
    a, b = VerifyKey(RFC_PUBLIC), VerifyKey(bytes(RFC_PUBLIC))
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
