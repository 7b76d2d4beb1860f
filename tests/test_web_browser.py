"""The web interface (issue 15) in a real browser: Playwright driving the system Chromium against
a real `xinfang serve` on a loopback port, over the demo ledger.

enrol a key in the browser → the admin registers it → sign in → filter the list → open a case:
every event ✓; a handler cannot open another unit's case; the print layout (A4 landscape,
repeated headers, page numbers) and the downloads (the same figures as the CLI's); and, last,
one byte of one event flipped in the database: that event ✗ with the right check, the others ✓.

Chromium: /usr/bin/chromium (or XINFANG_CHROMIUM). Without it these tests are skipped, unless
XINFANG_REQUIRE_BROWSER=1 (CI: `.ci/run` installs Debian's chromium), which makes them fail.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from ledger import Envelope, PublicKey, open_store
from server.web import prepare_server_keystore
from tests.tamper import events_table, superuser
from tests.test_server import XINFANG, serve

CHROMIUM = Path(os.environ.get("XINFANG_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
YEAR_END = "2025-12-31"


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"Playwright is not installed ({exc}): pip install -e '.[test]'"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set XINFANG_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = _browser_problem()
    if problem is not None:
        if os.environ.get("XINFANG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"a browser is required (XINFANG_REQUIRE_BROWSER=1): {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}


@dataclass
class Demo:
    root: Path
    url: str
    proc: Any
    port: int

    @property
    def ledger(self) -> str:
        return f"sqlite:///{self.root / 'ledger.db'}"

    def cli(self, *args: str, server: str | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI on the demo ledger; ``server``: as that actor, through the server."""
        where = ["--server", self.url] if server else ["--ledger", self.ledger]
        env = {**_env(), **({"XINFANG_ACTOR": server} if server else {})}
        return subprocess.run([str(XINFANG), *where, "--keystore", str(self.root / "keys"),
                               *args], capture_output=True, text=True, env=env, timeout=300)

    def json(self, *args: str) -> Any:
        done = self.cli(*args, "--format", "json")
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def restart(self) -> None:
        """The same port (the same origin: the browser's keys stay usable)."""
        self.stop()
        self.url, self.proc = serve(self.ledger, self.root / "server-keys", self.root,
                                    "--listen", f"127.0.0.1:{self.port}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("web") / "demo"
    built = subprocess.run([str(XINFANG), "demo", "--dir", str(root)], capture_output=True,
                           text=True, env=_env(), timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "/web/" in built.stdout   # the tour says how to open the web interface
    prepare_server_keystore(root / "keys", root / "server-keys")
    url, proc = serve(f"sqlite:///{root / 'ledger.db'}", root / "server-keys", root)
    running = Demo(root, url, proc, int(url.rsplit(":", 1)[1]))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def inspector(browser: Any, demo: Demo) -> Iterator[Any]:
    """A browser context (its own IndexedDB) where inspector-09 enrolled and signed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{demo.url}/web/enrol")
    page.fill("#make-actor", "inspector-09")
    page.click("#make-key")
    page.wait_for_selector("#made:not([hidden])")
    pem = page.input_value("#pem")
    raw = PublicKey.from_pem(pem.encode()).raw
    assert page.inner_text("#fingerprint") == "SHA256:" + hashlib.sha256(raw).hexdigest()
    assert page.inner_text("#key-id") == PublicKey(raw).key_id
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    # the private key is not extractable, by this page or any other
    assert page.evaluate("""async () => {
        const { getKey } = await import('/web/static/keys.js');
        const record = await getKey('inspector-09');
        try { await crypto.subtle.exportKey('pkcs8', record.privateKey); return 'exported'; }
        catch (e) { return record.privateKey.extractable ? 'extractable' : 'refused'; }
    }""") == "refused"
    # the admin registers it, on the admin's own device, through the server
    public = demo.root / "inspector-09.pub"
    public.write_text(pem)
    added = demo.cli("actor", "add", "inspector-09", "--name", "网页督察", "--unit", "city",
                     "--role", "inspector", "--public-key", str(public), "--as", "admin-01",
                     server="admin-01")
    assert added.returncode == 0, added.stderr
    sign_in(page, demo, "inspector-09")
    assert not errors, errors
    yield page
    context.close()


def sign_in(page: Any, demo: Demo, actor: str) -> None:
    page.goto(f"{demo.url}/web/login")
    page.wait_for_selector(f"input[value='{actor}']")
    page.check(f"input[value='{actor}']")
    page.click("#sign-in")
    page.wait_for_url("**/web/cases")
    assert page.inner_text("#who-actor") == actor


def listed(page: Any) -> list[str]:
    return page.eval_on_selector_all("#case-table tbody tr",
                                     "rows => rows.map(r => r.dataset.case)")


def test_filter_the_list_and_open_a_verified_case(inspector: Any, demo: Demo) -> None:
    page = inspector
    # keyboard: the first Tab reaches the skip link, which moves to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.select_option("#f-unit", "county-01")
    page.select_option("#f-status", "open")
    page.select_option("#f-per", "200")
    page.click("#search")
    page.wait_for_url("**unit=county-01**")
    expected = {c["case"] for c in demo.json("case", "list", "--unit", "county-01",
                                             "--status", "open")["cases"]}
    assert expected and set(listed(page)) == expected
    assert int(page.get_attribute("#found", "data-total") or -1) == len(expected)

    page.select_option("#f-unit", "")
    page.select_option("#f-status", "")
    page.select_option("#f-channel", "mailbox")
    page.click("#search")
    page.wait_for_url("**channel=mailbox**")
    mailbox = listed(page)
    assert len(mailbox) == 22    # the demo year's 局长信箱 petitions (report statistics)

    case = mailbox[-1]
    page.click(f"#case-table a[href$='{case}']")
    page.wait_for_url(f"**/web/cases/{case}")
    history = demo.json("case", "history", case)
    events = page.locator("li.event")
    assert events.count() == len(history["events"]) >= 3
    assert page.eval_on_selector_all("li.event", "l => l.map(e => e.dataset.ok)") == \
        ["true"] * len(history["events"])
    assert page.locator("li.event .verdict.ok").count() == len(history["events"])
    assert page.locator("li.event", has_text="北京时间").count() == len(history["events"])
    assert page.get_attribute("#case-verdict", "data-ok") == "true"
    first = history["events"][0]
    assert first["data"]["summary"] in page.inner_text("#e1")
    # readable at 1280×800 and on a tablet: nothing wider than the window
    for size in ({"width": 1280, "height": 800}, {"width": 820, "height": 1180}):
        page.set_viewport_size(size)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), size
    page.set_viewport_size({"width": 1280, "height": 800})


def test_handler_cannot_open_another_units_case(browser: Any, demo: Demo) -> None:
    actors = demo.json("actor", "list", "--role", "handler")
    officer = next(a for a in actors if a["unit"] == "county-01-s1")
    everything = {c["case"] for c in demo.json("case", "list")["cases"]}
    through_api = demo.cli("case", "list", "--format", "json", server=officer["actor"])
    assert through_api.returncode == 0, through_api.stderr
    theirs = {c["case"] for c in json.loads(through_api.stdout)["cases"]}
    assert theirs and len(theirs) < len(everything) / 4
    elsewhere = min(everything - theirs)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{demo.url}/web/enrol")
        page.set_input_files("#key-file", str(demo.root / "keys" / f"{officer['actor']}.key"))
        assert page.input_value("#load-actor") == officer["actor"]
        page.click("#load-key")
        page.wait_for_selector(f"#load-status:has-text('{officer['actor']}')")
        sign_in(page, demo, officer["actor"])
        page.goto(f"{demo.url}/web/cases?per=200")
        assert set(listed(page)) == theirs      # exactly what the API lets them read
        answer = page.goto(f"{demo.url}/web/cases/{elsewhere}")
        assert answer is not None and answer.status == 403
        assert page.get_attribute("#error-message", "data-status") == "403"
        page.click("#logout")
        page.wait_for_url("**/web/login?m=bye")
        answer = page.goto(f"{demo.url}/web/cases")
        assert "/web/login" in page.url
    finally:
        context.close()


def _cells(book: Any) -> list[list[Any]]:
    return [[list(row) for row in sheet.iter_rows(values_only=True)]
            for sheet in book.worksheets]


def test_print_layout_and_downloads(inspector: Any, demo: Demo, tmp_path: Path) -> None:
    from pypdf import PdfReader

    page = inspector
    page.goto(f"{demo.url}/web/reports/supervision?as_of={YEAR_END}")
    rule = page.evaluate("""() => {
        for (const sheet of document.styleSheets) {
            for (const rule of sheet.cssRules) {
                if (rule instanceof CSSPageRule) return rule.style.size;
            }
        }
        return null;
    }""")
    assert rule is not None and rule.lower() == "a4 landscape"
    page.emulate_media(media="print")
    assert page.is_visible(".print-head") and not page.is_visible("header.top")
    assert page.is_hidden("form.filters")
    pdf = PdfReader(io.BytesIO(page.pdf(prefer_css_page_size=True)))
    page.emulate_media(media="screen")
    assert len(pdf.pages) >= 2
    for sheet in pdf.pages:
        width, height = float(sheet.mediabox.width), float(sheet.mediabox.height)
        assert abs(width - 841.9) < 2 and abs(height - 595.3) < 2   # A4 landscape, points
    first, second = (re.sub(r"\s+", "", sheet.extract_text()) for sheet in pdf.pages[:2])
    assert "信访督办台账" in first and f"第1页共{len(pdf.pages)}页" in first
    assert f"第2页共{len(pdf.pages)}页" in second
    assert "案件编号" in second and "督办机关" in second   # the header row again

    # XLSX and CSV downloads: the CLI's own figures
    page.goto(f"{demo.url}/web/reports/statistics?from=2025-01-01&to={YEAR_END}"
              f"&as_of={YEAR_END}")
    assert page.locator("svg.chart").count() >= 6
    with page.expect_download() as download:
        page.click("#download-xlsx")
    web_xlsx = tmp_path / "web.xlsx"
    download.value.save_as(web_xlsx)
    cli_xlsx = tmp_path / "cli.xlsx"
    made = demo.cli("report", "statistics", "--from", "2025-01-01", "--to", YEAR_END,
                    "--as-of", YEAR_END, "--format", "xlsx", "--out", str(cli_xlsx))
    assert made.returncode == 0, made.stderr
    web_book, cli_book = openpyxl.load_workbook(web_xlsx), openpyxl.load_workbook(cli_xlsx)
    assert web_book.sheetnames == cli_book.sheetnames
    assert _cells(web_book) == _cells(cli_book)
    figures = demo.json("report", "statistics", "--from", "2025-01-01", "--to", YEAR_END,
                        "--as-of", YEAR_END)
    rows = {row[0]: row[1] for row in web_book.worksheets[0].iter_rows(values_only=True)
            if row and isinstance(row[0], str)}
    assert rows["信访总量（件次）"] == figures["total"] == 320
    assert rows["办结回复"] == figures["closed_replied"]
    assert rows["受理"] == figures["accepted"]
    # the month chart counts the same cases: each month is the CLI's month
    march = demo.json("report", "statistics", "--from", "2025-03-01", "--to", "2025-03-31",
                      "--as-of", YEAR_END)
    months = page.locator("svg.chart").nth(3).locator("desc").text_content() or ""
    assert f"2025-03: {march['total']};" in months and march["total"] > 0

    page.goto(f"{demo.url}/web/reports/supervision?as_of={YEAR_END}")
    with page.expect_download() as download:
        page.click("#download-csv")
    web_csv = tmp_path / "web.csv"
    download.value.save_as(web_csv)
    cli_csv = tmp_path / "cli.csv"
    made = demo.cli("report", "supervision", "--as-of", YEAR_END, "--format", "csv",
                    "--out", str(cli_csv))
    assert made.returncode == 0, made.stderr
    assert web_csv.read_bytes() == cli_csv.read_bytes()
    table = list(csv.reader(io.StringIO(web_csv.read_text(encoding="utf-8-sig"))))
    assert any(row and row[0] == "合计" and "72" in row for row in table)


def test_integrity_page_verifies_now(inspector: Any, demo: Demo) -> None:
    page = inspector
    page.goto(f"{demo.url}/web/integrity")
    assert int(page.inner_text("#cp-size")) > 0
    assert page.locator("#witness-table tbody tr").count() == 2    # the demo's two witnesses
    page.click("#verify-now")
    page.wait_for_selector("#verify-verdict", timeout=120_000)
    assert page.get_attribute("#verify-verdict", "data-ok") == "true"
    assert page.get_attribute("#verify-progress", "value") == \
        page.get_attribute("#verify-progress", "max")


def test_a_flipped_byte_shows_on_its_event(inspector: Any, demo: Demo) -> None:
    """Last: it tampers with the demo ledger."""
    # a progress report in the middle of a case: nothing later depends on it, so only it fails
    for entry in demo.json("case", "list", "--unit", "county-01")["cases"]:
        case = entry["case"]
        types = [e["type"] for e in demo.json("case", "history", case)["events"]]
        if "progress" in types[:-1]:
            seq = types.index("progress") + 1
            break
    store = open_store(demo.ledger)
    try:
        record = store.event_at(case, seq)
        assert record is not None
        state = bytearray(record.state)
        at = state.index(Envelope.from_bytes(bytes(state)).signature)
        state[at + 5] ^= 0x01                     # one bit of the signature's byte
        demo.stop()
        with superuser(store) as db:
            db.execute(f"UPDATE {events_table(store)} SET state=? WHERE originator_id=? AND "
                       "originator_version=?", (bytes(state), case, seq))
    finally:
        store.close()
    demo.restart()
    page = inspector
    sign_in(page, demo, "inspector-09")
    page.goto(f"{demo.url}/web/cases/{case}")
    verdicts = page.eval_on_selector_all("li.event", "l => l.map(e => e.dataset.ok)")
    assert verdicts[seq - 1] == "false" and verdicts.count("false") == 1
    assert len(verdicts) > seq
    checks = page.eval_on_selector_all(f"#e{seq} .failures li",
                                       "l => l.map(e => e.dataset.check)")
    assert "2" in checks
    assert "签名无法用所署密钥验证" in page.inner_text(f"#e{seq}")
    assert page.locator("li.event .verdict.ok").count() == len(verdicts) - 1
    assert page.get_attribute("#case-verdict", "data-ok") == "false"
    page.goto(f"{demo.url}/web/integrity")
    page.click("#verify-now")
    page.wait_for_selector("#verify-verdict", timeout=120_000)
    assert page.get_attribute("#verify-verdict", "data-ok") == "false"
    assert page.locator("#verify-failures tr[data-check='2']").count() >= 1
