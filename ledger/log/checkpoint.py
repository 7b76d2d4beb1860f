"""Signed tree heads: C2SP ``tlog-checkpoint`` bodies inside C2SP ``signed-note`` envelopes.

Specifications implemented (Ed25519 signature type only):

* https://c2sp.org/signed-note (C2SP/C2SP ``signed-note.md``) -- the envelope: note text ending
  in a newline, one blank line, then one or more lines ``— <key name> <base64(key ID || sig)>``.
  The key ID of an Ed25519 key is ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``.
* https://c2sp.org/tlog-checkpoint (C2SP/C2SP ``tlog-checkpoint.md``) -- the note text: origin
  line, decimal tree size, base64 RFC 6962 root hash, then optional non-empty extension lines.

The wire encodings and the ``name+hhhhhhhh+base64(0x01 || pubkey)`` verifier-key format follow the
reference implementation ``golang.org/x/mod/sumdb/note`` (``note.go``), whose test vectors the
accompanying tests reproduce byte for byte.

Parsing is deliberately stricter than the reference where the specs leave room: base64 must be
canonical, the root must be exactly 32 bytes (SHA-256), and *every* signature by the requested key
must verify (the Go implementation only checks the first of several duplicates).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ledger.log.keys import PublicKey

__all__ = [
    "ED25519_ALG",
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "NoteSignature",
    "NoteSigner",
    "SignedCheckpoint",
    "note_key_id",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
    "verify_checkpoint",
    "verify_note",
]

ED25519_ALG = 0x01
"""signed-note signature type identifier byte for Ed25519."""

MAX_SIGNATURES = 100
"""Upper bound on signature lines per note (signed-note: verifiers MUST accept at least 16;
golang.org/x/mod/sumdb/note rejects more than 100)."""

ROOT_HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1

_SIG_PREFIX = "\u2014 "  # em dash U+2014, space
_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX8_RE = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(ValueError):
    """A checkpoint or signed note is malformed, or its signature does not verify."""


# --------------------------------------------------------------------------------------------
# helpers


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Decode standard (RFC 4648 section 4) padded base64, rejecting non-canonical encodings."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise CheckpointError(f"{what} is not valid base64") from None
    if _b64encode(raw) != text:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def _is_valid_name(name: str) -> bool:
    """signed-note: key names are non-empty and contain no Unicode spaces and no '+'."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
    )


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise CheckpointError(f"invalid key name {name!r}: must be non-empty, no spaces or '+'")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 and ch != "\n" for ch in text)


def _public_key(public_key: PublicKey | bytes) -> PublicKey:
    if isinstance(public_key, PublicKey):
        return public_key
    if isinstance(public_key, (bytes, bytearray, memoryview)):
        raw = bytes(public_key)
        if len(raw) != _ED25519_KEY_SIZE:
            raise CheckpointError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
        return PublicKey.from_raw(raw)
    raise TypeError(f"expected PublicKey or bytes, got {type(public_key).__name__}")


@runtime_checkable
class NoteSigner(Protocol):
    """What signs a note: an Ed25519 signer that names its raw public key
    (:class:`ledger.log.keys.Signer`); the private key never leaves it."""

    @property
    def public(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


# --------------------------------------------------------------------------------------------
# data model


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note text (c2sp.org/tlog-checkpoint), validated on construction."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise CheckpointError("checkpoint origin must be a non-empty string")
        if "\n" in self.origin or _has_control(self.origin):
            raise CheckpointError("checkpoint origin must not contain control characters")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("checkpoint size must be an int")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} out of range [0, 2**64)")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {ROOT_HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("checkpoint extensions must be a tuple of str")
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext:
                raise CheckpointError("checkpoint extension lines must be non-empty strings")
            if "\n" in ext or _has_control(ext):
                raise CheckpointError("checkpoint extension lines must not contain control chars")

    def body(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in "\\n"."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_body(cls, body: str) -> Checkpoint:
        """Strictly parse a checkpoint note text (which must end with a newline)."""
        if not body.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint body must have at least 3 lines")
        origin, size_s, root_s, *extensions = lines
        if not origin:
            raise CheckpointError("checkpoint origin line is empty")
        if not _SIZE_RE.fullmatch(size_s):
            raise CheckpointError(f"checkpoint size {size_s!r} is not a canonical decimal")
        size = int(size_s)
        if size > MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {size_s} exceeds 2**64-1")
        root = _b64decode(root_s, "checkpoint root hash")
        if len(root) != ROOT_HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash is {len(root)} bytes, want 32")
        if any(not ext for ext in extensions):
            raise CheckpointError("checkpoint extension lines must be non-empty")
        return cls(origin=origin, size=size, root=root, extensions=tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    """One signed-note signature line: key name, 4-byte key ID and the raw signature bytes."""

    name: str
    key_id: bytes  # 4 bytes
    signature: bytes


@dataclass(frozen=True)
class SignedCheckpoint:
    """A parsed (not yet verified) checkpoint with all its signature lines and exact text."""

    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]
    text: str


# --------------------------------------------------------------------------------------------
# keys


def note_key_id(name: str, public_key_raw: bytes) -> bytes:
    """signed-note Ed25519 key ID: ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``. Not the
    event key id (``keys.event_key_id``)."""
    if len(public_key_raw) != _ED25519_KEY_SIZE:
        raise CheckpointError(f"Ed25519 public key must be 32 bytes, got {len(public_key_raw)}")
    data = name.encode("utf-8") + b"\n" + bytes([ED25519_ALG]) + bytes(public_key_raw)
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


def verifier_key(name: str, public_key_raw: bytes) -> str:
    """Encode ``name+<8 hex key ID>+<base64(0x01 || pubkey)>`` (golang sumdb/note vkey)."""
    _check_name(name)
    kid = note_key_id(name, public_key_raw)
    return f"{name}+{kid.hex()}+{_b64encode(bytes([ED25519_ALG]) + bytes(public_key_raw))}"


def parse_verifier_key(vkey: str) -> tuple[str, bytes]:
    """Decode a verifier key into ``(name, raw 32-byte Ed25519 public key)``, checking its ID."""
    name, sep1, rest = vkey.partition("+")
    hash16, sep2, key64 = rest.partition("+")
    if not (sep1 and sep2) or not _is_valid_name(name) or not _HEX8_RE.fullmatch(hash16):
        raise CheckpointError("malformed verifier key: want name+hhhhhhhh+base64")
    key = _b64decode(key64, "verifier key")
    if not key:
        raise CheckpointError("malformed verifier key: empty key")
    if key[0] != ED25519_ALG:
        raise CheckpointError(f"unsupported verifier key algorithm 0x{key[0]:02x}")
    if len(key) != 1 + _ED25519_KEY_SIZE:
        raise CheckpointError(f"Ed25519 verifier key must be 32 bytes, got {len(key) - 1}")
    pub = key[1:]
    if note_key_id(name, pub) != bytes.fromhex(hash16):
        raise CheckpointError(f"verifier key ID {hash16} does not match the key")
    return name, pub


# --------------------------------------------------------------------------------------------
# signed notes


def _parse_note(text: str | bytes) -> tuple[str, str, tuple[NoteSignature, ...]]:
    """Split a signed note into ``(text, note text, signatures)`` per c2sp.org/signed-note."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError("signed note is not valid UTF-8") from None
    if not isinstance(text, str):
        raise TypeError(f"expected str or bytes, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError("signed note is not valid UTF-8") from None
    if _has_control(text):
        raise CheckpointError("signed note contains a control character other than newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise CheckpointError("signed note has no blank line before the signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block:
        raise CheckpointError("signed note has no signature lines")
    if not sig_block.endswith("\n"):
        raise CheckpointError("signed note does not end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"signed note has more than {MAX_SIGNATURES} signatures")
    sigs = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError("signature line does not start with em dash and space")
        name, sep, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not _is_valid_name(name):
            raise CheckpointError(f"signature line has an invalid key name {name!r}")
        raw = _b64decode(sig64, f"signature by {name}")
        if len(raw) <= _KEY_ID_SIZE:
            raise CheckpointError(f"signature by {name} is too short")
        sigs.append(NoteSignature(name, raw[:_KEY_ID_SIZE], raw[_KEY_ID_SIZE:]))
    return text, body, tuple(sigs)


def _verify_sigs(
    body: str,
    sigs: tuple[NoteSignature, ...],
    name: str,
    public_key: PublicKey | bytes,
) -> None:
    """Require >= 1 signature by (name, key ID) and that every such signature verifies."""
    _check_name(name)
    pub = _public_key(public_key)
    kid = note_key_id(name, pub.raw)
    mine = [s for s in sigs if s.name == name and s.key_id == kid]
    if not mine:
        # Signatures whose name or key ID differ belong to unknown keys and are ignored.
        raise CheckpointError(f"no signature by {name}+{kid.hex()}")
    msg = body.encode("utf-8")
    for sig in mine:
        if len(sig.signature) != _ED25519_SIG_SIZE:
            raise CheckpointError(f"signature by {name} does not verify (wrong length)")
        if not pub.verify(sig.signature, msg):
            raise CheckpointError(f"signature by {name} does not verify")


def sign_note(text: str, name: str, signer: NoteSigner) -> str:
    """Sign a note text (ending in a newline) with Ed25519; return the signed note."""
    _check_name(name)
    if not isinstance(signer, NoteSigner):
        raise TypeError("signer must sign bytes and name its public key (a keys.Signer)")
    if not text.endswith("\n"):
        raise CheckpointError("note text must end with a newline")
    if _has_control(text):
        raise CheckpointError("note text contains a control character other than newline")
    kid = note_key_id(name, signer.public)
    sig = signer.sign(text.encode("utf-8"))
    return f"{text}\n{_SIG_PREFIX}{name} {_b64encode(kid + sig)}\n"


def verify_note(text: str | bytes, name: str, public_key: PublicKey | bytes) -> str:
    """Verify a generic signed note against one Ed25519 key; return the note text."""
    _, body, sigs = _parse_note(text)
    _verify_sigs(body, sigs, name, public_key)
    return body


# --------------------------------------------------------------------------------------------
# checkpoints


def sign_checkpoint(cp: Checkpoint, name: str, signer: NoteSigner) -> str:
    """Return the signed-note text of ``cp`` with one Ed25519 signature by ``name``."""
    return sign_note(cp.body(), name, signer)


def parse_checkpoint(text: str | bytes) -> SignedCheckpoint:
    """Strictly parse a signed checkpoint without verifying any signature."""
    text, body, sigs = _parse_note(text)
    return SignedCheckpoint(checkpoint=Checkpoint.from_body(body), signatures=sigs, text=text)


def verify_checkpoint(
    text: str | bytes,
    name: str,
    public_key: PublicKey | bytes,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Parse ``text`` and verify it is signed by the Ed25519 key ``(name, public_key)``.

    Signatures by other keys (different name or key ID) are ignored, as signed-note requires;
    at least one signature by the given key must be present and all of them must verify. If
    ``origin`` is given the checkpoint's origin line must equal it.
    """
    _, body, sigs = _parse_note(text)
    cp = Checkpoint.from_body(body)
    _verify_sigs(body, sigs, name, public_key)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} does not match {origin!r}")
    return cp
