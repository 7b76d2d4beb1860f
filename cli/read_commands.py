"""Read commands: case history, verify (and, registered from their modules, the reports)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from ledger import CHECK_NAMES, PublicKey, case_history, case_status, import_file, verify_ledger
from projections import Report, label, labeller

from .context import lang_option, settings
from .output import RESULT, failure_lines, renders, table
from .witness_commands import verifier_options, verifier_trust, witnessed_lines

SUMMARY_FIELDS = ("decision", "unit", "handler", "authority", "due", "leader", "note", "days",
                  "outcome", "resolution", "opinion", "form", "level", "reason",
                  "override_reason", "category", "channel", "petitioner", "measures", "fault",
                  "actor")


def _summarize(action: str, data: dict[str, Any], lang: str) -> str:
    parts = []
    for key in SUMMARY_FIELDS:
        if key in data and data[key] not in (None, "", [], False):
            value = data[key]
            kind = {"decision": "decision", "outcome": "outcome", "resolution": "resolution",
                    "opinion": "opinion", "form": "form", "level": "level",
                    "category": "category", "channel": "channel"}.get(key)
            text = label(kind, value, lang) if kind else str(value)
            parts.append(text if kind else f"{key}={text}")
    text = " ".join(parts)
    return text if len(text) <= 60 else text[:57] + "…"


@click.command("history")
@click.argument("case_no", metavar="CASE")
@renders(*RESULT)
@lang_option
def history_cmd(case_no: str, lang: str) -> Report:
    """A case's full audit trail, every signature and authorization checked.

    \b
    Examples:
      xinfang case history XF-2025-000001
      xinfang case history XF-2025-000001 --format json
    """
    with settings().open() as led:
        history = case_history(led.view, case_no)
    f = labeller("field", lang)
    status = case_status(history.state) if history.state else None
    lines = [f"{f('case')} {history.case}    {f('status')}: {label('status', status, lang)}"]
    due = [f"{label('deadline', k, lang)} {v.isoformat()}" for k, v in history.deadlines.items()
           if v is not None]
    if due:
        lines.append(f"{f('deadlines')}: " + " · ".join(due))
    rows = []
    for e in history.events:
        checks = sorted({c for c, _ in e.failures})
        verdict = "✓" if e.ok else "✗ " + ",".join(str(c) for c in checks)
        rows.append([e.seq, e.at[:16].replace("T", " "),
                     e.recorded_at[:16].replace("T", " ") + _lag(e.recorded_lag_seconds, lang),
                     label("action", e.type, lang), e.actor, label("role", e.role, lang),
                     e.unit or "—", verdict, _summarize(e.type, e.data, lang)])
    lines.append(table([f("seq"), f("at"), f("recorded_at"), f("type"), f("actor"), f("role"),
                        f("unit"), f("verdict"), f("details")], rows))
    lines += [f"  #{e.seq} ({f('check')} {check_no}): {reason}"
              for e in history.events for check_no, reason in e.failures]
    return Report(history.to_json(), text="\n".join(lines), lang=lang,
                  exit_code=0 if history.ok else 1)


def _lag(seconds: int | None, lang: str) -> str:
    """The gap between business and recorded time, shown when over a day (a late entry,
    补录; the accountability report judges it against the policy's threshold)."""
    if seconds is None or seconds < 86400:
        return ""
    days = seconds // 86400
    return f" ({label('field', 'late', lang)} +{days}{label('field', 'days', lang)})" \
        if lang == "zh" else f" ({label('field', 'late', lang)} +{days} days)"


def _pinned_key(path: str | None, default: Path) -> bytes | None:
    if path:
        return PublicKey.from_pem(Path(path).read_bytes()).raw
    if default.exists():
        return PublicKey.from_pem(default.read_bytes()).raw
    return None


@click.command("verify")
@click.option("--since", "since", type=click.Path(exists=True, dir_okay=False),
              help="A checkpoint kept earlier: prove the log only grew since.")
@click.option("--log-key", type=click.Path(exists=True, dir_okay=False),
              help="Trusted log public key (PEM); default: log.pub in the keystore if present.")
@click.option("--admin-key", type=click.Path(exists=True, dir_okay=False),
              help="Trusted admin public key (PEM); default: admin.pub in the keystore.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Processes for signature checks (default: every core).")
@verifier_options
@renders(*RESULT)
def verify_cmd(since: str | None, log_key: str | None, admin_key: str | None,
               workers: int | None, witnesses: tuple[str, ...], quorum: int | None,
               trust_policy: str | None, witnessed_files: tuple[str, ...], fmt: str) -> Report:
    """Verify every event, chain, key, authorization and checkpoint (exit 1 on failure).

    \b
    Examples:
      xinfang verify
      xinfang verify --format json
      xinfang checkpoint > cp.txt; ...; xinfang verify --since cp.txt
      xinfang verify --witness http://127.0.0.1:7381=jjjc.pub --witness sj.pub --quorum 2
      xinfang verify --trust-policy trust.toml
    """
    trust = verifier_trust(witnesses, quorum, trust_policy, witnessed_files,
                           log_key=log_key, admin_key=admin_key)
    s = settings()
    keystore = Path(s.keystore).expanduser()
    kept = Path(since).read_text(encoding="utf-8") if since else None
    # A log whose directory was deleted is verified like any other: it fails (exit 1).
    with s.store(bare_log=True) as store:
        progress = _progress_bar(store.max_position(), "verifying") if fmt == "text" else None
        with progress or nullcontext() as bar:
            report = verify_ledger(
                store, kept_checkpoint=kept,
                trusted_log_key=trust.log_key or _pinned_key(log_key, keystore / "log.pub"),
                trusted_admin_key=trust.admin_key or _pinned_key(admin_key,
                                                                 keystore / "admin.pub"),
                workers=workers, require_anchors=True, witness_policy=trust.witnesses,
                witnessed=trust.witnessed,
                progress=(lambda n: bar.update(n - bar.pos)) if bar is not None else None)
    verdict = "PASS" if report.ok else "FAIL"
    root = report.checkpoint_root[:16] + "…" if report.checkpoint_root else "none"
    lines = [f"verify: {verdict} — {report.events} events in {report.streams} streams; "
             f"latest checkpoint size {report.checkpoint_size}, root {root}"]
    if report.kept_checkpoint and report.kept_checkpoint.get("consistent"):
        lines.append(f"consistent with the kept checkpoint of size "
                     f"{report.kept_checkpoint['size']}")
    lines += witnessed_lines(report.witnessed)
    lines += failure_lines(report.failures, CHECK_NAMES, lambda f: f"position {f.position}, " + (
        f"{f.stream}#{f.seq}" if f.stream else "log"))
    return Report(report.to_json(), text="\n".join(lines), exit_code=0 if report.ok else 1)


class _Bar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.pos = 0

    def update(self, n: int) -> None:
        self.pos += n
        self.bar.update(n)


class _progress_bar:
    """A click progress bar on stderr when it is a terminal (and the job is big enough)."""

    def __init__(self, total: int, label_text: str) -> None:
        self.total = total
        self.label = label_text
        self._cm: Any = None

    def __enter__(self) -> _Bar | None:
        if not sys.stderr.isatty() or self.total < 5000:
            return None
        self._cm = click.progressbar(length=self.total, label=self.label, file=sys.stderr)
        return _Bar(self._cm.__enter__())

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--batch-size", type=click.IntRange(1, 100000), default=1000, show_default=True,
              help="Events per transaction (each batch gets its own signed checkpoint).")
@click.option("--migration", metavar="NAME",
              help="Mark every event of this import as the migration batch NAME (paper records "
                   "entered after the fact): `report accountability` lists the batch once "
                   "instead of a late_entry trigger per event.")
@renders(*RESULT)
def import_cmd(file: str, batch_size: int, migration: str | None, fmt: str) -> Report:
    """Import commands from a JSON Lines file, all validated before anything is written.

    Each line is {"id", "action", "case", "actor", "at", "data"} and is signed with the named
    actor's key from the keystore; `xinfang schema` prints the JSON Schema. Lines whose id is
    already recorded are skipped, so an interrupted import can simply be run again. A file
    without any command is reported as nothing to import (exit 0).

    \b
    Examples:
      xinfang import year-2025.jsonl
      xinfang import paper-2024.jsonl --migration paper-2024
    """
    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if fmt != "text" or not sys.stderr.isatty() or total < 2000:
            return
        if phase not in bars:
            for other in bars.values():
                other.render_finish()
            bars[phase] = click.progressbar(length=total, label=phase, file=sys.stderr)
            bars[phase].__enter__()
        bar = bars[phase]
        bar.update(done - bar.pos)

    with settings().open() as led:
        try:
            result = import_file(led, file, batch_size=batch_size, progress=progress,
                                 migration=migration)
        finally:
            for bar in bars.values():
                bar.__exit__(None, None, None)
    summary = {"lines": result.lines, "written": result.written, "skipped": result.skipped,
               "first_position": result.first_position, "last_position": result.last_position,
               **({"migration": result.migration} if result.migration else {})}
    if result.empty:
        return Report(summary, text=f"nothing to import: {file} holds no command")
    batch = f" as migration {result.migration}" if result.migration else ""
    return Report(summary, text=f"imported {result.written} of {result.lines} lines{batch} "
                  f"({result.skipped} already recorded)")


def register_read_commands(cli: click.Group) -> None:
    from .case_commands import case_group

    case_group.add_command(history_cmd)
    cli.add_command(verify_cmd)
    cli.add_command(import_cmd)
