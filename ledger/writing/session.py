"""Preparing commands: validate, authorize and sign against the ledger *as it will be*.

A :class:`WriteSession` starts from the stored ledger and, when it prepares several commands,
applies each one to its in-memory copy of the directory, case states and stream heads, so the
next command is judged as if the earlier ones were already written. Nothing here writes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from ledger.domain.cases import CaseState, CaseViolation, apply_action, check_action
from ledger.domain.directory import Directory, DirectoryViolation
from ledger.domain.policy import business_date
from ledger.errors import (
    ForbiddenError,
    InputError,
    KeyUnavailableError,
    TransitionError,
)
from ledger.log.keys import Keystore, PublicKey, Signer, check_id
from ledger.log.statement import (
    DIRECTORY_STREAM,
    Envelope,
    Statement,
    event_hash,
    format_time,
    now_us,
)
from ledger.storage.store import PendingEvent, Store
from ledger.writing.commands import Command
from schemas.actions import (
    CASE_ACTIONS,
    CASE_NO_PATTERN,
    DIRECTORY_ACTIONS,
    field_name,
    parse_data,
    plain_errors,
)

Head = tuple[int, str]   # a stream's (seq, hash) head


class LedgerState(Protocol):
    """What a session reads of the ledger it prepares commands for (``Ledger`` provides it):
    checked state only, so no command is judged against an event that fails a check."""

    @property
    def store(self) -> Store: ...

    @property
    def keystore(self) -> Keystore: ...

    def checked_directory(self) -> tuple[Directory, Head]: ...

    def case_state_and_head(self, case: str) -> tuple[CaseState | None, Head]: ...

    def next_case_number(self, year: int) -> str: ...


def validation_message(exc: ValidationError, subject: str = "field",
                       limit: int = 3) -> str:
    """Pydantic's errors as plain sentences naming each field (``field served_at: is not a
    time; …``), never pydantic's own wording (issue 17); ``subject`` names what the field is
    to the reader (``import line 3, field``)."""
    parts = []
    for loc, sentence in plain_errors(exc)[:limit]:
        parts.append(f"{subject} {field_name(loc)}: {sentence}" if loc else sentence)
    return "; ".join(parts) or "invalid"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked statement and its exact signed bytes, waiting for its signature (the hash
    chain needs only the signed bytes, so signing can run apart from checking)."""

    statement: Statement
    signed: bytes
    signer: Signer | None   # None: prepared for someone who signs elsewhere (the server)

    def pending(self, signature: bytes) -> PendingEvent:
        envelope = Envelope(now_us(), signature, self.signed)
        return PendingEvent(self.statement.stream, self.statement.seq, self.statement.type,
                            envelope.to_bytes(), self.statement.cmd)

    @property
    def hash(self) -> str:
        return event_hash(self.signed)


def sign_all(items: list[Prepared]) -> list[bytes]:
    """Signatures for a run of prepared statements (``cryptography`` releases the GIL while
    signing, so this runs on another core in a thread)."""
    out = []
    for item in items:
        if item.signer is None:
            raise KeyUnavailableError(f"no private key to sign as {item.statement.actor} here")
        out.append(item.signer.sign(item.signed))
    return out


MAX_MIGRATION_NAME = 100


def migration_name(name: str | None) -> str | None:
    """A migration batch name as signed: short, printable, no surrounding spaces."""
    if name is not None and (not name or len(name) > MAX_MIGRATION_NAME
                             or name != name.strip() or not name.isprintable()):
        raise InputError(f"invalid migration name {name[:MAX_MIGRATION_NAME]!r}",
                         f"Use 1-{MAX_MIGRATION_NAME} printable characters, e.g. paper-2025.")
    return name


class WriteSession:
    """Prepares commands against the ledger as it will be.

    ``signing`` (the embedded mode) loads each actor's private key from the keystore and
    names it in the statement; without it (the ledger server, ``ledger.writing.submission``)
    the statement names the actor's *registered* key, no private key is touched, and new
    keys for ``actor.add``/``actor.rotate_key`` must be given (made on the person's device).
    """

    def __init__(self, ledger: LedgerState, *, simulate: bool, signing: bool = True) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.simulate = simulate
        self.signing = signing
        # One checked refresh per session; refused if any directory event fails a check.
        live, directory_head = ledger.checked_directory()
        self.directory: Directory = copy.deepcopy(live) if simulate else live
        self.states: dict[str, CaseState | None] = {}
        # Heads come from the same reads as the states they chain to; a concurrent append
        # then collides on (stream, seq) and the whole command is prepared again.
        self.heads: dict[str, Head] = {DIRECTORY_STREAM: directory_head}
        self.hashes: dict[tuple[str, int], str] = {}
        self._position: int | None = None   # synthetic log positions, for simulation
        self.next_numbers: dict[int, int] = {}
        self.new_keys: dict[str, Signer] = {}
        self.rotated_keys: dict[str, Signer] = {}
        self.now = datetime.now(tz=UTC)

    # ---- lookups that see the session's own pending commands ------------------------------

    def state(self, case: str) -> CaseState | None:
        if case not in self.states:
            self.states[case], head = self.ledger.case_state_and_head(case)
            self.heads.setdefault(case, head)
        return self.states[case]

    def head(self, stream: str) -> Head:
        if stream not in self.heads:
            self.state(stream)
        return self.heads[stream]

    def case_number(self, year: int) -> str:
        if year not in self.next_numbers:
            current = self.ledger.next_case_number(year)
            self.next_numbers[year] = int(current[-6:])
        number = self.next_numbers[year]
        while self.state(f"XF-{year:04d}-{number:06d}") is not None:
            number += 1
        self.next_numbers[year] = number + 1
        return f"XF-{year:04d}-{number:06d}"

    # ---- preparing one command --------------------------------------------------------------

    def prepare(self, command: Command, public_key_pem: bytes | None = None) -> Prepared:
        action = command.action
        if action in CASE_ACTIONS or action in DIRECTORY_ACTIONS:
            try:
                data = parse_data(action, command.data)
            except ValidationError as exc:
                error = InputError(f"invalid {action}: {validation_message(exc)}")
                error.validation = exc   # type: ignore[attr-defined]  # for the importer
                raise error from None
        else:
            raise InputError(f"unknown action {action!r}")
        at = command.at
        if at.tzinfo is None:
            raise InputError("the business time has no UTC offset")
        format_time(at)   # refuses a time outside the bounds every verifier accepts
        tolerance = timedelta(seconds=self.directory.policy.clock_tolerance_seconds)
        if at > self.now + tolerance:
            raise InputError(f"business time {at.isoformat()} is in the future",
                             "Business time is when the action happened; use --at.")
        if self.directory.actor(command.actor) is None:
            raise InputError(f"unknown actor {command.actor!r}",
                             "Register the actor with `xinfang actor add` first.")
        signer, key_id = self._key_for(command.actor)
        if action in CASE_ACTIONS:
            stream = self._check_case(command, data)
        else:
            stream = DIRECTORY_STREAM
            data = self._directory_data(action, data, public_key_pem)
            try:
                self.directory.check(action, command.actor, data)
            except DirectoryViolation as exc:
                raise (ForbiddenError if exc.forbidden else InputError)(str(exc)) from None
        seq, prev = self.head(stream)
        statement = Statement(origin=self.directory.origin, stream=stream, seq=seq + 1,
                              prev=prev, type=action, at=format_time(at), actor=command.actor,
                              key=key_id, data=data, cmd=command.cmd,
                              migration=migration_name(command.migration))
        signed = statement.signed_bytes()
        self._apply(statement, event_hash(signed))
        return Prepared(statement, signed, signer)

    def _apply(self, statement: Statement, digest: str) -> None:
        self.heads[statement.stream] = (statement.seq, digest)
        self.hashes[(statement.stream, statement.seq)] = digest
        if not self.simulate:
            return
        if self._position is None:
            self._position = self.store.max_position()
        self._position += 1
        if statement.stream == DIRECTORY_STREAM:
            self.directory.apply(statement.type, statement.data, self._position)
        else:
            self.states[statement.stream] = apply_action(
                self.states.get(statement.stream), statement.stream, statement.type,
                statement.data, statement.business_time, seq=statement.seq,
                actor=statement.actor)

    def _check_case(self, command: Command, data: dict[str, Any]) -> str:
        case = command.case
        if command.action == "register" and case is None:
            case = self.case_number(business_date(command.at).year)
        if case is None or not CASE_NO_PATTERN.match(case):
            raise InputError(f"invalid case number {case!r}",
                             "Case numbers look like XF-2025-000001.")
        state = self.state(case)
        if state is None and command.action != "register":
            raise InputError(f"unknown case {case}", "Check the case number.")
        if command.action == "register" and state is not None:
            raise InputError(f"case {case} is already registered")
        if command.action == "reverse_check_finding":
            self._check_evidence(data.get("evidence", []))
        try:
            check_action(state, command.action, data, self.directory.actors[command.actor],
                         command.at, self.directory, self.state)
        except CaseViolation as exc:
            raise (ForbiddenError if exc.forbidden else TransitionError)(
                f"{case}: {exc}") from None
        return case

    def _check_evidence(self, refs: list[dict[str, Any]]) -> None:
        for ref in refs:
            digest = self.hashes.get((ref["stream"], ref["seq"]))
            if digest is None:
                record = self.store.event_at(ref["stream"], ref["seq"])
                digest = Envelope.from_bytes(record.state).hash if record else None
            if digest != ref["hash"]:
                raise InputError(f"evidence {ref['stream']}#{ref['seq']} does not name a "
                                 "recorded event with that hash")

    # ---- keys -------------------------------------------------------------------------------

    def _key_for(self, actor_id: str) -> tuple[Signer | None, str]:
        """The signer (embedded mode) and the key id the statement names: the actor's
        registered key, refused for keyless actors and revoked keys."""
        actor = self.directory.actors[actor_id]
        if actor.keyless:
            raise ForbiddenError(f"{actor_id} is registered without a key and cannot sign",
                                 "Record the signature as witnessed by a registrar instead.")
        if actor.key is None:
            raise KeyUnavailableError(f"{actor_id} has no valid key (revoked)",
                                      "An admin can issue a new one with `actor rotate-key`.")
        if not self.signing:
            return None, actor.key
        signer = self._signer_for(actor_id, actor.key)
        return signer, signer.key_id

    def _signer_for(self, actor_id: str, registered: str) -> Signer:
        signer = self.rotated_keys.get(actor_id) or self.new_keys.get(actor_id) or \
            self.ledger.keystore.load(actor_id)
        if signer.key_id != registered:
            raise KeyUnavailableError(
                f"the keystore key of {actor_id} ({signer.key_id}) is not the registered key "
                f"({registered})", "It may have been rotated or revoked; use the current key.")
        return signer

    def _directory_data(self, action: str, data: dict[str, Any],
                        public_key_pem: bytes | None) -> dict[str, Any]:
        if action == "actor.add":
            if data.get("keyless"):
                if public_key_pem is not None:
                    raise InputError("a keyless actor takes no public key")
                return data
            return {**data, "public_key": self._new_public_key(data["actor"],
                                                               public_key_pem).hex()}
        if action == "actor.rotate_key":
            actor = check_id(data.get("actor", ""), "actor id")
            if public_key_pem is not None:
                public = PublicKey.from_pem(public_key_pem).raw
            elif not self.signing:
                raise InputError(f"a key rotation of {actor} needs the new public key",
                                 "Make the key on the person's own device (`xinfang key new`) "
                                 "and give its public key.")
            else:
                signer = Signer.generate(actor)
                self.rotated_keys[actor] = signer
                public = signer.public
            return {"actor": actor, "public_key": public.hex()}
        if action == "actor.revoke_key" and "key" not in data:
            target = self.directory.actor(data["actor"])
            if target is None or target.key is None:
                raise InputError(f"{data['actor']} has no current key to revoke")
            return {**data, "key": target.key}
        return data

    def _new_public_key(self, actor: str, public_key_pem: bytes | None) -> bytes:
        """The key to register for a new actor: given as PEM, an unregistered keystore key
        (e.g. left by an interrupted run), or a fresh one saved just before the write."""
        if public_key_pem is not None:
            return PublicKey.from_pem(public_key_pem).raw
        if not self.signing:
            raise InputError(f"a new actor {actor} needs a public key (or keyless)",
                             "Make the key on the person's own device (`xinfang key new`) and "
                             "register its public key.")
        keystore = self.ledger.keystore
        if keystore.has(actor):
            signer = keystore.load(actor)
            if signer.key_id in self.directory.keys:
                raise InputError(f"the keystore key of {actor} is already registered")
            return signer.public
        signer = Signer.generate(actor)
        self.new_keys[actor] = signer
        return signer.public
