"""The canonical codec (DESIGN.md section 2): round trips and strict decoding.

Every rejection must be a ``DecodeError``; where the problem sits in a field,
the message names the field by its path (``Record.field[i].inner``).  Problems
found before any field is looked at (bad msgpack, trailing bytes, a
non-canonical form, the size limit) name what is wrong with the bytes instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.messages import (
    CONSENSUS_CODEC,
    DOMAIN_COMMIT,
    MAX_BLOCK_TXS,
    MAX_TX_BYTES,
    MAX_VALIDATORS,
    Block,
    BlockHeader,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    Vote,
)
from primitives.codec import (
    U64_MAX,
    Bool,
    Bytes,
    Kind,
    ListOf,
    MessageCodec,
    Nested,
    Optional,
    Text,
    UInt,
    checked_record_from_wire,
    decode,
    encode,
    fast_record_or_none,
    pack,
    record_to_wire,
    unpack_strict,
)
from primitives.errors import DecodeError, UsageError
from primitives.hashing import sha256
from primitives.merkle import merkle_root
from primitives.signing import SigningKey

# --------------------------------------------------------------------------
# Test records covering every Kind.


@dataclass(frozen=True, slots=True)
class Inner:
    n: int
    flag: bool

    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(1000), Bool())


@dataclass(frozen=True, slots=True)
class Everything:
    TAG: ClassVar[int] = 7
    big: int
    small: int
    flag: bool
    digest: bytes
    blob: bytes
    name: str
    maybe: int | None
    items: tuple[bytes, ...]
    inners: tuple[Inner, ...]
    child: Inner
    maybe_child: Inner | None

    SCHEMA: ClassVar[tuple[Kind, ...]] = (
        UInt(),
        UInt(255),
        Bool(),
        Bytes(4, exact=True),
        Bytes(8),
        Text(10),
        Optional(UInt(10)),
        ListOf(Bytes(3), 4),
        ListOf(Nested(Inner), 3),
        Nested(Inner),
        Optional(Nested(Inner)),
    )


@dataclass(frozen=True, slots=True)
class Small:
    TAG: ClassVar[int] = 8
    n: int

    SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(),)


SAMPLE = Everything(
    big=U64_MAX,
    small=255,
    flag=True,
    digest=b"\x00\x01\x02\x03",
    blob=b"12345678",
    name="héllo",
    maybe=10,
    items=(b"abc", b"", b"z"),
    inners=(Inner(0, False), Inner(1000, True)),
    child=Inner(7, True),
    maybe_child=Inner(8, False),
)

# Field positions in Everything's wire array.
BIG, SMALL, FLAG, DIGEST, BLOB, NAME, MAYBE, ITEMS, INNERS, CHILD, MAYBE_CHILD = range(11)
TEST_CODEC = MessageCodec([Everything, Small])


def wire_with(record: Any, index: int, value: Any) -> bytes:
    """Canonical bytes of ``record`` with one wire field replaced."""
    wire = record_to_wire(record)
    wire[index] = value
    return pack(wire)


def assert_round_trip(record: Any) -> None:
    data = encode(record)
    back = decode(type(record), data)
    assert back == record
    assert encode(back) == data


# --------------------------------------------------------------------------
# Round trips of every Kind.


def test_full_record_round_trips() -> None:
    assert_round_trip(SAMPLE)


def test_record_is_an_array_in_field_order_not_a_map() -> None:
    obj = msgpack.unpackb(encode(Inner(5, True)))
    assert obj == [5, True]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, U64_MAX])
def test_uint_round_trips_at_every_width_boundary(value: int) -> None:
    assert_round_trip(replace(SAMPLE, big=value))


@pytest.mark.parametrize("value", [False, True])
def test_bool_round_trips(value: bool) -> None:
    assert_round_trip(replace(SAMPLE, flag=value))


@pytest.mark.parametrize("value", [b"", b"\x00", b"12345678"])
def test_bytes_up_to_max_round_trip(value: bytes) -> None:
    assert_round_trip(replace(SAMPLE, blob=value))


def test_exact_bytes_round_trip() -> None:
    assert_round_trip(replace(SAMPLE, digest=b"\xff" * 4))


@pytest.mark.parametrize("value", ["", "a", "0123456789", "日本語テキスト", "\U0001f600" * 10])
def test_text_round_trips(value: str) -> None:
    assert_round_trip(replace(SAMPLE, name=value))


@pytest.mark.parametrize("value", [None, 0, 10])
def test_optional_round_trips(value: int | None) -> None:
    assert_round_trip(replace(SAMPLE, maybe=value))


def test_optional_nested_none_is_nil_on_the_wire() -> None:
    record = replace(SAMPLE, maybe_child=None, maybe=None)
    assert_round_trip(record)
    obj = msgpack.unpackb(encode(record))
    assert obj[MAYBE] is None and obj[MAYBE_CHILD] is None


@pytest.mark.parametrize("items", [(), (b"",), (b"abc",) * 4])
def test_list_of_bytes_round_trips(items: tuple[bytes, ...]) -> None:
    assert_round_trip(replace(SAMPLE, items=items))


@pytest.mark.parametrize("inners", [(), (Inner(1, True),), (Inner(1, True), Inner(2, False), Inner(3, True))])
def test_list_of_nested_round_trips(inners: tuple[Inner, ...]) -> None:
    assert_round_trip(replace(SAMPLE, inners=inners))


def test_list_decodes_as_tuple() -> None:
    back = decode(Everything, encode(replace(SAMPLE, items=[b"a", b"b"])))  # type: ignore[arg-type]
    assert back.items == (b"a", b"b")
    assert type(back.items) is tuple


def test_nested_is_its_own_array_without_tag() -> None:
    obj = msgpack.unpackb(encode(SAMPLE))
    assert obj[CHILD] == [7, True]


def test_message_codec_puts_tag_first_and_round_trips() -> None:
    data = TEST_CODEC.encode(SAMPLE)
    assert msgpack.unpackb(data)[0] == Everything.TAG
    assert TEST_CODEC.decode(data) == SAMPLE
    assert TEST_CODEC.decode(TEST_CODEC.encode(Small(3))) == Small(3)


def test_message_codec_refuses_a_tag_used_twice() -> None:
    @dataclass(frozen=True, slots=True)
    class Clash:
        TAG: ClassVar[int] = 8
        n: int
        SCHEMA: ClassVar[tuple[Kind, ...]] = (UInt(),)

    with pytest.raises(UsageError, match="tag 8"):
        MessageCodec([Small, Clash])


def test_message_codec_refuses_to_encode_a_foreign_record() -> None:
    with pytest.raises(UsageError, match="Inner"):
        TEST_CODEC.encode(Inner(1, True))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("big", -1),
        ("big", U64_MAX + 1),
        ("small", 256),
        ("big", True),
        ("flag", 1),
        ("digest", b"123"),
        ("digest", bytearray(b"1234")),
        ("blob", b"123456789"),
        ("name", "x" * 11),
        ("name", b"bytes"),
        ("items", (b"abcd",)),
        ("items", (b"a",) * 5),
        ("child", Small(1)),
    ],
)
def test_encoding_an_invalid_record_is_our_callers_fault(field: str, value: Any) -> None:
    with pytest.raises(UsageError):
        encode(replace(SAMPLE, **{field: value}))


# --------------------------------------------------------------------------
# Real consensus messages through CONSENSUS_CODEC.

CHAIN = "codec-test"
KEYS = [SigningKey.from_seed_text(f"codec-{i}") for i in range(4)]


def h(label: str) -> bytes:
    return sha256(label.encode())


def make_block(height: int = 5, txs: tuple[bytes, ...] = (b"tx-a", b"tx-b", b"")) -> Block:
    header = BlockHeader(CHAIN, height, h("prev"), 2, 1, 1_700_000_000_000, merkle_root(txs), len(txs), h("app"))
    return Block(header, txs)


def sig(i: int, payload: bytes) -> bytes:
    return KEYS[i].sign(DOMAIN_COMMIT, CHAIN, payload)


def votes(payload: bytes, who: range = range(3)) -> tuple[Vote, ...]:
    return tuple(Vote(i, sig(i, payload)) for i in who)


BLOCK = make_block()
PRE_PREPARE = PrePrepare(1, 5, BLOCK, 1, sig(1, b"pp"))
PREPARE = Prepare(1, 5, BLOCK.hash, 3, sig(3, b"p"))
COMMIT = Commit(1, 5, BLOCK.hash, 0, sig(0, b"c"))
CHECKPOINT = Checkpoint(100, h("b100"), h("a100"), 2, sig(2, b"cp"))
PREPARED = PreparedCertificate(1, BLOCK, votes(b"prepared"))
VIEW_CHANGE_EMPTY = ViewChange(2, 5, None, 0, sig(0, b"vc0"))
VIEW_CHANGE_PREPARED = ViewChange(2, 5, PREPARED, 1, sig(1, b"vc1"))
NEW_VIEW = NewView(2, 5, (VIEW_CHANGE_EMPTY, VIEW_CHANGE_PREPARED), BLOCK, 2, sig(2, b"nv"))
NEW_VIEW_NO_BLOCK = NewView(3, 5, (VIEW_CHANGE_EMPTY,), None, 3, sig(3, b"nv3"))
MESSAGES = [
    PRE_PREPARE,
    PREPARE,
    COMMIT,
    CHECKPOINT,
    VIEW_CHANGE_EMPTY,
    VIEW_CHANGE_PREPARED,
    NEW_VIEW,
    NEW_VIEW_NO_BLOCK,
    PrePrepare(0, 1, make_block(1, ()), 0, sig(0, b"empty")),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_consensus_message_round_trips(message: Any) -> None:
    data = CONSENSUS_CODEC.encode(message)
    back = CONSENSUS_CODEC.decode(data)
    assert type(back) is type(message)
    assert back == message
    assert CONSENSUS_CODEC.encode(back) == data
    assert msgpack.unpackb(data)[0] == type(message).TAG


def test_decoded_block_has_the_same_hash() -> None:
    # Block.hash is derived (compare=False), so equality alone would not catch a wrong one.
    back = CONSENSUS_CODEC.decode(CONSENSUS_CODEC.encode(PRE_PREPARE))
    assert back.block.hash == BLOCK.hash == sha256(encode(BLOCK.header))
    nv = CONSENSUS_CODEC.decode(CONSENSUS_CODEC.encode(NEW_VIEW))
    assert nv.view_changes[1].prepared.block.hash == BLOCK.hash


def test_block_hash_is_not_on_the_wire() -> None:
    assert len(msgpack.unpackb(encode(BLOCK))) == 2


def test_tags_are_distinct_and_stable() -> None:
    # Tags are part of the wire format: changing one breaks every peer.
    assert [c.TAG for c in (PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)] == [1, 2, 3, 4, 5, 6]


# --------------------------------------------------------------------------
# Strict decoding: field-level rejections name the field.


def rejects(cls: type[Any], data: bytes, pattern: str) -> DecodeError:
    with pytest.raises(DecodeError, match=pattern) as info:
        decode(cls, data)
    return info.value


@pytest.mark.parametrize(
    ("index", "value", "pattern"),
    [
        (DIGEST, "abcd", r"Everything\.digest: expected bytes, got str"),
        (BLOB, "12345678", r"Everything\.blob: expected bytes, got str"),
        (BIG, True, r"Everything\.big: expected an integer, got bool"),
        (SMALL, False, r"Everything\.small: expected an integer, got bool"),
        (BIG, b"\x01", r"Everything\.big: expected an integer, got bytes"),
        (BIG, "1", r"Everything\.big: expected an integer, got str"),
        (FLAG, 1, r"Everything\.flag: expected a bool, got int"),
        (FLAG, 0, r"Everything\.flag: expected a bool, got int"),
        (FLAG, None, r"Everything\.flag: expected a bool, got NoneType"),
        (NAME, b"abc", r"Everything\.name: expected text, got bytes"),
        (ITEMS, b"abc", r"Everything\.items: expected a list, got bytes"),
        (ITEMS, [b"ab", "c"], r"Everything\.items\[1\]: expected bytes, got str"),
        (INNERS, [[1, True], [2, 1]], r"Everything\.inners\[1\]\.flag: expected a bool, got int"),
        (CHILD, None, r"Everything\.child: expected an array, got NoneType"),
        (CHILD, [True, True], r"Everything\.child\.n: expected an integer, got bool"),
        (MAYBE, "x", r"Everything\.maybe: expected an integer, got str"),
        (MAYBE_CHILD, [1], r"Everything\.maybe_child: expected 2 fields, got 1"),
        (BIG, {"a": 1}, r"Everything\.big: expected an integer, got dict"),
        (BIG, 1.0, r"Everything\.big: expected an integer, got float"),
        (BIG, msgpack.ExtType(5, b"xyz"), r"Everything\.big: expected an integer, got ExtType"),
        (NAME, msgpack.Timestamp(1), r"Everything\.name: expected text, got Timestamp"),
    ],
)
def test_wrong_type_is_rejected_naming_the_field(index: int, value: Any, pattern: str) -> None:
    rejects(Everything, wire_with(SAMPLE, index, value), pattern)


@pytest.mark.parametrize(
    ("index", "value", "pattern"),
    [
        (BLOB, b"123456789", r"Everything\.blob: 9 bytes is over the limit of 8"),
        (NAME, "x" * 11, r"Everything\.name: 11 characters is over the limit of 10"),
        (ITEMS, [b"a"] * 5, r"Everything\.items: 5 items is over the limit of 4"),
        (ITEMS, [b"a", b"abcd"], r"Everything\.items\[1\]: 4 bytes is over the limit of 3"),
        (INNERS, [[1, True]] * 4, r"Everything\.inners: 4 items is over the limit of 3"),
        (DIGEST, b"123", r"Everything\.digest: expected exactly 4 bytes, got 3"),
        (DIGEST, b"12345", r"Everything\.digest: expected exactly 4 bytes, got 5"),
        (DIGEST, b"", r"Everything\.digest: expected exactly 4 bytes, got 0"),
        (BIG, -1, r"Everything\.big: integer -1 outside \[0, 18446744073709551615\]"),
        (SMALL, 256, r"Everything\.small: integer 256 outside \[0, 255\]"),
        (SMALL, -(2**63), r"Everything\.small: integer -9223372036854775808 outside"),
        (MAYBE, 11, r"Everything\.maybe: integer 11 outside \[0, 10\]"),
        (CHILD, [1001, True], r"Everything\.child\.n: integer 1001 outside \[0, 1000\]"),
    ],
)
def test_out_of_range_value_is_rejected_naming_the_field(index: int, value: Any, pattern: str) -> None:
    rejects(Everything, wire_with(SAMPLE, index, value), pattern)


def test_too_few_fields_is_rejected() -> None:
    wire = record_to_wire(SAMPLE)[:-1]
    rejects(Everything, pack(wire), r"Everything: expected 11 fields, got 10")


def test_too_many_fields_is_rejected() -> None:
    wire = [*record_to_wire(SAMPLE), None]
    rejects(Everything, pack(wire), r"Everything: expected 11 fields, got 12")


def test_nested_arity_is_checked() -> None:
    rejects(Everything, wire_with(SAMPLE, CHILD, [1, True, 3]), r"Everything\.child: expected 2 fields, got 3")


@pytest.mark.parametrize("obj", [{"a": 1}, 1.5, 5, "x", b"x", None, True, msgpack.ExtType(1, b"")])
def test_non_array_record_is_rejected(obj: Any) -> None:
    rejects(Inner, pack(obj), r"Inner: expected an array, got")


# --------------------------------------------------------------------------
# Strict decoding of consensus messages: paths through nested records.


def message_wire(message: Any) -> list[Any]:
    return list(msgpack.unpackb(CONSENSUS_CODEC.encode(message)))


def codec_rejects(data: bytes, pattern: str) -> None:
    with pytest.raises(DecodeError, match=pattern):
        CONSENSUS_CODEC.decode(data)


def test_prepare_with_str_block_hash_is_rejected() -> None:
    wire = message_wire(PREPARE)
    wire[3] = "x" * 32
    codec_rejects(pack(wire), r"Prepare\.block_hash: expected bytes, got str")


def test_commit_with_short_signature_is_rejected() -> None:
    wire = message_wire(COMMIT)
    wire[5] = wire[5][:63]
    codec_rejects(pack(wire), r"Commit\.signature: expected exactly 64 bytes, got 63")


def test_commit_with_sender_out_of_validator_range_is_rejected() -> None:
    wire = message_wire(COMMIT)
    wire[4] = MAX_VALIDATORS
    codec_rejects(pack(wire), r"Commit\.sender: integer 256 outside \[0, 255\]")


def test_checkpoint_with_bool_height_is_rejected() -> None:
    wire = message_wire(CHECKPOINT)
    wire[1] = True
    codec_rejects(pack(wire), r"Checkpoint\.height: expected an integer, got bool")


def test_pre_prepare_header_field_is_named_by_path() -> None:
    wire = message_wire(PRE_PREPARE)
    wire[3][0][2] = b"short"
    codec_rejects(pack(wire), r"PrePrepare\.block\.header\.prev_hash: expected exactly 32 bytes, got 5")


def test_pre_prepare_chain_id_too_long_is_rejected() -> None:
    wire = message_wire(PRE_PREPARE)
    wire[3][0][0] = "c" * 65
    codec_rejects(pack(wire), r"PrePrepare\.block\.header\.chain_id: 65 characters is over the limit of 64")


def test_oversized_transaction_is_rejected() -> None:
    wire = message_wire(PRE_PREPARE)
    wire[3][1] = [b"ok", b"x" * (MAX_TX_BYTES + 1)]
    codec_rejects(pack(wire), rf"PrePrepare\.block\.txs\[1\]: {MAX_TX_BYTES + 1} bytes is over the limit")


def test_too_many_transactions_is_rejected() -> None:
    wire = message_wire(PRE_PREPARE)
    wire[3][1] = [b""] * (MAX_BLOCK_TXS + 1)
    codec_rejects(pack(wire), rf"PrePrepare\.block\.txs: {MAX_BLOCK_TXS + 1} items is over the limit")


def test_view_change_prepared_vote_is_named_by_path() -> None:
    wire = message_wire(VIEW_CHANGE_PREPARED)
    wire[3][2][1][1] = b"\x00" * 65
    codec_rejects(pack(wire), r"ViewChange\.prepared\.votes\[1\]\.signature: expected exactly 64 bytes, got 65")


def test_view_change_prepared_block_tx_is_named_by_path() -> None:
    wire = message_wire(VIEW_CHANGE_PREPARED)
    wire[3][1][1][0] = "tx"
    codec_rejects(pack(wire), r"ViewChange\.prepared\.block\.txs\[0\]: expected bytes, got str")


def test_too_many_votes_is_rejected() -> None:
    wire = message_wire(VIEW_CHANGE_PREPARED)
    wire[3][2] = [[0, b"\x00" * 64]] * (MAX_VALIDATORS + 1)
    codec_rejects(pack(wire), r"ViewChange\.prepared\.votes: 257 items is over the limit of 256")


def test_new_view_inner_view_change_is_named_by_path() -> None:
    wire = message_wire(NEW_VIEW)
    wire[3][1][0] = -1
    codec_rejects(pack(wire), r"NewView\.view_changes\[1\]\.new_view: integer -1 outside")


def test_new_view_block_arity_is_checked() -> None:
    wire = message_wire(NEW_VIEW)
    wire[4] = wire[4][:1]
    codec_rejects(pack(wire), r"NewView\.block: expected 2 fields, got 1")


@pytest.mark.parametrize("message", MESSAGES[:7], ids=lambda m: type(m).__name__)
def test_consensus_message_arity_is_checked(message: Any) -> None:
    name = type(message).__name__
    wire = message_wire(message)
    n = len(wire) - 1
    codec_rejects(pack(wire[:-1]), rf"{name}: expected {n} fields, got {n - 1}")
    codec_rejects(pack([*wire, b""]), rf"{name}: expected {n} fields, got {n + 1}")


# --------------------------------------------------------------------------
# Strict decoding: whole-message rejections.


@pytest.mark.parametrize("tag", [0, 7, 9, 2**32, U64_MAX, -1])
def test_unknown_message_tag_is_rejected(tag: int) -> None:
    wire = message_wire(PREPARE)
    wire[0] = tag
    codec_rejects(pack(wire), rf"^unknown message tag {tag}$")


@pytest.mark.parametrize(
    ("tag", "kind"),
    [("2", "str"), (True, "bool"), (None, "NoneType"), (b"\x02", "bytes"), (2.0, "float"), ([2], "list")],
)
def test_non_integer_message_tag_is_rejected(tag: Any, kind: str) -> None:
    wire = message_wire(PREPARE)
    wire[0] = tag
    codec_rejects(pack(wire), rf"^unknown message tag: expected an integer, got {kind}$")


@pytest.mark.parametrize("obj", [{"view": 1}, 1.5, 5, "Prepare", b"\x02", None, [], msgpack.ExtType(2, b"")])
def test_non_array_or_empty_message_is_rejected(obj: Any) -> None:
    codec_rejects(pack(obj), r"a message must be a non-empty array")


def test_map_in_place_of_a_field_array_is_rejected() -> None:
    wire = message_wire(PRE_PREPARE)
    wire[3] = {"header": wire[3][0], "txs": wire[3][1]}
    codec_rejects(pack(wire), r"PrePrepare\.block: expected an array, got dict")


def test_map_with_non_string_keys_is_rejected() -> None:
    codec_rejects(b"\x81\x01\x02", r"not valid msgpack")


def test_trailing_bytes_are_rejected() -> None:
    data = CONSENSUS_CODEC.encode(PREPARE)
    codec_rejects(data + b"\x00", r"trailing bytes")
    codec_rejects(data + data, r"trailing bytes")
    with pytest.raises(DecodeError, match="trailing bytes"):
        decode(Everything, encode(SAMPLE) + b"\xc0")


def test_truncated_message_is_rejected() -> None:
    data = CONSENSUS_CODEC.encode(PREPARE)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            CONSENSUS_CODEC.decode(data[:cut])


def test_float32_is_rejected_as_non_canonical() -> None:
    # msgpack-python re-packs every float as float64, so a float32 is a second encoding.
    with pytest.raises(DecodeError, match="canonical"):
        decode(Inner, b"\x92\xca" + struct.pack(">f", 1.0) + b"\xc3")


def test_invalid_utf8_in_a_str_is_rejected() -> None:
    data = CONSENSUS_CODEC.encode(PRE_PREPARE)
    good = b"\xaa" + CHAIN.encode()
    assert data.count(good) == 1
    bad = data.replace(good, b"\xaa" + b"\xff" + CHAIN.encode()[1:])
    codec_rejects(bad, r"not valid msgpack: 'utf-8' codec can't decode")
    # An encoded UTF-16 surrogate is not valid UTF-8 either.
    codec_rejects(data.replace(good, b"\xaa\xed\xa0\x80" + CHAIN.encode()[3:]), r"utf-8")


def test_reserved_byte_is_rejected_with_a_non_empty_reason() -> None:
    codec_rejects(b"\xc1", r"^not valid msgpack: FormatError$")


def test_excessive_nesting_is_rejected() -> None:
    codec_rejects(b"\x91" * 5000 + b"\x00", r"^not valid msgpack: StackError$")
    # Within msgpack's stack limit the schema does the rejecting.
    codec_rejects(b"\x91" * 1000 + b"\x00", r"^unknown message tag: expected an integer, got list$")


def test_declared_length_beyond_the_data_is_rejected() -> None:
    codec_rejects(b"\xdd\xff\xff\xff\xff", r"not valid msgpack")
    codec_rejects(b"\xc6\xff\xff\xff\xff", r"not valid msgpack")


@pytest.mark.parametrize(
    ("canonical", "other"),
    [
        (b"\x05", b"\xcc\x05"),  # positive fixint as uint8
        (b"\x05", b"\xcd\x00\x05"),  # as uint16
        (b"\x05", b"\xce\x00\x00\x00\x05"),  # as uint32
        (b"\x05", b"\xcf" + bytes(7) + b"\x05"),  # as uint64
        (b"\x05", b"\xd0\x05"),  # as int8
        (b"\xcc\xff", b"\xcd\x00\xff"),
        (b"\xcd\x01\x00", b"\xce\x00\x00\x01\x00"),
        (b"\xc4\x01a", b"\xc5\x00\x01a"),  # bin8 as bin16
        (b"\xc4\x01a", b"\xc6\x00\x00\x00\x01a"),  # bin8 as bin32
        (b"\xa1a", b"\xd9\x01a"),  # fixstr as str8
        (b"\xa1a", b"\xda\x00\x01a"),  # fixstr as str16
        (b"\x91\x05", b"\xdc\x00\x01\x05"),  # fixarray as array16
        (b"\x90", b"\xdd\x00\x00\x00\x00"),  # fixarray as array32
    ],
)
def test_non_canonical_forms_of_a_value_are_rejected(canonical: bytes, other: bytes) -> None:
    assert msgpack.unpackb(canonical) == msgpack.unpackb(other)
    unpack_strict(canonical)
    with pytest.raises(DecodeError, match="not the canonical encoding of its value"):
        unpack_strict(other)


def test_non_canonical_field_inside_a_message_is_rejected() -> None:
    data = CONSENSUS_CODEC.encode(Prepare(5, 1, BLOCK.hash, 3, PREPARE.signature))
    # [tag=2, view=5, ...]: re-pack view 5 as uint32.
    assert data[:3] == b"\x96\x02\x05"
    codec_rejects(b"\x96\x02\xce\x00\x00\x00\x05" + data[3:], r"not the canonical encoding")
    # The signature (64 bytes, bin8 header c4 40) re-packed with a bin16 header.
    marker = b"\xc4\x40" + PREPARE.signature
    assert data.endswith(marker)
    codec_rejects(data[: -len(marker)] + b"\xc5\x00\x40" + PREPARE.signature, r"not the canonical encoding")


def test_duplicate_map_keys_are_rejected() -> None:
    codec_rejects(b"\x82\xa1a\x01\xa1a\x02", r"not the canonical encoding")


def test_max_bytes_limit_of_a_codec() -> None:
    data = CONSENSUS_CODEC.encode(PRE_PREPARE)
    at_limit = MessageCodec([PrePrepare], max_bytes=len(data))
    assert at_limit.decode(data) == PRE_PREPARE
    below = MessageCodec([PrePrepare], max_bytes=len(data) - 1)
    with pytest.raises(DecodeError, match=rf"{len(data)} bytes is over the limit of {len(data) - 1}"):
        below.decode(data)


def test_max_bytes_limit_of_decode() -> None:
    data = encode(SAMPLE)
    assert decode(Everything, data, max_bytes=len(data)) == SAMPLE
    with pytest.raises(DecodeError, match="over the limit"):
        decode(Everything, data, max_bytes=len(data) - 1)


@pytest.mark.parametrize("data", [bytearray(b"\x90"), memoryview(b"\x90"), "\x90", None])
def test_non_bytes_input_is_rejected(data: Any) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        CONSENSUS_CODEC.decode(data)


# --------------------------------------------------------------------------
# Properties.

inner_st = st.builds(Inner, st.integers(0, 1000), st.booleans())
everything_st = st.builds(
    Everything,
    big=st.integers(0, U64_MAX),
    small=st.integers(0, 255),
    flag=st.booleans(),
    digest=st.binary(min_size=4, max_size=4),
    blob=st.binary(max_size=8),
    name=st.text(max_size=10),
    maybe=st.none() | st.integers(0, 10),
    items=st.lists(st.binary(max_size=3), max_size=4).map(tuple),
    inners=st.lists(inner_st, max_size=3).map(tuple),
    child=inner_st,
    maybe_child=st.none() | inner_st,
)

u64 = st.integers(0, U64_MAX)
validator = st.integers(0, MAX_VALIDATORS - 1)
hash32 = st.binary(min_size=32, max_size=32)
sig64 = st.binary(min_size=64, max_size=64)
header_st = st.builds(
    BlockHeader, st.text(max_size=64), u64, hash32, validator, u64, u64, hash32, st.integers(0, MAX_BLOCK_TXS), hash32
)
block_st = st.builds(Block, header_st, st.lists(st.binary(max_size=40), max_size=4).map(tuple))
vote_st = st.builds(Vote, validator, sig64)
votes_st = st.lists(vote_st, max_size=4).map(tuple)
prepared_st = st.builds(PreparedCertificate, u64, block_st, votes_st)
view_change_st = st.builds(ViewChange, u64, u64, st.none() | prepared_st, validator, sig64)
message_st = st.one_of(
    st.builds(PrePrepare, u64, u64, block_st, validator, sig64),
    st.builds(Prepare, u64, u64, hash32, validator, sig64),
    st.builds(Commit, u64, u64, hash32, validator, sig64),
    st.builds(Checkpoint, u64, hash32, hash32, validator, sig64),
    view_change_st,
    st.builds(
        NewView, u64, u64, st.lists(view_change_st, max_size=3).map(tuple), st.none() | block_st, validator, sig64
    ),
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(everything_st)
def test_property_random_records_round_trip(record: Everything) -> None:
    data = encode(record)
    back = decode(Everything, data)
    assert back == record
    assert encode(back) == data
    assert TEST_CODEC.decode(TEST_CODEC.encode(record)) == record


@FAST
@given(message_st)
def test_property_random_consensus_messages_round_trip(message: Any) -> None:
    data = CONSENSUS_CODEC.encode(message)
    back = CONSENSUS_CODEC.decode(data)
    assert back == message
    assert CONSENSUS_CODEC.encode(back) == data
    if isinstance(message, PrePrepare):
        assert back.block.hash == message.block.hash


def decode_or_decode_error(data: bytes) -> Any:
    try:
        return CONSENSUS_CODEC.decode(data)
    except DecodeError:
        return None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_property_random_bytes_raise_only_decode_error(data: bytes) -> None:
    decode_or_decode_error(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(MESSAGES), st.data())
def test_property_mutated_messages_raise_only_decode_error(message: Any, data: st.DataObject) -> None:
    raw = bytearray(CONSENSUS_CODEC.encode(message))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if action == "set":
            raw[pos] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=3))
        elif len(raw) > 1:
            del raw[pos]
    result = decode_or_decode_error(bytes(raw))
    if result is not None:
        # Whatever is accepted is canonical: it re-encodes to exactly the input.
        assert CONSENSUS_CODEC.encode(result) == bytes(raw)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), U64_MAX)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=70),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=3), children, max_size=2),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 8), st.lists(msgpack_values, max_size=7))
def test_property_random_msgpack_arrays_raise_only_decode_error(tag: int, fields: list[Any]) -> None:
    data = pack([tag, *fields])
    result = decode_or_decode_error(data)
    if result is not None:
        assert CONSENSUS_CODEC.encode(result) == data


def test_pack_matches_msgpack_and_recovers_after_a_failed_pack() -> None:
    value = [1, "x", b"\x00" * 40, None, [True, 2**40]]
    expected = msgpack.packb(value, use_bin_type=True)
    assert pack(value) == expected
    with pytest.raises(TypeError):
        pack([1, object()])  # half-packed: the reused packer must not keep the "1"
    with pytest.raises(OverflowError):
        pack([2, 2**70])
    assert pack(value) == expected
    assert pack("x") == b"\xa1x"


def test_pack_from_several_threads_gives_the_same_bytes() -> None:
    import threading

    values = [[i, f"text {i}", bytes([i % 256]) * (i % 70)] for i in range(2_000)]
    expected = [msgpack.packb(v, use_bin_type=True) for v in values]
    results: dict[int, list[bytes]] = {}

    def work(n: int) -> None:
        results[n] = [pack(v) for v in values]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n] == expected for n in range(4))


# Values at and around every limit of ``Everything``'s and ``Inner``'s kinds, and the int/bool confusions.
_EDGES = [
    -1, 0, 1, 10, 11, 255, 256, 1000, 1001, U64_MAX, U64_MAX + 1, True, False, None, 1.0,
    *(bytes(n) for n in range(10)), *("x" * n for n in (0, 9, 10, 11)), [], [b"abc"], [b"abcd"],
    [[1, True]], [[1001, True]], [[1, 1]], [1, True], [1001, True], [1, 1], [1],
]


def _read_both(cls: type[Any], wire: Any) -> tuple[Any, Any]:
    """(what the fast reader gives or "refused", what the checked reader gives or "refused")."""
    found = fast_record_or_none(cls, wire)
    fast = "refused" if found is None else found
    try:
        checked = checked_record_from_wire(cls, wire)
    except DecodeError:
        checked = "refused"
    return fast, checked


@settings(max_examples=400, deadline=None)
@given(everything_st, st.data())
def test_property_the_generated_reader_accepts_exactly_what_the_checked_reader_accepts(
    record: Everything, data: st.DataObject
) -> None:
    """The fast reader writes each plain field's check inline (generated source); the field-by-field
    checked reader is the reference: on a good record and on one with a field replaced by any value, both
    give the same record or both refuse."""
    wire = record_to_wire(record)
    assert _read_both(Everything, wire) == (record, record)
    index = data.draw(st.integers(0, len(wire) - 1))
    wire[index] = data.draw(msgpack_values)
    fast, checked = _read_both(Everything, wire)
    assert fast == checked


def test_the_generated_reader_agrees_with_the_checked_reader_at_every_limit() -> None:
    """Each field of a good record replaced, in turn, by each value at or around a limit."""
    good = Everything(1, 2, True, b"abcd", b"", "n", None, (), (), Inner(1, True), None)
    for index in range(len(record_to_wire(good))):
        for value in _EDGES:
            wire = record_to_wire(good)
            wire[index] = value
            fast, checked = _read_both(Everything, wire)
            assert fast == checked, (index, value)


def test_the_generated_reader_checks_arity_and_refuses_non_arrays() -> None:
    good = record_to_wire(Inner(1, True))
    assert fast_record_or_none(Inner, good) == Inner(1, True)
    for bad in (good[:-1], [*good, 0], tuple(good), {"a": 1}, None):
        assert _read_both(Inner, bad) == ("refused", "refused")
