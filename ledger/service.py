"""The library API: open or initialize a ledger, write signed commands, read case histories.

The CLI is a thin shell over :class:`Ledger`; another program can drive it the same way::

    from ledger import Ledger
    led = Ledger.open("sqlite:///./xinfang.db", keystore="~/.xinfang/keys")
    receipt = led.execute("accept", "XF-2025-000001", {"decision": "accepted"},
                          as_actor="office-01")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.actions import CASE_ACTIONS, CASE_NO_PATTERN, parse_data

from .cases import CaseState, CaseViolation, apply_action, check_action
from .checkpoint import Checkpoint, sign_checkpoint
from .directory import Directory, DirectoryViolation
from .errors import (
    ConflictError,
    EnvironmentProblem,
    ForbiddenError,
    InputError,
    KeyUnavailableError,
    TransitionError,
)
from .keys import LOG_KEY_NAME, Keystore, Signer, check_id, load_public_pem
from .policy import Policy, business_date
from .statement import (
    DIRECTORY_STREAM,
    ZERO_HASH,
    Envelope,
    Statement,
    format_time,
    now_us,
)
from .store import AppendConflict, PendingEvent, Store, StoredRecord, parse_location

MAX_RETRIES = 20


@dataclass(frozen=True)
class Receipt:
    """What a successful write returns: where the event landed and its hash."""

    stream: str
    seq: int
    position: int
    type: str
    hash: str
    duplicate: bool = False


@dataclass(frozen=True)
class Command:
    """One command to sign and append (the unit of ``execute_many``)."""

    action: str
    case: str | None
    data: dict[str, Any]
    actor: str
    at: datetime
    cmd: str | None = None


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "data"
    return f"{where}: {first.get('msg', 'invalid')}"


def default_keystore() -> str:
    return os.environ.get("XINFANG_KEYSTORE") or str(Path("~/.xinfang/keys").expanduser())


class Ledger:
    def __init__(self, store: Store, keystore: Keystore) -> None:
        self.store = store
        self.keystore = keystore
        self._directory: Directory | None = None
        self._directory_seq = 0
        self._directory_head = ZERO_HASH
        self._staged_keys: dict[str, Signer] = {}

    # ---- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, keystore: str | os.PathLike[str] | None = None,
             passphrase: str | None = None) -> Ledger:
        store = Store(parse_location(url))
        if not store.is_initialized():
            store.close()
            raise EnvironmentProblem(f"the ledger at {parse_location(url).display} is not "
                                     "initialized", "Run `xinfang init` first.")
        return cls(store, Keystore(keystore or default_keystore(),
                                   passphrase if passphrase is not None
                                   else os.environ.get("XINFANG_PASSPHRASE")))

    @classmethod
    def init(cls, url: str, keystore: str | os.PathLike[str] | None, *, origin: str,
             admin: str, admin_name: str | None = None, policy: Policy | None = None,
             passphrase: str | None = None, at: datetime | None = None) -> Ledger:
        """Create the tables, the log key and the admin key, and sign the first event."""
        check_id(admin, "admin id")
        if not origin or any(c.isspace() for c in origin) or "+" in origin:
            raise InputError(f"invalid origin {origin!r}",
                             "Use a schema-less URL-like name, e.g. xx-city-psb.example/ledger.")
        location = parse_location(url)
        store = Store(location, create=True)
        if store.is_initialized():
            store.close()
            raise InputError(f"the ledger at {location.display} is already initialized")
        keys = Keystore(keystore or default_keystore(),
                        passphrase if passphrase is not None
                        else os.environ.get("XINFANG_PASSPHRASE"))
        log_signer = keys.load(LOG_KEY_NAME) if keys.has(LOG_KEY_NAME) else keys.create(
            LOG_KEY_NAME)
        admin_signer = keys.load(admin) if keys.has(admin) else keys.create(admin)
        keys.write_public("admin", admin_signer.public)
        ledger = cls(store, keys)
        data = {"origin": origin, "admin": admin, "admin_name": admin_name or admin,
                "admin_key": admin_signer.public.hex(), "log_key": log_signer.public.hex(),
                "policy": (policy or Policy()).to_data()}
        ledger._append([ledger._sign(Statement(
            origin=origin, stream=DIRECTORY_STREAM, seq=1, prev=ZERO_HASH, type="init",
            at=format_time(at or datetime.now(tz=UTC)), actor=admin, key=admin_signer.key_id,
            data=data), admin_signer)], origin, log_signer)
        return ledger

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- directory ---------------------------------------------------------------------------

    def directory(self) -> Directory:
        """The current directory, refreshed incrementally from the directory stream."""
        if self._directory is None:
            self._directory = Directory()
        for record in self.store.stream(DIRECTORY_STREAM, after_seq=self._directory_seq):
            envelope = Envelope.from_bytes(record.state)
            statement = Statement.from_signed_bytes(envelope.signed)
            self._directory.apply(statement.type, statement.data, record.position)
            self._directory_seq = record.seq
            self._directory_head = envelope.hash
        return self._directory

    @property
    def origin(self) -> str:
        return self.directory().origin

    @property
    def policy(self) -> Policy:
        return self.directory().policy

    def add_unit(self, unit: str, name: str, parent: str | None = None, *, as_actor: str,
                 at: datetime | None = None, cmd: str | None = None) -> Receipt:
        data = {"unit": unit, "name": name, **({"parent": parent} if parent else {})}
        return self.execute("unit.add", None, data, as_actor=as_actor, at=at, cmd=cmd)

    def add_actor(self, actor: str, name: str, *, roles: Iterable[str], unit: str | None = None,
                  keyless: bool = False, public_key_pem: bytes | None = None, as_actor: str,
                  at: datetime | None = None, cmd: str | None = None) -> Receipt:
        data: dict[str, Any] = {"actor": actor, "name": name, "roles": sorted(set(roles)),
                                "keyless": keyless}
        if unit:
            data["unit"] = unit
        return self.execute("actor.add", None, data, as_actor=as_actor, at=at, cmd=cmd,
                            public_key_pem=public_key_pem)

    def rotate_key(self, actor: str, *, as_actor: str, at: datetime | None = None,
                   public_key_pem: bytes | None = None) -> Receipt:
        return self.execute("actor.rotate_key", None, {"actor": actor}, as_actor=as_actor,
                            at=at, public_key_pem=public_key_pem)

    def revoke_key(self, actor: str, *, as_actor: str, key: str | None = None,
                   reason: str | None = None, at: datetime | None = None) -> Receipt:
        directory = self.directory()
        target = directory.actor(actor)
        if target is None:
            raise InputError(f"unknown actor {actor!r}")
        key = key or target.key
        if key is None:
            raise InputError(f"{actor} has no current key to revoke")
        data = {"actor": actor, "key": key, **({"reason": reason} if reason else {})}
        return self.execute("actor.revoke_key", None, data, as_actor=as_actor, at=at)

    # ---- cases -------------------------------------------------------------------------------

    def case_records(self, case: str) -> list[StoredRecord]:
        return self.store.stream(case)

    def case_state(self, case: str, *, before_position: int | None = None) -> CaseState | None:
        state: CaseState | None = None
        for record in self.store.stream(case):
            if before_position is not None and record.position >= before_position:
                break
            statement = Statement.from_signed_bytes(Envelope.from_bytes(record.state).signed)
            state = apply_action(state, case, statement.type, statement.data,
                                 statement.business_time)
        return state

    def next_case_number(self, year: int) -> str:
        prefix = f"XF-{year:04d}-"
        current = self.store.max_case_number(prefix)
        number = int(current[len(prefix):]) + 1 if current else 1
        return f"{prefix}{number:06d}"

    # ---- writing -----------------------------------------------------------------------------

    def execute(self, action: str, case: str | None, data: dict[str, Any], *, as_actor: str,
                at: datetime | None = None, cmd: str | None = None,
                public_key_pem: bytes | None = None) -> Receipt:
        """Validate, authorize, sign and append one command; retry on a concurrent append."""
        command = Command(action, case, data, as_actor, at or datetime.now(tz=UTC), cmd)
        for _attempt in range(MAX_RETRIES):
            if cmd is not None:
                done = self.store.recorded_commands([cmd])
                if cmd in done:
                    return self._receipt_for_position(done[cmd], duplicate=True)
            pending, statement = self._prepare(command, public_key_pem)
            try:
                position = self._append([pending])[0]
            except AppendConflict:
                if action == "register" and case is not None and \
                        self.store.event_at(case, 1) is not None and cmd is None:
                    raise InputError(f"case {case} is already registered") from None
                continue
            self._after_append(command)
            return Receipt(statement.stream, statement.seq, position, action,
                           Envelope.from_bytes(pending.state).hash)
        raise ConflictError(f"gave up after {MAX_RETRIES} concurrent conflicts on "
                            f"{case or DIRECTORY_STREAM}", "Try the command again.")

    def _prepare(self, command: Command, public_key_pem: bytes | None,
                 states: dict[str, CaseState | None] | None = None,
                 heads: dict[str, tuple[int, str]] | None = None
                 ) -> tuple[PendingEvent, Statement]:
        """Check a command against the current ledger and sign it (nothing is written)."""
        action = command.action
        try:
            data = parse_data(action, command.data) if action in CASE_ACTIONS or action in (
                "unit.add", "actor.add") else dict(command.data)
        except KeyError:
            raise InputError(f"unknown action {action!r}") from None
        except ValidationError as exc:
            raise InputError(f"invalid {action} data: {validation_message(exc)}") from None
        directory = self.directory()
        signer_actor = directory.actor(command.actor)
        if signer_actor is None:
            raise InputError(f"unknown actor {command.actor!r}",
                             "Register the actor with `xinfang actor add` first.")
        signer = self._signer_for(command.actor, directory)
        at = command.at
        if at.tzinfo is None:
            raise InputError("the business time has no UTC offset")
        if action in CASE_ACTIONS:
            stream, data = self._check_case_command(command, data, directory, states, heads)
        else:
            stream = DIRECTORY_STREAM
            data = self._directory_data(action, data, public_key_pem)
            try:
                directory.check(action, command.actor, data)
            except DirectoryViolation as exc:
                forbidden = "role" in str(exc) or "not in the directory" in str(exc)
                raise (ForbiddenError if forbidden else InputError)(str(exc)) from None
        seq, prev = (heads or {}).get(stream) or self._head(stream)
        statement = Statement(origin=directory.origin, stream=stream, seq=seq + 1, prev=prev,
                              type=action, at=format_time(at), actor=command.actor,
                              key=signer.key_id, data=data, cmd=command.cmd)
        return self._sign(statement, signer), statement

    def _check_case_command(self, command: Command, data: dict[str, Any],
                            directory: Directory,
                            states: dict[str, CaseState | None] | None,
                            heads: dict[str, tuple[int, str]] | None
                            ) -> tuple[str, dict[str, Any]]:
        case = command.case
        if command.action == "register" and case is None:
            case = self.next_case_number(business_date(command.at).year)
        if case is None or not CASE_NO_PATTERN.match(case):
            raise InputError(f"invalid case number {case!r}", "Case numbers look like "
                             "XF-2025-000001.")
        if states is not None and case in states:
            state = states[case]
        else:
            state = self.case_state(case)

        def lookup(other: str) -> CaseState | None:
            if states is not None and other in states:
                return states[other]
            return self.case_state(other)

        if state is None and command.action != "register":
            raise InputError(f"unknown case {case}", "Check the case number.")
        if command.action == "reverse_check_finding":
            self._check_evidence(data.get("evidence", []), heads)
        try:
            check_action(state, command.action, data, directory.actors[command.actor],
                         command.at, directory, lookup)
        except CaseViolation as exc:
            raise (ForbiddenError if exc.forbidden else TransitionError)(
                f"{case}: {exc}") from None
        return case, data

    def _check_evidence(self, refs: list[dict[str, Any]],
                        heads: dict[str, tuple[int, str]] | None) -> None:
        for ref in refs:
            record = self.store.event_at(ref["stream"], ref["seq"])
            if record is None or Envelope.from_bytes(record.state).hash != ref["hash"]:
                raise InputError(f"evidence {ref['stream']}#{ref['seq']} does not name a "
                                 "recorded event with that hash")

    def _directory_data(self, action: str, data: dict[str, Any],
                        public_key_pem: bytes | None) -> dict[str, Any]:
        if action == "actor.add":
            if data.get("keyless"):
                if public_key_pem is not None:
                    raise InputError("a keyless actor takes no public key")
                return data
            public = self._new_public_key(data["actor"], public_key_pem)
            return {**data, "public_key": public.hex()}
        if action == "actor.rotate_key":
            actor = data["actor"]
            public = self._new_public_key(actor, public_key_pem, rotating=True)
            return {"actor": actor, "public_key": public.hex()}
        if action in ("unit.add", "actor.revoke_key"):
            return data
        raise InputError(f"unknown directory action {action!r}")

    def _new_public_key(self, actor: str, public_key_pem: bytes | None,
                        rotating: bool = False) -> bytes:
        """The public key to register: given as PEM, or one from (or new in) the keystore.

        A new actor's key is saved before its event is appended, so a crash cannot lose it (an
        unregistered keystore key is reused on the next attempt). A rotated key replaces the old
        one only after the rotation committed.
        """
        if public_key_pem is not None:
            return load_public_pem(public_key_pem)
        if rotating:
            signer = Signer.generate(actor)
            self._staged_keys[actor] = signer
            return signer.public
        if self.keystore.has(actor):
            signer = self.keystore.load(actor)
            if signer.key_id in self.directory().keys:
                raise InputError(f"the keystore key of {actor} is already registered")
            return signer.public
        return self.keystore.create(actor).public

    def _after_append(self, command: Command) -> None:
        """Install a rotated private key once its rotation event committed."""
        if command.action == "actor.rotate_key" and command.data["actor"] in self._staged_keys:
            actor = command.data["actor"]
            self.keystore.retire(actor)
            self.keystore.save(self._staged_keys.pop(actor))

    def _signer_for(self, actor_id: str, directory: Directory) -> Signer:
        actor = directory.actors[actor_id]
        if actor.keyless:
            raise ForbiddenError(f"{actor_id} is registered without a key and cannot sign",
                                 "Record the signature as witnessed by a registrar instead.")
        if actor.key is None:
            raise KeyUnavailableError(f"{actor_id} has no valid key (revoked)",
                                      "An admin can issue a new one with `actor rotate-key`.")
        signer = self.keystore.load(actor_id)
        if signer.key_id != actor.key:
            raise KeyUnavailableError(
                f"the keystore key of {actor_id} ({signer.key_id}) is not the registered key "
                f"({actor.key})", "It may have been rotated or revoked; use the current key.")
        return signer

    def _head(self, stream: str) -> tuple[int, str]:
        if stream == DIRECTORY_STREAM:
            self.directory()
            head = self.store.stream_head(stream)
        else:
            head = self.store.stream_head(stream)
        if head is None:
            return 0, ZERO_HASH
        return head.seq, Envelope.from_bytes(head.state).hash

    def _sign(self, statement: Statement, signer: Signer) -> PendingEvent:
        signed = statement.signed_bytes()
        envelope = Envelope(now_us(), signer.sign(signed), signed)
        return PendingEvent(statement.stream, statement.seq, statement.type,
                            envelope.to_bytes(), statement.cmd)

    def _log_signer(self) -> Signer:
        signer = self.keystore.load(LOG_KEY_NAME)
        if signer.public != self.directory().log_key:
            raise KeyUnavailableError("the keystore's log key is not this ledger's log key",
                                      "Point --keystore at the keystore made by `xinfang init`.")
        return signer

    def _checkpoint_signer(self, origin: str | None = None,
                           log_signer: Signer | None = None) -> Callable[[int, bytes], str]:
        origin = origin or self.origin
        signer = log_signer or self._log_signer()

        def sign(size: int, root: bytes) -> str:
            return sign_checkpoint(Checkpoint(origin, size, root), origin, signer.private)

        return sign

    def _append(self, pending: list[PendingEvent], origin: str | None = None,
                log_signer: Signer | None = None) -> list[int]:
        return self.store.append(pending, self._checkpoint_signer(origin, log_signer))

    def _receipt_for_position(self, position: int, *, duplicate: bool) -> Receipt:
        for note in self.store.iter_log(after=position - 1, batch=1, stop=position):
            envelope = Envelope.from_bytes(note.state)
            return Receipt(note.originator_id, note.originator_version, position, note.topic,
                           envelope.hash, duplicate)
        raise EnvironmentProblem(f"the recorded command at position {position} is missing")

    # ---- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> str:
        """The latest signed checkpoint note (signing a new one if the tree has grown)."""
        return self.store.write_checkpoint(self._checkpoint_signer()).note
