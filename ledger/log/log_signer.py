"""The checkpoint signer and its own state: the last tree it signed, kept beside the log key.

integrity.md: "The signer of a checkpoint never signs a tree that it has not proven to extend the
last tree it signed (kept outside the database)." The database's ``frontier`` column and
``xf_nodes`` are written by the same insider the signer must not trust, so the signer keeps its
own record in the keystore directory, next to ``log.key``:

``log.state`` (JSON, mode 0600, replaced atomically)::

    {"version": 1, "logs": {"<origin>": {"key": "<log public key, hex>", "size": N,
                                          "root": "<hex>", "frontier": ["<hex>", ...]}}}

``frontier`` is the RFC 9162 compact range of the tree of ``size`` leaves (the roots of its
perfect subtrees, largest first), all that is needed to extend it. Entries are per origin
because ``init --reuse-keys`` may bind one log key to more than one ledger. A file lock
(``log.state.lock``) serializes updates from the processes that share one keystore in the
embedded mode; an update never moves an entry backwards.

Before each signature the database's latest checkpoint is compared with the state:

* equal (the common case): the state's tree is extended with the new leaves and signed;
* the database is **behind** (smaller, or same size and another root): rollback or rewrite —
  refused, nothing written;
* the database is **ahead** (another process of this keystore wrote, or a crash came between
  commit and state update): the missing leaves are recomputed from the stored events
  themselves, appended to the state's tree, and the result must equal the stored checkpoint's
  root *and* that checkpoint must verify under the log key — a proven RFC 9162 extension —
  or the write is refused.

A ledger written before this state existed has no entry: the first write trusts it once (TOFU)
after recomputing every leaf from the events and checking the root against the latest stored
checkpoint, which must verify under the log key. TOFU cannot catch a rollback or a rewrite made
*before* that first use with notes the log key had signed (e.g. the database restored from an
older backup): it only guarantees that nothing after it is laundered. Deleting ``log.state``
re-opens that window, which needs write access to the keystore (and so to the log key itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ledger.errors import KeyUnavailableError, VerificationError
from ledger.log.checkpoint import Checkpoint, CheckpointError, sign_checkpoint, verify_checkpoint
from ledger.log.keys import Signer
from ledger.log.merkle import HASH_SIZE, CompactRange, leaf_hash
from ledger.log.statement import leaf_bytes

STATE_FILE = "log.state"
STATE_VERSION = 1
MAX_SIZE = 2**64 - 1
VERIFY_HINT = "Run `xinfang verify` to find what was changed; nothing was written."

#: One stored leaf for catch-up: (leaf index, log position, stored leaf hash, the event row's
#: stored state, or None when no event is stored at that position).
LeafRow = tuple[int, int, bytes, bytes | None]
#: ``read(start, end)`` yields the stored leaves ``start <= idx < end`` in index order.
LeafReader = Callable[[int, int], Iterable[LeafRow]]


class CheckpointRow(Protocol):
    """What the signer needs of the database's latest checkpoint row."""

    @property
    def size(self) -> int: ...
    @property
    def root(self) -> bytes: ...
    @property
    def note(self) -> str: ...


class UnprovenTreeError(VerificationError):
    """The database's log is not a proven extension of the last tree this signer signed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, VERIFY_HINT)


@dataclass(frozen=True)
class SignedTree:
    """A tree extended with new leaves and signed: what the store inserts, then commits."""

    tree: CompactRange
    leaves: list[tuple[int, int, bytes]]   # (idx, position, leaf hash)
    nodes: list[tuple[int, int, bytes]]    # completed perfect subtrees (level >= 1)
    root: bytes
    note: str


class LogSigner:
    """The log key's Signer plus the signer state of one origin (see the module docstring)."""

    def __init__(self, keystore_dir: str | os.PathLike[str], origin: str, signer: Signer) -> None:
        self.dir = Path(keystore_dir).expanduser()
        self.path = self.dir / STATE_FILE
        self.origin = origin
        self.signer = signer
        self._key = signer.public.hex()

    # ---- the protocol ------------------------------------------------------------------------

    def start(self) -> None:
        """At ``init``: this origin's tree starts empty (replacing an entry a reused keystore
        held for an earlier ledger of the same origin — ``init`` refuses that unless told)."""
        self._update(CompactRange(), replace=True)

    def proven_tree(self, latest: CheckpointRow | None, read: LeafReader) -> CompactRange:
        """The tree at the database's latest checkpoint, proven to extend the state.

        Call it with the database's write lock held, so nothing moves meanwhile. Raises
        :class:`UnprovenTreeError` when the database is behind or does not match.
        """
        state = self._load()
        if state is None:
            if latest is None:
                raise UnprovenTreeError(
                    "the ledger has no checkpoint and this keystore no signer state for "
                    f"{self.origin!r}: there is no tree to extend")
            tree = self._replay(CompactRange(), latest.size, read)
            self.check_checkpoint(latest, tree, "its first use by this keystore (trusted once)")
            self.advance(tree)
            return tree
        if latest is None:
            if state.size == 0:
                return state
            raise UnprovenTreeError(
                f"the ledger has no checkpoint, but this signer last signed a tree of "
                f"{state.size} events: the database was rolled back or emptied")
        if latest.size == state.size:
            if latest.root == state.root():
                return state
            raise UnprovenTreeError(
                f"the ledger's latest checkpoint (size {latest.size}) has another root than the "
                "tree this signer signed at that size: the log was rewritten")
        if latest.size < state.size:
            raise UnprovenTreeError(
                f"the ledger's latest checkpoint covers {latest.size} events, but this signer "
                f"already signed a tree of {state.size}: the database was rolled back")
        tree = self._replay(state.copy(), latest.size, read)
        self.check_checkpoint(latest, tree, f"the last tree this signer signed (size "
                                            f"{state.size})")
        self.advance(tree)   # committed and proven: the state may catch up at once
        return tree

    def forget(self) -> None:
        """Drop this origin's state: the next write trusts the database's latest checkpoint
        once (it must verify under the log key). For the log key's holder after restoring a
        backup older than the last tree signed; never done implicitly."""
        with self._locked():
            logs = self._read_file()
            if logs.pop(self.origin, None) is not None:
                self._write_logs(logs)

    def extend_and_sign(self, tree: CompactRange,
                        entries: Iterable[tuple[int, bytes]]) -> SignedTree:
        """Append leaves for ``(position, stored state)`` entries to a copy of ``tree`` and sign
        the result with the log key (C2SP checkpoint; note key name = origin)."""
        tree = tree.copy()
        leaves, nodes = [], []
        for position, state in entries:
            digest = leaf_hash(leaf_bytes(position, state))
            leaves.append((tree.size, position, digest))
            nodes.extend(tree.append(digest))
        root = tree.root()
        note = sign_checkpoint(Checkpoint(self.origin, tree.size, root), self.origin,
                               self.signer)
        return SignedTree(tree, leaves, nodes, root, note)

    def advance(self, tree: CompactRange) -> None:
        """After the commit: record ``tree`` as the last signed one (never moving backwards).

        A failure here loses nothing: the state merely lags the database, and the next write
        catches up with a proof. So it is reported as a warning, not as a failed write."""
        try:
            self._update(tree)
        except KeyUnavailableError as exc:
            warnings.warn(f"the log signer's state {self.path} was not updated ({exc}); the "
                          "next write will catch up", RuntimeWarning, stacklevel=2)

    # ---- proofs ------------------------------------------------------------------------------

    def _replay(self, tree: CompactRange, end: int, read: LeafReader) -> CompactRange:
        """Extend ``tree`` to ``end`` leaves recomputed from the stored events (never from
        ``xf_nodes`` or the frontier column)."""
        expected = tree.size
        for idx, position, stored, state in read(tree.size, end):
            if type(idx) is not int or idx != expected:
                raise UnprovenTreeError(f"leaf {expected} is missing from the ledger")
            if state is None:
                raise UnprovenTreeError(f"leaf {idx} names log position {position!r:.40}, "
                                        "where no event is stored")
            try:   # hostile cells (a float position, text state) are refusals, not crashes
                digest = leaf_hash(leaf_bytes(position, state))
            except ValueError as exc:
                raise UnprovenTreeError(f"leaf {idx}: {exc}") from None
            if digest != stored:
                raise UnprovenTreeError(f"leaf {idx} does not match the event stored at log "
                                        f"position {position}")
            tree.append(digest)
            expected += 1
        if expected != end:
            raise UnprovenTreeError(f"leaf {expected} is missing from the ledger")
        return tree

    def check_checkpoint(self, latest: CheckpointRow, tree: CompactRange,
                         base: str = "the tree this signer signed") -> None:
        """``latest`` is ``tree``: same root, and its note verifies under the log key."""
        if tree.root() != bytes(latest.root):
            raise UnprovenTreeError(
                f"the ledger's latest checkpoint (size {latest.size}) is not an extension of "
                f"{base}: its root differs from the one recomputed from the events")
        try:
            note = verify_checkpoint(latest.note, self.origin, self.signer.public,
                                     origin=self.origin)
        except (CheckpointError, TypeError) as exc:
            raise UnprovenTreeError(f"the ledger's latest checkpoint (size {latest.size}) is "
                                    f"not signed by this log key: {exc}") from None
        if (note.size, note.root) != (latest.size, bytes(latest.root)):
            raise UnprovenTreeError(f"the ledger's latest checkpoint (size {latest.size}): its "
                                    "signed note and its columns disagree")

    # ---- the state file ----------------------------------------------------------------------

    def _load(self) -> CompactRange | None:
        """This origin's tree, or None when the keystore holds none (read without the lock:
        the file is only ever replaced whole)."""
        entry = self._read_file().get(self.origin)
        return None if entry is None else self._parse_entry(entry)

    def _read_file(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyUnavailableError(f"cannot read the log signer's state {self.path}: "
                                      f"{exc.strerror}") from None
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise self._corrupt("not JSON") from None
        if type(doc) is not dict or doc.get("version") != STATE_VERSION or \
                type(doc.get("logs")) is not dict:
            raise self._corrupt(f"not a version {STATE_VERSION} signer state")
        logs: dict[str, Any] = doc["logs"]
        return logs

    def _parse_entry(self, entry: Any) -> CompactRange:
        if type(entry) is not dict:
            raise self._corrupt(f"the entry of {self.origin!r} is not an object")
        if entry.get("key") != self._key:
            raise KeyUnavailableError(
                f"the log signer's state {self.path} for {self.origin!r} belongs to another "
                "log key", "Point --keystore at the keystore made by `xinfang init`.")
        size, root, frontier = entry.get("size"), entry.get("root"), entry.get("frontier")
        if type(size) is not int or not 0 <= size <= MAX_SIZE or type(frontier) is not list:
            raise self._corrupt(f"the entry of {self.origin!r} has a bad size or frontier")
        try:
            tree = CompactRange(size, [_hash(h) for h in frontier])
            ok = _hash(root) == tree.root()
        except (TypeError, ValueError):
            raise self._corrupt(f"the entry of {self.origin!r} has a bad frontier") from None
        if not ok:
            raise self._corrupt(f"the entry of {self.origin!r}: root and frontier disagree")
        return tree

    def _corrupt(self, why: str) -> KeyUnavailableError:
        return KeyUnavailableError(
            f"the log signer's state {self.path} is unreadable: {why}",
            "Restore the keystore from its backup (removing the file makes the next write "
            "trust the database once).")

    def _update(self, tree: CompactRange, *, replace: bool = False) -> None:
        """Write ``tree`` as this origin's state if it is further than the recorded one (or
        unconditionally with ``replace``), under the keystore's lock."""
        entry = {"key": self._key, "size": tree.size, "root": tree.root().hex(),
                 "frontier": [h.hex() for h in tree.hashes]}
        with self._locked():
            logs = self._read_file()
            current = logs.get(self.origin)
            if not replace and current is not None and \
                    self._parse_entry(current).size >= tree.size:
                return
            logs[self.origin] = entry
            self._write_logs(logs)

    def _write_logs(self, logs: dict[str, Any]) -> None:
        """Replace the state file atomically (call with the lock held)."""
        data = json.dumps({"version": STATE_VERSION, "logs": logs}, sort_keys=True,
                          indent=1).encode()
        tmp = self.path.with_name(STATE_FILE + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)   # the data before the rename: a crash leaves old or new
            finally:
                os.close(fd)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise KeyUnavailableError(f"cannot write the log signer's state {self.path}: "
                                      f"{exc.strerror}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # flock locks belong to the open file description: two Ledgers in one process exclude
        # each other too. Opened per update so a forked child never shares the lock.
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.dir / (STATE_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise KeyUnavailableError(f"cannot lock the log signer's state in {self.dir}: "
                                      f"{exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _hash(value: Any) -> bytes:
    if type(value) is not str or len(value) != 2 * HASH_SIZE:
        raise ValueError("not a hex SHA-256 hash")
    return bytes.fromhex(value)
