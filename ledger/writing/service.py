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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
)
from ledger.log.checkpoint import Checkpoint, sign_checkpoint
from ledger.log.keys import LOG_KEY_NAME, Keystore, Signer, check_id
from ledger.log.statement import (
    DIRECTORY_STREAM,
    ZERO_HASH,
    Envelope,
    Statement,
    format_time,
    now_us,
)
from ledger.storage.replay import CaseCache, replay_case
from ledger.storage.store import AppendConflict, PendingEvent, Store, parse_location
from ledger.writing.session import Prepared, WriteSession, sign_all

MAX_RETRIES = 20
SIGN_RUN = 256   # statements per signing run when a write is large enough to overlap


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


class Ledger:
    def __init__(self, store: Store, keystore: Keystore) -> None:
        self.store = store
        self.keystore = keystore
        self._directory: Directory | None = None
        self._directory_seq = 0
        self._directory_head = ZERO_HASH
        self._sign_checkpoint: Callable[[int, bytes], str] | None = None
        self._cases = CaseCache(store, capacity=4096)

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
        statement = Statement(
            origin=origin, stream=DIRECTORY_STREAM, seq=1, prev=ZERO_HASH, type="init",
            at=format_time(at or datetime.now(tz=UTC)), actor=admin, key=admin_signer.key_id,
            data=data)
        signed = statement.signed_bytes()
        envelope = Envelope(now_us(), admin_signer.sign(signed), signed)
        ledger._append([PendingEvent(DIRECTORY_STREAM, 1, "init", envelope.to_bytes())],
                       origin, log_signer)
        return ledger

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- directory ---------------------------------------------------------------------------

    def directory(self, *, refresh: bool = True) -> Directory:
        """The current directory, refreshed incrementally from the directory stream."""
        if self._directory is not None and not refresh:
            return self._directory
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
        data = {"actor": actor, **({"key": key} if key else {}),
                **({"reason": reason} if reason else {})}
        return self.execute("actor.revoke_key", None, data, as_actor=as_actor, at=at)

    # ---- cases -------------------------------------------------------------------------------

    def case_state(self, case: str, *, before_position: int | None = None) -> CaseState | None:
        return self.case_state_and_head(case, before_position=before_position)[0]

    def case_state_and_head(self, case: str, *, before_position: int | None = None
                            ) -> tuple[CaseState | None, tuple[int, str]]:
        """The case's state and its head (seq, hash), from one read of its stream, so a
        command is always chained to exactly the events its checks saw."""
        if before_position is not None:
            return replay_case(self.store, case, before_position=before_position)
        return self._cases.current(case)

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
            written = 0
            try:
                for start in range(0, len(prepared), batch_size):
                    chunk = prepared[start:start + batch_size]
                    pending = [item.pending(signature) for (_, item), signature
                               in zip(chunk, signatures[start:start + batch_size], strict=True)]
                    positions = self._append(pending)
                    for (index, item), position in zip(chunk, positions, strict=True):
                        statement = item.statement
                        receipts[index] = Receipt(statement.stream, statement.seq, position,
                                                  statement.type, item.hash)
                    written += len(chunk)
                    if progress:
                        progress("written", written, len(prepared))
            except AppendConflict:
                if written == 0:
                    self._directory = None  # reload: someone else wrote meanwhile
                    self._directory_seq = 0
                    continue
                raise ConflictError(
                    f"another writer changed the same cases after {written} events were written",
                    "Run the same command again: what was written is recognized and skipped."
                ) from None
            for actor, signer in session.rotated_keys.items():
                self.keystore.retire(actor)
                self.keystore.save(signer)
            if written and any(item.statement.stream == DIRECTORY_STREAM
                               for _, item in prepared):
                self.directory()
            return [r for r in receipts if r is not None] if len(commands) > 1 else \
                [receipts[0]] if receipts[0] is not None else []
        raise ConflictError(f"gave up after {MAX_RETRIES} concurrent conflicts",
                            "Try the command again.")

    def _log_signer(self) -> Signer:
        signer = self.keystore.load(LOG_KEY_NAME)
        if signer.public != self.directory(refresh=False).log_key:
            raise KeyUnavailableError("the keystore's log key is not this ledger's log key",
                                      "Point --keystore at the keystore made by `xinfang init`.")
        return signer

    def _checkpoint_signer(self, origin: str | None = None,
                           log_signer: Signer | None = None) -> Callable[[int, bytes], str]:
        """The function that signs checkpoints with the log key (made once per ledger)."""
        if origin is None and log_signer is None and self._sign_checkpoint is not None:
            return self._sign_checkpoint
        origin = origin or self.directory(refresh=False).origin
        signer = log_signer or self._log_signer()

        def sign(size: int, root: bytes) -> str:
            return sign_checkpoint(Checkpoint(origin, size, root), origin, signer.private)

        if log_signer is None:
            self._sign_checkpoint = sign
        return sign

    def _append(self, pending: list[PendingEvent], origin: str | None = None,
                log_signer: Signer | None = None) -> list[int]:
        return self.store.append(pending, self._checkpoint_signer(origin, log_signer))

    def _receipt_for_position(self, position: int, *, duplicate: bool) -> Receipt:
        for note in self.store.iter_log(after=position - 1, batch=1, stop=position):
            envelope = Envelope.from_bytes(note.state)
            return Receipt(str(note.originator_id), note.originator_version, position, note.topic,
                           envelope.hash, duplicate)
        raise EnvironmentProblem(f"the recorded command at position {position} is missing")

    # ---- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> str:
        """The latest signed checkpoint note (signing a new one if the tree has grown)."""
        return self.store.write_checkpoint(self._checkpoint_signer()).note
