"""Read commands: case history, verify (and, registered from their modules, the reports)."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from ledger import (
    CHECK_NAMES,
    PublicKey,
    case_history,
    case_status,
    verify_ledger,
)
from projections import (
    Report,
    beijing_time,
    history_sheets,
    history_text,
    label,
    organization,
)
from projections import (
    named as named,
)

from .context import lang_option, settings
from .output import REPORT, RESULT, VERDICT, failure_lines, renders, text_width
from .witness_commands import verifier_options, verifier_trust, witnessed_lines


@click.command("history")
@click.argument("case_no", metavar="CASE")
@renders(*REPORT)
@lang_option
def history_cmd(case_no: str, lang: str) -> Report:
    """A case's full audit trail, every signature and authorization checked.

    Each event with its verdict, its business and recorded time (Beijing time; the gap when it
    was entered late), who did it (name, id, role, unit) and what it says (summary, reply
    text, evidence, findings), people and units by name. Exit 1 if any event fails.

    \b
    Examples:
      xinfang case history XF-2025-000001
      xinfang case history XF-2025-000001 --format json
      xinfang case history XF-2025-000001 --format pdf --out XF-2025-000001.pdf
    """
    with settings().store() as store:
        org = (organization(store) or {}).get("name")
    with settings().open() as led:
        history = case_history(led.view, case_no)
        directory = led.directory()
        names = {a.actor: a.name for a in directory.actors.values()}
        units = {u.unit: u.name for u in directory.units.values()}
    status = case_status(history.state) if history.state else None
    lines = history_lines(history.case, status, history.deadlines, history.events, lang,
                          names, units)
    sheets = history_sheets(history.case, status, history.deadlines, history.events, lang,
                            names, units, organization=org)
    return Report(history.to_json(), tuple(sheets), text="\n".join(lines), lang=lang,
                  title=sheets[0].title, exit_code=0 if history.ok else 1)


def beijing(moment: str) -> str:
    """An ISO time as Beijing time to the minute (recorded times are stored in UTC)."""
    return beijing_time(moment)


def history_lines(case: str, status: str | None, due: dict[str, Any], events: Any, lang: str,
                  names: dict[str, str], units: dict[str, str], *,
                  judged: bool = True) -> list[str]:
    """A case's events as a readable history (``case history``, ``verify-bundle --show``)
    within the terminal's width (at most 120 columns): ``projections.history_text``."""
    return history_text(case, status, due, events, lang, names, units, judged=judged,
                        width=text_width())


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
            result = led.import_file(file, batch_size=batch_size, progress=progress,
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
