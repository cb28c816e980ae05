"""The server-sent events parser: bytes in, events out, however the bytes are cut."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from node.client.sse import ServerSentEvent, SseComment, SseItem, SseParser

STREAM = (
    b": medchain commits\n\n"
    b'event: commit\nid: 7\ndata: {"height":7}\n\n'
    b": keep-alive\n\n"
    b'event: commit\nid: 8\ndata: {"height":8}\n\n'
)
EXPECTED: list[SseItem] = [
    SseComment("medchain commits"),
    ServerSentEvent("commit", '{"height":7}', "7"),
    SseComment("keep-alive"),
    ServerSentEvent("commit", '{"height":8}', "8"),
]


def feed_all(chunks: list[bytes]) -> list[SseItem]:
    parser = SseParser()
    return [item for chunk in chunks for item in parser.feed(chunk)]


def test_a_node_stream_gives_its_greeting_events_and_keep_alives():
    assert feed_all([STREAM]) == EXPECTED
    assert feed_all([STREAM])[1].json() == {"height": 7}  # type: ignore[union-attr]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_cut_of_the_bytes_gives_the_same_events(cuts: list[int]):
    points = [0, *sorted(cuts), len(STREAM)]
    assert feed_all([STREAM[a:b] for a, b in itertools.pairwise(points)]) == EXPECTED


def test_crlf_and_cr_line_endings_even_split_between_chunks():
    assert feed_all([b"data: a\r", b"\ndata: b\r\r"]) == [ServerSentEvent("message", "a\nb")]
    assert feed_all([b"data: x\r\n\r\n"]) == [ServerSentEvent("message", "x")]


def test_multi_line_data_joins_with_newlines_and_an_event_without_data_is_not_dispatched():
    assert feed_all([b"event: alert\n\nevent: alert\ndata: 1\ndata: 2\n\n"]) == [ServerSentEvent("alert", "1\n2")]


def test_fields_follow_the_standard():
    stream = b"\xef\xbb\xbfdata:no-space\nretry: 1500\nretry: soon\nid: a\0b\nunknown: x\ndata\n\n"
    assert feed_all([stream]) == [ServerSentEvent("message", "no-space\n", None, 1500)]


def test_the_last_event_id_carries_over_to_later_events():
    items = feed_all([b"id: 5\ndata: a\n\ndata: b\n\n"])
    assert [e.id for e in items if isinstance(e, ServerSentEvent)] == ["5", "5"]


def test_an_unfinished_event_waits_for_its_blank_line():
    parser = SseParser()
    assert parser.feed(b'event: alert\ndata: {"seq": 1}\n') == []
    (event,) = parser.feed(b"\n")
    assert isinstance(event, ServerSentEvent) and event.json() == json.loads('{"seq": 1}')


def test_utf8_split_inside_a_character():
    text = "data: é\n\n".encode()
    cut = text.index(b"\xc3") + 1
    assert feed_all([text[:cut], text[cut:]]) == [ServerSentEvent("message", "é")]
