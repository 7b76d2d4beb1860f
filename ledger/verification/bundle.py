"""Offline bundles: one JSON file that proves one or more cases' histories without the database.

``export_bundle`` reads a ledger and writes every stored event of the chosen cases, of the
earlier cases their ``repeat_of`` names (transitively) and of the whole directory, each with an
RFC 9162 inclusion proof against the latest signed checkpoint. ``verify_bundle`` needs only the
bundle and the trusted log and admin public keys. It replays the events through the very
per-event checks of ``xinfang verify`` (:class:`ledger.verify.LedgerVerifier`), with the
inclusion proofs standing in for the stored Merkle tables. The format is specified in
docs/bundle-format.md so that others can write their own verifier.
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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.domain.cases import CaseState
from ledger.errors import EnvironmentProblem, InputError, VerificationError
from ledger.log.checkpoint import CheckpointError, parse_checkpoint, verify_checkpoint, verify_note
from ledger.log.merkle import inclusion_proof, leaf_hash, verify_inclusion
from ledger.log.statement import DIRECTORY_STREAM, ZERO_HASH, Envelope, Statement, leaf_bytes
from ledger.storage.store import Store, StoredRecord
from ledger.verification.verify import CHECK_NAMES as LEDGER_CHECK_NAMES
from ledger.verification.verify import EventChecker, Failure, check_signatures

BUNDLE_FORMAT = "xinfang-ledger/bundle/v1"
# First line of the stream-heads note; no checkpoint origin can be this, so the two kinds of
# note signed by the log key cannot be taken for each other.
HEADS_HEADER = "xinfang-ledger/stream-heads/v1"

CHECK_NAMES: dict[int, str] = {
    0: "bundle structure",
    **{n: name for n, name in LEDGER_CHECK_NAMES.items() if n < 7},
    7: "inclusion proof against the checkpoint signed by the trusted log key",
}

_HEX_HASH = re.compile(r"^[0-9a-f]{64}$")


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
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "origin": checkpoint.origin,
        "exported_at": (exported_at or datetime.now(tz=UTC)).isoformat(timespec="seconds"),
        "cases": subjects,
        "referenced_cases": referenced,
        "checkpoint": stored.note,
        "events": events,
    }
    if sign_heads is not None:
        bundle["stream_heads"] = sign_heads(heads_note_text(checkpoint.origin, checkpoint.size,
                                                            _heads(events)))
    return bundle


def _heads(events: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """Each included stream's last event (seq, hash) as of the checkpoint."""
    heads: dict[str, tuple[int, str]] = {}
    for event in events:
        state = base64.b64decode(event["envelope"])
        heads[event["stream"]] = (event["seq"], Envelope.from_bytes(state).hash)
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
            statement = Statement.from_signed_bytes(Envelope.from_bytes(record.state).signed,
                                                    strict=False)
            for earlier in statement.data.get("repeat_of", []):
                if earlier in streams:
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

class _EventModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    position: int = Field(ge=1)
    leaf_index: int = Field(ge=0)
    stream: str = Field(min_length=1)
    seq: int = Field(ge=1)
    type: str = Field(min_length=1)
    envelope: str
    inclusion_proof: list[str]


class _BundleModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: str
    origin: str = Field(min_length=1)
    exported_at: str
    cases: list[str] = Field(min_length=1)
    referenced_cases: list[str]
    checkpoint: str
    events: list[_EventModel] = Field(min_length=1)
    stream_heads: str | None = None


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
        }


class _BundleCases:
    """Case states and stream heads in memory (the role of ``ledger.replay.CaseCache``).

    A bundle has no store to rebuild an evicted case from, and a case it does not hold is,
    for its rules, a case that was never registered.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[CaseState | None, tuple[int, str]]] = {}

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, tuple[int, str]]:
        return self._entries.get(case, (None, (0, ZERO_HASH)))

    def put(self, case: str, state: CaseState | None, head: tuple[int, str]) -> None:
        self._entries[case] = (state, head)


def _replay(events: Iterable[BundleEvent], log_key: bytes, admin_key: bytes
            ) -> tuple[list[Failure], int]:
    """Checks 1-6 of ``xinfang verify`` over the bundle's events (the same
    :class:`ledger.verify.EventChecker`), with case states in memory; returns the failures
    and the number of streams."""
    failures: list[Failure] = []

    def fail(position: int, check: int, stream: str | None, seq: int | None,
             reason: str) -> None:
        failures.append(Failure(position, check, stream, seq, reason))

    checker = EventChecker(_BundleCases(), fail, trusted_log_key=log_key,
                           trusted_admin_key=admin_key)
    jobs = []
    for event in events:
        try:
            job = checker.check(event.position, event.stream, event.seq, event.type,
                                event.state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            fail(event.position, 1, event.stream, event.seq,
                 f"event cannot be judged: {type(exc).__name__} {exc}")
            continue
        if job is not None:
            jobs.append(job)
    failures.extend(check_signatures(jobs))
    return failures, checker.streams


def verify_bundle(data: bytes | str, trusted_keys: Iterable[bytes]) -> BundleReport:
    """Verify a bundle with nothing but its bytes and the trusted raw Ed25519 public keys.

    The trusted keys are the log key and the admin key, in any order: the bundle's init event
    names which is which, and each must be one of them (the two roles need two private keys,
    so a bundle cannot swap them).
    """
    trusted = {bytes(key) for key in trusted_keys}
    model, failures = _parse(data)
    if model is None:
        return BundleReport(ok=False, failures=failures)
    report = BundleReport(ok=False, origin=model.origin, cases=list(model.cases),
                          events=len(model.events))
    events = _decode_events(model, failures)
    events = _check_order(events, failures)
    _check_streams(model, events, failures)
    init = _init_data(events, failures)
    admin_key = _trusted_role(init, "admin_key", trusted)
    log_key = _trusted_role(init, "log_key", trusted)
    origin = init["origin"] if isinstance(init.get("origin"), str) else model.origin
    if model.origin != origin:
        failures.append(Failure(0, 0, None, None, f"the bundle's origin {model.origin!r} is not "
                                f"the ledger's origin {origin!r}"))
    checkpoint = _check_checkpoint(model.checkpoint, origin, log_key, failures)
    if checkpoint is not None:
        report.checkpoint_size, report.checkpoint_root = checkpoint
        _check_proofs(events, *checkpoint, failures)
        if model.stream_heads is not None and log_key is not None:
            report.complete = _check_heads(model.stream_heads, origin, log_key,
                                           checkpoint[0], events, failures)
    replayed, report.streams = _replay(events, log_key or b"", admin_key or b"")
    failures.extend(replayed)
    report.failures = sorted(failures, key=lambda f: (f.position, f.check))
    report.ok = not report.failures
    return report


def _parse(data: bytes | str) -> tuple[_BundleModel | None, list[Failure]]:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        return None, [Failure(0, 0, None, None, f"the bundle is not JSON: {exc}")]
    if not isinstance(raw, dict):
        return None, [Failure(0, 0, None, None, "the bundle is not a JSON object")]
    if raw.get("format") != BUNDLE_FORMAT:
        return None, [Failure(0, 0, None, None, f"unknown bundle format {raw.get('format')!r}; "
                              f"this verifier reads {BUNDLE_FORMAT}")]
    try:
        return _BundleModel.model_validate(raw), []
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error.get("loc", ())
        where = ".".join(str(p) for p in loc) or "bundle"
        event: Any = {}
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            event = raw["events"][loc[1]]
        if not isinstance(event, dict):
            event = {}
        position, stream, seq = event.get("position"), event.get("stream"), event.get("seq")
        return None, [Failure(position if isinstance(position, int) else 0, 0,
                              stream if isinstance(stream, str) else None,
                              seq if isinstance(seq, int) else None,
                              f"{where}: {error.get('msg', 'invalid')}")]


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
    listed = {DIRECTORY_STREAM, *model.cases, *model.referenced_cases}
    present = {event.stream for event in events}
    for event in events:
        if event.stream not in listed:
            failures.append(Failure(event.position, 0, event.stream, event.seq,
                                    f"stream {event.stream} is not a case the bundle lists"))
    for case in [*model.cases, *model.referenced_cases]:
        if case not in present:
            failures.append(Failure(0, 0, case, None, f"case {case} has no events in the "
                                    "bundle"))


def _init_data(events: list[BundleEvent], failures: list[Failure]) -> dict[str, Any]:
    """The init event's data, read before any check: it says which trusted key is which."""
    for event in events:
        if event.stream == DIRECTORY_STREAM and event.seq == 1:
            try:
                statement = Statement.from_signed_bytes(Envelope.from_bytes(event.state).signed,
                                                        strict=False)
            except ValueError:
                return {}   # check 1 reports it during the replay
            return statement.data if statement.type == "init" else {}
    failures.append(Failure(0, 3, DIRECTORY_STREAM, 1, "the bundle has no init event "
                            "(directory#1), so no key can be traced to the trusted admin key"))
    return {}


def _trusted_role(init: dict[str, Any], name: str, trusted: set[bytes]) -> bytes | None:
    try:
        key = bytes.fromhex(init.get(name, ""))
    except (TypeError, ValueError):
        return None
    return key if key in trusted else None


def _check_checkpoint(note: str, origin: str, log_key: bytes | None,
                      failures: list[Failure]) -> tuple[int, str] | None:
    """(size, root hex) of the checkpoint if it verifies under the trusted log key."""
    if log_key is None:
        failures.append(Failure(0, 7, None, None, "the ledger's log key (named by its init "
                                "event) is not a trusted key; the checkpoint cannot be trusted"))
        return None
    try:
        checkpoint = verify_checkpoint(note, origin, log_key, origin=origin)
    except CheckpointError as exc:
        failures.append(Failure(0, 7, None, None, f"the checkpoint does not verify under the "
                                f"trusted log key: {exc}"))
        return None
    return checkpoint.size, checkpoint.root.hex()


def _check_heads(note: str, origin: str, log_key: bytes, size: int,
                 events: list[BundleEvent], failures: list[Failure]) -> bool:
    """The signed stream heads match each included stream's last event: nothing left out."""
    try:
        text = verify_note(note, origin, log_key)
    except CheckpointError as exc:
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
        parts = line.split(" ")
        if len(parts) != 3 or not parts[1].isdigit() or not _HEX_HASH.match(parts[2]):
            failures.append(Failure(0, 7, None, None, f"malformed stream-heads line {line!r}"))
            return False
        signed[parts[0]] = (int(parts[1]), parts[2])
    last: dict[str, BundleEvent] = {}
    for event in events:
        last[event.stream] = event
    good = True
    for stream, event in last.items():
        head = signed.get(stream)
        actual = (event.seq, Envelope.from_bytes(event.state).hash) \
            if event.state[:4] == b"XFE1" else None
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


__all__ = ["BUNDLE_FORMAT", "CHECK_NAMES", "HEADS_HEADER", "BundleEvent", "BundleReport",
           "bundle_bytes", "export_bundle", "heads_note_text", "verify_bundle"]
