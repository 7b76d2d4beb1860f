"""Signed statements: the exact bytes an actor signs, the stored envelope and the Merkle leaf.

Formats (documented in docs/integrity.md):

* signed bytes   = ``EVENT_CONTEXT`` || RFC 8785 canonical JSON of the statement object
* event hash     = SHA-256(signed bytes), hex; the next event of the stream carries it as ``prev``
* stored state   = ``ENVELOPE_MAGIC`` || recorded_at (u64 BE, µs since epoch) || signature (64) ||
  signed bytes — the eventsourcing ``state`` column holds exactly this
* leaf bytes     = position (u64 BE) || stored state; leaf hash = SHA-256(0x00 || leaf bytes)

The statement is never re-serialized for verification: verifiers split the stored state and check
the signature over the stored signed bytes, then parse them. Parsing is strict and bounded
(``schemas/bounds.py``): any deviation is a ValueError with a one-line reason, never an overflow,
a RecursionError or a surrogate that breaks printing later (issue 9, "Verifiers never crash").
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785

from ledger.errors import InputError
from schemas.bounds import (
    MAX_DEPTH,
    MAX_FIELD_CHARS,
    MAX_INT,
    MAX_RECORDED_US,
    MAX_STATEMENT_BYTES,
    time_problem,
)

FORMAT_VERSION = 1
# Domain separation: a signature over an event can never be taken for any other message
# (checkpoint notes have their own C2SP format and key name).
EVENT_CONTEXT = b"xinfang-ledger/v1/event\n"
ENVELOPE_MAGIC = b"XFE1"
_HEADER = struct.Struct(">4sQ64s")
ZERO_HASH = "0" * 64
DIRECTORY_STREAM = "directory"


_MAX_EXACT_INT = MAX_INT
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _plain(value: Any) -> bool:
    """True for values whose RFC 8785 form equals Python's sorted compact JSON: strings, safe
    integers, booleans, null, lists, and objects with ASCII keys (ASCII sorts the same by
    code point as by UTF-16 unit). Floats and other keys take the reference implementation.
    (An explicit stack with exact type checks: this runs once per signed event.)"""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_EXACT_INT <= item <= _MAX_EXACT_INT:
                return False
        elif kind is dict:
            for key, child in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(child)
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


def _compact_sorted(obj: Any) -> bytes | None:
    """Python's sorted compact JSON: equal to RFC 8785 for plain values (see below). Used to
    accept canonical input quickly; the action schemas reject the non-plain values (floats)
    where the two encodings could differ."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return None


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON.

    Our statements hold only plain values, for which the stdlib encoder with sorted keys,
    compact separators and no ASCII escaping produces exactly the JCS bytes (same escapes:
    \\b \\f \\n \\r \\t, other controls as lowercase \\u00xx); a property test pins
    this equivalence against the ``rfc8785`` package, which handles everything else.
    """
    if _plain(obj):
        fast = _compact_sorted(obj)
        if fast is not None:   # None: lone surrogates, which the reference rejects
            return fast
    return rfc8785.dumps(obj)


_TIME_HINT = "Give times as ISO 8601 with an offset, e.g. 2025-03-02T09:30:00+08:00."


def format_time(moment: datetime) -> str:
    """ISO 8601 with offset, second precision unless sub-seconds were given."""
    problem = time_problem(moment)
    if problem is not None:
        raise InputError(problem, _TIME_HINT)
    return moment.isoformat()


def parse_time(text: str) -> datetime:
    """A time given by a user (e.g. ``--at``): ISO 8601, with an offset, within the bounds."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"not an ISO 8601 time: {text!r}",
                         "Use e.g. 2025-03-02T09:30:00+08:00.") from None
    problem = time_problem(moment)
    if problem is not None:
        raise InputError(problem, _TIME_HINT)
    return moment


def parse_signed_time(text: str) -> datetime:
    """A business time read from signed bytes; raises ValueError unless it is exactly what
    :func:`format_time` writes (ISO 8601 with an offset) and within the bounds."""
    moment = datetime.fromisoformat(text)   # ValueError on anything that is not ISO 8601
    problem = time_problem(moment)
    if problem is not None:
        raise ValueError(problem)
    if moment.isoformat() != text:
        raise ValueError(f"time {text!r} is not in the form the ledger writes "
                         f"({moment.isoformat()})")
    return moment


def _reject_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer (statements hold no fractions)")


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _bounded_int(text: str) -> int:
    # Length first: int() of thousands of digits is slow (and refused past 4300 digits).
    value = int(text) if len(text) <= 17 else MAX_INT + 1
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"integer {text[:20]}{'…' if len(text) > 20 else ''} is outside "
                         "±(2^53-1)")
    return value


# Floats, NaN and Infinity never occur in statements, and integers are exact (I-JSON);
# refusing the rest while parsing keeps every parsed value "plain" (see _plain), so the
# canonical re-encoding below cannot fail. The hooks run only for numbers, which are few.
_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_int=_bounded_int,
                            parse_constant=_reject_constant)


def _bounded_json(body: bytes) -> Any:
    """Parse statement JSON within the bounds: size, nesting depth, exact integers (checked by
    the decoder), valid Unicode (no lone surrogates, which only ``\\u`` escapes can produce).
    ValueError if not."""
    if len(body) > MAX_STATEMENT_BYTES:
        raise ValueError(f"statement is {len(body)} bytes, more than {MAX_STATEMENT_BYTES}")
    text = body.decode("utf-8")   # UnicodeDecodeError is a ValueError
    try:
        obj = _DECODER.decode(text)
    except RecursionError:
        raise ValueError(f"statement nests deeper than {MAX_DEPTH}") from None
    escapes = "\\u" in text
    # Fast path (this runs for every event): with few brackets the depth is bounded, and
    # lone surrogates need a \u escape. Brackets inside strings only cost the full walk.
    if not escapes and text.count("[") + text.count("{") <= MAX_DEPTH:
        return obj
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            if escapes and not item.isascii():
                _check_scalars(item)
        elif kind is dict or kind is list:
            if depth >= MAX_DEPTH:
                raise ValueError(f"statement nests deeper than {MAX_DEPTH}")
            if kind is dict:
                for key, child in item.items():
                    if escapes and not key.isascii():
                        _check_scalars(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return obj


def _check_scalars(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("string holds a lone UTF-16 surrogate") from None


_FIELD_TYPES = (("origin", str), ("stream", str), ("seq", int), ("prev", str), ("type", str),
                ("at", str), ("actor", str), ("key", str), ("data", dict))
_FIELDS = frozenset({"v", *(name for name, _ in _FIELD_TYPES)})


@dataclass(frozen=True, slots=True)
class Statement:
    """What an actor asserts. ``data`` is the action's validated, JSON-ready payload."""

    origin: str
    stream: str
    seq: int
    prev: str
    type: str
    at: str
    actor: str
    key: str
    data: dict[str, Any]
    cmd: str | None = None
    migration: str | None = None   # names the migration batch (补录 of paper records)
    v: int = FORMAT_VERSION

    def to_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "v": self.v, "origin": self.origin, "stream": self.stream, "seq": self.seq,
            "prev": self.prev, "type": self.type, "at": self.at, "actor": self.actor,
            "key": self.key, "data": self.data,
        }
        if self.cmd is not None:
            obj["cmd"] = self.cmd
        if self.migration is not None:
            obj["migration"] = self.migration
        return obj

    def signed_bytes(self) -> bytes:
        return EVENT_CONTEXT + canonical_bytes(self.to_object())

    @classmethod
    def from_signed_bytes(cls, signed: bytes, *, strict: bool = True) -> Statement:
        """Parse stored signed bytes; raises ValueError on any deviation from the format.

        Always: at most 1 MiB, nesting at most 32 deep, integers only and within ±(2^53-1), no
        lone surrogates, exact field types, seq >= 1, a business time in the form
        :func:`format_time` writes and within the bounds. ``strict`` also proves the bytes are
        the RFC 8785 encoding of the parsed object (verifiers use :meth:`parse_signed`, which
        decodes once and reports it); the action data's own types are checked by
        ``schemas.actions.data_problem``.
        """
        obj, body = _signed_object(signed)
        if strict and not _is_canonical(obj, body):
            raise ValueError("statement is not in RFC 8785 canonical form")
        return cls._from_object(obj, body)[0]

    @classmethod
    def parse_signed(cls, signed: bytes) -> tuple[Statement, datetime, bool]:
        """For verifiers, decoding once: the statement as ``from_signed_bytes(strict=False)``
        parses it (ValueError likewise), its business time, and whether the bytes are exactly
        the RFC 8785 form (what ``strict`` would have raised for)."""
        obj, body = _signed_object(signed)
        statement, at = cls._from_object(obj, body)
        return statement, at, _is_canonical(obj, body)

    @classmethod
    def _from_object(cls, obj: dict[str, Any], body: bytes) -> tuple[Statement, datetime]:
        keys = obj.keys()
        optional = ("cmd" in keys) + ("migration" in keys)
        if not keys >= _FIELDS or len(keys) - len(_FIELDS) != optional:
            missing = sorted(_FIELDS - keys)
            extra = sorted(k[:40] for k in keys - _FIELDS - {"cmd", "migration"})[:3]
            raise ValueError(f"statement fields are not the v1 set (missing {missing}, "
                             f"unexpected {extra})")
        if type(obj["v"]) is not int or obj["v"] != FORMAT_VERSION:
            raise ValueError(f"unknown statement version {obj['v']!r:.40}")
        short = len(body) <= MAX_FIELD_CHARS   # then no string in it can be too long
        for name, kind in _FIELD_TYPES:   # exact types: a JSON true is no int here
            value = obj[name]
            if type(value) is not kind:
                raise ValueError(f"statement field {name!r} has the wrong type")
            if not short and isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
                raise ValueError(f"statement field {name!r} is longer than {MAX_FIELD_CHARS}")
        cmd = obj.get("cmd")
        if cmd is not None and (type(cmd) is not str or len(cmd) > MAX_FIELD_CHARS):
            raise ValueError("statement field 'cmd' has the wrong type or length")
        migration = obj.get("migration")   # optional; when present, a string
        if "migration" in keys and (type(migration) is not str
                                    or len(migration) > MAX_FIELD_CHARS):
            raise ValueError("statement field 'migration' has the wrong type or length")
        if obj["seq"] < 1:
            raise ValueError(f"sequence number {obj['seq']} is not positive")
        at = parse_signed_time(obj["at"])
        return cls(origin=obj["origin"], stream=obj["stream"], seq=obj["seq"], prev=obj["prev"],
                   type=obj["type"], at=obj["at"], actor=obj["actor"], key=obj["key"],
                   data=obj["data"], cmd=cmd, migration=migration), at

    @property
    def business_time(self) -> datetime:
        return datetime.fromisoformat(self.at)


def _signed_object(signed: bytes) -> tuple[dict[str, Any], bytes]:
    """The decoded statement object of signed bytes, and its JSON body (ValueError if not)."""
    if not signed.startswith(EVENT_CONTEXT):
        raise ValueError("signed bytes lack the event context prefix")
    body = signed[len(EVENT_CONTEXT):]
    obj = _bounded_json(body)
    if type(obj) is not dict:
        raise ValueError("statement is not a JSON object")
    return obj, body


# A UTF-8 lead byte of a supplementary-plane character (U+10000 and above).
_SUPPLEMENTARY = re.compile(rb"[\xf0-\xf4]")


def _is_canonical(obj: Any, body: bytes) -> bool:
    """Whether ``body`` is exactly the RFC 8785 form of ``obj``, which :func:`_bounded_json`
    decoded from it. Its values are all plain (see :func:`_plain`) except that keys may be
    non-ASCII; Python's key order differs from RFC 8785's UTF-16 order only where a key holds
    a supplementary-plane character, which a canonical body holds as raw UTF-8. So without
    one in the body the stdlib encoding decides; with one the reference does (property
    tests pin both against ``rfc8785``)."""
    if _SUPPLEMENTARY.search(body) is None:
        return _sorted_compact(obj) == body
    try:
        return canonical_bytes(obj) == body
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return False


def _make_encoder() -> Callable[[Any, int], Any] | None:
    """The C encoder behind :func:`_compact_sorted`'s ``json.dumps``, built once: what
    ``dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)``
    builds on every call (decoded JSON holds no cycles). None where there is no C encoder."""
    from json import encoder

    make: Any = getattr(encoder, "c_make_encoder", None)   # CPython's C accelerator
    if make is None:   # pragma: no cover - CPython has it
        return None
    built: Callable[[Any, int], Any] = make(None, None, encoder.encode_basestring, None, ":",
                                            ",", True, False, False)
    return built


_C_ENCODER = _make_encoder()


def _sorted_compact(obj: Any) -> bytes | None:
    """The bytes of :func:`_compact_sorted`, about twice as fast (tests pin them equal)."""
    if _C_ENCODER is None:   # pragma: no cover
        return _compact_sorted(obj)
    try:
        return "".join(_C_ENCODER(obj, 0)).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError):
        return None


def event_hash(signed: bytes) -> str:
    return hashlib.sha256(signed).hexdigest()


@dataclass(frozen=True, slots=True)
class Envelope:
    """The stored form of one event."""

    recorded_at_us: int
    signature: bytes
    signed: bytes

    def to_bytes(self) -> bytes:
        return _HEADER.pack(ENVELOPE_MAGIC, self.recorded_at_us, self.signature) + self.signed

    @classmethod
    def from_bytes(cls, state: bytes) -> Envelope:
        """Split a stored state; raises ValueError unless it is an envelope within bounds."""
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise ValueError(f"stored state is {type(state).__name__}, not bytes")
        if len(state) < _HEADER.size or bytes(state[:4]) != ENVELOPE_MAGIC:
            raise ValueError("stored state is not an xinfang envelope")
        if len(state) - _HEADER.size - len(EVENT_CONTEXT) > MAX_STATEMENT_BYTES:
            raise ValueError(f"stored state is larger than {MAX_STATEMENT_BYTES} bytes")
        _, recorded, signature = _HEADER.unpack_from(state)
        if recorded >= MAX_RECORDED_US:
            raise ValueError(f"recorded time {recorded} µs is not before 2200-01-01")
        return cls(recorded, signature, bytes(state[_HEADER.size:]))

    @property
    def recorded_at(self) -> datetime:
        # Exact µs arithmetic (no float); bounded by from_bytes.
        return _EPOCH + timedelta(microseconds=self.recorded_at_us)

    @property
    def hash(self) -> str:
        return event_hash(self.signed)


def leaf_bytes(position: int, state: bytes) -> bytes:
    """ValueError for what no log holds: a position that is not an integer in 0..2^53-1 (a
    hostile SQLite row can hold a float or text there) or a state that is not bytes."""
    if type(position) is not int or not 0 <= position <= MAX_INT:
        raise ValueError(f"log position {position!r:.40} is not an integer in 0..2^53-1")
    if not isinstance(state, (bytes, bytearray, memoryview)):
        raise ValueError(f"stored state is {type(state).__name__}, not bytes")
    return struct.pack(">Q", position) + state


def now_us() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1_000_000)
