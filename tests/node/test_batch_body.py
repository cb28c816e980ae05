"""The body of POST /txs/batch: its two encodings, its limits, and the errors that name what is wrong (no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest

from node.api.batch import BatchLimits, array_length, decode_batch, encode_batch
from node.api.request import MAX_BODY_BYTES
from node.config import ApiSettings, ConfigError, load_config
from node.errors import ApiError

MSGPACK = "application/x-medchain-txs"
LIMITS = BatchLimits(max_txs=10, max_bytes=4096)
TXS = [b"first", b"\x00\xff" * 8, b"third"]


def refused(body: bytes, content_type: str = MSGPACK, limits: BatchLimits = LIMITS) -> ApiError:
    with pytest.raises(ApiError) as err:
        decode_batch(body, content_type, limits)
    assert "\n" not in err.value.message
    return err.value


def as_json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_both_encodings_give_the_transactions_in_order() -> None:
    assert decode_batch(encode_batch(TXS), MSGPACK, LIMITS) == TXS
    assert decode_batch(as_json({"txs": [tx.hex() for tx in TXS]}), "application/json", LIMITS) == TXS


def test_any_content_type_but_json_is_read_as_msgpack_as_post_txs_reads_raw_bytes() -> None:
    assert decode_batch(encode_batch(TXS), "application/octet-stream", LIMITS) == TXS


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65_535, 65_536])
def test_the_count_is_read_from_the_array_header(count: int) -> None:
    header = msgpack.packb([b""] * count)[: 5 if count > 65_535 else 3]
    assert array_length(header) == count


def test_a_body_that_is_no_array_has_no_count() -> None:
    assert array_length(b"") is None
    assert array_length(msgpack.packb({"txs": []})) is None
    assert array_length(b"\xdc\x00") is None  # a truncated header


def test_more_transactions_than_the_limit_are_refused_with_413_naming_the_limit() -> None:
    over = [b"x"] * (LIMITS.max_txs + 1)
    for error in (refused(encode_batch(over)), refused(as_json({"txs": [t.hex() for t in over]}), "application/json")):
        assert (error.status, error.code) == (413, "too-large")
        assert "11 transactions" in error.message and "at most 10" in error.message
        assert "batch_max_txs" in error.message


def test_the_count_in_the_header_is_refused_before_anything_is_decoded() -> None:
    """A header claiming a million items over a few bytes: 413 on the count, not a decode error."""
    error = refused(b"\xdd" + (1_000_000).to_bytes(4, "big") + b"\xc4\x01x")
    assert error.status == 413 and "1000000 transactions" in error.message


def test_a_body_over_the_byte_limit_is_refused_with_413_naming_the_limit() -> None:
    error = refused(encode_batch([b"y" * 5000]))
    assert (error.status, error.code) == (413, "too-large")
    assert "4096 bytes" in error.message and "batch_max_bytes" in error.message


def test_a_json_batch_keeps_the_json_bound_and_says_to_send_msgpack() -> None:
    limits = BatchLimits(max_txs=10_000, max_bytes=4 * MAX_BODY_BYTES)
    big = as_json({"txs": ["ab" * 1000] * 200})
    assert len(big) > MAX_BODY_BYTES
    error = refused(big, "application/json", limits)
    assert error.status == 413 and MSGPACK in error.message
    assert len(decode_batch(encode_batch([b"\xab" * 1000] * 200), MSGPACK, limits)) == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty-body"),
        (encode_batch([]), "empty-batch"),
        (msgpack.packb({"txs": [b"a"]}), "bad-batch"),
        (msgpack.packb([b"a", 5]), "bad-batch"),  # an item that is no bytes
        (msgpack.packb(["text"]), "bad-batch"),
        (encode_batch([b"a"]) + b"\x00", "bad-batch"),  # trailing bytes
        (b"\xdc\x00\x01\xc4\x01a", "bad-batch"),  # one item in an array16 header: not canonical
        (b"\x92\xc4\x01a", "bad-batch"),  # truncated
    ],
)
def test_an_envelope_that_does_not_decode_is_a_400(body: bytes, code: str) -> None:
    error = refused(body)
    assert (error.status, error.code) == (400, code), error.message


@pytest.mark.parametrize(
    "doc",
    [{"tx": "00"}, {"txs": "00"}, {"txs": [5]}, {"txs": ["zz"]}, {"txs": [None]}, ["00"], 7],
)
def test_a_json_batch_of_the_wrong_shape_is_a_400_naming_it(doc: object) -> None:
    error = refused(as_json(doc), "application/json")
    assert (error.status, error.code) == (400, "bad-json")
    assert "txs" in error.message


def test_the_limits_come_from_config_with_defaults(tmp_path: Path) -> None:
    base = 'name = "n0"\nrole = "validator"\ngenesis = "g.json"\np2p_listen = "127.0.0.1:5000"\n' \
           'api_listen = "127.0.0.1:5001"\n'
    (tmp_path / "config.toml").write_text(base)
    assert load_config(tmp_path).api == ApiSettings(1_000, 4 * 1024 * 1024)
    (tmp_path / "config.toml").write_text(base + "[api]\nbatch_max_txs = 50\nbatch_max_bytes = 65536\n")
    assert load_config(tmp_path).api == ApiSettings(50, 65_536)
    (tmp_path / "config.toml").write_text(base + "[api]\nbatch_max_txs = 0\n")
    with pytest.raises(ConfigError, match=r"\[api\]\.batch_max_txs must be a positive integer"):
        load_config(tmp_path)
