"""Offline bundles: one JSON file that proves one or more cases' histories without the database.

``export_bundle`` reads a ledger and writes every stored event of the chosen cases, of the
earlier cases their ``repeat_of`` names (transitively) and of the whole directory, each with an
RFC 9162 inclusion proof against the latest signed checkpoint. ``verify_bundle`` needs only the
bundle and the two trust anchors, each given by its role (the log key and the admin key). It
replays the events through the very per-event checks of ``xinfang verify``
(:class:`ledger.verification.verify.EventChecker`), with the inclusion proofs standing in for
the stored Merkle tables. Any bytes give a report; nothing in a bundle can make it raise. The
format is specified in docs/bundle-format.md so that others can write their own verifier.

With a witness policy (docs/witness.md) the bundle carries its witness cosignatures: on its
checkpoint (extra signature lines, which older verifiers ignore), or, when only an earlier
checkpoint was cosigned, that one in ``witnessed`` with a consistency proof to the checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ledger.errors import EnvironmentProblem, InputError, LedgerError, VerificationError
from ledger.log.checkpoint import CheckpointError, parse_checkpoint, verify_checkpoint, verify_note
from ledger.log.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.log.statement import DIRECTORY_STREAM, Envelope, Statement, event_hash, leaf_bytes
from ledger.storage.store import Store, StoredRecord
from ledger.verification.checker import (
    EventChecker,
    KeyBook,
    MemoryCases,
    check_signatures,
    parse_entry,
)
from ledger.verification.trust import WitnessPolicy
from ledger.verification.verify import CHECK_NAMES as LEDGER_CHECK_NAMES
from ledger.verification.verify import Failure
from ledger.verification.witnessed import (
    BundleLeaf,
    WitnessedSet,
    check_bundle,
    cosigned_note,
    fetch_witnessed,
)
from schemas.actions import CASE_NO_PATTERN

BUNDLE_FORMAT = "xinfang-ledger/bundle/v1"
# First line of the stream-heads note; no checkpoint origin can be this, so the two kinds of
# note signed by the log key cannot be taken for each other.
HEADS_HEADER = "xinfang-ledger/stream-heads/v1"

CHECK_NAMES: dict[int, str] = {
    0: "bundle structure",
    **{n: name for n, name in LEDGER_CHECK_NAMES.items() if n < 7},
    7: "inclusion proof against the checkpoint signed by the trusted log key",
    8: "witness cosignatures under the trust policy",
}

_HEX_HASH = re.compile(r"^[0-9a-f]{64}$")
_ENVELOPE_HEADER = 76   # magic, recorded time, signature (docs/bundle-format.md section 4.1)


# ---- export --------------------------------------------------------------------------------

def export_bundle(store: Store, cases: Sequence[str], *,
                  exported_at: datetime | None = None,
                  sign_heads: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The bundle (a JSON-ready dict) of ``cases`` against the ledger's latest checkpoint.

    ``sign_heads`` (the log key's note signer) adds the signed stream-heads note, which lets a
    verifier tell that no later event of an included stream was left out.
    Raises InputError for an unknown case and VerificationError when the ledger cannot prove
    one of its own events (run ``xinfang verify`` to find out why).
    """
    subjects = list(dict.fromkeys(cases))
    if not subjects:
        raise InputError("no case to export", "Name one or more cases, or use --all-closed.")
    stored = store.latest_checkpoint()
    if stored is None:
        raise EnvironmentProblem("the ledger has no signed checkpoint",
                                 "Run `xinfang checkpoint` first.")
    try:
        checkpoint = parse_checkpoint(stored.note).checkpoint
    except CheckpointError as exc:
        raise VerificationError(f"the ledger's latest checkpoint is malformed: {exc}",
                                "Run `xinfang verify` to find what was changed.") from None
    streams: dict[str, list[StoredRecord]] = {DIRECTORY_STREAM: store.stream(DIRECTORY_STREAM)}
    for case in subjects:
        records = store.stream(case) if case != DIRECTORY_STREAM else []
        if not records:
            raise InputError(f"unknown case {case}", "Check the case number.")
        streams[case] = records
    referenced = _add_referenced_cases(store, streams)
    records = sorted((r for rs in streams.values() for r in rs), key=lambda r: r.position)
    events = [entry for r in records
              if (entry := _entry(store, r, checkpoint.size, checkpoint.root)) is not None]
    note, witnessed = _witnessed(store, stored.note, checkpoint.size, checkpoint.root)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "origin": checkpoint.origin,
        "exported_at": (exported_at or datetime.now(tz=UTC)).isoformat(timespec="seconds"),
        "cases": subjects,
        "referenced_cases": referenced,
        "checkpoint": note,
        **({"witnessed": witnessed} if witnessed is not None else {}),
        "events": events,
    }
    if sign_heads is not None:
        bundle["stream_heads"] = sign_heads(heads_note_text(checkpoint.origin, checkpoint.size,
                                                            _heads(events)))
    return bundle


def _witnessed(store: Store, note: str, size: int, root: bytes
               ) -> tuple[str, dict[str, Any] | None]:
    """The checkpoint with the witness cosignatures kept for it; failing those, the latest of
    a few earlier cosigned checkpoints that the stored tree proves consistent with it (a
    checkpoint cosigned before a rewrite is never offered)."""
    cosigned = cosigned_note(store, note)
    if cosigned != note:
        return cosigned, None
    for earlier in [s for s in store.cosigned_sizes() if 0 < s < size][-3:][::-1]:
        base = store.cosignatures(earlier)[0][3]
        try:
            old = parse_checkpoint(base).checkpoint
            proof = consistency_proof(earlier, size, store.get_node)
        except (CheckpointError, LedgerError):
            continue
        if old.size == earlier and verify_consistency(earlier, size, old.root, root, proof):
            return note, {"checkpoint": cosigned_note(store, base),
                          "consistency_proof": [node.hex() for node in proof]}
    return note, None


def _heads(events: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """Each included stream's last event (seq, hash) as of the checkpoint."""
    heads: dict[str, tuple[int, str]] = {}
    for event in events:
        state = base64.b64decode(event["envelope"])
        # the hash of the signed bytes, split without parsing: a stored event the verifier
        # will reject must not stop the export
        heads[event["stream"]] = (event["seq"], event_hash(state[_ENVELOPE_HEADER:]))
    return heads


def heads_note_text(origin: str, size: int, heads: dict[str, tuple[int, str]]) -> str:
    """The stream-heads note body: a header line, origin, tree size, one line per stream."""
    lines = [HEADS_HEADER, origin, str(size)]
    lines += [f"{stream} {seq} {digest}" for stream, (seq, digest) in sorted(heads.items())]
    return "\n".join(lines) + "\n"


def bundle_bytes(bundle: dict[str, Any]) -> bytes:
    """The bundle file: UTF-8 JSON, two-space indented, ending in a newline."""
    return (json.dumps(bundle, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _add_referenced_cases(store: Store, streams: dict[str, list[StoredRecord]]) -> list[str]:
    """Add the earlier cases named by ``repeat_of`` (transitively): the rules look them up."""
    referenced: list[str] = []
    queue = deque(name for name in streams if name != DIRECTORY_STREAM)
    while queue:
        for record in streams[queue.popleft()]:
            if record.type != "register":
                continue
            try:
                statement = Statement.from_signed_bytes(
                    Envelope.from_bytes(record.state).signed, strict=False)
            except (ValueError, TypeError, OverflowError, RecursionError):
                continue   # an unreadable event: exported as it is, for the verifier to name
            repeat_of = statement.data.get("repeat_of")
            for earlier in repeat_of if isinstance(repeat_of, list) else []:
                if not isinstance(earlier, str) or not CASE_NO_PATTERN.match(earlier) \
                        or earlier in streams:
                    continue
                records = store.stream(earlier)
                if records:   # a dangling reference is left for the verifier to report
                    streams[earlier] = records
                    referenced.append(earlier)
                    queue.append(earlier)
    return sorted(referenced)


def _entry(store: Store, record: StoredRecord, size: int, root: bytes) -> dict[str, Any] | None:
    """One bundle event with its inclusion proof; None if written after the checkpoint."""
    index = store.leaf_index(record.position)
    where = f"{record.stream}#{record.seq} at position {record.position}"
    if index is None:
        raise VerificationError(f"{where} has no Merkle leaf in the ledger",
                                "Run `xinfang verify` to find what was changed.")
    if index >= size:
        return None
    proof = inclusion_proof(index, size, store.get_node)
    if not verify_inclusion(leaf_hash(leaf_bytes(record.position, record.state)), index, size,
                            proof, root):
        raise VerificationError(f"the ledger cannot prove {where} against its checkpoint",
                                "Run `xinfang verify` to find what was changed.")
    return {
        "position": record.position,
        "leaf_index": index,
        "stream": record.stream,
        "seq": record.seq,
        "type": record.type,
        "envelope": base64.b64encode(record.state).decode("ascii"),
        "inclusion_proof": [node.hex() for node in proof],
    }


# ---- verification ----------------------------------------------------------------------------

# Bounds on everything parsed from a bundle (issue 9, "Verifiers never crash"): hostile bytes
# give a failure report, never a traceback, a hang or a huge allocation. Each is far above what
# an honest export holds (docs/bundle-format.md sections 2-3).
MAX_BUNDLE_BYTES = 1 << 30          # the whole file
MAX_ENVELOPE_BYTES = 2 << 20        # one stored event; a statement is at most 1 MiB
MAX_POSITION = 2**63 - 1            # an SQL BIGINT; leaf bytes carry it as a u64
MAX_PROOF_NODES = 64                # the audit path of a tree of fewer than 2^64 leaves
MAX_NOTE_CHARS = 1 << 16            # the checkpoint note: three lines and its signatures
MAX_REASON_CHARS = 400              # a failure's reason quotes bundle text at most this long
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"   # a stream: `directory` or a case number
_TYPE = r"^[a-z][a-z0-9_.]{0,63}$"
_B64_CHARS = 4 * -(-MAX_ENVELOPE_BYTES // 3)

_Name = Annotated[str, StringConstraints(pattern=_NAME)]
_Count = Annotated[int, Field(ge=1, le=MAX_POSITION)]


class _EventModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    position: _Count
    leaf_index: int = Field(ge=0, le=MAX_POSITION)
    stream: _Name
    seq: _Count
    type: str = Field(pattern=_TYPE)
    envelope: str = Field(max_length=_B64_CHARS)
    inclusion_proof: list[str] = Field(max_length=MAX_PROOF_NODES)


class _WitnessedModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    checkpoint: str = Field(max_length=MAX_NOTE_CHARS)
    consistency_proof: list[Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]] = \
        Field(max_length=MAX_PROOF_NODES)


class _BundleModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: str
    origin: str = Field(min_length=1, max_length=1024)
    exported_at: str = Field(max_length=64)
    cases: list[_Name] = Field(min_length=1)
    referenced_cases: list[_Name]
    checkpoint: str = Field(max_length=MAX_NOTE_CHARS)
    events: list[_EventModel] = Field(min_length=1)
    stream_heads: str | None = None
    witnessed: _WitnessedModel | None = None


@dataclass(frozen=True)
class BundleEvent:
    """One decoded bundle event: the stored envelope bytes and their proof."""

    position: int
    leaf_index: int
    stream: str
    seq: int
    type: str
    state: bytes
    proof: tuple[bytes, ...]


@dataclass
class BundleReport:
    """The verdict on a bundle; ``failures`` are sorted, so the first names the first bad event."""

    ok: bool
    origin: str | None = None
    cases: list[str] = field(default_factory=list)
    events: int = 0
    streams: int = 0
    checkpoint_size: int | None = None
    checkpoint_root: str | None = None
    complete: bool = False   # a valid signed stream-heads note covers every included stream
    failures: list[Failure] = field(default_factory=list)
    witnessed: dict[str, Any] | None = None   # with a witness policy: {"size", "quorum", …}

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "format": BUNDLE_FORMAT, "origin": self.origin, "cases": self.cases,
            "events": self.events, "streams": self.streams,
            "checkpoint": {"size": self.checkpoint_size, "root": self.checkpoint_root},
            "complete": self.complete,
            "failures": [f.to_json() for f in self.failures],
            **({"witnessed": self.witnessed} if self.witnessed is not None else {}),
        }


@dataclass(frozen=True)
class _Init:
    """The init event (directory#1) as read before the replay: it names the origin."""

    position: int
    data: dict[str, Any]


def verify_bundle(data: bytes | str, *, log_key: bytes | None,
                  admin_key: bytes | None, witness_policy: WitnessPolicy | None = None,
                  witnessed: Sequence[tuple[str, str]] = (), fetch_witnesses: bool = True,
                  now_us: int | None = None) -> BundleReport:
    """Verify a bundle with nothing but its bytes and the two trust anchors, each by its role:
    the ledger's log key (``log.pub``) and its admin key (``admin.pub``), raw Ed25519.

    Issue 9 ("Anchors by role"): the bundle never says which trusted key is which. A missing
    anchor, one key given for both roles, an init event naming one key for both roles, or init
    keys other than the anchors are failures. Any bytes give a report, never an exception.

    ``witness_policy`` adds check 8: the cosignatures the bundle carries, ``witnessed``
    ((source, text) of cosigned checkpoints kept by the inspector) and, with
    ``fetch_witnesses``, each witness's latest one (docs/witness.md).
    """
    failures: list[Failure] = []
    log_key, admin_key = _check_anchors(log_key, admin_key, failures)
    model = _parse(data, failures)
    if model is None:
        return _finish(BundleReport(ok=False), failures)
    report = BundleReport(ok=False, origin=model.origin, cases=list(model.cases),
                          events=len(model.events))
    events = _decode_events(model, failures)
    events = _check_order(events, failures)
    _check_streams(model, events, failures)
    origin = _check_origins(model, _read_init(events, failures), failures)
    if log_key is not None:
        checkpoint = _check_checkpoint(model.checkpoint, origin, log_key, failures)
        if checkpoint is not None:
            report.checkpoint_size, report.checkpoint_root = checkpoint
            _check_proofs(events, *checkpoint, failures)
            if model.stream_heads is not None:
                report.complete = _check_heads(model.stream_heads, origin, log_key,
                                               checkpoint[0], events, failures)
            if witness_policy is not None:
                report.witnessed = _check_witnessed(
                    model, events, origin, log_key, witness_policy,
                    [*witnessed, *(fetch_witnessed(witness_policy, origin)[0]
                                   if fetch_witnesses else [])], now_us, failures)
    replayed, report.streams = _replay(events, log_key, admin_key, failures)
    failures.extend(replayed)
    return _finish(report, failures)


def _finish(report: BundleReport, failures: list[Failure]) -> BundleReport:
    """Sorted, de-duplicated failures whose reasons are printable and bounded: they quote
    bundle text, which a terminal must not take for control sequences."""
    clean = {Failure(f.position, f.check, f.stream, f.seq, _printable(f.reason)): None
             for f in failures}
    report.failures = sorted(clean, key=lambda f: (f.position, f.check))
    report.ok = not report.failures
    if not report.ok:
        report.complete = False
    return report


def _printable(text: str) -> str:
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "…"


def _problem(exc: BaseException) -> str:
    """An unexpected exception as a one-line reason."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {exc}"


# ---- trust anchors ----------------------------------------------------------------------------

def _check_anchors(log_key: bytes | None, admin_key: bytes | None,
                   failures: list[Failure]) -> tuple[bytes | None, bytes | None]:
    """The anchors as usable keys (None when missing or malformed), each failure named."""
    def anchor(key: bytes | None, role: str, option: str, check: int) -> bytes | None:
        if key is None:
            failures.append(Failure(0, check, None, None, f"no trusted {role} key given: pass "
                                    f"{option} {role}.pub (the ledger's {role} public key)"))
            return None
        if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
            failures.append(Failure(0, check, None, None, f"the trusted {role} key is not a "
                                    "32-byte Ed25519 public key"))
            return None
        return bytes(key)

    log = anchor(log_key, "log", "--log-key", 7)
    admin = anchor(admin_key, "admin", "--admin-key", 3)
    if log is not None and log == admin:
        failures.append(Failure(0, 3, None, None, "the trusted log key and admin key are the "
                                "same key: a ledger's two roles need two different keys (pass "
                                "log.pub as --log-key and admin.pub as --admin-key)"))
    return log, admin


def _read_init(events: list[BundleEvent], failures: list[Failure]) -> _Init | None:
    """The init event (directory#1), read before the replay for the origin it records; the
    replay judges it (an unreadable or wrong init fails checks 1-3 there)."""
    for event in events:
        if event.stream == DIRECTORY_STREAM and event.seq == 1:
            try:
                statement = Statement.from_signed_bytes(Envelope.from_bytes(event.state).signed,
                                                        strict=False)
            except Exception:   # noqa: BLE001 - any bytes: the replay names the problem
                return None
            if statement.type != "init" or not isinstance(statement.data, dict):
                return None
            return _Init(event.position, statement.data)
    failures.append(Failure(0, 3, DIRECTORY_STREAM, 1, "the bundle has no init event "
                            "(directory#1), so no key can be traced to the trusted admin key"))
    return None


def _check_origins(model: _BundleModel, init: _Init | None, failures: list[Failure]) -> str:
    """The ledger's origin, as its init event records it. One origin binds the bundle (here),
    the checkpoint and the stream heads (verified for it) and every statement, the init's
    included (the checker's check 1): an event or a bundle of another ledger does not pass."""
    origin = model.origin
    recorded = init.data.get("origin") if init is not None else None
    if isinstance(recorded, str) and recorded:
        origin = recorded
    if model.origin != origin:
        failures.append(Failure(0, 0, None, None, f"the bundle's origin {model.origin!r} is not "
                                f"the ledger's origin {origin!r}"))
    return origin


# ---- structure ----------------------------------------------------------------------------------

def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse a repeated member: verifiers that keep the first and the last would disagree."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"member {key[:80]!r} appears twice in one object")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _parse(data: bytes | str, failures: list[Failure]) -> _BundleModel | None:
    def fail(reason: str, position: int = 0, stream: str | None = None,
             seq: int | None = None) -> None:
        failures.append(Failure(position, 0, stream, seq, reason))

    if len(data) > MAX_BUNDLE_BYTES:
        fail(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        return None
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        raw = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except UnicodeDecodeError:
        fail("the bundle is not UTF-8 text")
        return None
    except (ValueError, RecursionError) as exc:
        fail(f"the bundle is not JSON: {_problem(exc)}")
        return None
    if not isinstance(raw, dict):
        fail("the bundle is not a JSON object")
        return None
    if raw.get("format") != BUNDLE_FORMAT:
        shown = raw.get("format")
        shown = shown[:80] if isinstance(shown, str) else type(shown).__name__
        fail(f"unknown bundle format {shown!r}; this verifier reads {BUNDLE_FORMAT}")
        return None
    try:
        return _BundleModel.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        loc = error.get("loc", ())
        where = ".".join(str(p) for p in loc) or "bundle"
        event: Any = {}
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            event = raw["events"][loc[1]]
        if not isinstance(event, dict):
            event = {}
        position, stream, seq = event.get("position"), event.get("stream"), event.get("seq")
        fail(f"{where}: {error.get('msg', 'invalid')}",
             position if _bounded(position) else 0,
             stream if isinstance(stream, str) and re.match(_NAME, stream) else None,
             seq if _bounded(seq) else None)
        return None


def _bounded(value: Any) -> bool:
    return type(value) is int and 1 <= value <= MAX_POSITION


def _decode_events(model: _BundleModel, failures: list[Failure]) -> list[BundleEvent]:
    events = []
    for item in model.events:
        try:
            state = _b64decode(item.envelope)
        except ValueError:
            failures.append(Failure(item.position, 0, item.stream, item.seq,
                                    "envelope is not canonical base64"))
            continue
        proof: list[bytes] = []
        for node in item.inclusion_proof:
            if not _HEX_HASH.match(node):
                failures.append(Failure(item.position, 0, item.stream, item.seq,
                                        "inclusion proof node is not 64 lowercase hex digits"))
                break
            proof.append(bytes.fromhex(node))
        events.append(BundleEvent(item.position, item.leaf_index, item.stream, item.seq,
                                  item.type, state, tuple(proof)))
    return events


def _b64decode(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(str(exc)) from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64")
    return raw


def _check_order(events: list[BundleEvent], failures: list[Failure]) -> list[BundleEvent]:
    """Events are listed in log order, leaf indexes rising with positions, without repeats."""
    for before, after in zip(events, events[1:], strict=False):
        if after.position <= before.position:
            failures.append(Failure(after.position, 7, after.stream, after.seq,
                                    f"listed after position {before.position}: events are "
                                    "not in log order"))
    ordered = sorted(events, key=lambda e: (e.position, e.leaf_index))
    seen: set[tuple[str, int]] = set()
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.leaf_index <= before.leaf_index:
            failures.append(Failure(after.position, 7, after.stream, after.seq,
                                    f"leaf index {after.leaf_index} does not rise with the "
                                    f"position (position {before.position} has leaf "
                                    f"{before.leaf_index})"))
    for event in ordered:
        if (event.stream, event.seq) in seen:
            failures.append(Failure(event.position, 0, event.stream, event.seq,
                                    f"{event.stream}#{event.seq} is listed twice"))
        seen.add((event.stream, event.seq))
    return ordered


def _check_streams(model: _BundleModel, events: list[BundleEvent],
                   failures: list[Failure]) -> None:
    named = [*model.cases, *model.referenced_cases]
    listed = {DIRECTORY_STREAM, *named}
    present = {event.stream for event in events}
    for event in events:
        if event.stream not in listed:
            failures.append(Failure(event.position, 0, event.stream, event.seq,
                                    f"stream {event.stream} is not a case the bundle lists"))
    seen: set[str] = set()
    for case in named:
        if case == DIRECTORY_STREAM or case in seen:
            failures.append(Failure(0, 0, case, None, f"case {case} is listed twice"
                                    if case in seen else "the directory is not a case"))
        elif case not in present:
            failures.append(Failure(0, 0, case, None, f"case {case} has no events in the "
                                    "bundle"))
        seen.add(case)


# ---- the checkpoint, the proofs and the stream heads ---------------------------------------------

def _check_checkpoint(note: str, origin: str, log_key: bytes,
                      failures: list[Failure]) -> tuple[int, str] | None:
    """(size, root hex) of the checkpoint if it verifies under the trusted log key."""
    try:
        checkpoint = verify_checkpoint(note, origin, log_key, origin=origin)
    except (CheckpointError, ValueError, TypeError) as exc:
        failures.append(Failure(0, 7, None, None, f"the checkpoint does not verify under the "
                                f"trusted log key: {exc}"))
        return None
    return checkpoint.size, checkpoint.root.hex()


_HEADS_LINE = re.compile(r"^(\S{1,64}) ([1-9][0-9]{0,18}) ([0-9a-f]{64})$")


def _check_heads(note: str, origin: str, log_key: bytes, size: int,
                 events: list[BundleEvent], failures: list[Failure]) -> bool:
    """The signed stream heads match each included stream's last event: nothing left out."""
    try:
        text = verify_note(note, origin, log_key)
    except (CheckpointError, ValueError, TypeError) as exc:
        failures.append(Failure(0, 7, None, None, f"the stream-heads note does not verify "
                                f"under the trusted log key: {exc}"))
        return False
    lines = text.rstrip("\n").split("\n")
    if lines[:3] != [HEADS_HEADER, origin, str(size)]:
        failures.append(Failure(0, 7, None, None, "the stream-heads note is not for this "
                                "origin and checkpoint size"))
        return False
    signed: dict[str, tuple[int, str]] = {}
    for line in lines[3:]:
        match = _HEADS_LINE.match(line)
        if match is None or match[1] in signed:
            failures.append(Failure(0, 7, None, None, f"malformed stream-heads line {line!r}"))
            return False
        signed[match[1]] = (int(match[2]), match[3])
    last: dict[str, BundleEvent] = {}
    for event in events:
        last[event.stream] = event
    good = True
    for stream, event in last.items():
        head = signed.get(stream)
        try:
            actual: tuple[int, str] | None = (event.seq, Envelope.from_bytes(event.state).hash)
        except (ValueError, OverflowError):
            actual = None
        if head is None:
            failures.append(Failure(event.position, 7, stream, event.seq,
                                    f"stream {stream} is not in the signed stream heads"))
            good = False
        elif actual != head:
            failures.append(Failure(event.position, 7, stream, event.seq,
                                    f"{stream} ends at #{event.seq} in the bundle but at "
                                    f"#{head[0]} in the signed stream heads (events left out)"))
            good = False
    for stream in signed.keys() - last.keys():
        failures.append(Failure(0, 7, stream, None, f"signed stream {stream} has no events "
                                "in the bundle"))
        good = False
    return good


def _check_witnessed(model: _BundleModel, events: list[BundleEvent], origin: str,
                     log_key: bytes, policy: WitnessPolicy, given: Sequence[tuple[str, str]],
                     now_us: int | None, failures: list[Failure]) -> dict[str, Any]:
    """Check 8 (docs/witness.md): the bundle's checkpoint (already verified) against the
    witness policy, and the grace period over the bundle's events."""
    witnessed = WitnessedSet(policy, origin, log_key)
    for source, text in given:
        witnessed.add(text, source)
    carried = None
    if model.witnessed is not None:
        carried = (model.witnessed.checkpoint,
                   [bytes.fromhex(node) for node in model.witnessed.consistency_proof])
    leaves = []
    for event in events:
        try:
            recorded: int | None = Envelope.from_bytes(event.state).recorded_at_us
        except (ValueError, OverflowError):
            recorded = None   # the replay names the event
        leaves.append(BundleLeaf(event.leaf_index, event.position, event.stream, event.seq,
                                 recorded))
    found, summary = check_bundle(witnessed, parse_checkpoint(model.checkpoint).checkpoint,
                                  model.checkpoint, carried, leaves, now_us)
    failures.extend(found)
    return summary


def _check_proofs(events: list[BundleEvent], size: int, root_hex: str,
                  failures: list[Failure]) -> None:
    root = bytes.fromhex(root_hex)
    for event in events:
        leaf = leaf_hash(leaf_bytes(event.position, event.state))
        if event.leaf_index >= size:
            reason = f"leaf index {event.leaf_index} is beyond the checkpoint's {size} leaves"
        elif verify_inclusion(leaf, event.leaf_index, size, event.proof, root):
            continue
        else:
            reason = (f"the inclusion proof of leaf {event.leaf_index} does not lead to the "
                      f"checkpoint root (size {size})")
        failures.append(Failure(event.position, 7, event.stream, event.seq, reason))


# ---- the replay: checks 1-6, the rule book of `xinfang verify` ---------------------------------

def _replay(events: Iterable[BundleEvent], log_key: bytes | None, admin_key: bytes | None,
            found: list[Failure]) -> tuple[list[Failure], int]:
    """Checks 1-6 of ``xinfang verify`` over the bundle's events, through the one per-event
    checker (:class:`ledger.verification.checker.EventChecker`) with case states in memory;
    returns the failures and the number of streams.

    An event's structure and proof failures (``found``) reach the checker with its signature
    verdict, so such an event never changes a case or the directory. An event the checker
    cannot judge (any exception: hostile bytes) fails check 1 by name; the replay goes on.
    """
    failures: list[Failure] = []
    extra: dict[int, list[Failure]] = {}
    for failure in found:
        if failure.stream is not None and failure.position > 0:
            extra.setdefault(failure.position, []).append(failure)
    checker = EventChecker(MemoryCases(), trusted_log_key=log_key, trusted_admin_key=admin_key)
    keybook = KeyBook()
    for event in events:
        try:
            entry = parse_entry(event.position, event.stream, event.seq, event.type,
                                event.state)
            keybook.learn(entry)
            job = keybook.job(entry)
            early = _signature_failures(job) if job is not None else []
            verdict = checker.check(entry, [*early, *extra.get(event.position, ())])
        except Exception as exc:   # noqa: BLE001 - a verifier reports, never crashes
            failures.append(Failure(event.position, 1, event.stream, event.seq,
                                    f"event cannot be judged: {_problem(exc)}"))
            continue
        failures.extend(verdict.failures)
    return failures, checker.streams


def _signature_failures(job: Any) -> list[Failure]:
    """Check 2 and the strict half of check 1 for one event, which fails if it cannot be
    judged."""
    try:
        return list(check_signatures([job]))
    except Exception as exc:   # noqa: BLE001 - a verifier reports, never crashes
        return [Failure(job[0], 1, job[1], job[2],
                        f"signed bytes cannot be judged: {_problem(exc)}")]


__all__ = ["BUNDLE_FORMAT", "CHECK_NAMES", "HEADS_HEADER", "MAX_BUNDLE_BYTES", "BundleEvent",
           "BundleReport", "bundle_bytes", "export_bundle", "heads_note_text", "verify_bundle"]
