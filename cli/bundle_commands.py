"""`export`, `verify-bundle`, `case verify-closure` and `report closures`: thin shells over
ledger.bundle and ledger.closure."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ledger.errors import InputError
from ledger.log.checkpoint import parse_checkpoint
from ledger.log.keys import Keystore, load_public_pem
from ledger.storage.store import Store, parse_location
from ledger.verification.bundle import (
    CHECK_NAMES,
    MAX_BUNDLE_BYTES,
    bundle_bytes,
    export_bundle,
    verify_bundle,
)
from ledger.verification.closure import (
    ClosureRecord,
    ClosureSignature,
    closed_cases,
    closure_record,
)
from ledger.verification.closure import closure_report as build_closure_report
from projections.labels import label

from .context import format_option, handle_errors, lang_option, settings
from .output import echo_failures, emit_json, table


@contextmanager
def _store() -> Iterator[Store]:
    """The ledger's tables, read-only use: these commands need no keystore."""
    with Store(parse_location(settings().ledger_url)) as store:
        if not store.is_initialized():
            raise InputError("the ledger is not initialized", "Run `xinfang init` first.")
        yield store


# ---- export / verify-bundle --------------------------------------------------------------------

@click.command("export")
@click.argument("cases", nargs=-1, metavar="CASE...")
@click.option("--all-closed", is_flag=True, help="Every currently closed case.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the bundle here (default: standard output).")
@handle_errors
def export_cmd(cases: tuple[str, ...], all_closed: bool, out: str | None) -> None:
    """Write an offline bundle: the cases' signed events, the directory, inclusion proofs of
    every event and the signed checkpoint they are proven against (docs/bundle-format.md).

    \b
    Examples:
      xinfang export XF-2025-000001 --out XF-2025-000001.bundle.json
      xinfang export --all-closed --out closed.bundle.json
    """
    with _store() as store:
        chosen = [*cases, *(closed_cases(store) if all_closed else [])]
        if not chosen:
            raise InputError("no case to export" if not all_closed else "no closed case",
                             "Name one or more cases, or use --all-closed.")
        # The log key attests stream heads only for streams whose every event it has checked
        # (the one checked view): it never vouches for a forged or planted event.
        failure = _first_failure(store, chosen)
        signer = _heads_signer(store) if failure is None else None
        if failure is not None:
            click.echo(f"warning: {failure.stream}#{failure.seq} at position {failure.position} "
                       f"fails check {int(failure.check)} ({failure.reason}); the bundle holds "
                       "the events as stored and will not attest that its streams are "
                       "complete", err=True)
        bundle = export_bundle(store, chosen, sign_heads=signer)
    data = bundle_bytes(bundle)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    Path(out).write_bytes(data)
    size = parse_checkpoint(bundle["checkpoint"]).checkpoint.size
    click.echo(f"exported {len(bundle['cases'])} case(s) and {len(bundle['events'])} events "
               f"proven against checkpoint size {size} to {out}")


def _first_failure(store: Store, cases: list[str]) -> Any:
    """The first failing event of the directory or the chosen cases, judged by the checked
    view under the keystore's pinned anchors (None when all pass)."""
    from ledger.verification.view import LedgerView

    keystore = Path(settings().keystore).expanduser()
    view = LedgerView(store, log_key=_pinned(keystore / "log.pub"),
                      admin_key=_pinned(keystore / "admin.pub"))
    for stream in (view.directory_stream(), *(view.stream(case) for case in cases)):
        if stream.first_failure is not None:
            return stream.first_failure
    return None


def _pinned(path: Path) -> bytes | None:
    return load_public_pem(path.read_bytes()) if path.exists() else None


def _heads_signer(store: Store) -> Any:
    """The log key's note signer for the stream-heads note, if this keystore holds it."""
    from ledger import Ledger
    from ledger.errors import KeyUnavailableError
    from ledger.log.checkpoint import sign_note

    led = Ledger(store, Keystore(settings().keystore, os.environ.get("XINFANG_PASSPHRASE")))
    try:
        signer = led._log_signer()
    except KeyUnavailableError as exc:
        click.echo(f"warning: {exc.message}; the bundle will not attest that its streams are "
                   "complete", err=True)
        return None
    origin = led.directory(refresh=False).origin
    return lambda text: sign_note(text, origin, signer.private)


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
        return load_public_pem(data)
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
@format_option("text", "json")
@handle_errors
def verify_bundle_cmd(bundle_file: str, log_key: str | None, admin_key: str | None,
                      trust: tuple[str, ...], fmt: str) -> None:
    """Verify an offline bundle with no database: checkpoint signature, every inclusion proof,
    signature, key, authorization, hash chain and time (exit 1 on failure, also when an anchor
    is missing or one key is given for both roles).

    The two trust anchors are given by role, never taken from the bundle.

    \b
    Example:
      xinfang verify-bundle XF-2025-000001.bundle.json \\
          --log-key keys/log.pub --admin-key keys/admin.pub
    """
    if trust:
        raise InputError("--trust is no longer accepted: it let the bundle itself say which "
                         "trusted key is the log key and which the admin key",
                         "Give each key by its role: --log-key log.pub --admin-key admin.pub.")
    anchors = {"log_key": _anchor(log_key, "--log-key"),
               "admin_key": _anchor(admin_key, "--admin-key")}
    report = verify_bundle(_read_bundle(bundle_file), **anchors)
    if fmt == "json":
        emit_json(report.to_json())
    else:
        verdict = "PASS" if report.ok else "FAIL"
        root = report.checkpoint_root[:16] + "…" if report.checkpoint_root else "none"
        cases = ", ".join(report.cases[:5]) or "?"
        if len(report.cases) > 5:
            cases += f" and {len(report.cases) - 5} more"
        click.echo(f"verify-bundle: {verdict} — {report.events} events in {report.streams} "
                   f"streams for {cases}; checkpoint size {report.checkpoint_size}, root {root}")
        if report.ok and not report.complete:
            click.echo("note: the bundle carries no signed stream heads, so it cannot show "
                       "that no later event of its cases was left out")
        first = report.first_failure
        if first is not None:
            click.echo(("first bad event: " if first.stream else "first failure: ")
                       + _where(first))
        names = {**{f.check: "check" for f in report.failures}, **CHECK_NAMES}
        echo_failures(report.failures, names, _where)
    if not report.ok:
        sys.exit(1)


def _where(failure: Any) -> str:
    if failure.stream is None:
        return "the bundle" if failure.position == 0 else f"position {failure.position}"
    seq = f"#{failure.seq}" if failure.seq is not None else ""
    return f"{failure.stream}{seq} (position {failure.position})"


# ---- closures ----------------------------------------------------------------------------------

ROLES = ("handler", "unit_leader", "petitioner")


def _time(text: str | None) -> str:
    return text[:16].replace("T", " ") if text else "—"


def _mark(sig: ClosureSignature, lang: str) -> str:
    if not sig.present:
        return label("closure", "missing", lang)
    if sig.form == "refused":
        return label("form", "refused", lang)
    return label("field", "ok" if sig.verified else "bad", lang)


def _how(sig: ClosureSignature, lang: str) -> str:
    """The petitioner's opinion and form of signing, e.g. 满意 / 见证纸质签名."""
    if sig.role != "petitioner" or not sig.present or sig.form == "refused":
        return ""
    return f"{label('opinion', sig.opinion, lang)} / {label('form', sig.form, lang)}"


def _who(sig: ClosureSignature, lang: str) -> str:
    if not sig.present:
        return label("closure", "missing", lang)
    return " ".join(part for part in (sig.actor or "?", _mark(sig, lang), _how(sig, lang))
                    if part)


def _problem_text(problem: Any, lang: str) -> str:
    return f"{label('closure', problem.code, lang)}: {problem.detail}"


def _verdict(record: ClosureRecord, lang: str) -> str:
    return label("closure", "valid" if record.valid else "invalid", lang)


def _print_record(record: ClosureRecord, lang: str) -> None:
    c = lambda key: label("closure", key, lang)  # noqa: E731
    click.echo(f"{label('field', 'case', lang)} {record.case}    {c('closed_at')}: "
               f"{_time(record.closed_at)}    {c('closed_by')}: {record.closed_by or '—'}    "
               f"{c('verdict')}: {_verdict(record, lang)}")
    rows = []
    for role in ROLES:
        sig = record.signatures[role]
        rows.append([c(role), sig.actor or "—", _time(sig.at), sig.key or "—",
                     _mark(sig, lang), _how(sig, lang)])
    click.echo(table([c("signature"), c("signer"), label("field", "at", lang), c("key"),
                      c("verified"), label("field", "details", lang)], rows))
    for problem in record.problems:
        click.echo(f"  - {_problem_text(problem, lang)}")


@click.command("verify-closure")
@click.argument("case_no", metavar="CASE")
@format_option("text", "json")
@lang_option
@handle_errors
def verify_closure_cmd(case_no: str, fmt: str, lang: str) -> None:
    """Check a case's latest closing has the three signatures (三签), each verified and by
    the signer authorized at that time (exit 1 if not).

    \b
    Examples:
      xinfang case verify-closure XF-2025-000001
      xinfang case verify-closure XF-2025-000001 --format json --lang en
    """
    with _store() as store:
        record = closure_record(store, case_no)
    if fmt == "json":
        emit_json(record.to_json())
    else:
        _print_record(record, lang)
    if not record.valid:
        sys.exit(1)


def _rows(records: list[ClosureRecord], lang: str) -> tuple[list[str], list[list[str]]]:
    """One row per case, shared by the text, csv and xlsx outputs."""
    c = lambda key: label("closure", key, lang)  # noqa: E731
    headers = [label("field", "case", lang), c("closed_at"), c("handler"), c("unit_leader"),
               c("petitioner"), c("verdict"), c("problems")]
    rows = [[r.case, _time(r.closed_at), *(_who(r.signatures[role], lang) for role in ROLES),
             _verdict(r, lang), "; ".join(label("closure", p.code, lang) for p in r.problems)]
            for r in records]
    return headers, rows


def _write_table(headers: list[str], rows: list[list[str]], fmt: str, out: str) -> None:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(headers)
        writer.writerows(rows)
        Path(out).write_text(buffer.getvalue(), encoding="utf-8-sig")
        return
    import xlsxwriter

    book = xlsxwriter.Workbook(out)
    sheet = book.add_worksheet("closures")
    for col, text in enumerate(headers):
        sheet.write(0, col, text)
    for r, row in enumerate(rows, start=1):
        for col, text in enumerate(row):
            sheet.write(r, col, text)
    book.close()


@click.command("closures")
@format_option("text", "json", "csv", "xlsx")
@lang_option
@click.option("--out", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write to FILE (required for csv and xlsx; default: standard output).")
@handle_errors
def closures_cmd(fmt: str, lang: str, out: str | None) -> None:
    """Closure records (三签结案记录): for each closed case, its three signatures, each verified.

    \b
    Examples:
      xinfang report closures
      xinfang report closures --format json
      xinfang report closures --format xlsx --out closures.xlsx
    """
    if fmt in ("csv", "xlsx") and not out:
        raise InputError(f"--format {fmt} needs --out FILE")
    with _store() as store:
        records = build_closure_report(store)
    if fmt in ("csv", "xlsx"):
        assert out is not None
        _write_table(*_rows(records, lang), fmt, out)
        return
    if fmt == "json":
        text = json.dumps({"cases": [r.to_json() for r in records]}, ensure_ascii=False,
                          indent=2)
    else:
        lines = [table(*_rows(records, lang))]
        lines += [f"  {r.case}: {_problem_text(p, lang)}" for r in records for p in r.problems]
        text = "\n".join(lines)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


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
