# ruff: noqa: F811 - pytest fixtures imported from tests/test_web_browser.py
"""Doing the work in the browser (issue 16): Playwright driving the system Chromium against a
real `xinfang serve` over the demo ledger (the fixtures of tests/test_web_browser.py).

A handler loads their key file, opens their case, fills the progress form generated from the
action registry, checks the statement the page decoded from the server's canonical bytes and
signs it in the browser: the event is in the ledger, signed by them, and the receipt is shown
and kept in the browser. A tampered prepared statement (the server's bytes differing from the
form) is refused by the page before signing; a refused action (a closed case, a wrong role)
shows the server's reason; and in both cases nothing is written.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from ledger import action_catalogue
from tests.test_web_browser import Demo, browser, demo, sign_in  # noqa: F401 - fixtures

OFFICER = "officer-04"     # a handler of county-01 in the demo


def events(demo: Demo) -> int:
    with sqlite3.connect(demo.root / "ledger.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM stored_events").fetchone()
    return int(count)


def cases_of(demo: Demo, status: str) -> list[str]:
    found = demo.json("case", "list", "--handler", OFFICER, "--status", status)["cases"]
    return sorted(c["case"] for c in found)


@pytest.fixture(scope="module")
def officer(browser: Any, demo: Demo) -> Iterator[Any]:
    """A browser context where the handler loaded their key file and signed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{demo.url}/web/enrol")
    page.set_input_files("#key-file", str(demo.root / "keys" / f"{OFFICER}.key"))
    page.click("#load-key")
    page.wait_for_selector(f"#load-status:has-text('{OFFICER}')")
    sign_in(page, demo, OFFICER)
    yield page
    assert not errors, errors
    context.close()


def _open_form(page: Any, demo: Demo, case: str, action: str) -> None:
    answer = page.goto(f"{demo.url}/web/cases/{case}")
    assert answer is not None and answer.status == 200, page.inner_text("main")[:500]
    assert page.locator(f"#action-{action}").count() == 1, page.inner_text("#work")[:800]
    if not page.eval_on_selector(f"#action-{action}", "d => d.open"):
        page.click(f"#action-{action} summary")


def test_a_handler_signs_progress_and_keeps_the_receipt(officer: Any, demo: Demo) -> None:
    page = officer
    case = cases_of(demo, "open")[0]
    before = len(demo.json("case", "history", case)["events"])
    _open_form(page, demo, case, "progress")
    # only the actions the handler's role may take, labelled from the registry
    shown = set(page.eval_on_selector_all("form.work-form", "f => f.map(x => x.dataset.action)"))
    assert {"progress", "reply", "attest"} <= shown
    assert not shown & {"close", "accept", "assign", "register", "supervise", "consent"}
    label = next(a["label"]["zh"] for a in action_catalogue() if a["name"] == "progress")
    assert page.inner_text("#action-progress summary").startswith(label)
    page.fill("#f-progress-note", "网页办理：已电话联系信访人<b>")
    page.click("#form-progress button.prepare")
    page.wait_for_selector("#review:not([hidden]), #work-status.error")
    assert page.is_visible("#review"), page.inner_text("#work-status")
    table = page.inner_text("#review-table")
    assert "网页办理：已电话联系信访人<b>" in table and case in table and OFFICER in table
    digest = page.inner_text("#review-hash")
    assert len(digest) == 64 and int(digest, 16) >= 0
    page.click("#sign-submit")
    page.wait_for_selector("#receipt:not([hidden])")
    position = int(page.inner_text("#receipt-position"))
    history = demo.json("case", "history", case)["events"]
    assert len(history) == before + 1
    last = history[-1]
    assert last["type"] == "progress" and last["actor"] == OFFICER
    assert last["data"]["note"] == "网页办理：已电话联系信访人<b>"
    kept = page.evaluate("""async () => {
        const { keptReceipts } = await import('/web/static/sign.js');
        return keptReceipts();
    }""")
    assert [r["position"] for r in kept if r["case"] == case] == [position]
    assert kept[0]["proof"] is not None and kept[0]["checkpoint"].count("\n") >= 3
    # the page after reloading shows the new event, ✓
    page.click("#reload")
    assert page.locator("li.event").count() == before + 1
    assert page.locator("li.event .verdict.ok").count() == before + 1


def test_a_tampered_prepared_statement_is_refused_before_signing(officer: Any,
                                                                 demo: Demo) -> None:
    page = officer
    case = cases_of(demo, "open")[0]
    written = events(demo)
    submits: list[str] = []
    page.on("request", lambda r: submits.append(r.url) if "/work/submit" in r.url else None)

    def tamper(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        signed = base64.b64decode(body["signed"])
        changed = signed.replace("信访人已同意".encode(), "信访人已撤回".encode())
        assert changed != signed and len(changed) == len(signed)
        body["signed"] = base64.b64encode(changed).decode()
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/web/work/prepare", tamper)
    try:
        _open_form(page, demo, case, "progress")
        page.fill("#f-progress-note", "信访人已同意调解")
        page.click("#form-progress button.prepare")
        page.wait_for_selector("#work-status.error")
        message = page.inner_text("#work-status")
        assert "拒绝签名" in message and "data.note" in message and "未签名" in message
        assert page.is_hidden("#review")
    finally:
        page.unroute("**/web/work/prepare")
    assert submits == [] and events(demo) == written


def test_refused_actions_show_the_reason_and_write_nothing(officer: Any, demo: Demo) -> None:
    page = officer
    closed = cases_of(demo, "closed")[0]
    written = events(demo)
    _open_form(page, demo, closed, "progress")
    page.fill("#f-progress-note", "结案后的进展")
    page.click("#form-progress button.prepare")
    page.wait_for_selector("#work-status.error")
    message = page.inner_text("#work-status")
    assert message.startswith("已拒绝：") and "未签名" in message
    assert f"{closed}: the case is closed; reopen it first" in message, message
    assert page.is_hidden("#review")
    # a wrong role: the page offers no closing to a handler, and the server refuses it anyway
    assert page.locator("#form-close").count() == 0
    answer = page.evaluate("""async (c) => {
        const r = await fetch('/web/work/prepare', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({action: 'close', case: c, at: '2025-12-01T10:00:00+08:00',
                                  data: {}, cmd: 'web-wrong-role-1'})});
        return [r.status, await r.json()];
    }""", cases_of(demo, "open")[0])
    assert answer[0] == 403 and OFFICER in answer[1]["error"], answer
    assert events(demo) == written


def test_a_late_extension_is_refused_with_its_reason(browser: Any, demo: Demo) -> None:
    late = next(c["case"] for c in demo.json("case", "list", "--status", "open", "--overdue",
                                             "--as-of", "2026-12-31")["cases"])
    written = events(demo)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{demo.url}/web/enrol")
        page.set_input_files("#key-file", str(demo.root / "keys" / "leader-01.key"))
        page.click("#load-key")
        page.wait_for_selector("#load-status:has-text('leader-01')")
        sign_in(page, demo, "leader-01")
        _open_form(page, demo, late, "extend")
        page.fill("#f-extend-days", "30")
        page.fill("#f-extend-reason", "案情复杂")
        page.click("#form-extend button.prepare")
        page.wait_for_selector("#work-status.error")
        message = page.inner_text("#work-status")
        assert message.startswith("已拒绝：") and late in message, message
        assert page.is_hidden("#review")
    finally:
        context.close()
    assert events(demo) == written


def test_my_cases_lists_what_waits_on_me_overdue_first(officer: Any, demo: Demo) -> None:
    page = officer
    page.goto(f"{demo.url}/web/cases")
    page.click("#nav-work")
    page.wait_for_url("**/web/work")
    rows = page.eval_on_selector_all(
        "#queue_mine tbody tr", "rs => rs.map(r => [r.dataset.case, r.dataset.overdue])")
    mine = demo.json("case", "list", "--handler", OFFICER, "--status", "open")["cases"]
    assert {case for case, _ in rows} == {c["case"] for c in mine} and rows
    flags = [overdue == "true" for _, overdue in rows]
    assert flags == sorted(flags, reverse=True)       # overdue first
    due = {c["case"]: c["handling_due"] or "~" for c in mine}
    for group in (True, False):
        days = [due[case] for (case, _), flag in zip(rows, flags, strict=True) if flag == group]
        assert days == sorted(days)
    assert page.locator("#queue_office").count() == 0    # a handler is not the petition office


def test_registration_in_one_screen(browser: Any, demo: Demo) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{demo.url}/web/enrol")
        page.set_input_files("#key-file", str(demo.root / "keys" / "registrar-01.key"))
        page.click("#load-key")
        page.wait_for_selector("#load-status:has-text('registrar-01')")
        sign_in(page, demo, "registrar-01")
        page.click("#nav-register")
        page.wait_for_url("**/web/register")
        petitioner = page.eval_on_selector(
            "#f-register-petitioner-list option", "o => o.value")
        page.select_option("#f-register-channel", "visit")
        page.select_option("#f-register-source", "direct")
        page.fill("#f-register-category", "household_registration")   # open: policy codes
        page.fill("#f-register-petitioner", petitioner)
        page.fill("#f-register-summary", "网页登记：户口迁移久拖未办")
        page.click("#form-register button.prepare")
        page.wait_for_selector("#review:not([hidden]), #work-status.error")
        assert page.is_visible("#review"), page.inner_text("#work-status")
        assert "户口" in page.inner_text("#review-table")    # the category's label, not its code
        page.click("#sign-submit")
        page.wait_for_selector("#receipt:not([hidden])")
        case = page.get_attribute("#reload", "href").rsplit("/", 1)[1]
        first = demo.json("case", "history", case)["events"][0]
        assert first["type"] == "register" and first["actor"] == "registrar-01"
        assert first["data"]["summary"] == "网页登记：户口迁移久拖未办"
        assert first["data"]["petitioner"] == petitioner
    finally:
        context.close()


def _person(browser: Any, demo: Demo, actor: str) -> Any:
    """A browser context of its own where ``actor`` loaded their key file and signed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{demo.url}/web/enrol")
    page.set_input_files("#key-file", str(demo.root / "keys" / f"{actor}.key"))
    page.click("#load-key")
    page.wait_for_selector(f"#load-status:has-text('{actor}')")
    sign_in(page, demo, actor)
    return context, page


def _act(page: Any, demo: Demo, case: str, action: str, **fields: str) -> int:
    """Fill ``action``'s form on the case page, check, sign and submit; the receipt's position."""
    _open_form(page, demo, case, action)
    for name, value in fields.items():
        target = f"#f-{action}-{name}"
        if page.locator(target).evaluate("e => e.tagName") == "SELECT":
            page.select_option(target, value)
        elif value == "now":
            page.fill(target, page.input_value(f"#f-{action}-at"))
        else:
            page.fill(target, value)
    page.click(f"#form-{action} button.prepare")
    page.wait_for_selector("#review:not([hidden]), #work-status.error")
    assert page.is_visible("#review"), f"{action}: {page.inner_text('#work-status')}"
    page.click("#sign-submit")
    page.wait_for_selector("#receipt:not([hidden]), #work-status.error")
    assert page.is_visible("#receipt"), f"{action}: {page.inner_text('#work-status')}"
    return int(page.inner_text("#receipt-position"))


def test_a_whole_case_by_six_people_in_six_browsers(browser: Any, demo: Demo) -> None:
    contexts = []
    try:
        # the petitioner and a city petition officer enrol keys in their own browsers; the
        # admin registers them (a petition office under city-xfb does not see a case before
        # it is assigned: server/access.py, reported)
        enrolled = {}
        for actor, name, unit, role in (("pet-web-01", "网页信访人", None, "petitioner"),
                                        ("office-web", "网页信访部门", "city",
                                         "petition_office")):
            context = browser.new_context(viewport={"width": 1280, "height": 800},
                                          locale="zh-CN")
            contexts.append(context)
            page = context.new_page()
            page.goto(f"{demo.url}/web/enrol")
            page.fill("#make-actor", actor)
            page.click("#make-key")
            page.wait_for_selector("#made:not([hidden])")
            public = demo.root / f"{actor}.pub"
            public.write_text(page.input_value("#pem"))
            added = demo.cli("actor", "add", actor, "--name", name, "--role", role,
                             *(("--unit", unit) if unit else ()), "--public-key", str(public),
                             "--as", "admin-01", server="admin-01")
            assert added.returncode == 0, added.stderr
            page.goto(f"{demo.url}/web/login")
            page.check(f"input[value='{actor}']")
            page.click("#sign-in")
            page.wait_for_url("**/web/cases")
            enrolled[actor] = page
        petitioner, office = enrolled["pet-web-01"], enrolled["office-web"]

        people = {}
        for actor in ("registrar-01", "officer-04", "lead-county-01", "inspector-01"):
            ctx, page = _person(browser, demo, actor)
            contexts.append(ctx)
            people[actor] = page
        registrar = people["registrar-01"]
        registrar.goto(f"{demo.url}/web/register")
        registrar.select_option("#f-register-channel", "letter")
        registrar.select_option("#f-register-source", "direct")
        registrar.fill("#f-register-category", "household_registration")
        registrar.fill("#f-register-petitioner", "pet-web-01")
        registrar.fill("#f-register-summary", "网页全流程：户口迁移")
        registrar.click("#form-register button.prepare")
        registrar.wait_for_selector("#review:not([hidden]), #work-status.error")
        assert registrar.is_visible("#review"), registrar.inner_text("#work-status")
        registrar.click("#sign-submit")
        registrar.wait_for_selector("#receipt:not([hidden])")
        case = registrar.get_attribute("#reload", "href").rsplit("/", 1)[1]

        officer, lead = people["officer-04"], people["lead-county-01"]
        _act(office, demo, case, "accept")
        _act(office, demo, case, "assign", unit="county-01", handler="officer-04")
        _act(officer, demo, case, "progress", note="已约谈信访人")
        _act(officer, demo, case, "reply", outcome="support", resolution="problem_solved",
             served_at="now", text="依法办理户口迁移")
        _act(officer, demo, case, "attest", evidence="回访记录")
        _act(lead, demo, case, "consent")
        _act(petitioner, demo, case, "petitioner_sign", opinion="satisfied", form="key")
        _act(office, demo, case, "close")

        history = demo.json("case", "history", case)["events"]
        assert [e["type"] for e in history] == [
            "register", "accept", "assign", "progress", "reply", "attest", "consent",
            "petitioner_sign", "close"]
        assert [e["actor"] for e in history] == [
            "registrar-01", "office-web", "office-web", "officer-04", "officer-04", "officer-04",
            "lead-county-01", "pet-web-01", "office-web"]
        # verified by the inspector: every event ✓, the three signatures valid
        inspector = people["inspector-01"]
        inspector.goto(f"{demo.url}/web/cases/{case}")
        assert inspector.get_attribute("#case-verdict", "data-ok") == "true"
        assert inspector.locator("li.event .verdict.ok").count() == len(history)
        assert inspector.get_attribute("#closure-verdict", "data-valid") == "true"
        verified = demo.cli("verify")
        assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    finally:
        for context in contexts:
            context.close()


def test_someone_acting_meanwhile_is_said_and_the_page_prepares_again(officer: Any,
                                                                       demo: Demo) -> None:
    page = officer
    case = cases_of(demo, "open")[-1]
    before = len(demo.json("case", "history", case)["events"])
    _open_form(page, demo, case, "progress")
    page.fill("#f-progress-note", "网页：第二次联系")
    page.click("#form-progress button.prepare")
    page.wait_for_selector("#review:not([hidden])")
    # meanwhile the same case moves (the handler's other device, through the server)
    moved = demo.cli("case", "progress", case, "--note", "手机端记录", "--as", OFFICER,
                     server=OFFICER)
    assert moved.returncode == 0, moved.stderr
    page.click("#sign-submit")
    page.wait_for_selector("#reprepare:not([hidden])")
    assert "其他人刚刚办理了此案件" in page.inner_text("#work-status")
    assert len(demo.json("case", "history", case)["events"]) == before + 1
    page.click("#reprepare")
    page.wait_for_selector("#review:not([hidden])")
    page.click("#sign-submit")
    page.wait_for_selector("#receipt:not([hidden])")
    notes = [e["data"].get("note") for e in demo.json("case", "history", case)["events"]]
    assert notes[-2:] == ["手机端记录", "网页：第二次联系"]
