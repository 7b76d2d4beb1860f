"""The library API: open or initialize a ledger, write signed commands, read case histories.

The CLI is a thin shell over :class:`Ledger`; another program can drive it the same way::

    from ledger import Ledger
    led = Ledger.open("sqlite:///./xinfang.db", keystore="~/.xinfang/keys")
    receipt = led.execute("accept", "XF-2025-000001", {"decision": "accepted"},
                          as_actor="office-01")
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.domain.cases import CaseState
from ledger.domain.directory import Directory
from ledger.domain.policy import Policy
from ledger.errors import (
    ConflictError,
    EnvironmentProblem,
    InputError,
    KeyUnavailableError,
    LedgerError,
    VerificationError,
)
from ledger.log.checkpoint import sign_note
from ledger.log.keys import LOG_KEY_NAME, Keystore, PublicKey, Signer, check_id
from ledger.log.log_signer import LogSigner
from ledger.log.statement import (
    DIRECTORY_STREAM,
    ZERO_HASH,
    Envelope,
    Statement,
    format_time,
    now_us,
)
from ledger.storage.store import AppendConflict, PendingEvent, Store, parse_location
from ledger.verification.view import CheckedStream, LedgerView
from ledger.writing.commands import Command, Receipt
from ledger.writing.session import Prepared, WriteSession, sign_all

__all__ = ["Command", "Ledger", "Receipt", "default_keystore"]

MAX_RETRIES = 20
SIGN_RUN = 256   # statements per signing run when a write is large enough to overlap


class _Signing:
    """Signs prepared statements while later commands are still being checked: runs of
    ``SIGN_RUN`` go to a signing thread (Ed25519 in ``cryptography`` releases the GIL).
    Small writes sign inline."""

    def __init__(self, commands: int) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="xinfang-sign") \
            if commands >= SIGN_RUN else None
        self.run: list[Prepared] = []
        self.futures: list[Future[list[bytes]]] = []

    def add(self, item: Prepared) -> None:
        self.run.append(item)
        if self.pool is not None and len(self.run) >= SIGN_RUN:
            self.futures.append(self.pool.submit(sign_all, self.run))
            self.run = []

    def results(self) -> list[bytes]:
        signatures = [sig for future in self.futures for sig in future.result()]
        return signatures + sign_all(self.run)

    def __enter__(self) -> _Signing:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def default_keystore() -> str:
    return os.environ.get("XINFANG_KEYSTORE") or str(Path("~/.xinfang/keys").expanduser())


def _pinned(keystore: Keystore, name: str) -> bytes | None:
    """A trust anchor kept in the keystore as ``<name>.pub`` (written by ``xinfang init``)."""
    try:
        path = keystore.public_path(name)
        return PublicKey.from_pem(path.read_bytes()).raw if path.exists() else None
    except (OSError, LedgerError):
        return None


def _refuse_unless_intact(stream: CheckedStream, what: str) -> None:
    failure = stream.first_failure
    if failure is not None:
        raise VerificationError(
            f"{what} has an event that fails verification, so nothing was written: "
            f"position {failure.position} ({failure.stream}#{failure.seq}) fails check "
            f"{int(failure.check)}: {failure.reason}",
            "Run `xinfang verify` to see what was changed; no write builds on a bad event.")


class Ledger:
    def __init__(self, store: Store, keystore: Keystore) -> None:
        self.store = store
        self.keystore = keystore
        self._log_signer_state: LogSigner | None = None
        # Every write builds only on events this view has checked (signature, key,
        # authorization, chain, Merkle log), judged under the keystore's pinned anchors.
        self.view = LedgerView(store, log_key=_pinned(keystore, LOG_KEY_NAME),
                               admin_key=_pinned(keystore, "admin"))

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
             passphrase: str | None = None, at: datetime | None = None,
             reuse_keys: bool = False) -> Ledger:
        """Create the tables, the log key and the admin key, and sign the first event.

        A keystore that already holds a log key or this admin's key belongs to another ledger:
        refused unless ``reuse_keys`` (integrity.md, "Trust anchors are taken by role"). The
        log key and the admin key always differ. The log signer's state for ``origin`` starts
        empty (with ``reuse_keys``, replacing the one an earlier ledger of that origin left).
        """
        check_id(admin, "admin id")
        if admin == LOG_KEY_NAME:
            raise InputError(f"the admin id {admin!r} is the log key's name",
                             "Choose another admin id, e.g. admin-01.")
        if not origin or any(c.isspace() for c in origin) or "+" in origin:
            raise InputError(f"invalid origin {origin!r}",
                             "Use a schema-less URL-like name, e.g. xx-city-psb.example/ledger.")
        location = parse_location(url)
        store = Store(location, create=True)
        try:
            if store.is_initialized():
                raise InputError(f"the ledger at {location.display} is already initialized")
            keys = Keystore(keystore or default_keystore(),
                            passphrase if passphrase is not None
                            else os.environ.get("XINFANG_PASSPHRASE"))
            held = [name for name in (LOG_KEY_NAME, admin) if keys.has(name)]
            if held and not reuse_keys:
                raise InputError(
                    f"the keystore {keys.path} already holds the key(s) {', '.join(held)}, "
                    "made for another ledger",
                    "Give a new ledger its own --keystore, or pass --reuse-keys to bind these "
                    "keys to this ledger too.")
            log_signer = keys.load(LOG_KEY_NAME) if keys.has(LOG_KEY_NAME) else keys.create(
                LOG_KEY_NAME)
            admin_signer = keys.load(admin) if keys.has(admin) else keys.create(admin)
            if admin_signer.public == log_signer.public:
                raise InputError(f"the key of {admin!r} is the log key",
                                 "The log key and the admin key must differ: give the admin "
                                 "its own key.")
        except BaseException:
            store.close()
            raise
        keys.write_public("admin", admin_signer.public)
        state = LogSigner(keys.path, origin, log_signer)
        state.start()
        ledger = cls(store, keys)
        data = {"origin": origin, "admin": admin, "admin_name": admin_name or admin,
                "admin_key": admin_signer.public.hex(), "log_key": log_signer.public.hex(),
                "policy": (policy or Policy()).to_data()}
        statement = Statement(
            origin=origin, stream=DIRECTORY_STREAM, seq=1, prev=ZERO_HASH, type="init",
            at=format_time(at or datetime.now(tz=UTC)), actor=admin, key=admin_signer.key_id,
            data=data)
        signed = statement.signed_bytes()
        envelope = Envelope(now_us(), admin_signer.sign(signed), signed)
        ledger._append([PendingEvent(DIRECTORY_STREAM, 1, "init", envelope.to_bytes())], state)
        return ledger

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- directory ---------------------------------------------------------------------------

    def directory(self) -> Directory:
        """The current directory, as its events that pass every check make it."""
        return self.view.directory()

    def checked_directory(self) -> tuple[Directory, tuple[int, str]]:
        """The directory and its stream head for a write; refuses (VerificationError) when
        any directory event fails a check, since every write is judged by the directory."""
        stream = self.view.directory_stream()
        _refuse_unless_intact(stream, "the directory")
        return self.view.directory(), stream.head

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
        data = {"actor": actor, **({"key": key} if key else {}),
                **({"reason": reason} if reason else {})}
        return self.execute("actor.revoke_key", None, data, as_actor=as_actor, at=at)

    # ---- cases -------------------------------------------------------------------------------

    def case_state_and_head(self, case: str) -> tuple[CaseState | None, tuple[int, str]]:
        """The case's state and head (seq, hash) for a write, from its checked events: a
        write never builds on an event that fails a check (VerificationError instead).

        Returns a copy of the state the caller may change."""
        stream = self.view.stream(case)
        _refuse_unless_intact(stream, f"case {case}")
        return copy.copy(stream.state), stream.head

    def event_hash(self, stream: str, seq: int) -> str | None:
        """The hash of a stored event (None if there is none): what a reverse-check finding
        cites as evidence. A wrong or forged hash is refused when the finding is written."""
        record = self.store.event_at(stream, seq)
        return Envelope.from_bytes(record.state).hash if record is not None else None

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
        return self.execute_many([command], public_key_pems={0: public_key_pem}
                                 if public_key_pem else None)[0]

    def execute_many(self, commands: list[Command], *, batch_size: int = 1000,
                     progress: Callable[[str, int, int], None] | None = None,
                     public_key_pems: dict[int, bytes] | None = None) -> list[Receipt]:
        """Check every command against the ledger as it will be, then append them in batches.

        Nothing is written unless every command passes; a failing command raises its error
        with ``index`` set to its place in ``commands``. Commands whose ``cmd`` id is already
        recorded are skipped (their receipts say ``duplicate``). Each batch is one transaction
        with its own signed checkpoint, so an interrupted run leaves whole batches only, and
        running it again completes it.
        """
        for _attempt in range(MAX_RETRIES):
            session = WriteSession(self, simulate=len(commands) > 1)
            ids = [c.cmd for c in commands if c.cmd]
            done = self.store.recorded_commands(ids) if ids else {}
            receipts: list[Receipt | None] = [None] * len(commands)
            prepared: list[tuple[int, Prepared]] = []
            seen: set[str] = set()
            with _Signing(len(commands)) as signing:
                for index, command in enumerate(commands):
                    if command.cmd is not None and (command.cmd in done
                                                    or command.cmd in seen):
                        if command.cmd in done:
                            receipts[index] = self._receipt_for_position(
                                done[command.cmd], duplicate=True)
                        continue
                    try:
                        item = session.prepare(command, (public_key_pems or {}).get(index))
                    except LedgerError as exc:
                        exc.index = index  # type: ignore[attr-defined]
                        raise
                    if command.cmd is not None:
                        seen.add(command.cmd)
                    prepared.append((index, item))
                    signing.add(item)
                    if progress and len(prepared) % 500 == 0:
                        progress("checked", index + 1, len(commands))
                signatures = signing.results()
            for signer in session.new_keys.values():
                self.keystore.save(signer)
            try:
                self.write_prepared(prepared, signatures, receipts, batch_size=batch_size,
                                    progress=progress)
            except AppendConflict as exc:
                written = int(getattr(exc, "written", 0))
                if written == 0:
                    continue   # someone else wrote meanwhile: the view reads it next time
                raise ConflictError(
                    f"another writer changed the same cases after {written} events were written",
                    "Run the same command again: what was written is recognized and skipped."
                ) from None
            for actor, signer in session.rotated_keys.items():
                self.keystore.retire(actor)
                self.keystore.save(signer)
            return [r for r in receipts if r is not None] if len(commands) > 1 else \
                [receipts[0]] if receipts[0] is not None else []
        raise ConflictError(f"gave up after {MAX_RETRIES} concurrent conflicts",
                            "Try the command again.")

    def write_prepared(self, prepared: list[tuple[int, Prepared]], signatures: list[bytes],
                       receipts: list[Receipt | None], *, batch_size: int = 1000,
                       progress: Callable[[str, int, int], None] | None = None) -> int:
        """Append prepared statements with their signatures, ``batch_size`` a transaction
        (each with its own signed checkpoint); the receipt of ``prepared[i] = (index, item)``
        goes to ``receipts[index]``. Returns how many were written. A concurrent append
        raises AppendConflict carrying ``written``, the count of events already committed."""
        written = 0
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start:start + batch_size]
            pending = [item.pending(signature) for (_, item), signature
                       in zip(chunk, signatures[start:start + batch_size], strict=True)]
            try:
                positions = self._append(pending)
            except AppendConflict as exc:
                exc.written = written   # type: ignore[attr-defined]
                raise
            for (index, item), position, event in zip(chunk, positions, pending, strict=True):
                statement = item.statement
                self.view.note_appended(statement, position, Envelope.from_bytes(event.state))
                receipts[index] = Receipt(statement.stream, statement.seq, position,
                                          statement.type, item.hash)
            written += len(chunk)
            if progress:
                progress("written", written, len(prepared))
        return written

    def import_file(self, path: str | os.PathLike[str], *, batch_size: int = 1000,
                    progress: Callable[[str, int, int], None] | None = None,
                    migration: str | None = None, dry_run: bool = False) -> Any:
        """``ledger.writing.importer.import_file`` on this ledger (an ``ImportResult``); the
        ledger server's client offers the same method, so the CLI calls either alike."""
        from ledger.writing.importer import import_file

        return import_file(self, Path(path), batch_size=batch_size, progress=progress,
                           migration=migration, dry_run=dry_run)

    def _signer_identity(self) -> tuple[str, bytes]:
        """Origin and log key as the stored init event names them, read directly rather than
        through the checked view: the signer proves the tree itself (ledger/log/log_signer.py),
        so a tampered log must get its precise refusal, not "no log key". Taking them unchecked
        is safe: a changed origin finds no signer state, and the trust-on-first-use check then
        needs a note the log key signed under that origin."""
        record = self.store.event_at(DIRECTORY_STREAM, 1)
        try:
            if record is None:
                raise ValueError("missing")
            statement = Statement.from_signed_bytes(Envelope.from_bytes(record.state).signed)
            if statement.type != "init":
                raise ValueError("not an init event")
            return statement.origin, bytes.fromhex(statement.data["log_key"])
        except (ValueError, KeyError, TypeError, LedgerError):
            raise VerificationError("the ledger's init event is missing or unreadable, so no "
                                    "checkpoint can be signed",
                                    "Run `xinfang verify` to find what was changed.") from None

    def _log_signer(self) -> Signer:
        signer = self.keystore.load(LOG_KEY_NAME)
        if signer.public != self._signer_identity()[1]:
            raise KeyUnavailableError("the keystore's log key is not this ledger's log key",
                                      "Point --keystore at the keystore made by `xinfang init`.")
        return signer

    def note_signer(self) -> Callable[[str], str]:
        """Sign a C2SP note text with this ledger's log key under its origin (the export's
        stream-heads note); KeyUnavailableError when the keystore lacks this ledger's log key.
        The key itself stays inside the returned function."""
        signer = self._log_signer()
        origin = self.directory().origin
        return lambda text: sign_note(text, origin, signer)

    def _checkpoint_signer(self) -> LogSigner:
        """The log key with its own state of the last tree it signed (made once per Ledger;
        the state itself is re-read at every write, see ledger/log/log_signer.py)."""
        if self._log_signer_state is None:
            self._log_signer_state = LogSigner(self.keystore.path, self._signer_identity()[0],
                                               self._log_signer())
        return self._log_signer_state

    def _append(self, pending: list[PendingEvent],
                log_signer: LogSigner | None = None) -> list[int]:
        return self.store.append(pending, log_signer or self._checkpoint_signer())

    def _receipt_for_position(self, position: int, *, duplicate: bool) -> Receipt:
        for note in self.store.iter_log(after=position - 1, batch=1, stop=position):
            envelope = Envelope.from_bytes(note.state)
            return Receipt(str(note.originator_id), note.originator_version, position, note.topic,
                           envelope.hash, duplicate)
        raise EnvironmentProblem(f"the recorded command at position {position} is missing")

    # ---- checkpoints -------------------------------------------------------------------------

    def reanchor(self) -> str:
        """After restoring a backup older than the last tree this keystore's log key signed:
        trust the restored ledger's latest checkpoint once (it must verify under the log key
        and match the tree recomputed from the rows) and return it. Only the log key's holder
        can do this; the refusal it lifts protects against everyone else."""
        self._checkpoint_signer().forget()
        return self.checkpoint()

    def checkpoint(self) -> str:
        """The latest signed checkpoint note, once the log signer has proven it is the tree it
        last signed (or a proven extension of it); refused otherwise (UnprovenTreeError)."""
        return self.store.write_checkpoint(self._checkpoint_signer()).note
