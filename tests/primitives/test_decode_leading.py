"""``decode_leading``: a record's first field without decoding the rest (a block's header, not its txs)."""

from __future__ import annotations

import msgpack
import pytest

from consensus.messages import Block, BlockHeader
from primitives.codec import decode, decode_leading, encode
from primitives.errors import DecodeError
from tests.helpers import block


def test_the_header_alone_is_the_header_of_the_whole_block() -> None:
    b = block(7, txs=tuple(bytes([i]) * 300 for i in range(50)))
    data = encode(b)
    assert decode_leading(BlockHeader, data) == decode(Block, data).header == b.header


@pytest.mark.parametrize("data", [
    msgpack.packb([]),  # no leading field
    msgpack.packb([[1, 2]]),  # a leading field that is no header
    b"\x92",  # truncated
    b"\xc1",  # a reserved byte
])
def test_what_is_not_a_record_with_a_header_is_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_leading(BlockHeader, data)


def test_a_non_canonical_leading_field_is_refused() -> None:
    fields = msgpack.unpackb(encode(block(3).header), raw=False)
    assert fields[1] == 3
    packed = [msgpack.packb(v, use_bin_type=True) for v in fields]
    packed[1] = b"\xcd\x00\x03"  # the height 3 as a 16-bit integer: valid msgpack, not the canonical form
    loose = b"\x92" + b"\x99" + b"".join(packed) + b"\x90"
    assert msgpack.unpackb(loose, raw=False)[0][1] == 3
    with pytest.raises(DecodeError, match="canonical"):
        decode_leading(BlockHeader, loose)
