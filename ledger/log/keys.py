"""Ed25519 keys: a public key that verifies, a signer that only signs, and the keystore.

Private keys never enter the database. The keystore is a directory with one PKCS#8 PEM file per
actor (``<actor>.key``, mode 0600, encrypted when a passphrase is given) and public PEM files
(``<actor>.pub``). Rotation archives the old private key as ``<actor>.<key id>.retired.key``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ledger.errors import InputError, KeyUnavailableError

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LOG_KEY_NAME = "log"
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64


def event_key_id(public_raw: bytes) -> str:
    """The key id an event names (``Statement.key``): the first 8 bytes of SHA-256 of the raw
    32-byte public key, in hex. Not the C2SP note key id (``checkpoint.note_key_id``)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key: the one place signatures are verified (events, checkpoints,
    signed notes, bundles, cosignatures). Holds the raw 32 bytes.

    Verification is libsodium's (PyNaCl), the fastest verifier here; signing stays with
    ``cryptography`` (OpenSSL). The rule is strict — a signature verifies only if *both*
    libraries accept it — and libsodium alone implements it: it accepts a subset of what
    OpenSSL accepts (both reject S >= L, points off the curve and non-canonical R; libsodium
    also rejects small-order public keys and R, and non-canonical public keys, which OpenSSL
    accepts — under the identity key OpenSSL accepts one signature for every message).
    docs/integrity.md (§6, "Which signatures verify") and tests/test_ed25519_agreement.py
    hold the evidence."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != ED25519_KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes")

    @classmethod
    def from_raw(cls, raw: bytes | bytearray | memoryview) -> PublicKey:
        """From the raw 32 bytes; ValueError for any other length."""
        return cls(bytes(raw))

    @classmethod
    def from_pem(cls, data: bytes) -> PublicKey:
        """From a PEM (SubjectPublicKeyInfo) file; InputError if it is not an Ed25519 key."""
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise InputError(f"not a PEM public key: {exc}") from None
        except UnsupportedAlgorithm:
            raise InputError("the public key is not Ed25519",
                             "Generate one with `xinfang actor add`.") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InputError("the public key is not Ed25519",
                             "Generate one with `xinfang actor add`.")
        return cls(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    def __getstate__(self) -> dict[str, bytes]:
        return {"raw": self.raw}   # cached properties neither pickle nor need to

    def to_pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @cached_property
    def key_id(self) -> str:
        """The event key id (see :func:`event_key_id`)."""
        return event_key_id(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``; never raises
        for hostile input (a wrong-length or non-bytes signature simply does not verify)."""
        return ed25519_verify(self.raw, signature, message)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """The Ed25519 check behind :meth:`PublicKey.verify` (libsodium, strict), on raw bytes;
    never raises: a public key that is not 32 bytes or a signature that is not 64 does not
    verify (libsodium reads exactly that many bytes, so the lengths are checked first)."""
    if not (isinstance(public, bytes) and isinstance(signature, bytes | bytearray | memoryview)
            and isinstance(message, bytes | bytearray | memoryview)):
        return False
    if len(public) != ED25519_KEY_SIZE or len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        crypto_sign_open(bytes(signature) + bytes(message), public)
    except BadSignatureError:
        return False
    return True


def verify_signatures(jobs: Sequence[tuple[bytes, bytes, bytes]]) -> list[int]:
    """The indexes of the ``(public key, signature, message)`` jobs that do not verify (see
    :func:`ed25519_verify`): a batch of signature checks for a worker process or thread,
    with nothing but libsodium calls in the loop."""
    return [i for i, (public, signature, message) in enumerate(jobs)
            if not ed25519_verify(public, signature, message)]


class Signer:
    """A private key in memory that only signs. It names its public key, but never hands out
    the private key: only the :class:`Keystore` of this module serializes it (to disk)."""

    __slots__ = ("_name", "_private", "_public")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("a Signer holds an Ed25519 private key")
        self._name = name
        self._private = private_key
        self._public = PublicKey(private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> PublicKey:
        return self._public

    @property
    def public(self) -> bytes:
        """The raw 32-byte public key (what the directory records)."""
        return self._public.raw

    @property
    def key_id(self) -> str:
        """The event key id of the public key."""
        return self._public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Signer({self._name!r}, key {self.key_id})"

    def _pkcs8_pem(self, passphrase: bytes | None) -> bytes:
        """The private key as PKCS#8 PEM, for :meth:`Keystore.save` only."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption())
        return self._private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption)


def check_id(value: str, what: str = "id") -> str:
    if not ID_PATTERN.match(value or ""):
        raise InputError(f"invalid {what} {value!r}",
                         "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter/digit.")
    return value


class Keystore:
    """A directory of PEM key files; ``passphrase`` encrypts new keys and unlocks old ones."""

    def __init__(self, path: str | os.PathLike[str], passphrase: str | None = None) -> None:
        self.path = Path(path).expanduser()
        self.passphrase = passphrase.encode() if passphrase else None
        self._cache: dict[str, Signer] = {}

    def _private_path(self, name: str) -> Path:
        return self.path / f"{check_id(name, 'key name')}.key"

    def public_path(self, name: str) -> Path:
        return self.path / f"{check_id(name, 'key name')}.pub"

    def has(self, name: str) -> bool:
        return self._private_path(name).exists()

    def _ensure_dir(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyUnavailableError(
                f"cannot create keystore {self.path}: {exc.strerror}") from None

    def _write(self, path: Path, data: bytes, mode: int) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)

    def save(self, signer: Signer) -> None:
        """Store a private key (0600, encrypted if a passphrase is set) and its public PEM."""
        self._ensure_dir()
        pem = signer._pkcs8_pem(self.passphrase)
        self._write(self._private_path(signer.name), pem, 0o600)
        self.write_public(signer.name, signer.public)
        self._cache[signer.name] = signer

    def write_public(self, name: str, public: bytes) -> Path:
        self._ensure_dir()
        path = self.public_path(name)
        self._write(path, PublicKey.from_raw(public).to_pem(), 0o644)
        return path

    def create(self, name: str) -> Signer:
        if self.has(name):
            raise InputError(f"the keystore already holds a key for {name!r}",
                             f"Remove {self._private_path(name)} or choose another id.")
        signer = Signer.generate(name)
        self.save(signer)
        return signer

    def retire(self, name: str) -> None:
        """Archive the current private key of ``name`` (after a rotation or revocation)."""
        path = self._private_path(name)
        if path.exists():
            current = self.load(name)
            path.replace(self.path / f"{name}.{current.key_id}.retired.key")
        self._cache.pop(name, None)

    def load(self, name: str) -> Signer:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        path = self._private_path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyUnavailableError(
                f"no private key for {name!r} in keystore {self.path}",
                "Point --keystore / XINFANG_KEYSTORE at the directory that holds it.") from None
        except OSError as exc:
            raise KeyUnavailableError(f"cannot read {path}: {exc.strerror}") from None
        encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
        if encrypted and not self.passphrase:
            raise KeyUnavailableError(f"the key of {name!r} is encrypted",
                                      "Set XINFANG_PASSPHRASE to unlock it.")
        try:
            key = serialization.load_pem_private_key(
                data, password=self.passphrase if encrypted else None)
        except (ValueError, TypeError):
            raise KeyUnavailableError(f"cannot unlock the key of {name!r}",
                                      "Check XINFANG_PASSPHRASE.") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyUnavailableError(f"the key of {name!r} is not an Ed25519 key")
        signer = Signer(name, key)
        self._cache[name] = signer
        return signer
