"""`xinfang` — the command-line shell over the ledger library.

Exit codes: 0 success · 1 verification failed · 2 invalid input or forbidden action ·
3 environment or storage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ledger import InputError, Ledger, PublicKey, import_schema, load_policy_file
from projections import Report, label
from schemas import Role

from .accountability_commands import register_accountability_commands
from .bench_command import bench_cmd
from .bundle_commands import register_bundle_commands
from .case_commands import case_group, reverse_check_group
from .context import (
    DEFAULTS,
    Coded,
    Settings,
    as_option,
    at_option,
    handle_errors,
    lang_option,
    parse_at,
    settings,
)
from .demo import demo_cmd
from .output import RESULT, echo_json, renders, table
from .read_commands import named, register_read_commands
from .report_commands import register_report_commands
from .server_commands import ServerGroup, register_server_commands
from .witness_commands import checkpoint_note, checkpoint_options, witness_group


@click.group(cls=ServerGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--ledger", "ledger_url", envvar="XINFANG_LEDGER", default=None, metavar="URL",
              help="sqlite:///path/ledger.db (default sqlite:///./xinfang.db) or "
                   "postgresql://user@host:port/dbname.")
@click.option("--keystore", envvar="XINFANG_KEYSTORE", default=None, metavar="DIR",
              help="Directory of private keys (default ~/.xinfang/keys); XINFANG_PASSPHRASE "
                   "unlocks encrypted keys.")
@click.option("--server", "server", envvar="XINFANG_SERVER", default=None, metavar="URL",
              help="Work through a ledger server (`xinfang serve`) instead of a local ledger: "
                   "writes are signed here and submitted; the keystore holds only your key(s).")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="xinfang-ledger")
@click.pass_context
def cli(ctx: click.Context, ledger_url: str | None, keystore: str | None, server: str | None,
        debug: bool) -> None:
    """xinfang-ledger: a tamper-evident audit ledger for petition work (公安信访).

    \b
    Quick start:
      xinfang init --origin xx-city-psb.example/ledger --admin admin-01
      xinfang unit add county-01 --name "XX县公安局" --as admin-01
      xinfang actor add officer-07 --name "张三" --unit county-01 --role handler --as admin-01
      xinfang verify
      xinfang demo            # a realistic year on a fresh ledger, then a guided tour
    """
    ctx.obj = Settings(ledger_url or DEFAULTS["ledger"](), keystore or DEFAULTS["keystore"](),
                       debug, server or None)


@cli.command()
@click.option("--origin", required=True, help="The log's name in checkpoints, "
              "e.g. xx-city-psb.example/ledger.")
@click.option("--admin", required=True, metavar="ACTOR_ID", help="Id of the first admin.")
@click.option("--admin-name", help="Display name of the admin.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False),
              help="TOML file overriding deadlines, day counting, categories or permissions.")
@click.option("--reuse-keys", is_flag=True,
              help="Use the log key and the admin's key already in the keystore (made for "
                   "another ledger) for this one too. Without it, init refuses such a keystore. "
                   "An earlier ledger of the same origin can then no longer be written with it.")
@renders(*RESULT)
@lang_option
def init(origin: str, admin: str, admin_name: str | None, policy_file: str | None,
         reuse_keys: bool, lang: str) -> Report:
    """Create a ledger: tables, the log key, the admin key (the root of trust).

    Writes log.pub and admin.pub (PEM) into the keystore; give those two files to anyone who
    will verify the ledger or its bundles. The keystore also keeps log.state, the last tree the
    log key signed: back it up with the keys.

    \b
    Example:
      xinfang init --origin xx-city-psb.example/ledger --admin admin-01
    """
    s = settings()
    policy = load_policy_file(policy_file) if policy_file else None
    with Ledger.init(s.ledger_url, s.keystore, origin=origin, admin=admin,
                     admin_name=admin_name, policy=policy, reuse_keys=reuse_keys) as led:
        note = led.checkpoint()
        info = {"ledger": led.store.location.display, "origin": origin, "admin": admin,
                "keystore": str(led.keystore.path),
                "log_pub": str(led.keystore.public_path("log")),
                "admin_pub": str(led.keystore.public_path("admin")), "checkpoint": note}
    if lang == "zh":
        return Report(info, lang=lang, text=f"已初始化 {info['ledger']}（日志名 {origin}，管理员 "
                      f"{admin}）\n公钥：{info['log_pub']}、{info['admin_pub']}")
    return Report(info, lang=lang, text=f"initialized {info['ledger']} (origin {origin}, admin "
                  f"{admin})\npublic keys: {info['log_pub']}, {info['admin_pub']}")


@cli.group()
def unit() -> None:
    """Handling units (承办单位)."""


@unit.command("add")
@click.argument("unit_id")
@click.option("--name", required=True, help="Display name, e.g. XX县公安局.")
@click.option("--parent", help="Parent unit id.")
@as_option
@at_option
@lang_option
@handle_errors
def unit_add(unit_id: str, name: str, parent: str | None, as_actor: str, at: str | None,
             lang: str) -> None:
    """Add a unit to the directory.

    \b
    Example:
      xinfang unit add county-01 --name "XX县公安局" --as admin-01
    """
    with settings().open() as led:
        receipt = led.add_unit(unit_id, name, parent, as_actor=as_actor, at=parse_at(at))
    click.echo(f"已新增单位 {unit_id}（目录 #{receipt.seq}，日志位置 {receipt.position}）"
               if lang == "zh" else
               f"unit {unit_id} added (directory #{receipt.seq}, position {receipt.position})")


@unit.command("list")
@renders(*RESULT)
@lang_option
def unit_list(lang: str) -> Report:
    """List the units in the directory.

    \b
    Example:
      xinfang unit list --format json
    """
    with settings().open() as led:
        units = [{"unit": u.unit, "name": u.name, "parent": u.parent}
                 for u in led.directory().units.values()]
    headers = ["单位编号", "名称", "上级单位"] if lang == "zh" else ["unit", "name", "parent"]
    names = {str(u["unit"]): str(u["name"]) for u in units}
    return Report(units, lang=lang, text=table(headers, [
        [u["unit"], u["name"], named(u["parent"], names)] for u in units]))


@cli.group()
def actor() -> None:
    """People who sign: staff, leaders, inspectors, reviewers, petitioners."""


@actor.command("add")
@click.argument("actor_id")
@click.option("--name", required=True, help="Display name.")
@click.option("--unit", "unit_id", help="The actor's unit.")
@click.option("--role", "roles", multiple=True, required=True,
              type=Coded("role", [r.value for r in Role]),
              help="Role, code or label (repeat for several). One of: "
                   + Coded("role", [r.value for r in Role]).pairs() + ".")
@click.option("--keyless", is_flag=True, help="No key (petitioners who sign on paper).")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False),
              help="Register an outside Ed25519 public key (PEM) instead of generating one.")
@as_option
@at_option
@lang_option
@handle_errors
def actor_add(actor_id: str, name: str, unit_id: str | None, roles: tuple[str, ...],
              keyless: bool, public_key: str | None, as_actor: str, at: str | None,
              lang: str) -> None:
    """Register an actor and their public key (generated into the keystore by default).

    \b
    Examples:
      xinfang actor add officer-07 --name "张三" --unit county-01 --role handler --as admin-01
      xinfang actor add pet-0001 --name "王某" --role petitioner --keyless --as admin-01
    """
    pem = Path(public_key).read_bytes() if public_key else None
    with settings().open() as led:
        receipt = led.add_actor(actor_id, name, roles=roles, unit=unit_id, keyless=keyless,
                                public_key_pem=pem, as_actor=as_actor, at=parse_at(at))
        record = led.directory().actor(actor_id)
    if lang == "zh":
        key = record.key if record and record.key else "无（无密钥）"
        click.echo(f"已新增人员 {actor_id}，密钥 {key}（日志位置 {receipt.position}）")
        return
    key = record.key if record and record.key else "none (keyless)"
    click.echo(f"actor {actor_id} added with key {key} (position {receipt.position})")


@actor.command("list")
@click.option("--role", type=Coded("role"), help="Only actors with this role (code or label, "
              "e.g. handler or 承办人).")
@renders(*RESULT)
@lang_option
def actor_list(role: str | None, lang: str) -> Report:
    """List actors with their roles, unit and current key (and revoked keys).

    \b
    Example:
      xinfang actor list --role handler
    """
    with settings().open() as led:
        directory = led.directory()
        actors: list[dict[str, Any]] = [
            {"actor": a.actor, "name": a.name, "unit": a.unit, "roles": sorted(a.roles),
             "keyless": a.keyless, "key": a.key,
             "revoked_keys": sorted(k.key for k in directory.keys.values()
                                    if k.actor == a.actor and k.revoked_at is not None)}
            for a in directory.actors.values() if role is None or role in a.roles]
        units = {u.unit: u.name for u in directory.units.values()}
    zh = lang == "zh"
    headers = ["人员编号", "姓名", "单位", "角色", "密钥"] if zh else \
        ["actor", "name", "unit", "roles", "key"]
    keyless, revoked = ("无密钥（纸质签名）", "已吊销") if zh else ("keyless", "revoked")
    return Report(actors, lang=lang, text=table(headers, [
        [a["actor"], a["name"], named(a["unit"], units),
         ("、" if zh else ", ").join(label("role", r, lang) for r in a["roles"]),
         a["key"] or (keyless if a["keyless"] else revoked)] for a in actors]))


@actor.command("rotate-key")
@click.argument("actor_id")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False),
              help="New outside public key (PEM) instead of generating one.")
@as_option
@at_option
@lang_option
@handle_errors
def actor_rotate(actor_id: str, public_key: str | None, as_actor: str, at: str | None,
                 lang: str) -> None:
    """Replace an actor's key; the old key stops being valid at this log position.

    \b
    Example:
      xinfang actor rotate-key officer-07 --as admin-01
    """
    pem = Path(public_key).read_bytes() if public_key else None
    with settings().open() as led:
        receipt = led.rotate_key(actor_id, as_actor=as_actor, at=parse_at(at),
                                 public_key_pem=pem)
        record = led.directory().actor(actor_id)
    key = record.key if record else "?"
    click.echo(f"{actor_id} 的密钥已更换为 {key}（日志位置 {receipt.position}）" if lang == "zh"
               else f"key of {actor_id} rotated to {key} (position {receipt.position})")


@actor.command("revoke-key")
@click.argument("actor_id")
@click.option("--key", "key_id", help="Key id to revoke (default: the current key).")
@click.option("--reason", help="Why (e.g. lost, compromised, left the unit).")
@as_option
@at_option
@lang_option
@handle_errors
def actor_revoke(actor_id: str, key_id: str | None, reason: str | None, as_actor: str,
                 at: str | None, lang: str) -> None:
    """Revoke a key: events it signs after this position are invalid.

    \b
    Example:
      xinfang actor revoke-key officer-07 --reason "证书遗失" --as admin-01
    """
    with settings().open() as led:
        receipt = led.revoke_key(actor_id, key=key_id, reason=reason, as_actor=as_actor,
                                 at=parse_at(at))
    click.echo(f"{actor_id} 的密钥已吊销（日志位置 {receipt.position}）" if lang == "zh" else
               f"key of {actor_id} revoked (position {receipt.position})")


@cli.command()
@click.option("--reanchor", is_flag=True,
              help="After restoring a backup older than the last checkpoint this keystore's log "
                   "key signed: trust the restored ledger's latest signed checkpoint once "
                   "(it must verify under the log key), then re-import what is missing.")
@checkpoint_options
@lang_option
@handle_errors
def checkpoint(reanchor: bool, witnesses: tuple[str, ...], quorum: int | None,
               lang: str) -> None:
    """Print the latest signed checkpoint (C2SP signed note) with the witness cosignatures
    kept for it; keep it to check later.

    \b
    Examples:
      xinfang checkpoint > cp.txt
      xinfang verify --since cp.txt
      xinfang checkpoint --reanchor      # after restoring an older backup
      xinfang checkpoint --witness http://127.0.0.1:7381=jjjc.pub --quorum 1
    """
    with settings().open() as led:
        note = led.reanchor() if reanchor else led.checkpoint()
        note = checkpoint_note(led.store, note, witnesses, quorum)
    click.echo(note, nl=False)


@cli.command("schema")
@lang_option
@handle_errors
def schema_cmd(lang: str) -> None:
    """Print the JSON Schema of one import line (its titles carry both languages)."""
    echo_json(import_schema())


@cli.command("public-key")
@click.argument("name")
@lang_option
@handle_errors
def public_key_cmd(name: str, lang: str) -> None:
    """Print the PEM public key of NAME ("log", "admin" or an actor id) from the keystore."""
    with settings().open() as led:
        if name == "log":
            click.echo(PublicKey.from_raw(led.directory().log_key).to_pem().decode(), nl=False)
            return
        record = led.directory().actor(name)
        if record is None or record.key is None:
            raise InputError(f"{name} 没有当前有效的密钥" if lang == "zh" else
                             f"{name} has no current key")
        public = PublicKey.from_raw(led.directory().keys[record.key].public)
        click.echo(public.to_pem().decode(), nl=False)


cli.add_command(case_group)
cli.add_command(witness_group)
cli.add_command(reverse_check_group)
register_read_commands(cli)
register_report_commands(cli)
cli.add_command(demo_cmd)
cli.add_command(bench_cmd)
register_bundle_commands(cli)
register_accountability_commands(cli)
register_server_commands(cli)   # serve, key, receipts; --server routing (last)


def main() -> None:
    cli(prog_name="xinfang")


if __name__ == "__main__":
    main()
