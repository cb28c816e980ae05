"""The canonical binary encoding: msgpack of fixed-order arrays.

Rules (DESIGN.md section 2):

* a record is a msgpack array of its fields in declaration order, never a map;
* bytes are msgpack bin, text is msgpack str, integers are msgpack ints;
* a tagged message is ``[tag, field1, field2, ...]``;
* decoding is strict: a wrong type, a wrong arity, trailing bytes, an oversized
  field or a non-canonical form of the same value raises ``DecodeError`` naming
  the field; nothing is silently fixed.

A record class is a frozen dataclass with a ``SCHEMA`` class attribute: one
``Kind`` per dataclass field, in the same order.  ``encode`` and ``decode`` work
for any such class; ``MessageCodec`` adds the class's integer ``TAG`` in front
so several record classes can share one wire.
"""

from __future__ import annotations

import dataclasses
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgpack

from primitives.errors import DecodeError, UsageError

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
U64_MAX = 2**64 - 1


R = TypeVar("R")


class Kind(ABC):
    """How one field looks on the wire and how it is checked when decoded."""

    @abstractmethod
    def to_wire(self, value: Any) -> Any: ...

    @abstractmethod
    def from_wire(self, obj: Any, where: str) -> Any: ...


class UInt(Kind):
    def __init__(self, maximum: int = U64_MAX) -> None:
        self.maximum = maximum

    def to_wire(self, value: Any) -> Any:
        if type(value) is not int or not 0 <= value <= self.maximum:
            raise UsageError(f"not an integer in [0, {self.maximum}]: {value!r}")
        return value

    def from_wire(self, obj: Any, where: str) -> Any:
        if type(obj) is not int:
            raise DecodeError(f"{where}: expected an integer, got {type(obj).__name__}")
        if not 0 <= obj <= self.maximum:
            raise DecodeError(f"{where}: integer {obj} outside [0, {self.maximum}]")
        return obj


class Bool(Kind):
    def to_wire(self, value: Any) -> Any:
        if type(value) is not bool:
            raise UsageError(f"not a bool: {value!r}")
        return value

    def from_wire(self, obj: Any, where: str) -> Any:
        if type(obj) is not bool:
            raise DecodeError(f"{where}: expected a bool, got {type(obj).__name__}")
        return obj


class Bytes(Kind):
    def __init__(self, max_len: int, exact: bool = False) -> None:
        self.max_len = max_len
        self.exact = exact

    def _check(self, value: Any) -> str | None:
        if type(value) is not bytes:
            return f"expected bytes, got {type(value).__name__}"
        if self.exact and len(value) != self.max_len:
            return f"expected exactly {self.max_len} bytes, got {len(value)}"
        if len(value) > self.max_len:
            return f"{len(value)} bytes is over the limit of {self.max_len}"
        return None

    def to_wire(self, value: Any) -> Any:
        problem = self._check(value)
        if problem:
            raise UsageError(problem)
        return value

    def from_wire(self, obj: Any, where: str) -> Any:
        problem = self._check(obj)
        if problem:
            raise DecodeError(f"{where}: {problem}")
        return obj


class Text(Kind):
    def __init__(self, max_len: int) -> None:
        self.max_len = max_len

    def to_wire(self, value: Any) -> Any:
        if type(value) is not str or len(value) > self.max_len:
            raise UsageError(f"not a string of at most {self.max_len} characters: {value!r}")
        return value

    def from_wire(self, obj: Any, where: str) -> Any:
        if type(obj) is not str:
            raise DecodeError(f"{where}: expected text, got {type(obj).__name__}")
        if len(obj) > self.max_len:
            raise DecodeError(f"{where}: {len(obj)} characters is over the limit of {self.max_len}")
        return obj


class Optional(Kind):
    """``None`` on the wire is msgpack nil; anything else is the inner kind."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner

    def to_wire(self, value: Any) -> Any:
        return None if value is None else self.inner.to_wire(value)

    def from_wire(self, obj: Any, where: str) -> Any:
        return None if obj is None else self.inner.from_wire(obj, where)


class ListOf(Kind):
    """A homogeneous list; Python side is a tuple (so records stay hashable)."""

    def __init__(self, inner: Kind, max_items: int) -> None:
        self.inner = inner
        self.max_items = max_items

    def to_wire(self, value: Any) -> Any:
        if not isinstance(value, tuple | list) or len(value) > self.max_items:
            raise UsageError(f"not a sequence of at most {self.max_items} items")
        inner = self.inner
        if (
            type(inner) is Bytes
            and not inner.exact
            and (not value or (set(map(type, value)) == {bytes} and max(map(len, value)) <= inner.max_len))
        ):
            return list(value)
        return [inner.to_wire(v) for v in value]

    def from_wire(self, obj: Any, where: str) -> Any:
        if type(obj) is not list:
            raise DecodeError(f"{where}: expected a list, got {type(obj).__name__}")
        if len(obj) > self.max_items:
            raise DecodeError(f"{where}: {len(obj)} items is over the limit of {self.max_items}")
        inner = self.inner
        if type(inner) is Bytes and not inner.exact:
            # The hot case (transactions in a block): one C-speed pass over types
            # and lengths; only on failure look for the offending item.
            if not obj or (set(map(type, obj)) == {bytes} and max(map(len, obj)) <= inner.max_len):
                return tuple(obj)
            for i, item in enumerate(obj):
                problem = inner._check(item)
                if problem:
                    raise DecodeError(f"{where}[{i}]: {problem}")
            return tuple(obj)
        return tuple(inner.from_wire(item, f"{where}[{i}]") for i, item in enumerate(obj))


class Nested(Kind):
    """A record inside a record, encoded as its own field array (no tag)."""

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls

    def to_wire(self, value: Any) -> Any:
        if type(value) is not self.cls:
            raise UsageError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        return record_to_wire(value)

    def from_wire(self, obj: Any, where: str) -> Any:
        return record_from_wire(self.cls, obj, where)


def _schema(cls: type[Any]) -> tuple[tuple[str, Kind], ...]:
    cached: tuple[tuple[str, Kind], ...] | None = cls.__dict__.get("_WIRE_FIELDS")
    if cached is not None:
        return cached
    # Fields with init=False (derived values such as a cached hash) are not encoded.
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kinds: tuple[Kind, ...] = cls.SCHEMA
    if len(names) != len(kinds):
        raise UsageError(f"{cls.__name__}: SCHEMA has {len(kinds)} kinds for {len(names)} fields")
    pairs = tuple(zip(names, kinds, strict=True))
    type.__setattr__(cls, "_WIRE_FIELDS", pairs)
    return pairs


def record_to_wire(value: Any) -> list[Any]:
    return [kind.to_wire(getattr(value, name)) for name, kind in _schema(type(value))]


class _Mismatch(Exception):
    """The fast reader met something it does not accept: the checked reader says what."""


_MISMATCH = _Mismatch()
Read = Callable[[Any], Any]


def _fast_kind(kind: Kind) -> Read:
    """A reader of one field that only accepts what ``kind.from_wire`` accepts, and names nothing."""
    check = _inline_check(kind, "x")
    if check is not None:
        return _generated("read", ["def read(x):", f"    if not ({check}):", "        raise _MISMATCH", "    return x"],
                          {})
    t = type(kind)
    if t is Optional:
        inner = _fast_kind(kind.inner)  # type: ignore[attr-defined]

        def read(x: Any) -> Any:
            return None if x is None else inner(x)
    elif t is ListOf:
        each, most = _fast_kind(kind.inner), kind.max_items  # type: ignore[attr-defined]

        def read(x: Any) -> Any:
            if type(x) is list and len(x) <= most:
                return tuple(map(each, x))
            raise _MISMATCH
    elif t is Nested:
        read = _fast_record(kind.cls)  # type: ignore[attr-defined, assignment]
    else:
        def read(x: Any) -> Any:
            try:
                return kind.from_wire(x, "")
            except DecodeError:
                raise _MISMATCH from None
    return read


def _generated(name: str, lines: list[str], scope: dict[str, Any]) -> Read:
    """The function ``name`` that ``lines`` define, run in ``scope`` (which gets ``_MISMATCH``).  The source
    is only ever built here from a schema's own numbers and names."""
    scope["_MISMATCH"] = _MISMATCH
    exec("\n".join(lines), scope)
    made: Read = scope[name]
    return made


def _inline_check(kind: Kind, name: str) -> str | None:
    """The check of a plain kind's value, as an expression on ``name`` (``_fast_kind`` and ``_fast_record``
    both generate from it); None for kinds that need a reader of their own (records, lists, optionals)."""
    t = type(kind)
    if t is UInt:
        return f"type({name}) is int and 0 <= {name} <= {int(kind.maximum)}"  # type: ignore[attr-defined]
    if t is Bool:
        return f"type({name}) is bool"
    if t is Bytes:
        op = "==" if kind.exact else "<="  # type: ignore[attr-defined]
        return f"type({name}) is bytes and len({name}) {op} {int(kind.max_len)}"  # type: ignore[attr-defined]
    if t is Text:
        return f"type({name}) is str and len({name}) <= {int(kind.max_len)}"  # type: ignore[attr-defined]
    return None


def _fast_record(cls: type[R]) -> Callable[[Any], R]:
    """Wire array -> record, checking every field like ``record_from_wire`` but without naming them.

    The reader is generated once per class, with the checks of its plain fields
    written inline: a call per field, and a list built per record, cost more
    than the checks themselves, and every transaction is decoded at least once
    on every node (about 40% less time per record than a loop over readers).
    """
    found: Callable[[Any], R] | None = cls.__dict__.get("_FAST_READ")
    if found is not None:
        return found
    kinds = [kind for _, kind in _schema(cls)]
    names = [f"x{i}" for i in range(len(kinds))]
    scope: dict[str, Any] = {"_cls": cls}
    lines = ["def fast_read(obj):", f"    if type(obj) is not list or len(obj) != {len(kinds)}:",
             "        raise _MISMATCH"]
    if kinds:
        lines.append(f"    {', '.join(names)}, = obj")
    args = []
    for i, (kind, name) in enumerate(zip(kinds, names, strict=True)):
        check = _inline_check(kind, name)
        if check is None:
            scope[f"_read{i}"] = _fast_kind(kind)
            args.append(f"_read{i}({name})")
        else:
            lines += [f"    if not ({check}):", "        raise _MISMATCH"]
            args.append(name)
    lines.append(f"    return _cls({', '.join(args)})")
    fast_read: Callable[[Any], R] = _generated("fast_read", lines, scope)
    type.__setattr__(cls, "_FAST_READ", fast_read)
    return fast_read


def record_from_wire(cls: type[R], obj: Any, where: str = "") -> R:
    """Decode a wire array into ``cls``: fast when it is good, a ``DecodeError`` naming the field when not."""
    try:
        return _fast_record(cls)(obj)
    except (_Mismatch, ValueError, TypeError):
        return checked_record_from_wire(cls, obj, where)


def fast_record_or_none(cls: type[R], obj: Any) -> R | None:
    """The fast reader's answer alone: the record, or None where it refuses (and ``record_from_wire`` would
    ask ``checked_record_from_wire``, which names the field).  For tests that hold the two to agree."""
    try:
        return _fast_record(cls)(obj)
    except (_Mismatch, ValueError, TypeError):
        return None


def checked_record_from_wire(cls: type[R], obj: Any, where: str = "") -> R:
    """Decode field by field, raising a ``DecodeError`` that names the first field that is wrong."""
    where = where or cls.__name__
    fields = _schema(cls)
    if type(obj) is not list:
        raise DecodeError(f"{where}: expected an array, got {type(obj).__name__}")
    if len(obj) != len(fields):
        raise DecodeError(f"{where}: expected {len(fields)} fields, got {len(obj)}")
    values = [kind.from_wire(item, f"{where}.{name}") for (name, kind), item in zip(fields, obj, strict=True)]
    try:
        return cls(*values)
    except (ValueError, TypeError) as exc:  # a record's own __post_init__ checks
        raise DecodeError(f"{where}: {exc}") from None


_PACKERS = threading.local()


def pack(obj: Any) -> bytes:
    """The msgpack bytes of ``obj`` (binary as bin, text as str): the canonical encoding.

    One ``Packer`` per thread, reused: ``msgpack.packb`` builds a new one per
    call, and building one costs more than packing a small record.  A failed
    pack leaves the packer empty, so the next call starts clean.
    """
    try:
        packer = _PACKERS.packer
    except AttributeError:
        packer = _PACKERS.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(obj)  # type: ignore[no-any-return]


def unpack_strict(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Unpack one msgpack value; reject trailing bytes and non-canonical forms."""
    if type(data) is not bytes:
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise DecodeError(f"{len(data)} bytes is over the limit of {max_bytes}")
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the value") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # Some msgpack errors (a reserved byte, nesting too deep) carry no text.
        raise DecodeError(f"not valid msgpack: {str(exc) or type(exc).__name__}") from None
    # Re-packing must give the same bytes, so that a hash or signature over the
    # received bytes always equals one over our own encoding of the value.
    try:
        again = pack(obj)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError(f"value cannot be encoded canonically: {exc}") from None
    if again != data:
        raise DecodeError("not the canonical encoding of its value")
    return obj


def encode(value: Any) -> bytes:
    """Canonical bytes of a record (no type tag)."""
    return pack(record_to_wire(value))


def decode_leading(cls: type[R], data: bytes) -> R:
    """The first field of an encoded record, itself a record of ``cls``, decoded without reading the rest.

    For a large record whose head is wanted alone (a block's header without its
    transactions).  The field must be canonically encoded, as ``decode`` asks of
    a whole record.
    """
    unpacker = msgpack.Unpacker(raw=False, use_list=True, strict_map_key=True, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    try:
        if unpacker.read_array_header() < 1:
            raise DecodeError("an empty record has no leading field")
        start = unpacker.tell()
        wire = unpacker.unpack()
        end = unpacker.tell()
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.OutOfData) as exc:
        raise DecodeError(f"not valid msgpack: {str(exc) or type(exc).__name__}") from None
    if pack(wire) != data[start:end]:
        raise DecodeError("not the canonical encoding of its value")
    return record_from_wire(cls, wire)


def decode(cls: type[R], data: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> R:
    """Strictly decode canonical bytes into a record of ``cls``."""
    return record_from_wire(cls, unpack_strict(data, max_bytes))


class MessageCodec:
    """Tagged records on one wire: ``[tag, field1, ...]``."""

    def __init__(self, classes: Sequence[type[Any]], max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._by_tag: dict[int, type[Any]] = {}
        self._tag_of: dict[type[Any], int] = {}
        for cls in classes:
            tag: int = cls.TAG
            if tag in self._by_tag:
                raise UsageError(f"tag {tag} used twice ({cls.__name__})")
            self._by_tag[tag] = cls
            self._tag_of[cls] = tag
            _schema(cls)

    def encode(self, message: Any) -> bytes:
        tag = self._tag_of.get(type(message))
        if tag is None:
            raise UsageError(f"{type(message).__name__} is not a message of this codec")
        return pack([tag, *record_to_wire(message)])

    def decode(self, data: bytes) -> Any:
        obj = unpack_strict(data, self.max_bytes)
        if type(obj) is not list or not obj:
            raise DecodeError("a message must be a non-empty array")
        tag = obj[0]
        if type(tag) is not int:
            # Never repr() the peer's value: a deeply nested array overflows the recursion limit.
            raise DecodeError(f"unknown message tag: expected an integer, got {type(tag).__name__}")
        cls = self._by_tag.get(tag)
        if cls is None:
            raise DecodeError(f"unknown message tag {tag}")
        return record_from_wire(cls, obj[1:])
