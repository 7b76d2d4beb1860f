"""`xinfang report accountability`: a thin shell over ``projections.accountability``."""

from __future__ import annotations

import click

from projections import Report, accountability_report, accountability_sheets, organization

from .context import lang_option, parse_as_of, settings
from .output import REPORT, renders, sheets_text
from .report_commands import as_of_option, report_group


@click.command("accountability")
@as_of_option
@click.option("--unit", metavar="UNIT",
              help="Only cases handled by this unit (assigned to it at any time by --as-of).")
@click.option("--integrity/--no-integrity", default=True, show_default=True,
              help="Verify the whole ledger for the `integrity` trigger (--no-integrity skips "
                   "it on a huge ledger; `xinfang verify` can run separately).")
@renders(*REPORT)
@lang_option
def accountability_cmd(as_of: str | None, unit: str | None, integrity: bool,
                       lang: str) -> Report:
    """The accountability report (倒查): which cases trigger a reverse-check and why, who was
    responsible (from the chain of custody), and the events that prove it; the inspectors'
    reverse-checks; counts per responsible actor and unit.

    Deadlines, open and closed are judged at the end of --as-of. Triggers: late_acceptance,
    late_notice, late_reply, overdue_open, no_feedback, supervision_missed, unsigned_closure,
    dissatisfied_closure, reflow, bounced, overturned, late_review_decision, late_entry (补录:
    recorded long after its business time, or after a deadline it claims to have met),
    integrity (docs/accountability.md). Imports marked `--migration NAME` are listed once per
    batch (migrations) instead of a late_entry per event. Evidence is STREAM#SEQ with the
    event hash (JSON): check it with `xinfang case history STREAM` or an exported bundle.

    \b
    Examples:
      xinfang report accountability --as-of 2025-12-31
      xinfang report accountability --as-of 2025-12-31 --format json --no-integrity
      xinfang report accountability --unit county-02 --format xlsx --out 倒查.xlsx
      xinfang report accountability --lang en --format csv --out accountability.csv
    """
    day = parse_as_of(as_of)
    with settings().store() as store:
        report = accountability_report(store, day, unit=unit, integrity=integrity)
        org = (organization(store) or {}).get("name")   # heads the printed report
    sheets = accountability_sheets(report, lang, organization=org)
    # The chain of custody is for files: the terminal shows the triggers and the counts.
    text = sheets_text(accountability_sheets(report, lang, with_custody=False))
    return Report(report, tuple(sheets), text=text, title=sheets[0].title, lang=lang)


def register_accountability_commands(cli: click.Group) -> None:
    """Add ``report accountability`` to the ``report`` group (adding the group if needed)."""
    report_group.add_command(accountability_cmd)
    if "report" not in cli.commands:
        cli.add_command(report_group)
