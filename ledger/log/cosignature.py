"""Witness cosignatures: C2SP ``tlog-cosignature`` ``cosignature/v1`` (Ed25519) lines.

Specification: https://c2sp.org/tlog-cosignature (C2SP/C2SP ``tlog-cosignature.md``). A
cosignature is an ordinary signed-note signature line on a checkpoint::

    — <cosigner name> base64(key ID || u64be timestamp || Ed25519 signature)

* key ID = ``SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]`` (signature type
  0x04, so a cosignature can never be taken for the log's own 0x01 note signature);
* the signed message is ``"cosignature/v1\\n" "time <timestamp>\\n" <checkpoint note text>`` --
  the whole note text, extension lines and final newline included, no signature lines;
* the timestamp (POSIX seconds, at most 2^63-1, never 0 from a witness: c2sp.org/tlog-witness)
  says when the cosigner saw this as the largest consistent tree of the log.

The Ed25519 message does not commit to the cosigner's name, so a cosigner is identified by its
public key: a verifier that knows only the key (a PEM file) accepts a line under any name whose
key ID matches the key, and the signature decides. Signature lines of unknown keys are ignored,
as c2sp.org/signed-note requires.

Verifier keys ("vkeys", c2sp.org/signed-note) encode a cosigner as
``name+<8 hex key ID>+base64(0x04 || public key)``; a plain Ed25519 note vkey (type 0x01) of the
same key is accepted too, as ``golang.org/x/mod``-based tools convert one into the other
(transparency-dev/formats ``note.VKeyToCosignatureV1``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.log.checkpoint import (
    ED25519_ALG,
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    NoteSignature,
    NoteSigner,
    SignedCheckpoint,
    note_key_id,
    parse_checkpoint,
    verify_checkpoint,
)
from ledger.log.keys import PublicKey

__all__ = [
    "COSIGNATURE_ALG",
    "COSIGNATURE_HEADER",
    "Cosignature",
    "CosignatureError",
    "Cosigner",
    "WitnessedCheckpoint",
    "cosigned_message",
    "cosigner_key_id",
    "cosigner_vkey",
    "judge_witnessed",
    "merge_witnessed",
    "parse_cosigner_vkey",
    "parse_signature_lines",
    "sign_cosignature",
    "verify_cosignature",
    "with_signature_lines",
]

COSIGNATURE_ALG = 0x04
"""signed-note signature type of Ed25519 ``cosignature/v1`` (c2sp.org/tlog-cosignature)."""
COSIGNATURE_HEADER = "cosignature/v1"
MAX_TIMESTAMP = 2**63 - 1

_SIG_PREFIX = "\u2014 "
_KEY_SIZE = 32
_TIMESTAMPED_SIZE = 8 + 64
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")


class CosignatureError(CheckpointError):
    """A cosignature or a cosigner key is malformed."""


def _valid_name(name: str) -> bool:
    # signed-note: non-empty, no Unicode spaces, no '+' (and no control characters)
    return bool(name) and "+" not in name and not any(
        ch.isspace() or ord(ch) < 0x20 for ch in name)


def _raw(public: bytes) -> bytes:
    if not isinstance(public, (bytes, bytearray)) or len(public) != _KEY_SIZE:
        raise CosignatureError("an Ed25519 cosigner key is 32 bytes")
    return bytes(public)


def cosigner_key_id(name: str, public: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` (c2sp.org/tlog-cosignature)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_ALG])
                          + _raw(public)).digest()[:4]


def cosigner_vkey(name: str, public: bytes) -> str:
    """The cosigner's verifier key ``name+hhhhhhhh+base64(0x04 || key)``."""
    if not _valid_name(name):
        raise CosignatureError(f"invalid cosigner name {name!r}: non-empty, no spaces or '+'")
    encoded = base64.b64encode(bytes([COSIGNATURE_ALG]) + _raw(public)).decode("ascii")
    return f"{name}+{cosigner_key_id(name, public).hex()}+{encoded}"


def parse_cosigner_vkey(vkey: str) -> tuple[str, bytes]:
    """``(name, raw public key)`` of a cosigner vkey (type 0x04, or 0x01 for the same key),
    checking the key ID against the key under the vkey's own type."""
    name, sep1, rest = vkey.strip().partition("+")
    hash8, sep2, key64 = rest.partition("+")
    if not (sep1 and sep2) or not _valid_name(name) or not _HEX8.fullmatch(hash8):
        raise CosignatureError("malformed verifier key: want name+hhhhhhhh+base64")
    try:
        key = base64.b64decode(key64.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise CosignatureError("malformed verifier key: the key is not base64") from None
    if len(key) != 1 + _KEY_SIZE or key[0] not in (COSIGNATURE_ALG, ED25519_ALG):
        raise CosignatureError("not an Ed25519 verifier key (type 0x04 or 0x01, 32 bytes)")
    public = key[1:]
    expected = cosigner_key_id(name, public) if key[0] == COSIGNATURE_ALG \
        else note_key_id(name, public)
    if expected != bytes.fromhex(hash8):
        raise CosignatureError(f"verifier key ID {hash8} does not match the key")
    return name, public


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The exact bytes a ``cosignature/v1`` signs: header line, time line, the note text."""
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError(f"cosignature timestamp {timestamp!r} is out of range")
    if not body.endswith("\n"):
        raise CosignatureError("the cosigned note text must end with a newline")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One ``cosignature/v1`` line: the cosigner's name, key ID, timestamp and signature."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def line(self) -> str:
        raw = self.key_id + struct.pack(">Q", self.timestamp) + self.signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(raw).decode('ascii')}\n"

    @classmethod
    def from_note_signature(cls, sig: NoteSignature) -> Cosignature:
        """Split a parsed signature line; CosignatureError unless it has the 8 + 64 bytes of
        an Ed25519 timestamped signature."""
        if len(sig.signature) != _TIMESTAMPED_SIZE:
            raise CosignatureError(f"signature by {sig.name} is not an Ed25519 cosignature")
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if timestamp > MAX_TIMESTAMP:
            raise CosignatureError(f"cosignature by {sig.name} has a timestamp above 2^63-1")
        return cls(sig.name, sig.key_id, timestamp, sig.signature[8:])


def sign_cosignature(body: str, name: str, signer: NoteSigner, timestamp: int) -> Cosignature:
    """Cosign a checkpoint note text at ``timestamp`` (POSIX seconds) with the witness's
    signer (a :class:`ledger.log.keys.Signer`)."""
    if not _valid_name(name):
        raise CosignatureError(f"invalid cosigner name {name!r}")
    Checkpoint.from_body(body)   # only checkpoints are cosigned
    signature = signer.sign(cosigned_message(body, timestamp))
    return Cosignature(name, cosigner_key_id(name, signer.public), timestamp, signature)


def verify_cosignature(body: str, cosignature: Cosignature, public: bytes) -> bool:
    """Whether ``cosignature`` is a valid cosignature of ``body`` by the key ``public`` (its
    key ID must be this key's under the line's name). Never raises for bad input."""
    try:
        if cosignature.key_id != cosigner_key_id(cosignature.name, public):
            return False
        message = cosigned_message(body, cosignature.timestamp)
        return PublicKey.from_raw(public).verify(cosignature.signature, message)
    except (CheckpointError, ValueError, TypeError):
        return False


# ---- several signature lines on one note -----------------------------------------------------

def with_signature_lines(note: str, lines: Iterable[str]) -> str:
    """``note`` with the signature ``lines`` appended (those it already holds are skipped),
    as c2sp.org/tlog-witness suggests for a witness's answer; the result must parse."""
    have = set(note.split("\n"))
    extra = [line.rstrip("\n") for line in lines if line.rstrip("\n") not in have]
    text = note + "".join(line + "\n" for line in dict.fromkeys(extra))
    parse_checkpoint(text)
    return text


def parse_signature_lines(text: str, *, limit: int = MAX_SIGNATURES) -> list[str]:
    """The signature lines of a witness's ``add-checkpoint`` answer: one or more lines, each
    starting with an em dash and ending in a newline (c2sp.org/tlog-witness)."""
    if not text.endswith("\n") or not text.startswith(_SIG_PREFIX):
        raise CosignatureError("the answer is not signature lines ending in a newline")
    lines = text[:-1].split("\n")
    if len(lines) > limit:
        raise CosignatureError(f"the answer holds more than {limit} signature lines")
    if any(not line.startswith(_SIG_PREFIX) for line in lines):
        raise CosignatureError("the answer holds a line that is not a signature line")
    return [line + "\n" for line in lines]


# ---- trusted cosigners and witnessed checkpoints -------------------------------------------------

@dataclass(frozen=True)
class Cosigner:
    """A witness key a verifier or a log trusts: the raw key, and optionally the name its
    vkey gave (then lines must carry it) and the URL of its HTTP interface."""

    public: bytes
    name: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        _raw(self.public)

    @property
    def label(self) -> str:
        return self.name or self.url or f"key {hashlib.sha256(self.public).hexdigest()[:16]}"

    def owns(self, sig: NoteSignature) -> bool:
        """Whether a signature line claims to be by this cosigner (name and key ID)."""
        if self.name is not None and sig.name != self.name:
            return False
        try:
            return sig.key_id == cosigner_key_id(sig.name, self.public)
        except CheckpointError:
            return False


@dataclass(frozen=True)
class WitnessedCheckpoint:
    """A checkpoint signed by the log key with the cosignatures of trusted witnesses on it.

    ``cosignatures`` maps indexes into the trusted list to their valid cosignature (the latest
    one when a witness cosigned this checkpoint more than once); ``problems`` says which lines
    claimed a trusted witness but did not verify."""

    checkpoint: Checkpoint
    log_lines: tuple[str, ...]
    cosignatures: dict[int, Cosignature] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def cosigners(self) -> frozenset[int]:
        return frozenset(self.cosignatures)

    @property
    def note(self) -> str:
        """The checkpoint with the log's signature line(s) and exactly the valid cosignatures."""
        return (self.checkpoint.body() + "\n" + "".join(self.log_lines)
                + "".join(self.cosignatures[i].line() for i in sorted(self.cosignatures)))


def judge_witnessed(text: str | bytes, origin: str, log_key: bytes,
                    cosigners: Sequence[Cosigner]) -> WitnessedCheckpoint:
    """Verify ``text`` under the log key (key name = origin, c2sp.org/signed-note rules) and
    collect the valid cosignatures of ``cosigners``; lines of other keys are ignored. Raises
    CheckpointError when the log's own signature is missing or bad."""
    checkpoint = verify_checkpoint(text, origin, log_key, origin=origin)
    parsed: SignedCheckpoint = parse_checkpoint(text)
    body = checkpoint.body()
    log_id = note_key_id(origin, log_key)
    log_lines = tuple(_line(sig) for sig in parsed.signatures
                      if sig.name == origin and sig.key_id == log_id)
    valid: dict[int, Cosignature] = {}
    problems: list[str] = []
    for sig in parsed.signatures:
        for index, cosigner in enumerate(cosigners):
            if not cosigner.owns(sig):
                continue
            try:
                cosig = Cosignature.from_note_signature(sig)
            except CosignatureError as exc:
                problems.append(str(exc))
                continue
            if not verify_cosignature(body, cosig, cosigner.public):
                problems.append(f"the cosignature by {sig.name} does not verify")
            elif cosig.timestamp == 0:
                problems.append(f"the cosignature by {sig.name} has no timestamp")
            elif index not in valid or cosig.timestamp > valid[index].timestamp:
                valid[index] = cosig
    return WitnessedCheckpoint(checkpoint, log_lines, valid, tuple(problems))


def merge_witnessed(a: WitnessedCheckpoint, b: WitnessedCheckpoint) -> WitnessedCheckpoint:
    """One view of the same checkpoint seen with different cosignatures (e.g. from each
    witness's own read endpoint): the union of the valid ones, the latest per witness."""
    if a.checkpoint != b.checkpoint:
        raise ValueError("only cosignatures of the same checkpoint can be merged")
    merged = dict(a.cosignatures)
    for index, cosig in b.cosignatures.items():
        if index not in merged or cosig.timestamp > merged[index].timestamp:
            merged[index] = cosig
    return WitnessedCheckpoint(a.checkpoint, tuple(dict.fromkeys(a.log_lines + b.log_lines)),
                               merged, a.problems + b.problems)


def _line(sig: NoteSignature) -> str:
    raw = sig.key_id + sig.signature
    return f"{_SIG_PREFIX}{sig.name} {base64.b64encode(raw).decode('ascii')}\n"
