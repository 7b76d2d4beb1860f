"""`xinfang demo`: a realistic year on a fresh embedded ledger, then a guided tour."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from ledger import SHANGHAI, InputError, Ledger, verify_ledger
from projections import (
    accountability_report,
    label,
    statistics,
    statistics_summary,
    supervision,
    supervision_sheets,
)

from .context import handle_errors, lang_option
from .output import sheets_text
from .scenario import build_scenario, reverse_check_commands

ORIGIN = "demo.xx-city-psb.example/ledger"


def _progress(label: str) -> Any:
    bars: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if phase not in bars:
            for bar in bars.values():
                bar.render_finish()
            bars[phase] = click.progressbar(length=total, label=f"{label}: {phase}",
                                            file=sys.stderr)
        bars[phase].update(done - bars[phase].pos)

    return update


@click.command("demo")
@click.option("--dir", "directory", default="./xinfang-demo", show_default=True,
              type=click.Path(file_okay=False), help="Where to build the demo ledger.")
@click.option("--seed", default=2025, show_default=True, help="Random seed (same seed, same "
              "year of cases).")
@click.option("--cases", default=320, show_default=True, type=click.IntRange(10, 100000),
              help="How many petitions to register.")
@click.option("--force", is_flag=True, help="Replace an existing demo ledger in --dir.")
@lang_option
@handle_errors
def demo_cmd(directory: str, seed: int, cases: int, force: bool, lang: str) -> None:
    """Build a year of petition work for a city bureau, verify it, and show the reports.

    The ledger is DIR/ledger.db and its keys DIR/keys; the tour ends with commands to try.

    \b
    Example:
      xinfang demo --dir ./xinfang-demo --seed 2025
    """
    root = Path(directory)
    db, keys = root / "ledger.db", root / "keys"
    if db.exists() or keys.exists():
        if not force:
            raise InputError(f"{root} already holds a demo ledger",
                             "Pass --force to replace it, or choose another --dir.")
        db.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        shutil.rmtree(keys, ignore_errors=True)
    started = time.monotonic()
    scenario = build_scenario(seed, cases=cases)
    url = f"sqlite:///{db}"
    # A simulated year written today: marked as one migration batch, as an import of a
    # year of paper records would be, so the report lists it once instead of a late_entry
    # (补录) per event.
    batch = f"demo-{scenario.year}"
    with Ledger.init(url, keys, origin=ORIGIN, admin="admin-01", admin_name="系统管理员",
                     at=datetime(scenario.year, 1, 2, 8, 0, tzinfo=SHANGHAI)) as led:
        receipts = led.execute_many([replace(c, migration=batch) for c in scenario.commands],
                                    progress=_progress("writing the year"))
        led.execute_many([replace(c, migration=batch)
                          for c in reverse_check_commands(led, scenario)])
        written = time.monotonic() - started
        report = verify_ledger(led.store)
        _tour(led, scenario, report, url, keys, written, len(receipts), lang)
    if not report.ok:
        sys.exit(1)


def _reports(led: Ledger, year: int, lang: str, verified: Any) -> None:
    """The year's statistics in the seed reports' phrasing, the supervision totals and the
    reverse-check triggers (reusing the verification just run)."""
    zh = lang == "zh"
    end = date(year, 12, 31)
    stats = statistics(led.store, date(year, 1, 1), end, end)
    click.echo("\n" + (f"{year}年信访工作统计" if zh else f"Petition statistics {year}") + ":")
    for line in statistics_summary(stats, lang):
        click.echo(f"  {line}")
    click.echo()
    click.echo(sheets_text(supervision_sheets(supervision(led.store, end), lang)[-1:]))
    report = accountability_report(led.store, end, verified=verified)
    counts: dict[str, int] = {}
    flagged = [case for case in report["cases"] if case["triggers"]]
    for case in flagged:
        for trigger in case["triggers"]:
            counts[trigger["code"]] = counts.get(trigger["code"], 0) + 1
    click.echo("\n" + ("倒查线索" if zh else "Reverse-check triggers") +
               f": {len(flagged)} " + ("起案件" if zh else "cases") + " — " +
               ("，" if zh else ", ").join(f"{label('trigger', code, lang)} {n}"
                                           for code, n in sorted(counts.items())))
    for batch in report["migrations"]:
        click.echo(("迁移补录批次" if zh else "Migration batch") + f": {batch['name']} — " +
                   (f"{batch['events']}个事件、{batch['cases']}起案件，业务时间"
                    f"{batch['business_from'][:10]}至{batch['business_to'][:10]}，"
                    f"{(batch['recorded_to'] or '?')[:10]}记录" if zh else
                    f"{batch['events']} events, {batch['cases']} cases, business time "
                    f"{batch['business_from'][:10]} to {batch['business_to'][:10]}, "
                    f"recorded {(batch['recorded_to'] or '?')[:10]}"))


def _tour(led: Ledger, scenario: Any, report: Any, url: str, keys: Path, seconds: float,
          events: int, lang: str) -> None:
    zh = lang == "zh"
    staff = scenario.staff
    click.echo(("演示台账已生成" if zh else "Demo ledger built") +
               f": {url} ({len(staff.units)} units, {len(staff.actors) + 1} actors, "
               f"{scenario.cases} cases, {report.events} events, {seconds:.1f}s)")
    verdict = ("通过" if zh else "PASS") if report.ok else ("不通过" if zh else "FAIL")
    click.echo(f"verify: {verdict} — {report.events} events, {report.streams} streams, "
               f"checkpoint {report.checkpoint_size}")
    _reports(led, scenario.year, lang, report)
    case = next(iter(scenario.problems.get("late_reply", [])), "XF-2025-000001")
    env = f"--ledger {url} --keystore {keys}"
    click.echo("\n" + ("接下来可以试试" if zh else "What to try next") + ":")
    for line in (
        f"xinfang {env} case history {case}",
        f"xinfang {env} report supervision --as-of {scenario.year}-12-31",
        f"xinfang {env} report statistics --from {scenario.year}-01-01 "
        f"--to {scenario.year}-12-31 --format xlsx --out stats.xlsx",
        f"xinfang {env} report accountability --as-of {scenario.year}-12-31",
        f"xinfang {env} checkpoint > cp.txt && xinfang {env} verify --since cp.txt",
        f"xinfang {env} export {case} --out case.bundle && xinfang verify-bundle case.bundle "
        f"--log-key {keys}/log.pub --admin-key {keys}/admin.pub",
    ):
        click.echo(f"  {line}")
