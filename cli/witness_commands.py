"""`witness init|serve`, and the witness options of `checkpoint`, `verify` and `verify-bundle`
(thin shells over server.witness, ledger.writing.witnessing and ledger.verification.trust)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from ledger import (
    CheckpointError,
    CosignatureError,
    InputError,
    Keystore,
    KeyUnavailableError,
    PublicKey,
    Signer,
    Store,
    WitnessPolicy,
    cosign_latest,
    cosigned_note,
    cosigner_vkey,
    load_trust_policy,
    parse_cosigner_vkey,
    parse_verifier_key,
    witness_policy,
)

from .context import handle_errors

F = TypeVar("F", bound=Callable[..., Any])
WITNESS_KEY = "witness"          # witness.key / witness.pub in the witness's keystore
VKEY_FILE = "witness.vkey"
MAX_NOTE_FILE = 1 << 16


# ---- the witness ------------------------------------------------------------------------------

@click.group("witness")
def witness_group() -> None:
    """Run a witness (C2SP tlog-witness): it cosigns a log's checkpoints only as consistent
    extensions of the last one it cosigned (docs/witness.md)."""


def _keystore(path: str) -> Keystore:
    return Keystore(path, os.environ.get("XINFANG_PASSPHRASE"))


def create_witness_keys(keystore: Keystore, name: str) -> tuple[Keystore, Signer, str]:
    """Make a witness's key in ``keystore`` (witness.key, witness.pub) and write its C2SP
    verifier key (witness.vkey): `xinfang witness init`, and the demo's witnesses."""
    try:
        cosigner_vkey(name, bytes(32))   # the name first: no key is made for a bad one
    except CosignatureError as exc:
        raise InputError(str(exc)) from None
    signer = keystore.create(WITNESS_KEY)
    vkey = cosigner_vkey(name, signer.public)
    (keystore.path / VKEY_FILE).write_text(vkey + "\n", encoding="utf-8")
    return keystore, signer, vkey


@witness_group.command("init")
@click.option("--keystore", "keystore_dir", required=True, metavar="DIR",
              help="The witness's own key directory (not a ledger's keystore).")
@click.option("--name", required=True,
              help="The witness's name in its cosignatures: a schema-less URL, e.g. "
                   "jjjc.xx-city-psb.example/witness (no spaces, no '+').")
@handle_errors
def witness_init(keystore_dir: str, name: str) -> None:
    """Make the witness's Ed25519 key (DIR/witness.key, encrypted with XINFANG_PASSPHRASE when
    set), DIR/witness.pub (PEM) and DIR/witness.vkey (its C2SP verifier key).

    Give witness.pub (or witness.vkey) and the witness's URL to every verifier.

    \b
    Example:
      xinfang witness init --keystore /srv/jjjc-witness --name jjjc.xx-city-psb.example/witness
    """
    keystore, _, vkey = create_witness_keys(_keystore(keystore_dir), name)
    click.echo(f"witness {name}: key in {keystore.path / (WITNESS_KEY + '.key')}; give "
               f"{keystore.public_path(WITNESS_KEY)} (or {keystore.path / VKEY_FILE}) to "
               f"verifiers\n{vkey}")


def log_key_option(value: str) -> tuple[str, Any]:
    """``--log ORIGIN=FILE``: the origin and the server.LogKey (PEM or note vkey) trusted
    for it."""
    from server import LogKey

    origin, sep, file = value.rpartition("=")
    if not sep or not origin or not file:
        raise InputError(f"--log {value}: give ORIGIN=LOG.pub")
    try:
        data = Path(file).read_bytes()[:MAX_NOTE_FILE]
    except OSError as exc:
        raise InputError(f"--log {value}: cannot read {file}: {exc.strerror or exc}") from None
    if b"-----BEGIN" in data:
        return origin, LogKey(origin, PublicKey.from_pem(data).raw)
    try:   # a C2SP note verifier key (type 0x01) names its own key name
        name, public = parse_verifier_key(data.decode("utf-8", "replace").strip())
    except CheckpointError as exc:
        raise InputError(f"--log {value}: {file} is neither a PEM key nor a vkey ({exc})"
                         ) from None
    return origin, LogKey(name, public)


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {value}: give HOST:PORT, e.g. 127.0.0.1:7380")
    return host, int(port)


@witness_group.command("serve")
@click.option("--keystore", "keystore_dir", required=True, metavar="DIR",
              help="The directory made by `xinfang witness init`.")
@click.option("--state", "state", required=True, type=click.Path(dir_okay=False),
              help="The witness's SQLite state file (created if missing): the latest "
                   "checkpoint it cosigned per log.")
@click.option("--listen", default="127.0.0.1:7380", show_default=True, metavar="HOST:PORT",
              help="Where to listen (port 0: any free port, printed on start).")
@click.option("--log", "logs", multiple=True, required=True, metavar="ORIGIN=LOG.pub",
              help="A log to witness and its public key (PEM, or a C2SP vkey); repeatable.")
@handle_errors
def witness_serve(keystore_dir: str, state: str, listen: str, logs: tuple[str, ...]) -> None:
    """Serve the C2SP tlog-witness API: POST /add-checkpoint, and
    GET /<hex SHA-256 of the origin>/checkpoint for the latest cosigned checkpoint.

    \b
    Example:
      xinfang witness serve --keystore /srv/jjjc-witness --state /srv/jjjc-witness/state.db \\
          --listen 127.0.0.1:7381 --log xx-city-psb.example/ledger=log.pub
    """
    import uvicorn

    from server import Witness, create_app, listen_socket

    keystore = _keystore(keystore_dir)
    signer = keystore.load(WITNESS_KEY)
    try:
        name, public = parse_cosigner_vkey(
            (keystore.path / VKEY_FILE).read_text(encoding="utf-8"))
    except (OSError, CosignatureError) as exc:
        raise KeyUnavailableError(f"cannot read {keystore.path / VKEY_FILE}: {exc}",
                                  "Run `xinfang witness init` for this directory.") from None
    if public != signer.public:
        raise KeyUnavailableError(f"{keystore.path / VKEY_FILE} is not the key in "
                                  f"{keystore.path / (WITNESS_KEY + '.key')}")
    known: dict[str, list[Any]] = {}
    for value in logs:
        origin, key = log_key_option(value)
        known.setdefault(origin, []).append(key)
    witness = Witness(name, signer, known, state)
    host, port = _listen(listen)
    sock = listen_socket(host, port)   # IPPROTO_TCP named, so answers are not held by Nagle
    bound = sock.getsockname()[1]
    where = f"[{host}]" if ":" in host else host
    click.echo(f"witness {name} listening on http://{where}:{bound}/ for "
               f"{', '.join(sorted(known))}", nl=True)
    config = uvicorn.Config(create_app(witness), log_level="warning", access_log=False,
                            lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# ---- `checkpoint --witness` -------------------------------------------------------------------

def checkpoint_options(func: F) -> F:
    func = click.option("--quorum", type=click.IntRange(1, 32), default=None,
                        help="Cosignatures needed (default: every witness given).")(func)
    return click.option(
        "--witness", "witnesses", multiple=True, metavar="URL=WITNESS.pub",
        help="Have the latest checkpoint cosigned by this witness (C2SP tlog-witness) and "
             "keep its cosignature with the checkpoint; repeatable.")(func)


def checkpoint_note(store: Store, note: str, witnesses: tuple[str, ...],
                    quorum: int | None) -> str:
    """The latest checkpoint with its cosignatures: obtained now from ``witnesses`` (at least
    ``quorum`` of them, else the error), or as stored from earlier."""
    policy = witness_policy(witnesses, quorum)
    if policy is None:
        return cosigned_note(store, note)
    if any(w.url is None for w in policy.witnesses):
        raise InputError("--witness needs the witness's URL here: --witness URL=WITNESS.pub")
    outcome = cosign_latest(store, note, policy.witnesses, policy.quorum)
    for index, error in sorted(outcome.result.errors.items()):
        click.echo(f"warning: witness {policy.label(index)}: {error.message}", err=True)
    if not outcome.ok:
        raise outcome.error()
    return cosigned_note(store, outcome.note)


# ---- the verifiers' witness policy -------------------------------------------------------------

@dataclass
class VerifierTrust:
    log_key: bytes | None = None      # from --trust-policy (None: the command's own default)
    admin_key: bytes | None = None
    witnesses: WitnessPolicy | None = None
    witnessed: list[tuple[str, str]] = field(default_factory=list)


def verifier_options(func: F) -> F:
    """--witness, --quorum, --trust-policy and --witnessed, for verify and verify-bundle."""
    func = click.option(
        "--witnessed", "witnessed_files", multiple=True, type=click.Path(dir_okay=False),
        metavar="FILE", help="A cosigned checkpoint kept earlier (e.g. from `xinfang "
        "checkpoint`); repeatable.")(func)
    func = click.option(
        "--trust-policy", "trust_policy", type=click.Path(dir_okay=False), metavar="FILE",
        help="TOML (or .json) file with log_key, admin_key, [[witness]] key/url, quorum and "
             "grace_period (docs/witness.md), instead of the key options.")(func)
    func = click.option("--quorum", "quorum", type=click.IntRange(1, 32), default=None,
                        help="Witness cosignatures a checkpoint needs (default: all).")(func)
    return click.option(
        "--witness", "witnesses", multiple=True, metavar="[URL=]FILE",
        help="A witness's public key (witness.pub or witness.vkey); with URL its latest "
             "cosigned checkpoint is fetched too. Repeatable.")(func)


def verifier_trust(witnesses: tuple[str, ...], quorum: int | None, trust_policy: str | None,
                   witnessed_files: tuple[str, ...], *, log_key: str | None = None,
                   admin_key: str | None = None) -> VerifierTrust:
    """The trust given by the options: a trust policy file, or --witness/--quorum."""
    trust = VerifierTrust()
    if trust_policy is not None:
        policy = load_trust_policy(trust_policy)
        if witnesses or quorum is not None or (log_key and policy.log_key) or \
                (admin_key and policy.admin_key):
            raise InputError("an anchor is given both in --trust-policy and as an option",
                             "Give each anchor once: in the trust policy or on the command "
                             "line.")
        trust.log_key, trust.admin_key, trust.witnesses = (policy.log_key, policy.admin_key,
                                                           policy.witnesses)
    else:
        trust.witnesses = witness_policy(witnesses, quorum)
    for file in witnessed_files:
        if trust.witnesses is None:
            raise InputError("--witnessed needs the witness policy (--witness or "
                             "--trust-policy)")
        try:
            with open(file, "rb") as handle:
                data = handle.read(MAX_NOTE_FILE)
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
        trust.witnessed.append((f"file {file}", data.decode("utf-8", "replace")))
    return trust


def witnessed_lines(summary: dict[str, Any] | None) -> list[str]:
    """The text report of the witness policy's outcome."""
    if summary is None:
        return []
    if summary.get("size") is None:
        head = (f"witnessed: no checkpoint with a quorum of {summary['quorum']} of "
                f"{summary['witnesses']} witness cosignature(s); {summary['unwitnessed']} "
                "event(s) not yet witnessed")
    else:
        head = (f"witnessed: size {summary['size']} cosigned by "
                f"{', '.join(summary['cosigners'])} (quorum {summary['quorum']} of "
                f"{summary['witnesses']}); {summary['unwitnessed']} later event(s) not yet "
                "witnessed")
    return [head, *(f"note: {problem}" for problem in summary.get("problems", []))]


__all__ = ["VerifierTrust", "checkpoint_note", "checkpoint_options", "create_witness_keys",
           "log_key_option", "verifier_options", "verifier_trust", "witness_group",
           "witnessed_lines"]
