"""Read commands: case history, verify (and, registered from their modules, the reports)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ledger import (
    CHECK_NAMES,
    SHANGHAI,
    Check,
    PublicKey,
    case_history,
    case_status,
    import_file,
    verify_ledger,
)
from projections import Report, label, labeller

from .context import lang_option, settings
from .output import RESULT, VERDICT, failure_lines, renders, table
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
        directory = led.directory()
        names = {a.actor: a.name for a in directory.actors.values()}
        units = {u.unit: u.name for u in directory.units.values()}
    status = case_status(history.state) if history.state else None
    lines = history_lines(history.case, status, history.deadlines, history.events, lang,
                          names, units)
    return Report(history.to_json(), text="\n".join(lines), lang=lang,
                  exit_code=0 if history.ok else 1)


def beijing(moment: str) -> str:
    """An ISO time as Beijing time to the minute (recorded times are stored in UTC)."""
    try:
        return datetime.fromisoformat(moment).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    except (ValueError, TypeError):
        return moment[:16].replace("T", " ") or "—"


def named(code: str | None, names: dict[str, str]) -> str:
    """A person or unit as people know them: the name, with the id in parentheses."""
    if not code:
        return "—"
    return f"{names[code]} ({code})" if names.get(code) else code


def check_title(number: int, lang: str) -> str:
    try:
        return Check(number).label(lang)
    except ValueError:
        return str(number)


def history_lines(case: str, status: str | None, due: dict[str, Any], events: Any, lang: str,
                  names: dict[str, str], units: dict[str, str], *,
                  judged: bool = True) -> list[str]:
    """A case's events as a readable history (``case history``, ``verify-bundle --show``):
    names with ids, times in Beijing time and labelled so, each event's verdict, and the
    title of every failed check."""
    f = labeller("field", lang)
    zh = lang == "zh"
    lines = [f"{f('case')} {case}    {f('status')}: {label('status', status, lang)}"]
    deadlines = [f"{label('deadline', k, lang)} {v.isoformat()}" for k, v in due.items()
                 if v is not None]
    if deadlines:
        lines.append(f"{f('deadlines')}: " + " · ".join(deadlines))
    tz = "（北京时间）" if zh else " (Beijing time)"
    rows = []
    for e in events:
        checks = sorted({c for c, _ in e.failures})
        verdict = ("✓" if judged else "?") if not e.failures else \
            "✗ " + ",".join(str(c) for c in checks)
        rows.append([e.seq, beijing(e.at), beijing(e.recorded_at)
                     + _lag(e.recorded_lag_seconds, lang), label("action", e.type, lang),
                     named(e.actor, names), label("role", e.role, lang) if e.role else "—",
                     named(e.unit, units), verdict, _summarize(e.type, e.data, lang)])
    lines.append(table([f("seq"), f("at") + tz, f("recorded_at") + tz, f("type"), f("actor"),
                        f("role"), f("unit"), f("verdict"), f("details")], rows))
    lines += [f"  #{e.seq} ({f('check')} {number} {check_title(number, lang)}): {reason}"
              for e in events for number, reason in e.failures]
    return lines


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
@lang_option
def verify_cmd(since: str | None, log_key: str | None, admin_key: str | None,
               workers: int | None, witnesses: tuple[str, ...], quorum: int | None,
               trust_policy: str | None, witnessed_files: tuple[str, ...], fmt: str,
               lang: str) -> Report:
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
    verdict = VERDICT[lang, report.ok]
    root = report.checkpoint_root[:16] + "…" if report.checkpoint_root else "—"
    zh = lang == "zh"
    lines = [f"verify: {verdict} — {report.events} 个事件，{report.streams} 个流；最新检查点 "
             f"大小 {report.checkpoint_size}，根 {root}" if zh else
             f"verify: {verdict} — {report.events} events in {report.streams} streams; "
             f"latest checkpoint size {report.checkpoint_size}, root {root}"]
    if report.kept_checkpoint and report.kept_checkpoint.get("consistent"):
        size = report.kept_checkpoint["size"]
        lines.append(f"与保存的检查点（大小 {size}）一致" if zh else
                     f"consistent with the kept checkpoint of size {size}")
    lines += witnessed_lines(report.witnessed)
    lines += failure_lines(report.failures, CHECK_NAMES, lambda f: (
        f"日志位置 {f.position}，" if zh else f"position {f.position}, ") + (
        f"{f.stream}#{f.seq}" if f.stream else ("日志" if zh else "log")), lang=lang)
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
@click.option("--dry-run", is_flag=True,
              help="Check every line (schema, transitions, authorization, keys) and say what "
                   "would be written; write nothing.")
@renders(*RESULT)
@lang_option
def import_cmd(file: str, batch_size: int, migration: str | None, dry_run: bool,
               fmt: str, lang: str) -> Report:
    """Import commands from a JSON Lines file, all validated before anything is written.

    Each line is {"id", "action", "case", "actor", "at", "data"} and is signed with the named
    actor's key from the keystore; `xinfang schema` prints the JSON Schema. Lines whose id is
    already recorded are skipped, so an interrupted import can simply be run again. A file
    without any command is reported as nothing to import (exit 0).

    Every bad line (up to 50) is reported with its line number, and nothing is written.
    Times without an offset are Beijing time; a date alone is 00:00 that day. A documented
    sample file: docs/examples/office.jsonl.

    \b
    Examples:
      xinfang import year-2025.jsonl --dry-run
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
                                 migration=migration, dry_run=dry_run)
        finally:
            for bar in bars.values():
                bar.__exit__(None, None, None)
    summary: dict[str, Any] = {
        "lines": result.lines, "written": result.written, "skipped": result.skipped,
        "first_position": result.first_position, "last_position": result.last_position,
        **({"migration": result.migration} if result.migration else {})}
    zh = lang == "zh"
    if result.empty:
        return Report(summary, lang=lang, text=f"无可导入内容：{file} 没有任何命令" if zh else
                      f"nothing to import: {file} holds no command")
    if result.dry_run:
        would = result.lines - result.skipped
        summary.update({"dry_run": True, "would_write": would, "actions": result.actions,
                        "cases": list(result.cases)})
        actions = ("、" if zh else ", ").join(
            f"{label('action', name, lang)} {count}" for name, count in result.actions.items())
        return Report(summary, lang=lang, text=(
            f"试运行：{result.lines} 行全部有效；将写入 {would} 个事件（{actions or '无'}），"
            f"涉及 {len(result.cases)} 件，{result.skipped} 行已记录过；未写入任何内容" if zh else
            f"dry run: all {result.lines} lines are valid; would write {would} events "
            f"({actions or 'none'}) on {len(result.cases)} cases, {result.skipped} already "
            "recorded; nothing was written"))
    if zh:
        batch = f"（迁移补录批次 {result.migration}）" if result.migration else ""
        return Report(summary, lang=lang, text=f"已导入 {result.written}/{result.lines} 行{batch}"
                      f"（{result.skipped} 行已记录过，跳过）")
    batch = f" as migration {result.migration}" if result.migration else ""
    return Report(summary, lang=lang, text=f"imported {result.written} of {result.lines} lines"
                  f"{batch} ({result.skipped} already recorded)")


def register_read_commands(cli: click.Group) -> None:
    from .case_commands import case_group

    case_group.add_command(history_cmd)
    cli.add_command(verify_cmd)
    cli.add_command(import_cmd)
