"""xinfang-ledger read side: the ``rm_*`` read model folded from the checked log, and the reports.

This module is the read side's public API (the command line and the coming server import only
from here; docs/read-side.md describes the modules behind it):

The read model
    :func:`catch_up` (apply what was written since), :func:`rebuild` (replay the whole
    ledger), :func:`status` (where the read model stands).
Reports (each a JSON-ready dict whose keys the CLI contract fixes)
    :func:`supervision` (督办台账), :func:`statistics` (信访工作统计; :data:`COMPARE_MODES`),
    :func:`accountability_report` (倒查), :func:`statistics_summary` (the year in sentences).
Layout: one labelled table form every output format renders
    :class:`Sheet` of typed :data:`Cell` values; :class:`Report`, what a command shows
    (document, sheets, terminal text); the sheets of each report:
    :func:`supervision_sheets`, :func:`statistics_sheets`, :func:`accountability_sheets`,
    :func:`closure_sheets`, :func:`closure_record_sheets`,
    :func:`case_list_sheets`; :func:`cell_text`,
    :func:`display_width`; :func:`label` (codes in Chinese or English), :func:`labeller`;
    :func:`code_of` and :func:`code_labels` (a code from its code or label; the pairs for help).
    :func:`history_sheets` and :func:`history_text` (a case's history in people's terms:
    :func:`event_details`, :func:`named`, :func:`beijing_time`); :func:`wrap_text` and
    :data:`TEXT_WIDTH` (text within 120 columns).
Files
    :func:`write_csv` (UTF-8 with a byte-order mark, :data:`CSV_ENCODING`), :func:`write_xlsx`,
    :func:`write_pdf` (print-ready, an embedded CJK font; :func:`font_advice`).
"""

from projections.accountability import accountability_report, accountability_sheets
from projections.export import CSV_ENCODING, write_csv, write_xlsx
from projections.labels import code_labels, code_of, label
from projections.listing import STATUSES, case_list, case_list_sheets, directory_names
from projections.pdf import PdfResult, font_advice, write_pdf
from projections.reports import COMPARE_MODES, organization, statistics, supervision
from projections.runner import catch_up, rebuild, status
from projections.sheets import (
    TEXT_WIDTH,
    Cell,
    Page,
    Ratio,
    Report,
    Sheet,
    beijing_time,
    cell_text,
    closure_record_sheets,
    closure_sheets,
    display_width,
    event_details,
    history_sheets,
    history_text,
    labeller,
    named,
    reason_text,
    statistics_sheets,
    supervision_sheets,
    wrap_balanced,
    wrap_text,
)
from projections.summary import statistics_summary

__all__ = [
    "COMPARE_MODES", "CSV_ENCODING", "STATUSES", "TEXT_WIDTH", "Cell", "Page", "PdfResult",
    "Ratio", "Report", "Sheet", "accountability_report", "accountability_sheets", "beijing_time",
    "case_list", "case_list_sheets", "catch_up", "cell_text", "closure_record_sheets",
    "closure_sheets", "code_labels", "code_of", "directory_names", "display_width",
    "event_details", "font_advice", "history_sheets", "history_text", "label", "labeller", "named",
    "organization", "reason_text", "rebuild", "statistics", "statistics_sheets",
    "statistics_summary", "status", "supervision", "supervision_sheets", "wrap_balanced",
    "wrap_text", "write_csv", "write_pdf", "write_xlsx",
]
