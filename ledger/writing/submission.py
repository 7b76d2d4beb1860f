"""Writes signed elsewhere: the ledger server's two steps, prepare and submit (docs/api.md).

The embedded mode prepares, signs and appends in one process (``Ledger.execute``). With a
ledger server the private keys stay on each person's device, so a write takes two requests:

1. :func:`prepare_commands` turns commands into the exact statement bytes to sign, built
   against the current checked stream heads with each actor's *registered* key id — the same
   :class:`~ledger.writing.session.WriteSession` as a local write, without any private key;
2. the client checks those bytes say what it asked for, signs them on its device, and
   :func:`submit_signed` judges what comes back completely — the bytes parse as a canonical
   statement of this ledger with strictly canonical data, the stream's head is still the
   one they follow (else :class:`~ledger.errors.ConflictError`: prepare and sign again),
   the key is the actor's valid registered key, the Ed25519 signature verifies, and the
   statement is exactly what the local write path would produce for the same command (which
   re-runs business time, authorization, the case rules and evidence references) — then
   sets the recorded time itself and appends everything in one transaction with its signed
   checkpoint. A command id already recorded, or the very same signed statement already in
   the log, answers with the original receipt instead of writing twice.

Several statements in one submission are judged as a whole against the ledger as it will be
(an import), so either all of them are written or none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ledger.errors import ConflictError, ForbiddenError, InputError, LedgerError, StorageError
from ledger.log.keys import PublicKey
from ledger.log.merkle import consistency_proof, inclusion_proof
from ledger.log.statement import DIRECTORY_STREAM, Envelope, Statement
from ledger.storage.store import AppendConflict, Store
from ledger.writing.commands import Command, Receipt
from ledger.writing.importer import _refuse
from ledger.writing.service import Ledger
from ledger.writing.session import Prepared, WriteSession
from ledger.writing.wire import receipt_document
from schemas.actions import CASE_ACTIONS, DIRECTORY_ACTIONS, data_problem, field_name, plain_errors

MAX_REPORTED = 50


@dataclass(frozen=True)
class PreparedCommand:
    """One prepared command: the bytes to sign, or the position where its command id (``cmd``)
    is already recorded (nothing to sign)."""

    index: int
    signed: bytes | None = None
    statement: Statement | None = None
    recorded_at_position: int | None = None


@dataclass
class Preparation:
    items: list[PreparedCommand] = field(default_factory=list)

    @property
    def to_sign(self) -> list[PreparedCommand]:
        return [item for item in self.items if item.signed is not None]

    def summary(self) -> dict[str, Any]:
        """What the prepared commands would write (an import's dry run)."""
        statements = [i.statement for i in self.items if i.statement is not None]
        return {"would_write": len(statements),
                "skipped": sum(1 for i in self.items if i.recorded_at_position is not None),
                "actions": dict(Counter(s.type for s in statements)),
                "cases": list(dict.fromkeys(s.stream for s in statements
                                            if s.stream != DIRECTORY_STREAM))}


def _with_index(exc: LedgerError, index: int) -> LedgerError:
    exc.index = index  # type: ignore[attr-defined]
    return exc


def prepare_commands(ledger: Ledger, commands: Sequence[Command], *,
                     public_keys: dict[int, bytes] | None = None,
                     lines: Sequence[int] | None = None) -> Preparation:
    """The statements to sign for ``commands``, judged against the ledger as it will be once
    the earlier ones are written (nothing is written). ``public_keys`` holds the PEM of the
    new key of an ``actor.add``/``actor.rotate_key`` by command index. A bad command raises
    its error with ``index`` set; with ``lines`` (an import's line numbers) every bad line
    is listed, as a local import lists them."""
    keys = public_keys or {}
    session = WriteSession(ledger, simulate=len(commands) > 1, signing=False)
    ids = [c.cmd for c in commands if c.cmd]
    done = ledger.store.recorded_commands(ids) if ids else {}
    result = Preparation()
    seen: set[str] = set()
    for index, command in enumerate(commands):
        if command.cmd is not None and command.cmd in done:
            result.items.append(PreparedCommand(index, recorded_at_position=done[command.cmd]))
            continue
        if command.cmd is not None and command.cmd in seen:
            raise _with_index(InputError(f"command id {command.cmd!r} is given twice"), index)
        try:
            item = session.prepare(command, keys.get(index))
        except LedgerError as exc:
            if lines is not None:
                raise _all_problems(ledger, commands, lines, keys, done) from None
            raise _with_index(exc, index) from None
        if command.cmd is not None:
            seen.add(command.cmd)
        result.items.append(PreparedCommand(index, item.signed, item.statement))
    return result


def _all_problems(ledger: Ledger, commands: Sequence[Command], lines: Sequence[int],
                  keys: dict[int, bytes], done: dict[str, int]) -> LedgerError:
    """Every bad line of an import (up to MAX_REPORTED), judged on past bad ones."""
    session = WriteSession(ledger, simulate=True, signing=False)
    problems: list[str] = []
    first: LedgerError | None = None
    for index, (number, command) in enumerate(zip(lines, commands, strict=True)):
        if command.cmd is not None and command.cmd in done:
            continue
        try:
            session.prepare(command, keys.get(index))
        except LedgerError as exc:
            first = first or exc
            invalid = getattr(exc, "validation", None)
            problems.extend(_line_problems(number, invalid) if invalid is not None
                            else [f"import line {number} ({command.cmd}): {exc.message}"])
            if len(problems) > MAX_REPORTED:
                break
    return _refuse(problems or ["the import was refused"], first)


def _line_problems(number: int, exc: ValidationError) -> list[str]:
    return [f"import line {number}, field {field_name(loc)}: {sentence}" if loc
            else f"import line {number}: {sentence}" for loc, sentence in plain_errors(exc)]


# ---- submitting ---------------------------------------------------------------------------------

def submit_signed(ledger: Ledger, events: Sequence[tuple[bytes, bytes]]) -> list[Receipt]:
    """Judge ``(signed bytes, signature)`` pairs as a whole and append them in one
    transaction; their receipts, in order (``duplicate`` for what was already recorded).

    Raises the first refusal with ``index`` set; nothing is written then."""
    session = WriteSession(ledger, simulate=len(events) > 1, signing=False)
    statements = []
    for index, (signed, _signature) in enumerate(events):
        try:
            statements.append(Statement.from_signed_bytes(signed))
        except ValueError as exc:
            raise _with_index(InputError(f"the signed bytes are not a statement: {exc}",
                                         "Sign exactly the bytes `prepare` returned."),
                              index) from None
    ids = [s.cmd for s in statements if s.cmd]
    done = ledger.store.recorded_commands(ids) if ids else {}
    receipts: list[Receipt | None] = [None] * len(events)
    prepared: list[tuple[int, Prepared]] = []
    signatures: list[bytes] = []
    seen: set[str] = set()
    for index, (statement, (signed, signature)) in enumerate(zip(statements, events,
                                                                 strict=True)):
        if statement.cmd is not None and statement.cmd in done:
            receipts[index] = ledger._receipt_for_position(done[statement.cmd], duplicate=True)
            continue
        if statement.cmd is not None and statement.cmd in seen:
            raise _with_index(InputError(f"command id {statement.cmd!r} is submitted twice"),
                              index)
        try:
            judged = judge_signed(session, ledger.store, statement, signed, signature)
        except LedgerError as exc:
            raise _with_index(exc, index) from None
        if isinstance(judged, int):
            receipts[index] = ledger._receipt_for_position(judged, duplicate=True)
            continue
        if statement.cmd is not None:
            seen.add(statement.cmd)
        prepared.append((index, judged))
        signatures.append(signature)
    if prepared:
        try:
            ledger.write_prepared(prepared, signatures, receipts,
                                  batch_size=len(prepared))
        except AppendConflict:
            raise ConflictError("another write moved a stream head meanwhile; nothing was "
                                "written", "Prepare the command again and sign it again."
                                ) from None
    return [r for r in receipts if r is not None]


def judge_signed(session: WriteSession, store: Store, statement: Statement, signed: bytes,
                 signature: bytes) -> Prepared | int:
    """Judge one submitted statement in ``session`` (which then holds it as pending); the
    position of the identical event when it is already in the log."""
    directory = session.directory
    kind = statement.type
    if kind not in CASE_ACTIONS and kind not in DIRECTORY_ACTIONS or kind == "init":
        raise InputError(f"{kind[:40]!r} is not an action that can be submitted")
    if (kind in DIRECTORY_ACTIONS) != (statement.stream == DIRECTORY_STREAM):
        raise InputError(f"a {kind} statement cannot be in stream {statement.stream[:40]!r}")
    if statement.origin != directory.origin:
        raise InputError(f"the statement was signed for another ledger ({statement.origin[:80]!r}"
                         f", this is {directory.origin!r})",
                         "Prepare it on this ledger's server.")
    problem = data_problem(kind, statement.data)
    if problem is not None:
        raise InputError(f"the statement's data is not in the ledger's strict form: {problem}")
    actor = directory.actor(statement.actor)
    if actor is None:
        raise InputError(f"unknown actor {statement.actor[:64]!r}")
    if actor.keyless or actor.key is None:
        raise ForbiddenError(f"{actor.actor} has no valid key to sign with")
    if statement.key != actor.key:
        raise ForbiddenError(f"the statement names key {statement.key[:16]}, which is not the "
                             f"valid registered key of {actor.actor} ({actor.key})")
    if not PublicKey(directory.keys[actor.key].public).verify(signature, signed):
        raise ForbiddenError(f"the signature does not verify under the registered key of "
                             f"{actor.actor}", "Sign exactly the bytes `prepare` returned, "
                             "with the actor's own key.")
    seq, prev = session.head(statement.stream)
    if (statement.seq, statement.prev) != (seq + 1, prev):
        if statement.seq <= seq:
            record = store.event_at(statement.stream, statement.seq)
            if record is not None and _signed_of(record.state) == signed:
                return record.position
        raise ConflictError(
            f"{statement.stream}: the statement follows #{statement.seq - 1} "
            f"({statement.prev[:12]}…), but the stream's head is #{seq} ({prev[:12]}…)",
            "Prepare the command again against the current head and sign it again.")
    command, pem = _command_of(statement)
    item = session.prepare(command, pem)   # the local write path's own judgement
    if item.signed != signed:
        raise InputError(f"the statement is not what this ledger writes for that command: "
                         f"{_difference(item.statement, statement)}",
                         "Sign exactly the bytes `prepare` returned.")
    return Prepared(statement, signed, None)


def _signed_of(state: bytes) -> bytes | None:
    try:
        return Envelope.from_bytes(state).signed
    except ValueError:
        return None


def _command_of(statement: Statement) -> tuple[Command, bytes | None]:
    data = dict(statement.data)
    pem = None
    if statement.type in ("actor.add", "actor.rotate_key") and "public_key" in data:
        pem = PublicKey.from_raw(bytes.fromhex(data.pop("public_key"))).to_pem()
    case = None if statement.stream == DIRECTORY_STREAM else statement.stream
    return Command(statement.type, case, data, statement.actor, statement.business_time,
                   statement.cmd, statement.migration), pem


def _difference(expected: Statement, given: Statement) -> str:
    theirs, ours = given.to_object(), expected.to_object()
    for name in sorted(set(theirs) | set(ours)):
        if theirs.get(name) != ours.get(name):
            return f"field {name} differs"
    return "its bytes are not the canonical encoding"


# ---- receipts and proofs ------------------------------------------------------------------------

def _proofs(store: Store, build: Callable[[Callable[[int, int], bytes]], list[bytes]]
            ) -> list[bytes]:
    """Run a proof builder twice: once to learn which nodes it needs, once on those nodes
    fetched in a few queries (instead of one query per node)."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(32)

    build(record)
    nodes = store.get_nodes(wanted)

    def get(level: int, index: int) -> bytes:
        try:
            return nodes[(level, index)]
        except KeyError:
            raise StorageError(f"the Merkle node ({level}, {index}) is missing from the ledger",
                               "Run `xinfang verify` to find what was changed.") from None

    return build(get)


def inclusion_proof_at(store: Store, index: int, size: int) -> list[bytes]:
    if not 0 <= index < size:
        raise InputError(f"leaf {index} is not in a tree of size {size}")
    return _proofs(store, lambda get: inclusion_proof(index, size, get))


def consistency_proof_between(store: Store, old: int, new: int) -> list[bytes]:
    if not 0 <= old <= new:
        raise InputError(f"no consistency proof from size {old} to size {new}")
    return _proofs(store, lambda get: consistency_proof(old, new, get))


def receipt_documents(store: Store, receipts: Sequence[Receipt], *,
                      proofs: str = "all") -> list[dict[str, Any]]:
    """Receipts as the server answers them: each with its leaf, the latest signed checkpoint
    and the inclusion proof in its tree — every receipt (``proofs="all"``), the last one
    only (``"last"``: an import keeps one receipt per batch; the others are bare) or none
    (``"none"``)."""
    latest = store.latest_checkpoint()
    if latest is None:
        raise StorageError("the ledger has no signed checkpoint")
    leaves = store.leaves_at([r.position for r in receipts])
    out = []
    for number, receipt in enumerate(receipts):
        full = proofs == "all" or (proofs == "last" and number == len(receipts) - 1)
        leaf = leaves.get(receipt.position)
        bare = {"stream": receipt.stream, "seq": receipt.seq, "position": receipt.position,
                "type": receipt.type, "hash": receipt.hash, "duplicate": receipt.duplicate,
                "leaf_index": leaf[0] if leaf else None}
        if not full or leaf is None or leaf[0] >= latest.size:
            out.append(bare)
            continue
        record = store.event_at(receipt.stream, receipt.seq)
        if record is None:
            raise StorageError(f"the event {receipt.stream}#{receipt.seq} is missing")
        out.append(receipt_document(receipt, envelope=record.state, leaf_index=leaf[0],
                                    checkpoint=latest.note, tree_size=latest.size,
                                    proof=inclusion_proof_at(store, leaf[0], latest.size)))
    return out


__all__ = ["PreparedCommand", "Preparation", "consistency_proof_between", "inclusion_proof_at",
           "judge_signed", "prepare_commands", "receipt_documents", "submit_signed"]
