"""`xinfang demo`: a realistic year on a fresh embedded ledger, then a guided tour."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from ledger import (
    SHANGHAI,
    Cosigner,
    InputError,
    Keystore,
    Ledger,
    WitnessPolicy,
    cosign_latest,
    cosigned_note,
    verify_ledger,
)
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
from .witness_commands import VKEY_FILE, create_witness_keys, log_key_option

ORIGIN = "demo.xx-city-psb.example/ledger"


@dataclass(frozen=True)
class DemoWitness:
    """One of the demo's two witnesses (docs/witness.md, "Who should run one")."""

    key: str          # its directory under DIR/witnesses/
    name: str         # its cosignature key name
    zh: str
    en: str
    port: int         # where the printed `witness serve` line listens (the demo uses any port)

    def label(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


WITNESSES = (
    DemoWitness("jjjc", "jjjc.demo.xx-city-psb.example/witness", "纪检监察室",
                "discipline inspection office (纪检监察室)", 7381),
    DemoWitness("sjxfc", "sjxfc.demo.xx-city-psb.example/witness", "市局信访处",
                "city bureau petition office (市局信访处)", 7382),
)
QUORUM = 2


@dataclass
class Witnessed:
    """What the demo's witnesses did: the policy that trusts them and the cosigned note."""

    policy: WitnessPolicy
    note: str


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
@click.option("--no-witnesses", "no_witnesses", is_flag=True,
              help="Skip the two local witnesses (faster; no cosigned checkpoint).")
@lang_option
@handle_errors
def demo_cmd(directory: str, seed: int, cases: int, force: bool, no_witnesses: bool,
             lang: str) -> None:
    """Build a year of petition work for a city bureau, have two local witnesses cosign its
    checkpoint, verify it, and show the reports.

    The ledger is DIR/ledger.db, its keys DIR/keys, the witnesses' keys and state
    DIR/witnesses/; the tour ends with commands to try.

    \b
    Example:
      xinfang demo --dir ./xinfang-demo --seed 2025
    """
    root = Path(directory)
    db, keys, witness_dir = root / "ledger.db", root / "keys", root / "witnesses"
    if db.exists() or keys.exists() or witness_dir.exists():
        if not force:
            raise InputError(f"{root} already holds a demo ledger",
                             "Pass --force to replace it, or choose another --dir.")
        db.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        shutil.rmtree(keys, ignore_errors=True)
        shutil.rmtree(witness_dir, ignore_errors=True)
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
        # The witnesses serve from threads of this process and stop when this block ends,
        # whatever happens in it (their keys and state stay in DIR/witnesses/).
        with ExitStack() as running:
            witnessed = None if no_witnesses else _witness(running, led, witness_dir, keys,
                                                           lang)
            # under the witness policy, fetching from the witnesses as an inspector would
            report = verify_ledger(led.store,
                                   witness_policy=witnessed.policy if witnessed else None)
        _tour(led, scenario, report, url, root, witnessed, written, len(receipts), lang)
    if not report.ok:
        sys.exit(1)


def _witness(running: ExitStack, led: Ledger, witness_dir: Path, keys: Path,
             lang: str) -> Witnessed:
    """Make the two witnesses (as `xinfang witness init` does), serve them on loopback ports
    of this process, and have them cosign the latest checkpoint (stored with it, as
    `xinfang checkpoint --witness … --quorum 2` does)."""
    from server import Witness, create_app, run_in_background

    origin, log_key = log_key_option(f"{ORIGIN}={keys / 'log.pub'}")
    cosigners, servers = [], []
    for spec in WITNESSES:
        keystore = Keystore(witness_dir / spec.key, os.environ.get("XINFANG_PASSPHRASE"))
        _, signer, _ = create_witness_keys(keystore, spec.name)
        witness = Witness(spec.name, signer, {origin: [log_key]}, keystore.path / "state.db")
        server = running.enter_context(run_in_background(create_app(witness)))
        servers.append(server)
        cosigners.append(Cosigner(signer.public, spec.name, server.url))
    for server in servers:   # on exit, all are told to stop before each is waited for
        running.callback(server.request_stop)
    outcome = cosign_latest(led.store, led.checkpoint(), cosigners, QUORUM)
    if not outcome.ok:
        raise outcome.error()
    policy = WitnessPolicy(tuple(cosigners), QUORUM,
                           labels=tuple(spec.label(lang) for spec in WITNESSES))
    return Witnessed(policy, cosigned_note(led.store, outcome.note))


def _reports(led: Ledger, year: int, lang: str, verified: Any) -> None:
    """The year's statistics in the seed reports' phrasing, the supervision totals and the
    reverse-check triggers (reusing the verification just run)."""
    zh = lang == "zh"
    end = date(year, 12, 31)
    stats = statistics(led.store, date(year, 1, 1), end, end)
    click.echo("\n" + (f"{year}年信访工作统计（按 {end} 判断）" if zh else
                       f"Petition statistics {year} (judged as of {end})") + ":")
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


def _tour(led: Ledger, scenario: Any, report: Any, url: str, root: Path,
          witnessed: Witnessed | None, seconds: float, events: int, lang: str) -> None:
    zh = lang == "zh"
    staff = scenario.staff
    click.echo(("演示台账已生成" if zh else "Demo ledger built") +
               f": {url} ({len(staff.units)} units, {len(staff.actors) + 1} actors, "
               f"{scenario.cases} cases, {report.events} events, {seconds:.1f}s)")
    if witnessed is not None:
        _witnessed_checkpoint(witnessed, lang)
    verdict = ("通过" if zh else "PASS") if report.ok else ("不通过" if zh else "FAIL")
    click.echo(f"verify: {verdict} — {report.events} events, {report.streams} streams, "
               f"checkpoint {report.checkpoint_size}")
    if witnessed is not None:
        _witnessed_verdict(report.witnessed, lang)
    end = date(scenario.year, 12, 31)
    click.echo(f"\n以下数字按 {end}（演示年度最后一天）判断；"
               f"报表命令加 --as-of {end} 得到同样的数字。" if zh else
               f"\nThe figures below are judged as of {end} (the demo year's last day); "
               f"report commands give the same figures with --as-of {end}.")
    _reports(led, scenario.year, lang, report)
    _try_next(scenario, url, root, witnessed is not None, lang)
    from server import demo_web_lines  # the web interface (issue 15): serve, then a browser
    click.echo("\n" + "\n".join(demo_web_lines(root, url, program(), lang)))


def _witnessed_checkpoint(witnessed: Witnessed, lang: str) -> None:
    """The cosigned checkpoint, with the witnesses its cosignature lines are by."""
    zh = lang == "zh"
    names = "、".join(witnessed.policy.labels) if zh else " and ".join(witnessed.policy.labels)
    click.echo(("见证" if zh else "Witnesses") + f": {names} " +
               ("联署了最新检查点（C2SP cosignature/v1）" if zh else
                "cosigned the latest checkpoint (C2SP cosignature/v1)") + ":")
    for line in witnessed.note.rstrip("\n").split("\n"):
        click.echo(f"    {line}" if line else "")
    click.echo("  " + ("签名行" if zh else "Signature lines") + ":")
    for name, who in [(ORIGIN, "日志密钥" if zh else "the log key"),
                      *((spec.name, spec.label(lang)) for spec in WITNESSES)]:
        click.echo(f"    — {name} = {who}")


def _witnessed_verdict(summary: dict[str, Any] | None, lang: str) -> None:
    zh = lang == "zh"
    if summary is None or summary.get("size") is None:
        click.echo("  " + ("见证：没有达到法定数的联署检查点" if zh else
                           "witnessed: no checkpoint has a quorum of cosignatures"))
        return
    cosigners = ("、" if zh else ", ").join(summary["cosigners"])
    click.echo(f"  见证策略（法定数 {summary['quorum']}/{summary['witnesses']}）：通过 — "
               f"检查点 {summary['size']} 由 {cosigners} 联署，"
               f"其后 {summary['unwitnessed']} 个事件尚未见证" if zh else
               f"  witness policy (quorum {summary['quorum']} of {summary['witnesses']}): PASS "
               f"— checkpoint {summary['size']} cosigned by {cosigners}; "
               f"{summary['unwitnessed']} later event(s) not yet witnessed")


def program() -> str:
    """How to run this xinfang as printed: ``xinfang`` when that name on PATH is the entry
    point running, else the entry point's absolute path (e.g. .venv/bin/xinfang when the
    venv is not activated)."""
    running = Path(sys.argv[0])
    if running.stem != "xinfang":   # e.g. under pytest: this interpreter's entry point
        running = Path(sys.executable).with_name("xinfang")
        if not running.exists():
            return "xinfang"
    running = running.absolute()
    found = shutil.which("xinfang")
    try:
        if found and os.path.samefile(found, running):
            return "xinfang"
    except OSError:
        pass
    return shlex.quote(str(running))


def _try_next(scenario: Any, url: str, root: Path, witnesses: bool, lang: str) -> None:
    """Commands that run as printed, from the directory the demo ran in."""
    zh = lang == "zh"
    q = shlex.quote
    keys = root / "keys"
    x = program()
    xl = f"{x} --ledger {q(url)} --keystore {q(str(keys))}"
    end = f"{scenario.year}-12-31"
    case = next(iter(scenario.problems.get("late_reply", [])), "XF-2025-000001")
    out = {name: q(str(root / name)) for name in ("stats.xlsx", "cp.txt", "case.bundle")}
    wdir = {spec.key: root / "witnesses" / spec.key for spec in WITNESSES}
    lines = [
        f"{xl} case history {case}",
        f"{xl} report supervision --as-of {end}",
        f"{xl} report statistics --from {scenario.year}-01-01 --to {end} --as-of {end} "
        f"--format xlsx --out {out['stats.xlsx']}",
        f"{xl} report accountability --as-of {end}",
        f"{xl} checkpoint > {out['cp.txt']} && {xl} verify --since {out['cp.txt']}",
    ]
    if witnesses:   # offline: the cosignatures stored with the checkpoint
        lines.append(f"{xl} verify " + " ".join(
            f"--witness {q(str(wdir[spec.key] / VKEY_FILE))}" for spec in WITNESSES) +
            f" --quorum {QUORUM}")
    lines.append(f"{xl} export {case} --out {out['case.bundle']} && {x} verify-bundle "
                 f"{out['case.bundle']} --log-key {q(str(keys / 'log.pub'))} "
                 f"--admin-key {q(str(keys / 'admin.pub'))}")
    click.echo("\n" + ("接下来可以试试（在本目录下运行）" if zh else
                       "What to try next (from this directory)") + ":")
    for line in lines:
        click.echo(f"  {line}")
    if not witnesses:
        return
    click.echo("\n" + ("再次启动两个见证（各用一个终端），然后让 verify 向它们取联署的检查点"
                       if zh else
                       "To run the two witnesses again (one terminal each), then verify "
                       "with the checkpoints they cosigned") + ":")
    for spec in WITNESSES:
        click.echo(f"  {x} witness serve --keystore {q(str(wdir[spec.key]))} --state "
                   f"{q(str(wdir[spec.key] / 'state.db'))} --listen 127.0.0.1:{spec.port} "
                   f"--log {q(ORIGIN + '=' + str(keys / 'log.pub'))}")
    click.echo(f"  {xl} verify " + " ".join(
        f"--witness {q(f'http://127.0.0.1:{spec.port}=' + str(wdir[spec.key] / 'witness.pub'))}"
        for spec in WITNESSES) + f" --quorum {QUORUM}")
