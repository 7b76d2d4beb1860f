"""Signed statements: the exact bytes an actor signs, the stored envelope and the Merkle leaf.

Formats (documented in docs/integrity.md):

* signed bytes   = ``EVENT_CONTEXT`` || RFC 8785 canonical JSON of the statement object
* event hash     = SHA-256(signed bytes), hex; the next event of the stream carries it as ``prev``
* stored state   = ``ENVELOPE_MAGIC`` || recorded_at (u64 BE, µs since epoch) || signature (64) ||
  signed bytes — the eventsourcing ``state`` column holds exactly this
* leaf bytes     = position (u64 BE) || stored state; leaf hash = SHA-256(0x00 || leaf bytes)

The statement is never re-serialized for verification: verifiers split the stored state and check
the signature over the stored signed bytes, then parse them.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from ledger.errors import InputError

FORMAT_VERSION = 1
# Domain separation: a signature over an event can never be taken for any other message
# (checkpoint notes have their own C2SP format and key name).
EVENT_CONTEXT = b"xinfang-ledger/v1/event\n"
ENVELOPE_MAGIC = b"XFE1"
_HEADER = struct.Struct(">4sQ64s")
ZERO_HASH = "0" * 64
DIRECTORY_STREAM = "directory"


_MAX_EXACT_INT = 2**53 - 1


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


def format_time(moment: datetime) -> str:
    """ISO 8601 with offset, second precision unless sub-seconds were given."""
    if moment.tzinfo is None:
        raise InputError(f"time {moment.isoformat()} has no UTC offset",
                         "Give times as ISO 8601 with an offset, e.g. 2025-03-02T09:30:00+08:00.")
    return moment.isoformat()


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"not an ISO 8601 time: {text!r}",
                         "Use e.g. 2025-03-02T09:30:00+08:00.") from None
    if moment.tzinfo is None:
        raise InputError(f"time {text!r} has no UTC offset",
                         "Give times as ISO 8601 with an offset, e.g. 2025-03-02T09:30:00+08:00.")
    return moment


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
    v: int = FORMAT_VERSION

    def to_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "v": self.v, "origin": self.origin, "stream": self.stream, "seq": self.seq,
            "prev": self.prev, "type": self.type, "at": self.at, "actor": self.actor,
            "key": self.key, "data": self.data,
        }
        if self.cmd is not None:
            obj["cmd"] = self.cmd
        return obj

    def signed_bytes(self) -> bytes:
        return EVENT_CONTEXT + canonical_bytes(self.to_object())

    @classmethod
    def from_signed_bytes(cls, signed: bytes, *, strict: bool = True) -> Statement:
        """Parse stored signed bytes; raises ValueError on any deviation from the format.

        ``strict`` also proves the bytes are RFC 8785 canonical (a pure-Python re-encoding,
        so verification does it in its worker processes, not on the sequential path).
        """
        if not signed.startswith(EVENT_CONTEXT):
            raise ValueError("signed bytes lack the event context prefix")
        body = signed[len(EVENT_CONTEXT):]
        obj = json.loads(body.decode("utf-8"))
        if type(obj) is not dict:
            raise ValueError("statement is not a JSON object")
        if strict and _compact_sorted(obj) != body and canonical_bytes(obj) != body:
            raise ValueError("statement is not in RFC 8785 canonical form")
        keys = obj.keys()
        if not keys >= _FIELDS or len(keys) - len(_FIELDS) != ("cmd" in keys):
            raise ValueError(f"statement fields {sorted(keys)} are not the v1 set")
        if type(obj["v"]) is not int or obj["v"] != FORMAT_VERSION:
            raise ValueError(f"unknown statement version {obj['v']!r}")
        for name, kind in _FIELD_TYPES:   # exact types: a JSON true is no int here
            if type(obj[name]) is not kind:
                raise ValueError(f"statement field {name!r} has the wrong type")
        cmd = obj.get("cmd")
        if cmd is not None and type(cmd) is not str:
            raise ValueError("statement field 'cmd' has the wrong type")
        return cls(origin=obj["origin"], stream=obj["stream"], seq=obj["seq"], prev=obj["prev"],
                   type=obj["type"], at=obj["at"], actor=obj["actor"], key=obj["key"],
                   data=obj["data"], cmd=cmd)

    @property
    def business_time(self) -> datetime:
        return datetime.fromisoformat(self.at)


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
        if len(state) < _HEADER.size or state[:4] != ENVELOPE_MAGIC:
            raise ValueError("stored state is not an xinfang envelope")
        _, recorded, signature = _HEADER.unpack_from(state)
        return cls(recorded, signature, bytes(state[_HEADER.size:]))

    @property
    def recorded_at(self) -> datetime:
        return datetime.fromtimestamp(self.recorded_at_us / 1_000_000, tz=UTC)

    @property
    def hash(self) -> str:
        return event_hash(self.signed)


def leaf_bytes(position: int, state: bytes) -> bytes:
    return struct.pack(">Q", position) + state


def now_us() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1_000_000)
