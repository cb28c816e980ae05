"""A server-sent events parser: bytes in, events out, no I/O.

It follows the event stream interpretation of the WHATWG HTML standard
(section 9.2.6): lines end with CR, LF or CRLF; ``data`` lines accumulate;
a blank line dispatches the event; a line starting with ``:`` is a comment.
Comments are handed out too, because a medchain node sends one as soon as it
has subscribed the client: a consumer that waits for it knows that no event
committed after that point will be missed.

Usage, with any byte source::

    parser = SseParser()
    async for chunk in response.content.iter_any():
        for item in parser.feed(chunk):
            if isinstance(item, SseComment):
                ...  # subscribed
            elif item.event == "commit":
                block = item.json()
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` unless named), data, last event id and retry hint."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON (medchain sends one JSON document per event)."""
        return json.loads(self.data)


@dataclass(frozen=True, slots=True)
class SseComment:
    """A comment line (``: text``): keep-alives, and the node's greeting once it has subscribed the client."""

    text: str


SseItem = ServerSentEvent | SseComment


class SseParser:
    """Feed it the bytes of one event stream in chunks of any size; it returns what each chunk completed."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._started = False
        self._skip_lf = False  # the previous chunk ended with CR: a LF opening this one belongs to it
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SseItem]:
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf and text:
            self._skip_lf = False
            text = text.removeprefix("\n")
        self._buffer += text
        out: list[SseItem] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return out
            line, ending = self._buffer[:cut], self._buffer[cut]
            rest = self._buffer[cut + 1 :]
            if ending == "\r":
                if rest.startswith("\n"):
                    rest = rest[1:]
                elif not rest:
                    self._skip_lf = True
            self._buffer = rest
            item = self._line(line)
            if item is not None:
                out.append(item)

    def _line(self, line: str) -> SseItem | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return SseComment(line[1:].removeprefix(" "))
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(event, "\n".join(data), self._last_id, self._retry)


def _line_end(text: str) -> int | None:
    """Index of the first CR or LF in ``text``."""
    cr, lf = text.find("\r"), text.find("\n")
    ends = [i for i in (cr, lf) if i >= 0]
    return min(ends) if ends else None
