"""What crosses the wire between the ledger server and its clients (docs/api.md).

JSON documents in both directions, each with its strict reader here, so that the server and
the client (:mod:`ledger.writing.client`) cannot disagree on a shape:

* commands to prepare (:func:`command_document` / :func:`command_from_document`);
* receipts (:func:`receipt_document`; :func:`check_receipt` proves one on arrival, and
  :func:`check_kept_receipt` proves a kept one still holds against a later checkpoint);
* the directory (:func:`directory_document` / :func:`directory_from_document`), case
  histories and closure records as the server judged them (for readers who may not read the
  raw log), and the session-authentication message every client signs
  (:func:`auth_message`).

Bytes travel as standard base64 (:func:`b64` / :func:`unb64`), times as ISO 8601.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.domain.directory import Actor, Directory, KeyRecord, Unit
from ledger.domain.policy import Policy
from ledger.errors import InputError, VerificationError
from ledger.log.checkpoint import CheckpointError, parse_checkpoint, verify_checkpoint
from ledger.log.keys import PublicKey
from ledger.log.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.log.statement import Envelope, leaf_bytes, parse_time
from ledger.verification.closure import ClosureProblem, ClosureRecord, ClosureSignature
from ledger.verification.history import CaseHistory, HistoryEvent
from ledger.writing.commands import Command, Receipt

#: Domain separation of the session-authentication message (never an event or a note).
AUTH_CONTEXT = "xinfang-auth/v1"
MAX_PROOF = 64   # hashes in one RFC 9162 proof (trees of up to 2^64 leaves)


def auth_message(origin: str, actor: str, nonce: str) -> bytes:
    """The exact bytes an actor signs to open a session (docs/api.md, "Signing in")."""
    return f"{AUTH_CONTEXT}\n{origin}\n{actor}\n{nonce}\n".encode()


# ---- bytes --------------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str, *, limit: int | None = None) -> bytes:
    """Strict standard base64 (InputError naming ``what`` otherwise)."""
    if type(text) is not str or (limit is not None and len(text) > limit * 4 // 3 + 4):
        raise InputError(f"{what} is not a base64 string" if type(text) is not str
                         else f"{what} is too long")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise InputError(f"{what} is not standard base64") from None


def _hashes(items: Any, what: str) -> list[bytes]:
    if type(items) is not list or len(items) > MAX_PROOF:
        raise VerificationError(f"{what} is not a list of at most {MAX_PROOF} hashes")
    out = []
    for item in items:
        try:
            digest = unb64(item, what)
        except InputError as exc:
            raise VerificationError(exc.message) from None
        if len(digest) != 32:
            raise VerificationError(f"{what} holds a hash that is not 32 bytes")
        out.append(digest)
    return out


# ---- commands -----------------------------------------------------------------------------------

def command_document(command: Command, public_key: bytes | None = None) -> dict[str, Any]:
    """A command as the prepare endpoint takes it; ``public_key`` (raw 32 bytes) is the new
    key of an ``actor.add`` or ``actor.rotate_key``, carried as ``data.public_key``."""
    data = dict(command.data)
    if public_key is not None:
        data["public_key"] = public_key.hex()
    doc: dict[str, Any] = {"action": command.action, "case": command.case,
                           "actor": command.actor, "at": command.at.isoformat(), "data": data}
    if command.cmd is not None:
        doc["cmd"] = command.cmd
    if command.migration is not None:
        doc["migration"] = command.migration
    return doc


def command_from_document(doc: Mapping[str, Any]) -> tuple[Command, bytes | None]:
    """The command and the PEM of its new public key (``data.public_key``, 64 hex digits)."""
    data = dict(doc["data"])
    pem = None
    if doc["action"] in ("actor.add", "actor.rotate_key") and "public_key" in data:
        value = data.pop("public_key")
        try:
            if type(value) is not str or len(value) != 64:
                raise ValueError
            pem = PublicKey.from_raw(bytes.fromhex(value)).to_pem()
        except ValueError:
            raise InputError("data.public_key is not a raw Ed25519 public key in 64 hex "
                             "digits") from None
    return Command(doc["action"], doc.get("case"), data, doc["actor"], parse_time(doc["at"]),
                   doc.get("cmd"), doc.get("migration")), pem


# ---- receipts -----------------------------------------------------------------------------------

def receipt_document(receipt: Receipt, *, envelope: bytes, leaf_index: int | None,
                     checkpoint: str, tree_size: int,
                     proof: Sequence[bytes] | None) -> dict[str, Any]:
    """A receipt: where the event landed, its stored envelope, and (when ``proof`` is given)
    the RFC 9162 inclusion proof of its leaf in the tree of the signed ``checkpoint``."""
    return {"stream": receipt.stream, "seq": receipt.seq, "position": receipt.position,
            "type": receipt.type, "hash": receipt.hash, "duplicate": receipt.duplicate,
            "envelope": b64(envelope), "leaf_index": leaf_index, "tree_size": tree_size,
            "checkpoint": checkpoint,
            "proof": None if proof is None else [b64(p) for p in proof]}


@dataclass(frozen=True)
class CheckedReceipt:
    """A receipt proven on arrival: the event's leaf is in the signed checkpoint's tree."""

    receipt: Receipt
    leaf_index: int
    tree_size: int
    root: bytes
    document: dict[str, Any]


def _int_field(doc: Mapping[str, Any], name: str) -> int:
    value = doc.get(name)
    if type(value) is not int or value < 0:
        raise VerificationError(f"the receipt's {name} is not a non-negative integer")
    return value


def _checkpoint_root(note: Any, log_key: bytes | None, origin: str | None) -> tuple[int, bytes]:
    if type(note) is not str:
        raise VerificationError("the receipt carries no checkpoint note")
    try:
        checkpoint = (verify_checkpoint(note, origin or parse_checkpoint(note).checkpoint.origin,
                                        log_key, origin=origin)
                      if log_key is not None else parse_checkpoint(note).checkpoint)
    except (CheckpointError, ValueError) as exc:
        raise VerificationError(f"the receipt's checkpoint does not verify under the log key: "
                                f"{exc}", "The server may not be the ledger you trust.") from None
    return checkpoint.size, checkpoint.root


def check_receipt(doc: Any, *, signed: bytes | None = None, signature: bytes | None = None,
                  log_key: bytes | None = None, origin: str | None = None) -> CheckedReceipt:
    """Prove a receipt as it arrives: its envelope holds exactly the ``signed`` bytes and
    ``signature`` the client submitted (when given), its leaf (position ‖ envelope) is
    included by the proof in the tree of its checkpoint, and that checkpoint is signed by
    ``log_key`` under ``origin`` (when given). VerificationError otherwise."""
    if not isinstance(doc, Mapping):
        raise VerificationError("the receipt is not a JSON object")
    try:
        envelope_bytes = unb64(doc.get("envelope"), "the receipt's envelope")
        envelope = Envelope.from_bytes(envelope_bytes)
    except (InputError, ValueError) as exc:
        raise VerificationError(f"the receipt's envelope is unreadable: {exc}") from None
    if signed is not None and envelope.signed != signed:
        raise VerificationError("the receipt's event is not the statement that was signed")
    if signature is not None and envelope.signature != signature:
        raise VerificationError("the receipt's event carries another signature")
    position = _int_field(doc, "position")
    index = _int_field(doc, "leaf_index")
    size, root = _checkpoint_root(doc.get("checkpoint"), log_key, origin)
    if _int_field(doc, "tree_size") != size:
        raise VerificationError("the receipt's tree size is not its checkpoint's")
    try:
        leaf = leaf_hash(leaf_bytes(position, envelope_bytes))
    except ValueError as exc:
        raise VerificationError(f"the receipt's position is unusable: {exc}") from None
    proof = _hashes(doc.get("proof"), "the receipt's inclusion proof")
    if not verify_inclusion(leaf, index, size, proof, root):
        raise VerificationError(f"the receipt's inclusion proof does not put the event at leaf "
                                f"{index} of the checkpoint of size {size}")
    if doc.get("hash") != envelope.hash:
        raise VerificationError("the receipt's event hash is not its envelope's")
    seq = doc.get("seq")
    receipt = Receipt(str(doc.get("stream")), seq if type(seq) is int else -1, position,
                      str(doc.get("type")), envelope.hash, bool(doc.get("duplicate")))
    return CheckedReceipt(receipt, index, size, root, dict(doc))


def check_kept_receipt(doc: Any, *, current_note: str, inclusion: Any, consistency: Any,
                       log_key: bytes, origin: str) -> str | None:
    """Why a kept receipt no longer holds against the log's current checkpoint (None when
    it does): the receipt itself must verify under the pinned ``log_key``; the event's leaf
    must be included in the current tree (``inclusion``, RFC 9162 §2.1.3) and the current
    tree must extend the receipt's (``consistency``, §2.1.4)."""
    try:
        kept = check_receipt(doc, log_key=log_key, origin=origin)
        size, root = _checkpoint_root(current_note, log_key, origin)
        if size < kept.tree_size:
            return (f"the log's current checkpoint (size {size}) is smaller than the receipt's "
                    f"({kept.tree_size}): the log was rolled back or truncated")
        envelope = unb64(doc["envelope"], "the receipt's envelope")
        leaf = leaf_hash(leaf_bytes(kept.receipt.position, envelope))
        if not verify_inclusion(leaf, kept.leaf_index, size,
                                _hashes(inclusion, "the inclusion proof"), root):
            return (f"the event is no longer leaf {kept.leaf_index} of the log's current tree "
                    f"(size {size})")
        if not verify_consistency(kept.tree_size, size, kept.root, root,
                                  _hashes(consistency, "the consistency proof")):
            return (f"the current tree (size {size}) is not consistent with the receipt's tree "
                    f"(size {kept.tree_size}): the log was rewritten")
    except (VerificationError, InputError) as exc:
        return exc.message
    return None


# ---- the directory ------------------------------------------------------------------------------

def directory_document(directory: Directory,
                       show: Callable[[Actor], bool] | None = None) -> dict[str, Any]:
    """The directory as JSON: origin, log key, policy, units, actors (those ``show``
    admits), and the keys of the actors shown."""
    actors = [a for a in directory.actors.values() if show is None or show(a)]
    shown = {a.actor for a in actors}
    return {
        "origin": directory.origin, "log_key": directory.log_key.hex(),
        "policy": directory.policy.to_data(),
        "units": [{"unit": u.unit, "name": u.name, "parent": u.parent}
                  for u in directory.units.values()],
        "actors": [{"actor": a.actor, "name": a.name, "unit": a.unit,
                    "roles": sorted(a.roles), "keyless": a.keyless, "key": a.key}
                   for a in actors],
        "keys": [{"key": k.key, "actor": k.actor, "public": k.public.hex(),
                  "valid_from": k.valid_from, "revoked_at": k.revoked_at}
                 for k in directory.keys.values() if k.actor in shown],
    }


def directory_from_document(doc: Mapping[str, Any]) -> Directory:
    """The directory a server sent (as the server judged it; for display and key lookups)."""
    try:
        directory = Directory(origin=str(doc["origin"]), log_key=bytes.fromhex(doc["log_key"]),
                              policy=Policy.recorded(doc["policy"]), initialized=True)
        for u in doc["units"]:
            directory.units[u["unit"]] = Unit(u["unit"], u["name"], u.get("parent"))
        for a in doc["actors"]:
            directory.actors[a["actor"]] = Actor(a["actor"], a["name"], a.get("unit"),
                                                 frozenset(a["roles"]), bool(a["keyless"]),
                                                 a.get("key"))
        for k in doc["keys"]:
            directory.keys[k["key"]] = KeyRecord(k["key"], k["actor"], bytes.fromhex(k["public"]),
                                                 int(k["valid_from"]), k.get("revoked_at"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VerificationError(f"the server's directory is malformed ({type(exc).__name__})"
                                ) from None
    return directory


# ---- what the server judged, for readers who may not read the raw log --------------------------

def history_from_document(doc: Mapping[str, Any]) -> CaseHistory:
    """A case history as the server judged it (``CaseHistory.to_json``); ``state`` is None
    (the document's ``status`` says where the case stands)."""
    try:
        events = [HistoryEvent(
            seq=e["seq"], position=e["position"], type=e["type"], at=e["at"],
            recorded_at=e["recorded_at"], actor=e["actor"], role=e["role"], unit=e["unit"],
            data=e["data"], hash=e["hash"], key=e["key"], signature_ok=e["signature_ok"],
            authorized=e["authorized"], chain_ok=e["chain_ok"],
            problems=tuple(e.get("problems", ())),
            failures=tuple((f["check"], f["reason"]) for f in e.get("failures", ())),
            recorded_lag_seconds=e.get("recorded_lag_seconds")) for e in doc["events"]]
        deadlines = {k: (date.fromisoformat(v) if v else None)
                     for k, v in doc.get("deadlines", {}).items()}
        return CaseHistory(str(doc["case"]), events, None, deadlines)
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"the server's case history is malformed "
                                f"({type(exc).__name__})") from None


def closure_record_from_document(doc: Mapping[str, Any]) -> ClosureRecord:
    """A closure record as the server judged it (``ClosureRecord.to_json``)."""
    try:
        signatures = {}
        for role, s in doc["signatures"].items():
            good = bool(s["signature_ok"] and s["authorized"] and s["chain_ok"])
            counted = bool(s.get("present")) and s.get("form") != "refused" and good
            signatures[role] = ClosureSignature(
                role=role, present=bool(s.get("present")), actor=s.get("actor"),
                at=s.get("at"), key=s.get("key"), seq=s.get("seq"), position=s.get("position"),
                hash=s.get("hash"), signature_ok=bool(s["signature_ok"]),
                authorized=bool(s["authorized"]), chain_ok=bool(s["chain_ok"]),
                opinion=s.get("opinion"), form=s.get("form"),
                document_sha256=s.get("document_sha256"), petitioner=s.get("petitioner"),
                problems=tuple(s.get("problems", ())),
                passed=bool(s["verified"]) if counted else True)
        problems = tuple(ClosureProblem(*str(p).split(": ", 1)) if ": " in str(p)
                         else ClosureProblem(str(p), "") for p in doc["problems"])
        return ClosureRecord(str(doc["case"]), doc.get("closed_at"), doc.get("closed_by"),
                             doc.get("close_seq"), doc.get("override_reason"), signatures,
                             problems)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VerificationError(f"the server's closure record is malformed "
                                f"({type(exc).__name__})") from None


def iso(value: Any) -> Any:
    """JSON for a value a report may hold (dates and times as ISO 8601)."""
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


__all__ = ["AUTH_CONTEXT", "CheckedReceipt", "auth_message", "b64", "check_kept_receipt",
           "check_receipt", "closure_record_from_document", "command_document",
           "command_from_document", "directory_document", "directory_from_document",
           "history_from_document", "iso", "receipt_document", "unb64"]
