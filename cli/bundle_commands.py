"""`export`, `verify-bundle`, `case verify-closure` and `report closures`: thin shells over
the ledger's bundles and closure records."""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ledger import (
    BUNDLE_CHECK_NAMES,
    MAX_BUNDLE_BYTES,
    Envelope,
    InputError,
    Keystore,
    KeyUnavailableError,
    Ledger,
    LedgerView,
    PublicKey,
    Statement,
    Store,
    bundle_bytes,
    closed_cases,
    closure_record,
    closure_report,
    export_bundle,
    parse_checkpoint,
    verify_bundle,
)
from projections import (
    Report,
    closure_record_sheets,
    closure_sheets,
    directory_names,
    organization,
    reason_text,
)

from .context import handle_errors, lang_option, settings
from .output import REPORT, RESULT, VERDICT, failure_lines, renders
from .read_commands import history_lines
from .witness_commands import verifier_options, verifier_trust, witnessed_lines

# ---- export / verify-bundle --------------------------------------------------------------------

@click.command("export")
@click.argument("cases", nargs=-1, metavar="CASE...")
@click.option("--all-closed", is_flag=True, help="Every currently closed case.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the bundle here (default: standard output).")
@lang_option
@handle_errors
def export_cmd(cases: tuple[str, ...], all_closed: bool, out: str | None, lang: str) -> None:
    """Write an offline bundle: the cases' signed events, the directory, inclusion proofs of
    every event and the signed checkpoint they are proven against (docs/bundle-format.md).

    \b
    Examples:
      xinfang export XF-2025-000001 --out XF-2025-000001.bundle.json
      xinfang export --all-closed --out closed.bundle.json
    """
    with settings().store() as store:
        chosen = [*cases, *(closed_cases(store) if all_closed else [])]
        zh = lang == "zh"
        if not chosen:
            raise InputError(("没有要导出的案件" if not all_closed else "没有已办结的案件") if zh
                             else ("no case to export" if not all_closed else "no closed case"),
                             "写出一个或多个案件编号，或用 --all-closed。" if zh else
                             "Name one or more cases, or use --all-closed.")
        # The log key attests stream heads only for streams whose every event it has checked
        # (the one checked view): it never vouches for a forged or planted event.
        failure = _first_failure(store, chosen)
        signer = _heads_signer(store, lang) if failure is None else None
        if failure is not None:
            reason = reason_text(failure.reason, lang)
            click.echo(f"警告：{failure.stream}#{failure.seq}（日志位置 {failure.position}）未通过"
                       f"检查 {int(failure.check)}（{reason}）；证据包按存储原样收录事件，不证明"
                       "其流完整" if zh else
                       f"warning: {failure.stream}#{failure.seq} at position {failure.position} "
                       f"fails check {int(failure.check)} ({reason}); the bundle holds "
                       "the events as stored and will not attest that its streams are "
                       "complete", err=True)
        bundle = export_bundle(store, chosen, sign_heads=signer)
    data = bundle_bytes(bundle)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    Path(out).write_bytes(data)
    size = parse_checkpoint(bundle["checkpoint"]).checkpoint.size
    click.echo(f"已导出 {len(bundle['cases'])} 件案件、{len(bundle['events'])} 个事件到 {out}，"
               f"以大小 {size} 的检查点证明" if lang == "zh" else
               f"exported {len(bundle['cases'])} case(s) and {len(bundle['events'])} events "
               f"proven against checkpoint size {size} to {out}")


def _first_failure(store: Store, cases: list[str]) -> Any:
    """The first failing event of the directory or the chosen cases, judged by the checked
    view under the keystore's pinned anchors (None when all pass)."""
    keystore = Path(settings().keystore).expanduser()
    view = LedgerView(store, log_key=_pinned(keystore / "log.pub"),
                      admin_key=_pinned(keystore / "admin.pub"))
    for stream in (view.directory_stream(), *(view.stream(case) for case in cases)):
        if stream.first_failure is not None:
            return stream.first_failure
    return None


def _pinned(path: Path) -> bytes | None:
    return PublicKey.from_pem(path.read_bytes()).raw if path.exists() else None


def _heads_signer(store: Store, lang: str = "zh") -> Any:
    """The log key's note signer for the stream-heads note, if this keystore holds it."""
    led = Ledger(store, Keystore(settings().keystore, os.environ.get("XINFANG_PASSPHRASE")))
    try:
        return led.note_signer()
    except KeyUnavailableError as exc:
        click.echo(f"警告：{exc.message}；证据包不证明其流完整" if lang == "zh" else
                   f"warning: {exc.message}; the bundle will not attest that its streams are "
                   "complete", err=True)
        return None


def _anchor(path: str | None, option: str) -> bytes | None:
    """A trust anchor from a PEM file; an unreadable or non-key file is bad input (exit 2)."""
    if path is None:
        return None   # verify_bundle reports the missing anchor by its role (exit 1)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {option} {path}: {exc.strerror or exc}",
                         "Give the PEM public key file written by `xinfang init`.") from None
    try:
        return PublicKey.from_pem(data).raw
    except InputError as exc:
        raise InputError(f"{option} {path}: {exc.message}",
                         "Give the PEM public key file written by `xinfang init`.") from None
    except Exception:   # noqa: BLE001 - e.g. a PEM of an unsupported key type
        raise InputError(f"{option} {path} is not an Ed25519 public key (PEM)",
                         "Give the PEM public key file written by `xinfang init`.") from None


def _read_bundle(bundle_file: str) -> bytes:
    """The bundle bytes, at most one byte past the limit (verify_bundle reports an oversize
    bundle as a failure); an unreadable file is bad input (exit 2)."""
    try:
        if bundle_file == "-":
            return sys.stdin.buffer.read(MAX_BUNDLE_BYTES + 1)
        with open(bundle_file, "rb") as handle:
            return handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the bundle {bundle_file}: {exc.strerror or exc}") from None


@click.command("verify-bundle")
@click.argument("bundle_file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--log-key", "log_key", metavar="FILE", type=click.Path(dir_okay=False),
              help="The ledger's log public key (PEM, log.pub from `xinfang init`): the "
                   "checkpoint must be signed by it. Example: --log-key keys/log.pub")
@click.option("--admin-key", "admin_key", metavar="FILE", type=click.Path(dir_okay=False),
              help="The ledger's admin public key (PEM, admin.pub from `xinfang init`): the "
                   "init event must be signed by it. Example: --admin-key keys/admin.pub")
@click.option("--trust", "trust", multiple=True, hidden=True,
              help="Removed: it let the bundle say which trusted key has which role.")
@click.option("--show", is_flag=True,
              help="Also print the bundle's case(s) as a readable history: names from the "
                   "bundle's own directory, Beijing times, each event's verdict.")
@verifier_options
@renders(*RESULT)
@lang_option
def verify_bundle_cmd(bundle_file: str, log_key: str | None, admin_key: str | None,
                      trust: tuple[str, ...], witnesses: tuple[str, ...], quorum: int | None,
                      trust_policy: str | None, witnessed_files: tuple[str, ...], show: bool,
                      lang: str) -> Report:
    """Verify an offline bundle with no database: checkpoint signature, every inclusion proof,
    signature, key, authorization, hash chain and time (exit 1 on failure, also when an anchor
    is missing or one key is given for both roles).

    The two trust anchors are given by role, never taken from the bundle.

    \b
    Example:
      xinfang verify-bundle XF-2025-000001.bundle.json \\
          --log-key keys/log.pub --admin-key keys/admin.pub
      xinfang verify-bundle case.bundle.json --trust-policy trust.toml
      xinfang verify-bundle case.bundle.json --show    # read the case offline
    """
    if trust:
        raise InputError("--trust is no longer accepted: it let the bundle itself say which "
                         "trusted key is the log key and which the admin key",
                         "Give each key by its role: --log-key log.pub --admin-key admin.pub.")
    witness = verifier_trust(witnesses, quorum, trust_policy, witnessed_files,
                             log_key=log_key, admin_key=admin_key)
    anchors = {"log_key": witness.log_key or _anchor(log_key, "--log-key"),
               "admin_key": witness.admin_key or _anchor(admin_key, "--admin-key")}
    data = _read_bundle(bundle_file)
    report = verify_bundle(data, log_key=anchors["log_key"], admin_key=anchors["admin_key"],
                           witness_policy=witness.witnesses, witnessed=witness.witnessed)
    zh = lang == "zh"
    verdict = VERDICT[lang, report.ok]
    root = report.checkpoint_root[:16] + "…" if report.checkpoint_root else "—"
    cases = ("、" if zh else ", ").join(report.cases[:5]) or "?"
    if len(report.cases) > 5:
        cases += f" 等 {len(report.cases)} 件" if zh else f" and {len(report.cases) - 5} more"
    size = report.checkpoint_size if report.checkpoint_size is not None else "—"
    lines = [f"verify-bundle: {verdict} — {cases}：{report.events} 个事件，{report.streams} 个流；"
             f"检查点大小 {size}，根 {root}" if zh else
             f"verify-bundle: {verdict} — {report.events} events in {report.streams} streams "
             f"for {cases}; checkpoint size {size}, root {root}"]
    if report.ok and not report.complete:
        lines.append("注意：证据包未带签名的流头，无法证明其案件没有遗漏后来的事件" if zh else
                     "note: the bundle carries no signed stream heads, so it cannot show "
                     "that no later event of its cases was left out")
    lines += witnessed_lines(report.witnessed)
    first = report.first_failure
    if first is not None:
        lines.append((("首个异常事件：" if first.stream else "首个失败：") if zh else
                      ("first bad event: " if first.stream else "first failure: "))
                     + _where(first, lang))
    names = {**{f.check: "check" for f in report.failures}, **BUNDLE_CHECK_NAMES}
    lines += failure_lines(report.failures, names, lambda f: _where(f, lang), lang=lang)
    if show:
        lines += bundle_history(data, report, lang)
    return Report(report.to_json(), text="\n".join(lines), exit_code=0 if report.ok else 1)


@dataclass
class _ShownEvent:
    """One bundle event in the shape ``history_lines`` reads (as a ``HistoryEvent``)."""

    seq: int
    at: str
    recorded_at: str
    type: str
    actor: str
    role: str
    unit: str | None
    data: dict[str, Any]
    failures: list[tuple[int, str]] = field(default_factory=list)
    recorded_lag_seconds: int | None = None


def bundle_history(data: bytes, report: Any, lang: str) -> list[str]:
    """The bundle's case(s) as readable histories, offline: who from the bundle's own
    directory events, each event's verdict from the verification just run. Events whose
    bytes do not parse are shown by their failures only (they are in the report above)."""
    zh = lang == "zh"
    try:
        bundle = json.loads(data)
        entries = list(bundle["events"])
    except (ValueError, KeyError, TypeError):
        return ["", "证据包无法读取为办理经过" if zh else "the bundle cannot be read as a history"]
    failed: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for failure in report.failures:
        if failure.stream is not None and failure.seq is not None:
            failed.setdefault((failure.stream, failure.seq), []).append(
                (int(failure.check), failure.reason))
    names: dict[str, str] = {}
    units: dict[str, str] = {}
    actor_unit: dict[str, str | None] = {}
    actor_roles: dict[str, list[str]] = {}
    streams: dict[str, list[_ShownEvent]] = {}
    for entry in entries:
        try:
            envelope = Envelope.from_bytes(base64.b64decode(entry["envelope"], validate=True))
            statement = Statement.from_signed_bytes(envelope.signed, strict=False)
        except (ValueError, KeyError, TypeError):
            continue
        payload = statement.data if isinstance(statement.data, dict) else {}
        if statement.type == "unit.add":
            units[str(payload.get("unit"))] = str(payload.get("name", ""))
        elif statement.type == "actor.add":
            actor = str(payload.get("actor"))
            names[actor] = str(payload.get("name", ""))
            actor_unit[actor] = payload.get("unit")
            actor_roles[actor] = list(payload.get("roles", []))
        if not statement.stream.startswith("XF-"):
            continue
        recorded = envelope.recorded_at.isoformat(timespec="seconds")
        try:
            lag = int((envelope.recorded_at - statement.business_time).total_seconds())
        except (ValueError, TypeError, ArithmeticError):
            lag = None
        roles = actor_roles.get(statement.actor, [])
        streams.setdefault(statement.stream, []).append(_ShownEvent(
            statement.seq, statement.at, recorded, statement.type, statement.actor,
            roles[0] if len(roles) == 1 else "", actor_unit.get(statement.actor), payload,
            failed.get((statement.stream, statement.seq), []), lag))
    # A failure of the bundle as a whole (a missing anchor, a bad checkpoint) leaves the
    # events unjudged: shown as "?", never as verified.
    judged = not any(f.stream is None for f in report.failures)
    lines: list[str] = []
    for case in report.cases or list(streams):
        if case in streams:
            lines += ["", *history_lines(case, None, {}, streams[case], lang, names, units,
                                         judged=judged)]
    if not judged:
        lines.append("?：证据包整体未通过验证，单个事件未作判定" if zh else
                     "?: the bundle as a whole failed, so its events were not judged")
    return lines


def _where(failure: Any, lang: str = "en") -> str:
    zh = lang == "zh"
    if failure.stream is None:
        if failure.position == 0:
            return "证据包" if zh else "the bundle"
        return f"日志位置 {failure.position}" if zh else f"position {failure.position}"
    seq = f"#{failure.seq}" if failure.seq is not None else ""
    return f"{failure.stream}{seq}（日志位置 {failure.position}）" if zh else \
        f"{failure.stream}{seq} (position {failure.position})"


# ---- closures ----------------------------------------------------------------------------------

@click.command("verify-closure")
@click.argument("case_no", metavar="CASE")
@renders(*RESULT)
@lang_option
def verify_closure_cmd(case_no: str, lang: str) -> Report:
    """Check a case's latest closing has the three signatures (三签), each verified and by
    the signer authorized at that time (exit 1 if not).

    \b
    Examples:
      xinfang case verify-closure XF-2025-000001
      xinfang case verify-closure XF-2025-000001 --format json --lang en
    """
    with settings().store() as store:
        record = closure_record(store, case_no)
        _, names = directory_names(store)
    sheets = closure_record_sheets(record, lang, names)
    return Report(record.to_json(), tuple(sheets), title=sheets[0].title, lang=lang,
                  exit_code=0 if record.valid else 1)


@click.command("closures")
@renders(*REPORT)
@lang_option
def closures_cmd(lang: str) -> Report:
    """Closure records (三签结案记录): for each closed case, its three signatures, each verified
    (exit 1 when any closure is invalid: cli.md, closure checks exit 1).

    \b
    Examples:
      xinfang report closures
      xinfang report closures --format json
      xinfang report closures --format xlsx --out closures.xlsx
    """
    with settings().store() as store:
        records = closure_report(store)
        org = (organization(store) or {}).get("name")   # heads the printed report
        _, names = directory_names(store)
    sheets = closure_sheets(records, lang, organization=org, names=names)
    return Report({"cases": [r.to_json() for r in records]}, tuple(sheets),
                  title=sheets[0].title, lang=lang,
                  exit_code=0 if all(r.valid for r in records) else 1)


def register_bundle_commands(cli: click.Group) -> None:
    """Add the commands; `report closures` joins an existing `report` group if there is one."""
    from .case_commands import case_group

    cli.add_command(export_cmd)
    cli.add_command(verify_bundle_cmd)
    case_group.add_command(verify_closure_cmd)
    report = cli.commands.get("report")
    if not isinstance(report, click.Group):
        report = click.Group("report", help="Reports: statistics, supervision, "
                             "accountability, closures.")
        cli.add_command(report)
    report.add_command(closures_cmd)
