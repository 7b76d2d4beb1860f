"""The checked view of a stored ledger, for readers that look at a few streams at a time.

``verify`` judges the whole log in one pass. Everyone else — case history, closure records,
bundles' export, the write path that must not build on a forged event — asks this view for one
case (or the directory) and gets every event of it with its verdict, judged by the same
:class:`~ledger.verification.checker.EventChecker`, plus the Merkle log check:

* the event's row must sit at a log position that a leaf covers (rows at positions zero or
  below, beyond the last leaf, or in a PostgreSQL id gap are *outside the log*: they fail
  check 7 and are never fed to the rules);
* its recomputed leaf hash must be included, by an RFC 9162 inclusion proof, in the tree that
  the latest stored checkpoint signs under the log key (stored nodes are not trusted; the
  proofs share proven nodes, see :class:`~ledger.log.merkle.InclusionChecker`).

Directory events are checked once per view and kept (with the directory as it stood at every
position); case verdicts are cached per case and extended incrementally when a case grows.
A failing event never changes a state: later events, and other cases that look at this one
(``repeat_of``), are judged without it.
"""

from __future__ import annotations

import bisect
import copy
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ledger.domain.cases import CaseState, apply_action
from ledger.domain.directory import Directory
from ledger.errors import LedgerError
from ledger.log.checkpoint import CheckpointError, verify_checkpoint
from ledger.log.merkle import InclusionChecker, leaf_hash
from ledger.log.statement import DIRECTORY_STREAM, ZERO_HASH, Envelope, Statement, leaf_bytes
from ledger.storage.store import Store, StoredRecord
from ledger.verification.checker import (
    JUDGING_ERRORS,
    EventChecker,
    Head,
    KeyBook,
    LogEntry,
    check_signatures,
    hex_key,
    parse_entry,
)
from ledger.verification.checks import Check, CheckedEvent, Failure

_MAX_POSITION = 2**63 - 1


@dataclass
class CheckedStream:
    """Every stored event of one stream, in log order, each with its verdict.

    ``state`` is the case state built from the events that passed (None for the directory or
    a case whose registration failed); ``head`` the (seq, hash) of the last event judged.
    """

    stream: str
    events: list[CheckedEvent] = field(default_factory=list)
    state: CaseState | None = None
    head: Head = (0, ZERO_HASH)

    @property
    def ok(self) -> bool:
        return all(event.ok for event in self.events)

    @property
    def first_failure(self) -> Failure | None:
        for event in self.events:
            if event.failures:
                return event.failures[0]
        return None


@dataclass(frozen=True)
class _TreeHead:
    size: int
    root: bytes
    checker: InclusionChecker | None
    problem: str | None = None


class LedgerView:
    """The one checked view of ``store`` for single-stream readers and the write path.

    ``log_key``/``admin_key`` pin the trust anchors (raw public keys); without them the
    ledger's own init event names them, which proves integrity only relative to that event.
    """

    def __init__(self, store: Store, *, log_key: bytes | None = None,
                 admin_key: bytes | None = None, capacity: int = 4096) -> None:
        self.store = store
        self.log_key = log_key
        self.admin_key = admin_key
        self.capacity = capacity
        self._tree: _TreeHead | None = None
        self._keybook = KeyBook()
        self._directory_checker = EventChecker(_NoCases(), trusted_log_key=log_key,
                                               trusted_admin_key=admin_key)
        self._directory_stream = CheckedStream(DIRECTORY_STREAM)
        self._directory_positions: list[int] = []   # of directory events that passed
        self._snapshots: OrderedDict[int, Directory] = OrderedDict()
        self._cases: OrderedDict[str, CheckedStream] = OrderedDict()
        self._in_progress: set[str] = set()

    # ---- the directory ---------------------------------------------------------------------

    def directory_stream(self) -> CheckedStream:
        """The directory stream, checked (new events are judged on each call)."""
        stream = self._directory_stream
        records = self.store.stream(DIRECTORY_STREAM, after_seq=stream.head[0])
        if records:
            self._judge(records, stream, self._directory_checker)
            stream.head = self._directory_checker.directory_head
            self._directory_positions = [e.position for e in stream.events if e.ok]
            self._snapshots.clear()
        return stream

    def directory(self) -> Directory:
        """The directory as the events that passed every check make it (refreshed)."""
        self.directory_stream()
        return self._directory_checker.directory

    def directory_at(self, position: int) -> Directory:
        """The directory as it stood just before log ``position`` (shared: do not change it)."""
        version = bisect.bisect_left(self._directory_positions, position)
        if version == len(self._directory_positions):
            return self._directory_checker.directory   # nothing added since
        snapshot = self._snapshots.get(version)
        if snapshot is None:
            snapshot = self._snapshots[version] = self.directory_before(position)
            if len(self._snapshots) > 64:
                self._snapshots.popitem(last=False)
        else:
            self._snapshots.move_to_end(version)
        return snapshot

    def directory_before(self, position: int) -> Directory:
        """A new directory built from the passing directory events before ``position`` (they
        were judged once; replaying them is a plain fold)."""
        directory = Directory()
        for event in self.directory_stream().events:
            if event.position >= position:
                break
            if event.ok and event.statement is not None:
                directory.apply(event.statement.type, event.statement.data, event.position)
        return directory

    # ---- cases -----------------------------------------------------------------------------

    def stream(self, case: str) -> CheckedStream:
        """Every event of ``case`` with its verdict (cached; new events judged on each call)."""
        self.directory_stream()
        cached = self._cases.get(case)
        if cached is None:
            cached = CheckedStream(case)
        else:
            self._cases.move_to_end(case)
        records = self.store.stream(case, after_seq=cached.head[0])
        if records:
            if case in self._in_progress:   # a forged repeat_of cycle: judge without it
                return cached
            self._in_progress.add(case)
            try:
                cases = _OneCase(self, case, cached)
                checker = EventChecker(cases, trusted_log_key=self.log_key,
                                       trusted_admin_key=self.admin_key,
                                       directory=self._directory_checker.directory,
                                       directory_at=self.directory_at)
                self._judge(records, cached, checker)
                cached.state, cached.head = cases.state, cases.head
            finally:
                self._in_progress.discard(case)
        if cached.events:
            self._cases[case] = cached
            if len(self._cases) > self.capacity:
                self._cases.popitem(last=False)
        return cached

    def state_before(self, case: str, position: int) -> CaseState | None:
        """The state of ``case`` from its events that passed and precede ``position``."""
        if case in self._in_progress:
            return None
        return self.head_before(case, position)[0]

    def head_before(self, stream: str, position: int) -> tuple[CaseState | None, Head]:
        """State and chain head of ``stream`` (a case, or the directory, whose state is None)
        just before ``position``, as a pass over the log in position order would hold them:
        only passing events change the state; rows outside the log move no head."""
        directory = stream == DIRECTORY_STREAM
        checked = self.directory_stream() if directory else self.stream(stream)
        state: CaseState | None = None
        head: Head = (0, ZERO_HASH)
        for event in checked.events:
            if event.position >= position:
                break
            if event.outside or event.statement is None or event.hash is None:
                continue
            head = (event.seq, event.hash)
            if event.ok and not directory:
                state = _fold(state, event)
        return state, head

    def note_appended(self, statement: Statement, position: int, envelope: Envelope) -> None:
        """Record an event this process checked and appended itself, so the next command on
        its stream does not judge it again (only when it extends what the view holds)."""
        stream = statement.stream
        cached = self._directory_stream if stream == DIRECTORY_STREAM else self._cases.get(stream)
        if cached is None and statement.seq == 1 and stream != DIRECTORY_STREAM:
            cached = self._cases[stream] = CheckedStream(stream)
        if cached is None or cached.head != (statement.seq - 1, statement.prev):
            return
        event = CheckedEvent(position, stream, statement.seq, statement.type, envelope,
                             statement, ())
        cached.events.append(event)
        cached.head = (statement.seq, envelope.hash)
        if stream == DIRECTORY_STREAM:
            self._directory_checker.directory.apply(statement.type, statement.data, position)
            self._directory_checker.directory_head = cached.head
            self._directory_positions.append(position)
            self._snapshots.clear()
        else:
            cached.state = _fold(cached.state, event)
            if len(self._cases) > self.capacity:
                self._cases.popitem(last=False)

    # ---- judging ---------------------------------------------------------------------------

    def _judge(self, records: Sequence[StoredRecord], into: CheckedStream,
               checker: EventChecker) -> None:
        records = sorted(records, key=lambda r: r.position)
        outside = self._log_failures(records)
        for record in records:
            problem = outside.get(record.position)
            if problem is not None and problem[0]:
                # Outside the log: reported, never fed to the rules.
                entry = parse_entry(record.position, record.stream, record.seq, record.type,
                                    record.state)
                into.events.append(CheckedEvent(
                    record.position, record.stream, record.seq, record.type, entry.envelope,
                    entry.statement, (Failure(record.position, Check.LOG, record.stream,
                                              record.seq, problem[1]),), outside=True))
                continue
            entry = parse_entry(record.position, record.stream, record.seq, record.type,
                                record.state)
            self._keybook.learn(entry)
            job = self._keybook.job(entry)
            early = check_signatures([job]) if job is not None else []
            if problem is not None:
                early.append(Failure(record.position, Check.LOG, record.stream, record.seq,
                                     problem[1]))
            into.events.append(checker.check(entry, early))

    def _log_failures(self, records: Sequence[StoredRecord]) -> dict[int, tuple[bool, str]]:
        """Check 7 per row: (outside the log?, reason) for each row that fails it."""
        failures: dict[int, tuple[bool, str]] = {}
        leaves = self.store.leaves_at([r.position for r in records
                                       if 0 < r.position <= _MAX_POSITION])
        tree = self._tree_head(max((leaf[0] for leaf in leaves.values()), default=-1))
        for record in records:
            leaf = leaves.get(record.position)
            if leaf is None:
                failures[record.position] = (True, f"stored at position {record.position}, "
                                             "which no leaf of the Merkle log covers: a row "
                                             "outside the log")
                continue
            index = leaf[0]
            if tree.checker is None:
                failures[record.position] = (False, tree.problem or "no signed checkpoint")
            elif index >= tree.size:
                failures[record.position] = (False, f"leaf {index} is not covered by the "
                                             f"latest signed checkpoint (size {tree.size})")
            elif not tree.checker.includes(index, leaf_hash(leaf_bytes(record.position,
                                                                       record.state))):
                failures[record.position] = (False, f"its bytes or position are not leaf "
                                             f"{index} of the tree the latest checkpoint "
                                             "signs")
        return failures

    def _tree_head(self, index: int) -> _TreeHead:
        """The latest signed tree head, re-read when it does not cover leaf ``index``."""
        tree = self._tree
        if tree is not None and index < tree.size:
            return tree
        self._tree = tree = self._read_tree_head()
        return tree

    def _read_tree_head(self) -> _TreeHead:
        stored = self.store.latest_checkpoint()
        if stored is None:
            return _TreeHead(0, b"", None, "the ledger has no signed checkpoint")
        origin, log_key = self._origin_and_log_key()
        if log_key is None:
            return _TreeHead(0, b"", None, "no log key to verify checkpoints with (the "
                             "init event is unreadable and no trusted log key was given)")
        try:
            note = verify_checkpoint(stored.note, origin, log_key, origin=origin)
        except (CheckpointError, ValueError) as exc:
            return _TreeHead(0, b"", None, f"the latest checkpoint does not verify under the "
                             f"log key: {exc}")
        getter = _SafeNodes(self.store)
        return _TreeHead(note.size, note.root, InclusionChecker(note.size, note.root, getter))

    def _origin_and_log_key(self) -> tuple[str, bytes | None]:
        """Origin and log key for checkpoint verification: the trusted log key if given, the
        ledger's own init event otherwise (judged by the rules like every other event)."""
        record = self.store.event_at(DIRECTORY_STREAM, 1)
        origin, named = "", None
        if record is not None:
            entry = parse_entry(record.position, record.stream, record.seq, record.type,
                                record.state)
            if entry.statement is not None and entry.statement.type == "init":
                origin = entry.statement.origin
                named = hex_key(entry.statement.data.get("log_key"))
        return origin, self.log_key or named


class _NoCases:
    """The directory checker sees no case events."""

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, Head]:
        return None, (0, ZERO_HASH)

    def put(self, case: str, state: CaseState | None, head: Head) -> None:
        return None


class _OneCase:
    """Case states for judging one case: its own running state, and every other case (named
    by ``repeat_of``) as the view has judged it up to the position asked about."""

    def __init__(self, view: LedgerView, case: str, cached: CheckedStream) -> None:
        self.view = view
        self.case = case
        self.state = copy.copy(cached.state)
        self.head = cached.head

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, Head]:
        if case == self.case:
            return self.state, self.head
        return self.view.state_before(case, position), (0, ZERO_HASH)

    def put(self, case: str, state: CaseState | None, head: Head) -> None:
        if case == self.case:
            self.state, self.head = state, head


class _SafeNodes:
    """Stored Merkle nodes for proofs; a missing node fails the proof instead of raising."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, level: int, index: int) -> bytes:
        try:
            return self.store.get_node(level, index)
        except LedgerError as exc:
            raise LookupError(str(exc)) from None


def _fold(state: CaseState | None, event: CheckedEvent) -> CaseState | None:
    statement: Statement | None = event.statement
    assert statement is not None
    try:
        return apply_action(copy.copy(state), event.stream, statement.type, statement.data,
                            datetime.fromisoformat(statement.at), seq=statement.seq,
                            actor=statement.actor)
    except JUDGING_ERRORS:
        return state


__all__ = ["CheckedStream", "LedgerView", "LogEntry"]
