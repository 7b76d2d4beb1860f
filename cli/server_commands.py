"""`serve`, `key new` and `receipts check`: the ledger server and the person's own key (thin
shells over ``server`` and ``ledger``'s client); and ``ServerGroup``, which takes ``--server``
wherever it is given (``xinfang verify --server URL`` as well as ``xinfang --server URL
verify``)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from ledger import (
    InputError,
    KeptReceipt,
    Keystore,
    LedgerClient,
    PublicKey,
    witness_policy,
)
from projections import Report

from .context import handle_errors, lang_option, settings
from .output import RESULT, renders, table


class ServerGroup(click.Group):
    """The top-level group: ``--server URL`` may also follow the subcommand (the issue's
    ``xinfang verify --server URL …``); it is moved before it, where the option lives."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        hoisted: list[str] = []
        rest: list[str] = []
        seen_command = False
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--":
                rest += args[index:]
                break
            following = args[index + 1] if index + 1 < len(args) else ""
            if seen_command and arg == "--server" and following.startswith(_URLS):
                hoisted += [arg, following]
                index += 2
                continue
            if seen_command and arg.startswith("--server=http"):
                hoisted.append(arg)
            else:
                if not arg.startswith("-") and arg in self.commands:
                    seen_command = True
                rest.append(arg)
            index += 1
        return super().parse_args(ctx, hoisted + rest)


_URLS = ("http://", "https://")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {value}: give HOST:PORT, e.g. 127.0.0.1:8400")
    return host, int(port)


@click.command("serve")
@click.option("--ledger", "ledger_url", metavar="URL",
              help="The ledger (default: the global --ledger / XINFANG_LEDGER).")
@click.option("--keystore", "keystore_dir", metavar="DIR",
              help="The server's keystore: the log key and nothing else (default: the global "
                   "--keystore / XINFANG_KEYSTORE).")
@click.option("--listen", default="127.0.0.1:8400", show_default=True, metavar="HOST:PORT",
              help="Where to listen (port 0: any free port, printed on start).")
@click.option("--witness", "witnesses", multiple=True, metavar="URL=WITNESS.pub",
              help="Have checkpoints cosigned by this witness after writes; repeatable.")
@click.option("--quorum", type=click.IntRange(1, 32), default=None,
              help="Cosignatures wanted (default: every witness given).")
@click.option("--session-minutes", type=click.IntRange(1, 1440), default=15,
              show_default=True, help="How long a sign-in lasts.")
@handle_errors
def serve_cmd(ledger_url: str | None, keystore_dir: str | None, listen: str,
              witnesses: tuple[str, ...], quorum: int | None, session_minutes: int) -> None:
    """Serve the ledger (JSON API under /v1, OpenAPI at /openapi.json; docs/api.md).

    This process alone writes to the database and holds the log key; its keystore holds no
    actor's private key (it refuses to start if it finds one). Every person signs on their
    own device and submits through the API (`xinfang --server URL …`).

    \b
    Example:
      xinfang serve --ledger postgresql://xinfang@db/xinfang --keystore /srv/xinfang/keys \\
          --listen 127.0.0.1:8400
    """
    import uvicorn

    from server import LedgerServer, create_ledger_app, listen_socket

    s = settings()
    policy = witness_policy(witnesses, quorum)
    if policy is not None and any(w.url is None for w in policy.witnesses):
        raise InputError("--witness needs the witness's URL here: --witness URL=WITNESS.pub")
    host, port = _listen(listen)
    server = LedgerServer(ledger_url or s.ledger_url, keystore_dir or s.keystore,
                          passphrase=os.environ.get("XINFANG_PASSPHRASE"),
                          session_seconds=session_minutes * 60, witnesses=policy)
    try:
        sock = listen_socket(host, port)
        bound = sock.getsockname()[1]
        where = f"[{host}]" if ":" in host else host
        click.echo(f"xinfang ledger server for {server.origin} listening on "
                   f"http://{where}:{bound}/", nl=True)
        sys.stdout.flush()
        config = uvicorn.Config(create_ledger_app(server), log_level="warning",
                                access_log=False, lifespan="off", timeout_keep_alive=5,
                                limit_concurrency=256, log_config=None)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        server.close()


# ---- keys -------------------------------------------------------------------------------------

@click.group("key")
def key_group() -> None:
    """The person's own key, made on their device."""


@key_group.command("new")
@click.option("--actor", "actor", required=True, metavar="ID", help="Your actor id.")
@click.option("--no-passphrase", is_flag=True,
              help="Store the private key unencrypted (default: encrypted with "
                   "XINFANG_PASSPHRASE, or a passphrase asked for here).")
@renders(*RESULT)
@lang_option
def key_new(actor: str, no_passphrase: bool, lang: str) -> Report:
    """Make your Ed25519 key in your keystore; print its public key (PEM) and fingerprint
    for the admin to register (`xinfang actor add ID … --public-key ID.pub`).

    \b
    Example:
      xinfang key new --actor officer-07
    """
    passphrase = os.environ.get("XINFANG_PASSPHRASE") or None
    if passphrase is None and not no_passphrase:
        if not sys.stdin.isatty():
            raise InputError("no passphrase to encrypt the new key with",
                             "Set XINFANG_PASSPHRASE, or pass --no-passphrase.")
        passphrase = click.prompt("口令 passphrase", hide_input=True, confirmation_prompt=True)
    keystore = Keystore(settings().keystore, passphrase)
    signer = keystore.create(actor)
    pem = signer.public_key.to_pem().decode("ascii")
    fingerprint = "SHA256:" + hashlib.sha256(signer.public).hexdigest()
    document = {"actor": actor, "key": signer.key_id, "fingerprint": fingerprint,
                "public_key": pem, "public_key_file": str(keystore.public_path(actor)),
                "encrypted": passphrase is not None}
    zh = lang == "zh"
    lines = [pem.rstrip("\n"),
             (f"密钥编号 {signer.key_id}，指纹 {fingerprint}" if zh else
              f"key id {signer.key_id}, fingerprint {fingerprint}"),
             (f"公钥文件 {document['public_key_file']}：交给管理员登记（actor add {actor} … "
              f"--public-key {actor}.pub）" if zh else
              f"public key file {document['public_key_file']}: give it to the admin to "
              f"register (actor add {actor} … --public-key {actor}.pub)")]
    if passphrase is None:
        lines.append("注意：私钥未加密保存" if zh else "note: the private key is not encrypted")
    return Report(document, lang=lang, text="\n".join(lines))


# ---- receipts ---------------------------------------------------------------------------------

@click.group("receipts")
def receipts_group() -> None:
    """The receipts this client kept of its writes through a ledger server."""


@receipts_group.command("check")
@click.option("--log-key", type=click.Path(exists=True, dir_okay=False),
              help="The ledger's public log key (PEM); default: log.pub in the keystore.")
@renders(*RESULT)
@lang_option
def receipts_check(log_key: str | None, lang: str) -> Report:
    """Prove every kept receipt is still included in the log, and that the log's current
    checkpoint is consistent with each (RFC 9162 proofs, checked here under the pinned log
    key). Exit 1 if any receipt fails.

    \b
    Example:
      XINFANG_SERVER=http://127.0.0.1:8400 xinfang receipts check
    """
    s = settings()
    keystore = Keystore(s.keystore, os.environ.get("XINFANG_PASSPHRASE"))
    pinned = PublicKey.from_pem(Path(log_key).read_bytes()).raw if log_key else None
    servers = [s.server] if s.server else _servers_of(keystore)
    zh = lang == "zh"
    if not servers:   # nothing kept here, and no server to ask: nothing can fail
        return Report({"ok": True, "checked": 0, "failed": 0, "checkpoints": {},
                       "receipts": []}, lang=lang,
                      text=f"receipts check: 没有保存的回执（{keystore.path / 'receipts'}）" if zh
                      else f"receipts check: no receipts kept in {keystore.path / 'receipts'}")
    checkpoints: dict[str, Any] = {}
    verdicts: list[KeptReceipt] = []
    for url in servers:
        with LedgerClient(url, keystore, actor=os.environ.get("XINFANG_ACTOR") or None,
                          log_key=pinned) as client:
            head, found = client.check_receipts()
        checkpoints[url] = {"size": head["size"], "root": head["root"]}
        verdicts += found
    failed = [v for v in verdicts if not v.ok]
    document = {"ok": not failed, "checked": len(verdicts), "failed": len(failed),
                "checkpoints": checkpoints, "receipts": [v.to_json() for v in verdicts]}
    verdict = ("通过" if zh else "PASS") if not failed else ("未通过" if zh else "FAIL")
    sizes = ", ".join(f"{url} {c['size']}" for url, c in checkpoints.items())
    lines = [f"receipts check: {verdict} — 共 {len(verdicts)} 张回执，{len(failed)} 张未通过；"
             f"当前检查点 {sizes}" if zh else
             f"receipts check: {verdict} — {len(verdicts)} receipts, {len(failed)} failed; "
             f"current checkpoint {sizes}"]
    rows = [[v.stream, v.seq, v.position, v.hash[:16], "✓" if v.ok else "✗ " + str(v.problem)]
            for v in verdicts]
    if rows:
        lines.append(table(["流" if zh else "stream", "序号" if zh else "seq",
                            "日志位置" if zh else "position", "哈希" if zh else "hash",
                            "结论" if zh else "verdict"], rows))
    return Report(document, lang=lang, text="\n".join(lines), exit_code=1 if failed else 0)


def _servers_of(keystore: Keystore) -> list[str]:
    """The servers named by the receipts kept in ``keystore`` (when no --server is given)."""
    import json

    found: list[str] = []
    folder = keystore.path / "receipts"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            url = json.loads(path.read_text(encoding="utf-8")).get("server")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(url, str) and url not in found:
            found.append(url)
    return found


def register_server_commands(cli: click.Group) -> None:
    """Add `serve`, `key` and `receipts`, and route the read commands through the server."""
    from .remote_commands import route_through_server

    cli.add_command(serve_cmd)
    cli.add_command(key_group)
    cli.add_command(receipts_group)
    route_through_server(cli)


__all__ = ["ServerGroup", "key_group", "receipts_group", "register_server_commands",
           "serve_cmd"]
