"""The `xinfang bench` command."""

from __future__ import annotations

import os
import sys

import click

from cli.output import emit_json, table

from .runner import TARGETS, meets, run_bench


@click.command("bench")
@click.option("--quick", is_flag=True, help="Smaller sizes (under two minutes per backend).")
@click.option("--backend", "backends", multiple=True, type=click.Choice(["sqlite", "postgresql"]),
              help="Backend(s) to measure (default: both).")
@click.option("--pg-url", default=lambda: os.environ.get(
    "XINFANG_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"), show_default=
    "postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL database for scratch schemas.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def bench_cmd(quick: bool, backends: tuple[str, ...], pg_url: str, fmt: str) -> None:
    """Measure the performance figures as ratios against baselines taken in the same run.

    \b
    Examples:
      xinfang bench --quick
      xinfang bench --backend sqlite --format json > bench.json
    """
    results = {}
    for backend in backends or ("sqlite", "postgresql"):
        click.echo(f"[{backend}] measuring ({'quick' if quick else 'full'})…", err=True)
        results[backend] = run_bench(backend, quick=quick, pg_url=pg_url,
                                     progress=lambda m: click.echo(f"  {m}", err=True))
    if fmt == "json":
        emit_json(results if len(results) > 1 else next(iter(results.values())))
        return
    for backend, figures in results.items():
        rows = []
        for name, (op, target) in TARGETS.items():
            value = figures.get(name)
            ok = meets(name, value)
            rows.append([name, "—" if value is None else f"{value:.3f}", f"{op} {target}",
                         {True: "yes", False: "NO", None: "n/a"}[ok]])
        click.echo(f"\n{backend} ({figures['mode']}, {figures['cores']} cores; sizes "
                   f"{figures['sizes']})")
        click.echo(table(["figure", "value", "target", "met"], rows))
        click.echo(f"raw: single {figures['signed_command_rate']:.0f}/s vs plain "
                   f"{figures['plain_single_save_rate']:.0f}/s · bulk "
                   f"{figures['bulk_import_rate']:.0f}/s vs plain "
                   f"{figures['plain_batched_save_rate']:.0f}/s · verify "
                   f"{figures['verify_rate']:.0f}/s vs Ed25519 "
                   f"{figures['raw_ed25519_verify_rate_one_core']:.0f}/s/core")
    sys.stdout.flush()
