"""The one per-event checker: checks 1-6 of docs/integrity.md for one stored event, in log order.

Every reader judges events here — ``verify`` over the whole log, the checked view
(:mod:`ledger.verification.view`) for one case or the directory, bundles, and the write path
for the streams it builds on — so one event has one verdict wherever it appears.

Judging one event has two halves:

* order-free (:func:`check_signatures`, checks 2 and the canonical/schema half of 1): needs only
  the event's bytes and the public key its key id names, so it runs ahead of
* the order-dependent half (:meth:`EventChecker.check`, checks 1, 3-6): the directory and the
  case as the log stands just before the event.

The checked log (``verify``) decodes each statement once, in its main process, noting there
whether the bytes are canonical (:func:`parse_entry` with ``check_form``); the signature and
schema checks then run in batches wherever there is a free core (:func:`order_free_batch`,
given the decoded data, so nothing is decoded twice).

The order-dependent half receives the order-free verdict first, so an event that fails any
check never changes a case or the directory: later events are judged without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from ledger.domain.cases import CaseState, CaseViolation, apply_action, check_action
from ledger.domain.directory import Directory, DirectoryViolation
from ledger.log.keys import PublicKey, ed25519_verify, event_key_id
from ledger.log.statement import DIRECTORY_STREAM, ZERO_HASH, Envelope, Statement, event_hash
from ledger.verification.checks import Check, CheckedEvent, Failure
from schemas.actions import data_problem

#: What hostile data can raise from the domain rules; each becomes a failure, never a crash.
JUDGING_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError,
                  AssertionError, RecursionError, CaseViolation, DirectoryViolation)

Head = tuple[int, str]


class LogEntry(NamedTuple):
    """One stored row, parsed once: the columns, the envelope and the (unchecked) statement.
    (A named tuple: immutable, and built several times faster than a frozen dataclass, once
    per row of every pass.)"""

    position: int
    stream: str
    seq: int
    topic: str
    state: bytes
    envelope: Envelope | None
    statement: Statement | None
    at: datetime | None
    problem: str | None = None   # why the row does not parse, when it does not
    # Whether the signed bytes are exactly the RFC 8785 form (None: not looked at yet).
    canonical: bool | None = None


def parse_entry(position: int, stream: str, seq: int, topic: str, state: bytes, *,
                check_form: bool = False) -> LogEntry:
    """Split a stored row into envelope and statement; never raises. ``check_form`` also
    notes whether the signed bytes are canonical, from the same decoding (for
    :func:`form_problem`)."""
    state = bytes(state)
    try:
        envelope = Envelope.from_bytes(state)
    except (ValueError, TypeError, OverflowError) as exc:
        return LogEntry(position, stream, seq, topic, state, None, None, None,
                        f"stored state is not a signed xinfang statement ({exc})")
    canonical = None
    try:
        if check_form:
            statement, at, canonical = Statement.parse_signed(envelope.signed)
        else:
            statement = Statement.from_signed_bytes(envelope.signed, strict=False)
            at = datetime.fromisoformat(statement.at)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        return LogEntry(position, stream, seq, topic, state, envelope, None, None,
                        f"signed bytes do not parse: {exc}")
    return LogEntry(position, stream, seq, topic, state, envelope, statement, at,
                    canonical=canonical)


class KeyBook:
    """Key id → public key, gathered from directory events in log order.

    Only used to find the public key a signature claims (a key id is a digest of its public
    key, so the mapping is unique); whether the key may sign there is check 3's business.
    """

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def learn(self, entry: LogEntry) -> None:
        if entry.statement is not None and entry.stream == DIRECTORY_STREAM:
            self.learn_statement(entry.statement)

    def learn_statement(self, statement: Statement) -> None:
        field = {"init": "admin_key", "actor.add": "public_key",
                 "actor.rotate_key": "public_key"}.get(statement.type)
        value = statement.data.get(field) if field else None
        if type(value) is not str or len(value) != 64:
            return
        try:
            public = bytes.fromhex(value)
        except ValueError:
            return
        self.keys.setdefault(event_key_id(public), public)

    def job(self, entry: LogEntry) -> SignatureJob | None:
        """The order-free checks' input for ``entry`` (None when it cannot be checked)."""
        statement, envelope = entry.statement, entry.envelope
        if statement is None or envelope is None:
            return None
        public = self.keys.get(statement.key)
        if public is None:
            return None   # no such key: check 3 fails, and the event never counts
        return (entry.position, entry.stream, entry.seq, public, envelope.signature,
                envelope.signed)

    def order_free_job(self, entry: LogEntry) -> OrderFreeJob | None:
        """The input of :func:`order_free_batch` for an entry parsed with ``check_form``;
        None exactly when :meth:`job` is None (then no order-free check runs)."""
        statement, envelope = entry.statement, entry.envelope
        if statement is None or envelope is None:
            return None
        public = self.keys.get(statement.key)
        if public is None:
            return None
        if entry.canonical:
            return public, envelope.signature, envelope.signed, statement.type, statement.data
        return public, envelope.signature, envelope.signed, None, None


# ---- the order-free half: runs in worker processes (and inline for small inputs) -----------

SignatureJob = tuple[int, str, int, bytes, bytes, bytes]  # position, stream, seq, pub, sig, signed


def check_signatures(jobs: Sequence[SignatureJob]) -> list[Failure]:
    """Check 2 (signature) and the canonical/schema half of check 1 for a batch of events."""
    failures = []
    keys: dict[bytes, PublicKey | None] = {}   # a batch has few distinct signers
    for position, stream, seq, public, signature, signed in jobs:
        if public in keys:
            key = keys[public]
        else:
            try:
                key = keys[public] = PublicKey.from_raw(public)
            except ValueError:   # not 32 bytes: nothing verifies under it
                key = keys[public] = None
        if key is None or not key.verify(signature, signed):
            failures.append(Failure(position, Check.SIGNATURE, stream, seq, BAD_SIGNATURE))
            continue
        try:
            statement = Statement.from_signed_bytes(signed)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            failures.append(Failure(position, Check.PARSE, stream, seq, f"signed bytes: {exc}"))
            continue
        problem = schema_problem(statement.type, statement.data)
        if problem:
            failures.append(Failure(position, Check.PARSE, stream, seq, problem))
    return failures


#: (public key, signature, signed bytes, action, data); action and data are None when the
#: signed bytes are not canonical (their verdict is then known without a schema check).
OrderFreeJob = tuple[bytes, bytes, bytes, str | None, dict[str, Any] | None]

NOT_CANONICAL = "signed bytes: statement is not in RFC 8785 canonical form"
BAD_SIGNATURE = "signature does not verify under the named key"


def order_free_batch(jobs: Sequence[OrderFreeJob]) -> list[tuple[int, Check, str]]:
    """The order-free verdicts of a batch, as ``(index, check, reason)`` for the jobs that
    fail: exactly :func:`check_signatures`' verdicts (check 2 first; only for a signature
    that verifies, the canonical form and the schema), without decoding the statements
    again. Runs in a worker process, a thread or inline."""
    failures: list[tuple[int, Check, str]] = []
    for index, (public, signature, signed, action, data) in enumerate(jobs):
        if not ed25519_verify(public, signature, signed):
            failures.append((index, Check.SIGNATURE, BAD_SIGNATURE))
        elif action is None or data is None:
            failures.append((index, Check.PARSE, NOT_CANONICAL))
        else:
            problem = schema_problem(action, data)
            if problem is not None:
                failures.append((index, Check.PARSE, problem))
    return failures


def form_problem(entry: LogEntry) -> str | None:
    """The canonical/schema half of check 1 for an entry whose statement parsed, once its
    signature verified: the same verdict :func:`check_signatures` gives after its signature
    check, without decoding the statement again when :func:`parse_entry` noted the form."""
    statement, envelope = entry.statement, entry.envelope
    assert statement is not None and envelope is not None
    canonical = entry.canonical
    if canonical is None:
        try:
            Statement.from_signed_bytes(envelope.signed)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            return f"signed bytes: {exc}"
    elif not canonical:   # the one way a strict parse fails where a lenient one passed
        return NOT_CANONICAL
    return schema_problem(statement.type, statement.data)


def schema_problem(action: str, data: dict[str, Any]) -> str | None:
    """Why ``data`` is not exactly the schema's form of ``action`` (None if it is)."""
    try:
        return data_problem(action, data)   # strict: JSON types exactly as the schema says
    except JUDGING_ERRORS as exc:
        return f"data cannot be read: {type(exc).__name__}"


# ---- the order-dependent half ----------------------------------------------------------------

class CaseSource(Protocol):
    """Where the checker keeps case states and heads (only states built from events that
    passed every check): a bounded cache over the store, a view, or memory for a bundle."""

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, Head]: ...

    def put(self, case: str, state: CaseState | None, head: Head) -> None: ...


class MemoryCases:
    """Case states and heads in memory (bundles, small views)."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[CaseState | None, Head]] = {}

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, Head]:
        return self.entries.get(case, (None, (0, ZERO_HASH)))

    def put(self, case: str, state: CaseState | None, head: Head) -> None:
        self.entries[case] = (state, head)


class EventChecker:
    """Checks 1 and 3-6 of one event at a time, in log order, given the order-free verdict.

    The directory is replayed as directory events arrive (only those that pass); case events
    are judged against ``directory_at(position)`` (the live directory by default, a snapshot
    for a view that judges one case long after the fact) and the states in ``cases``.
    ``trusted_log_key``/``trusted_admin_key`` pin the init event to the inspector's anchors.
    """

    def __init__(self, cases: CaseSource, *, trusted_log_key: bytes | None = None,
                 trusted_admin_key: bytes | None = None,
                 directory: Directory | None = None,
                 directory_at: Callable[[int], Directory] | None = None) -> None:
        self.cases = cases
        self.trusted_log_key = trusted_log_key
        self.trusted_admin_key = trusted_admin_key
        self.directory = directory if directory is not None else Directory()
        self.directory_at = directory_at or (lambda _position: self.directory)
        self.directory_head: Head = (0, ZERO_HASH)
        self.events = 0
        self.streams = 0
        self._tolerance_of: object = None
        self._tolerance_value = timedelta(0)

    def check(self, entry: LogEntry, early: Iterable[Failure] = ()) -> CheckedEvent:
        """The verdict of ``entry``; ``early`` holds its order-free failures."""
        self.events += 1
        if entry.seq == 1:
            self.streams += 1
        verdict = _Verdict(entry, list(early))
        statement = entry.statement
        if statement is None or entry.envelope is None or entry.at is None:
            verdict.fail(Check.PARSE, entry.problem or "stored state does not parse")
            return verdict.done()
        if (statement.stream, statement.seq, statement.type) != \
                (entry.stream, entry.seq, entry.topic):
            verdict.fail(Check.PARSE, f"signed bytes say {statement.stream}#{statement.seq} "
                         f"{statement.type}, the stored columns say {entry.stream}#{entry.seq} "
                         f"{entry.topic}")
        if entry.stream == DIRECTORY_STREAM:
            self._check_directory_event(verdict, statement, entry)
        else:
            self._check_case_event(verdict, statement, entry)
        return verdict.done()

    # ---- shared parts ----------------------------------------------------------------------

    def _check_common(self, verdict: _Verdict, statement: Statement, entry: LogEntry,
                      directory: Directory) -> None:
        if directory.initialized and statement.origin != directory.origin:
            verdict.fail(Check.PARSE, f"origin {statement.origin!r} is not this ledger's "
                         f"({directory.origin!r}): an event of another ledger")
        assert entry.envelope is not None and entry.at is not None
        try:
            late = entry.at.tzinfo is None or \
                entry.at > entry.envelope.recorded_at + self._tolerance(directory)
        except (ArithmeticError, ValueError, TypeError):
            late = True
        if late:
            verdict.fail(Check.TIME, f"business time {statement.at} is after the recorded "
                         f"time {_recorded_text(entry.envelope)} (beyond the clock tolerance)")
        if statement.type == "init" and not directory.initialized:
            self._check_init_key(verdict, statement)
            return
        problem = directory.key_problem(statement.key, statement.actor, entry.position)
        if problem is not None:
            verdict.fail(Check.KEY, problem)

    def _tolerance(self, directory: Directory) -> timedelta:
        """The clock tolerance of the directory's policy (kept while the policy is the same
        object: a policy change replaces it)."""
        policy = directory.policy
        if self._tolerance_of is not policy:
            self._tolerance_value = timedelta(seconds=policy.clock_tolerance_seconds)
            self._tolerance_of = policy
        return self._tolerance_value

    def _check_init_key(self, verdict: _Verdict, statement: Statement) -> None:
        data = statement.data
        admin = hex_key(data.get("admin_key"))
        log = hex_key(data.get("log_key"))
        if admin is None or log is None:
            verdict.fail(Check.KEY, "init does not name an admin key and a log key")
            return
        if admin == log:
            verdict.fail(Check.KEY, "init names one key for both the log and the admin roles")
        if self.trusted_admin_key is not None and admin != self.trusted_admin_key:
            verdict.fail(Check.KEY, "the ledger's admin key is not the trusted admin key")
        if self.trusted_log_key is not None and log != self.trusted_log_key:
            verdict.fail(Check.LOG, "the ledger's log key is not the trusted log key")
        if event_key_id(admin) != statement.key:
            verdict.fail(Check.KEY, "init is not signed by the admin key it registers")
        if data.get("origin") != statement.origin:
            verdict.fail(Check.PARSE, "init's origin differs from the statement's origin")

    @staticmethod
    def _check_chain(verdict: _Verdict, statement: Statement, entry: LogEntry,
                     head: Head) -> Head:
        last_seq, last_hash = head
        if statement.seq != last_seq + 1:
            verdict.fail(Check.CHAIN, f"sequence jumps from {last_seq} to {statement.seq} "
                         "(events missing or reordered)")
        elif statement.prev != last_hash:
            verdict.fail(Check.CHAIN, "previous-hash link does not match the stream's "
                         "previous event")
        assert entry.envelope is not None
        return statement.seq, event_hash(entry.envelope.signed)

    # ---- the directory ---------------------------------------------------------------------

    def _check_directory_event(self, verdict: _Verdict, statement: Statement,
                               entry: LogEntry) -> None:
        directory = self.directory
        self._check_common(verdict, statement, entry, directory)
        self.directory_head = self._check_chain(verdict, statement, entry, self.directory_head)
        try:
            directory.check(statement.type, statement.actor, statement.data)
        except DirectoryViolation as exc:
            verdict.fail(Check.AUTHORIZATION, str(exc))
        except JUDGING_ERRORS as exc:
            verdict.fail(Check.PARSE, f"data cannot be judged: {type(exc).__name__} {exc}")
        if verdict.failures:
            return
        try:
            directory.apply(statement.type, statement.data, entry.position)
        except JUDGING_ERRORS as exc:
            verdict.fail(Check.PARSE, f"data cannot be applied: {type(exc).__name__} {exc}")

    # ---- cases -----------------------------------------------------------------------------

    def _check_case_event(self, verdict: _Verdict, statement: Statement,
                          entry: LogEntry) -> None:
        directory = self.directory_at(entry.position)
        self._check_common(verdict, statement, entry, directory)
        case, head = self.cases.get(entry.stream, entry.position, entry.seq)
        head = self._check_chain(verdict, statement, entry, head)
        assert entry.at is not None
        signer = directory.actor(statement.actor)
        if signer is None:
            verdict.fail(Check.AUTHORIZATION, f"{statement.actor} is not in the directory at "
                         "this position")
        else:
            try:
                check_action(case, statement.type, statement.data, signer, entry.at, directory,
                             lambda other: self.cases.get(other, entry.position)[0])
            except CaseViolation as exc:
                verdict.fail(Check.AUTHORIZATION, str(exc))
            except JUDGING_ERRORS as exc:
                verdict.fail(Check.PARSE, f"data cannot be judged: {type(exc).__name__} {exc}")
        if not verdict.failures:
            try:
                case = apply_action(case, entry.stream, statement.type, statement.data,
                                    entry.at, seq=statement.seq, actor=statement.actor)
            except JUDGING_ERRORS as exc:
                verdict.fail(Check.PARSE, f"data cannot be applied: {type(exc).__name__} "
                             f"{exc}")
        self.cases.put(entry.stream, case, head)


class _Verdict:
    __slots__ = ("entry", "failures")

    def __init__(self, entry: LogEntry, failures: list[Failure]) -> None:
        self.entry = entry
        self.failures = failures

    def fail(self, check: Check, reason: str) -> None:
        entry = self.entry
        self.failures.append(Failure(entry.position, check, entry.stream, entry.seq, reason))

    def done(self) -> CheckedEvent:
        entry = self.entry
        failures = tuple(sorted(self.failures, key=_by_check)) if self.failures else ()
        return CheckedEvent(entry.position, entry.stream, entry.seq, entry.topic,
                            entry.envelope, entry.statement, failures)


def _by_check(failure: Failure) -> int:
    return failure.check


def hex_key(value: Any) -> bytes | None:
    """A raw 32-byte public key from its hex form in signed data (None if it is not one)."""
    if type(value) is not str or len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _recorded_text(envelope: Envelope) -> str:
    try:
        return envelope.recorded_at.isoformat()
    except (ArithmeticError, ValueError):
        return f"{envelope.recorded_at_us} µs after the epoch (out of range)"


def check_entries(checker: EventChecker, entries: Iterable[LogEntry], keybook: KeyBook,
                  extra: dict[int, list[Failure]] | None = None) -> list[CheckedEvent]:
    """Judge a few entries inline, in order (the order-free half first, for each one).

    ``extra`` adds failures found elsewhere (e.g. the Merkle log), by position, so they too
    keep the event from counting.
    """
    out = []
    for entry in entries:
        keybook.learn(entry)
        job = keybook.job(entry)
        early = check_signatures([job]) if job is not None else []
        if extra:
            early.extend(extra.get(entry.position, ()))
        out.append(checker.check(entry, early))
    return out


__all__ = ["JUDGING_ERRORS", "CaseSource", "EventChecker", "KeyBook", "LogEntry",
           "hex_key",
           "MemoryCases", "OrderFreeJob", "SignatureJob", "check_entries", "check_signatures",
           "form_problem", "order_free_batch", "parse_entry", "schema_problem"]
