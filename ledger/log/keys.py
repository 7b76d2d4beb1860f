"""Ed25519 keys: signers, key ids and the on-disk keystore.

Private keys never enter the database. The keystore is a directory with one PKCS#8 PEM file per
actor (``<actor>.key``, mode 0600, encrypted when a passphrase is given) and public PEM files
(``<actor>.pub``). Rotation archives the old private key as ``<actor>.<key id>.retired.key``.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import InputError, KeyUnavailableError

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LOG_KEY_NAME = "log"


def key_id(public_raw: bytes) -> str:
    """Short hex digest of the raw 32-byte public key (first 8 bytes of SHA-256)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(public).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(data: bytes) -> bytes:
    """Raw public key from a PEM file; raises InputError if it is not an Ed25519 key."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InputError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key is not Ed25519", "Generate one with `xinfang actor add`.")
    return public_raw(key)


def verify_signature(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """A private key in memory, with the public half and its key id."""

    name: str
    private: Ed25519PrivateKey

    @cached_property
    def public(self) -> bytes:
        return public_raw(self.private.public_key())

    @cached_property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())


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
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self.passphrase) if self.passphrase
            else serialization.NoEncryption())
        pem = signer.private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8, encryption)
        self._write(self._private_path(signer.name), pem, 0o600)
        self.write_public(signer.name, signer.public)
        self._cache[signer.name] = signer

    def write_public(self, name: str, public: bytes) -> Path:
        self._ensure_dir()
        path = self.public_path(name)
        self._write(path, public_pem(public), 0o644)
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
