"""What an inspector trusts: the log key, the admin key and the witness policy (docs/witness.md).

The witness keys, their URLs, the quorum and the grace period belong to the verifier, never to
anything the ledger's operator can change (integrity.md, "Witnesses"). They come from the
command line (``--witness [URL=]FILE``, ``--quorum K``) or from a trust policy file::

    # trust.toml -- kept by the inspector
    log_key = "log.pub"              # PEM, relative to this file
    admin_key = "admin.pub"
    quorum = 2                       # cosignatures a checkpoint needs (default: every witness)
    grace_period = 600               # seconds an event may stay unwitnessed (default 600)

    [[witness]]
    label = "纪检监察室"               # for people only
    url = "http://127.0.0.1:7381"    # optional: where to fetch its latest cosigned checkpoint
    key = "jjjc-witness.pub"         # PEM or vkey file, or an inline vkey string

The same members in a ``.json`` file work too.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import InputError
from ledger.log.cosignature import CosignatureError, Cosigner, parse_cosigner_vkey
from ledger.log.keys import PublicKey

DEFAULT_GRACE_SECONDS = 600
MAX_WITNESSES = 32
MAX_POLICY_BYTES = 1 << 20


@dataclass(frozen=True)
class WitnessPolicy:
    """Which witnesses count, how many must cosign, and how long an event may wait."""

    witnesses: tuple[Cosigner, ...]
    quorum: int
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.witnesses:
            raise InputError("a witness policy needs at least one witness",
                             "Pass --witness [URL=]WITNESS.pub (repeatable).")
        if len(self.witnesses) > MAX_WITNESSES:
            raise InputError(f"at most {MAX_WITNESSES} witnesses")
        if len({w.public for w in self.witnesses}) != len(self.witnesses):
            raise InputError("the same witness key is given twice",
                             "Each witness counts once towards the quorum.")
        if not 1 <= self.quorum <= len(self.witnesses):
            raise InputError(f"quorum {self.quorum} is not between 1 and the "
                             f"{len(self.witnesses)} witness(es) given")
        if not 0 <= self.grace_seconds <= 10 * 365 * 86400:
            raise InputError(f"grace period {self.grace_seconds} s is out of range")

    def label(self, index: int) -> str:
        if index < len(self.labels) and self.labels[index]:
            return self.labels[index]
        return self.witnesses[index].label


@dataclass(frozen=True)
class TrustPolicy:
    log_key: bytes | None
    admin_key: bytes | None
    witnesses: WitnessPolicy | None


def load_witness_key(path: str | Path) -> Cosigner:
    """A witness key from a PEM public key file or a file holding its vkey."""
    try:
        data = Path(path).expanduser().read_bytes()[:MAX_POLICY_BYTES]
    except OSError as exc:
        raise InputError(f"cannot read the witness key {path}: {exc.strerror or exc}") from None
    return _witness_key(data, str(path))


def _witness_key(data: bytes, where: str) -> Cosigner:
    if b"-----BEGIN" in data:
        try:
            return Cosigner(PublicKey.from_pem(data).raw)
        except InputError as exc:
            raise InputError(f"witness key {where}: {exc.message}") from None
        except Exception:   # noqa: BLE001 - e.g. a PEM of another key type
            raise InputError(f"witness key {where} is not an Ed25519 public key") from None
    try:
        name, public = parse_cosigner_vkey(data.decode("utf-8", "replace"))
    except CosignatureError as exc:
        raise InputError(f"witness key {where}: {exc}",
                         "Give witness.pub (PEM) or witness.vkey from `xinfang witness "
                         "init`.") from None
    return Cosigner(public, name=name)


def parse_witness_option(value: str) -> Cosigner:
    """``--witness [URL=]FILE``: a key file, optionally preceded by the witness's URL."""
    url = None
    if value.startswith(("http://", "https://")):
        url, sep, value = value.rpartition("=")
        if not sep or not value:
            raise InputError(f"--witness {url}: give URL=FILE")
    key = load_witness_key(value)
    return Cosigner(key.public, key.name, url.rstrip("/") if url else None)


def witness_policy(options: tuple[str, ...] | list[str], quorum: int | None,
                   grace_seconds: int = DEFAULT_GRACE_SECONDS) -> WitnessPolicy | None:
    """The policy of ``--witness`` options and ``--quorum`` (None when no witness is given)."""
    if not options:
        if quorum is not None:
            raise InputError("--quorum needs --witness [URL=]FILE")
        return None
    witnesses = tuple(parse_witness_option(value) for value in options)
    return WitnessPolicy(witnesses, len(witnesses) if quorum is None else quorum,
                         grace_seconds)


def load_trust_policy(path: str | Path) -> TrustPolicy:
    """Read a trust policy file (TOML, or JSON when it ends in ``.json``); paths in it are
    relative to the file. Bad content is an InputError naming what is wrong."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the trust policy {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise InputError(f"the trust policy {path} is larger than 1 MiB")
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the trust policy {path} does not parse: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(f"the trust policy {path} is not a table of settings")
    known = {"log_key", "admin_key", "quorum", "grace_period", "witness"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InputError(f"the trust policy {path} has unknown setting(s) {', '.join(unknown)}",
                         f"Known: {', '.join(sorted(known))}.")
    base = path.parent

    def pem(member: str) -> bytes | None:
        value = doc.get(member)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise InputError(f"trust policy {member} must be a file name")
        file = base / value
        try:
            return PublicKey.from_pem(file.read_bytes()).raw
        except OSError as exc:
            raise InputError(f"trust policy {member}: cannot read {file}: "
                             f"{exc.strerror or exc}") from None

    witnesses, labels = [], []
    entries = doc.get("witness", [])
    if not isinstance(entries, list):
        raise InputError("trust policy: `witness` must be a list of [[witness]] tables")
    for number, entry in enumerate(entries, start=1):
        witnesses.append(_policy_witness(entry, number, base))
        labels.append(str(entry.get("label") or ""))
    quorum, grace = doc.get("quorum"), doc.get("grace_period", DEFAULT_GRACE_SECONDS)
    if quorum is not None and type(quorum) is not int:
        raise InputError("trust policy: quorum must be an integer")
    if type(grace) is not int:
        raise InputError("trust policy: grace_period must be an integer number of seconds")
    policy = None
    if witnesses:
        policy = WitnessPolicy(tuple(witnesses), len(witnesses) if quorum is None else quorum,
                               grace, tuple(labels))
    elif quorum is not None:
        raise InputError("trust policy: a quorum without any [[witness]]")
    return TrustPolicy(pem("log_key"), pem("admin_key"), policy)


def _policy_witness(entry: Any, number: int, base: Path) -> Cosigner:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        raise InputError(f"trust policy: witness {number} needs key = \"FILE or vkey\"")
    extra = sorted(set(entry) - {"key", "url", "label"})
    if extra:
        raise InputError(f"trust policy: witness {number} has unknown member(s) "
                         f"{', '.join(extra)}")
    url = entry.get("url")
    if url is not None and (not isinstance(url, str)
                            or not url.startswith(("http://", "https://"))):
        raise InputError(f"trust policy: witness {number} url must be http(s)://…")
    key_text: str = entry["key"]
    if "+" in key_text and not (base / key_text).exists():
        key = _witness_key(key_text.encode(), f"{number}")
    else:
        key = load_witness_key(base / key_text)
    return Cosigner(key.public, key.name, url.rstrip("/") if url else None)


__all__ = ["DEFAULT_GRACE_SECONDS", "TrustPolicy", "WitnessPolicy", "load_trust_policy",
           "load_witness_key", "parse_witness_option", "witness_policy"]
