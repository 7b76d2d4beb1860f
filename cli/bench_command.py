"""`xinfang bench`: a thin shell over the ``bench`` library (it knows nothing of the CLI)."""

from __future__ import annotations

import os
from typing import Any

import click

from bench import TARGETS, meets, run_bench
from projections import Report

from .context import lang_option
from .output import RESULT, renders, table

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@click.command("bench")
@click.option("--quick", is_flag=True, help="Smaller sizes (under two minutes per backend).")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["sqlite", "postgresql"]),
              help="Backend(s) to measure (default: both).")
@click.option("--pg-url", default=lambda: os.environ.get("XINFANG_BENCH_PG", DEFAULT_PG),
              show_default=DEFAULT_PG, help="PostgreSQL database for scratch schemas.")
@renders(*RESULT)
@lang_option
def bench_cmd(quick: bool, backends: tuple[str, ...], pg_url: str, lang: str) -> Report:
    """Measure the performance figures as ratios against baselines taken in the same run.

    \b
    Examples:
      xinfang bench --quick
      xinfang bench --backend sqlite --format json > bench.json
    """
    results: dict[str, dict[str, Any]] = {}
    for backend in backends or ("sqlite", "postgresql"):
        click.echo(f"[{backend}] measuring ({'quick' if quick else 'full'})…", err=True)
        results[backend] = run_bench(backend, quick=quick, pg_url=pg_url,
                                     progress=lambda m: click.echo(f"  {m}", err=True))
    # One backend's figures stand alone in the JSON; several are keyed by backend.
    document = results if len(results) > 1 else next(iter(results.values()))
    return Report(document, lang=lang, text="\n".join(_text(backend, figures, lang)
                                                      for backend, figures in results.items()))


def _text(backend: str, figures: dict[str, Any], lang: str = "zh") -> str:
    zh = lang == "zh"
    met = {True: "是", False: "否", None: "不适用"} if zh else {True: "yes", False: "NO",
                                                               None: "n/a"}
    rows = []
    for name, (op, target) in TARGETS.items():
        value = figures.get(name)
        rows.append([name, "—" if value is None else f"{value:.3f}", f"{op} {target}",
                     met[meets(name, value)]])
    headers = ["指标", "数值", "目标", "达标"] if zh else ["figure", "value", "target", "met"]
    return "\n".join([
        f"\n{backend} ({figures['mode']}, {figures['cores']} cores; sizes {figures['sizes']})",
        table(headers, rows),
        f"raw: single {figures['signed_command_rate']:.0f}/s vs plain "
        f"{figures['plain_single_save_rate']:.0f}/s · bulk {figures['bulk_import_rate']:.0f}/s "
        f"vs plain {figures['plain_batched_save_rate']:.0f}/s · verify "
        f"{figures['verify_rate']:.0f}/s vs Ed25519 "
        f"{figures['raw_ed25519_verify_rate_one_core']:.0f}/s/core"])
