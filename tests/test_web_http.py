"""The web interface (issue 15) over plain HTTP, on SQLite and PostgreSQL: sign-in by a signed
challenge into an HttpOnly SameSite=Strict cookie, the API's reading rights on every page,
hostile content escaped, cross-site POSTs refused, expiry and sign-out, the language switch,
downloads, and bundle uploads. (tests/test_web_browser.py drives the same pages in Chromium.)
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from cli.main import cli
from ledger import Keystore, auth_message, b64
from server import LedgerServer, create_ledger_app
from tests.test_server import split_keys
from tests.world import World, t

BASE = "http://127.0.0.1:8400"
SAME = {"origin": BASE}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    world: World
    server: LedgerServer
    app: Any
    clock: Clock
    ours: str        # station-03 / officer-07, hostile summary
    other: str       # county-01 / officer-08
    keys: Path

    def client(self) -> TestClient:
        return TestClient(self.app, base_url=BASE, follow_redirects=False)

    def sign_in(self, actor: str, client: TestClient | None = None) -> TestClient:
        client = client or self.client()
        challenge = client.post("/web/auth/challenge", json={"actor": actor}, headers=SAME)
        assert challenge.status_code == 200, challenge.text
        found = challenge.json()
        assert found["context"] == "xinfang-auth/v1"
        signature = Keystore(self.keys).load(actor).sign(
            auth_message(found["origin"], actor, found["nonce"]))
        answer = client.post("/web/auth/session", headers=SAME, json={
            "actor": actor, "nonce": found["nonce"], "signature": b64(signature)})
        assert answer.status_code == 200, answer.text
        cookie = answer.headers["set-cookie"]
        assert "xf_session=" in cookie and "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        return client


@pytest.fixture
def site(world: World, tmp_path: Path) -> Iterator[Site]:
    ours = world.register(t("2025-03-02"), summary=HOSTILE)
    world.do("accept", ours, {"decision": "accepted"}, by="office-01", at=t("2025-03-03"))
    world.do("assign", ours, {"unit": "station-03", "handler": "officer-07"}, by="office-01",
             at=t("2025-03-03", 10))
    other = world.accepted_case("2025-03-05", handler="officer-08", unit="county-01")
    world.ledger.close()
    split_keys(world, tmp_path)
    clock = Clock()
    server = LedgerServer(world.url, tmp_path / "server-keys", clock=clock, session_seconds=600)
    app = create_ledger_app(server)
    try:
        yield Site(world, server, app, clock, ours, other, world.keystore)
    finally:
        next(r for r in app.routes if getattr(r, "path", "") == "/web").app.state.web.close()
        server.close()


def test_pages_need_a_session(site: Site) -> None:
    client = site.client()
    answer = client.get("/web/cases?status=open")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/web/login?m=need&next=%2Fweb%2Fcases")
    assert client.get("/").headers["location"] == "/web/"
    login = client.get("/web/login")
    assert login.status_code == 200 and "用本人密钥登录" in login.text
    # a forged signature opens no session
    challenge = client.post("/web/auth/challenge", json={"actor": "inspector-01"},
                            headers=SAME).json()
    forged = client.post("/web/auth/session", headers=SAME, json={
        "actor": "inspector-01", "nonce": challenge["nonce"],
        "signature": base64.b64encode(b"\x01" * 64).decode()})
    assert forged.status_code == 401 and "refused" in forged.json()["error"]
    assert "set-cookie" not in forged.headers


def test_reading_rights_are_the_apis(site: Site) -> None:
    inspector = site.sign_in("inspector-01")
    listed = inspector.get("/web/cases")
    assert listed.status_code == 200
    assert f'data-case="{site.ours}"' in listed.text
    assert f'data-case="{site.other}"' in listed.text
    assert inspector.get(f"/web/cases/{site.other}").status_code == 200
    unknown = inspector.get("/web/cases/XF-2025-999999")
    assert unknown.status_code == 404 and "unknown case" in unknown.text

    handler = site.sign_in("officer-07")
    mine = handler.get("/web/cases")
    assert f'data-case="{site.ours}"' in mine.text
    assert f'data-case="{site.other}"' not in mine.text
    assert handler.get(f"/web/cases/{site.ours}").status_code == 200
    refused = handler.get(f"/web/cases/{site.other}")
    assert refused.status_code == 403 and "not a case you may read" in refused.text
    assert handler.get(f"/web/cases/{site.other}/bundle").status_code == 403
    # the ledger-wide reports are for readers who see every case, as in the API
    assert handler.get("/web/reports/statistics?from=2025-01-01&to=2025-12-31"
                       ).status_code == 403
    assert handler.get("/web/reports/accountability").status_code == 403
    assert inspector.get("/web/reports/statistics?from=2025-01-01&to=2025-12-31"
                         ).status_code == 200
    # the case's reverse-check triggers likewise
    assert "倒查线索只对可查看全部案件的人员显示" in handler.get(f"/web/cases/{site.ours}").text
    other_unit = site.sign_in("officer-08")
    assert f'data-case="{site.ours}"' not in other_unit.get("/web/cases?per=200").text
    assert other_unit.get(f"/web/cases/{site.ours}").status_code == 403


def test_hostile_content_is_escaped(site: Site) -> None:
    client = site.sign_in("inspector-01")
    for page in (client.get(f"/web/cases/{site.ours}"), client.get("/web/cases")):
        assert page.status_code == 200
        assert HOSTILE not in page.text and "<script>alert" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
    reflected = client.get("/web/cases", params={"case": HOSTILE[:60]})
    assert "<script>alert" not in reflected.text and "&lt;script&gt;" in reflected.text
    bad = client.get("/web/cases", params={"as_of": "<b>2025</b>"})
    assert bad.status_code == 400 and "<b>2025" not in bad.text
    for query in ({"sort": "x"}, {"per": "7"}, {"page": "zz"}, {"status": "gone"},
                  {"trigger": "nope"}, {"from": "2025-05-01", "to": "2025-04-01"}):
        assert client.get("/web/cases", params=query).status_code == 400, query
    assert client.get("/web/cases/..%2F..%2Fetc").status_code == 404
    assert client.get("/web/reports/nothing").status_code == 404
    assert client.get("/web/nowhere").status_code == 404


def test_cross_site_posts_expiry_and_sign_out(site: Site) -> None:
    client = site.sign_in("inspector-01")
    assert client.get("/web/cases").status_code == 200
    for headers in ({}, {"origin": "http://evil.example"}, {"origin": "null"},
                    {"sec-fetch-site": "cross-site"}):
        refused = client.post("/web/logout", headers=headers)
        assert refused.status_code == 403 and "跨站请求伪造" in refused.text, headers
    assert client.get("/web/cases").status_code == 200   # still signed in
    out = client.post("/web/logout", headers=SAME)
    assert out.status_code == 303 and out.headers["location"] == "/web/login?m=bye"
    client.cookies.clear()
    assert client.get("/web/cases").headers["location"].startswith("/web/login?m=need")

    again = site.sign_in("inspector-01")
    token = again.cookies.get("xf_session")
    site.clock.now += 601                      # the session outlives its 10 minutes
    expired = again.get("/web/cases/" + site.ours)
    assert expired.status_code == 303
    assert expired.headers["location"].startswith("/web/login?m=expired&next=%2Fweb%2Fcases")
    page = again.get(expired.headers["location"])
    assert "会话已过期" in page.text
    assert token not in site.server.sessions


def test_language_switch_is_kept(site: Site) -> None:
    client = site.sign_in("inspector-01")
    english = client.get("/web/cases?lang=en")
    assert "Case list" in english.text and 'lang="en"' in english.text
    assert "xf_lang=en" in english.headers["set-cookie"]
    client.cookies.set("xf_lang", "en")
    assert "Case list" in client.get("/web/cases").text
    assert "案件列表" in client.get("/web/cases?lang=zh").text


def test_public_key_qr_and_enrol_pages(site: Site) -> None:
    client = site.client()
    raw = Keystore(site.keys).load("officer-07").public
    svg = client.get(f"/web/enrol/qr.svg?key={raw.hex()}")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<path" in svg.text
    for bad in ("", "zz" * 32, raw.hex()[:-2], "<script>"):
        assert client.get("/web/enrol/qr.svg", params={"key": bad}).status_code == 400
    enrol = client.get("/web/enrol")
    assert 'id="make-actor"' in enrol.text and "/web/static/enrol.js" in enrol.text
    assert client.get("/web/static/keys.js").status_code == 200
    assert "counter(pages)" in client.get("/web/static/print-zh.css").text
    lost = client.get("/web/lost")
    assert "revoke-key" in lost.text and "rotate-key" in lost.text


def test_list_filters_match_the_cli(site: Site) -> None:
    client = site.sign_in("inspector-01")

    def listed(**query: str) -> set[str]:
        page = client.get("/web/cases", params={**query, "per": "200"})
        assert page.status_code == 200, page.text
        return set(re.findall(r'data-case="(XF-\d{4}-\d{6})"', page.text))

    def cli_list(*args: str) -> set[str]:
        result = CliRunner().invoke(cli, ["--ledger", site.world.url, "case", "list",
                                          "--format", "json", *args])
        assert result.exit_code == 0, result.output
        return {c["case"] for c in json.loads(result.stdout)["cases"]}

    assert listed() == cli_list() == {site.ours, site.other}
    assert listed(unit="county-01") == cli_list("--unit", "county-01") == {site.other}
    assert listed(handler="officer-07") == {site.ours}
    assert listed(status="open") == cli_list("--status", "open")
    assert listed(channel="letter") == {site.ours, site.other}
    assert listed(channel="visit") == set()
    assert listed(petitioner="王某") == {site.ours, site.other}
    assert listed(case=site.other[-4:]) == {site.other}
    assert listed(**{"from": "2025-03-04"}) == cli_list("--from", "2025-03-04") == {site.other}
    sheet = client.get("/web/cases", params={"unit": "county-01", "format": "xlsx"})
    assert sheet.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(sheet.content))
    values = [c for row in book.worksheets[0].iter_rows(values_only=True) for c in row]
    assert site.other in values and site.ours not in values


def test_bundle_upload_verified_and_shown(site: Site) -> None:
    client = site.sign_in("inspector-01")
    bundle = client.get(f"/web/cases/{site.other}/bundle")
    assert bundle.status_code == 200
    assert bundle.headers["content-disposition"] == \
        f'attachment; filename="{site.other}.bundle"'

    def upload(data: bytes, **extra: str) -> Any:
        return client.post("/web/integrity/bundles", headers=SAME, json={
            "bundle": base64.b64encode(data).decode(), **extra})

    good = upload(bundle.content)
    assert good.status_code == 200 and good.json()["ok"] is True
    shown = client.get(good.json()["url"])
    assert shown.status_code == 200
    assert 'id="bundle-verdict" data-ok="true"' in shown.text
    assert shown.text.count('data-verdict="ok"') == 3 and "登记" in shown.text
    # a bundle verified under another ledger's keys fails, and says which anchor
    other_key = (site.keys / "officer-08.pub").read_text()
    wrong = upload(bundle.content, log_key=other_key)
    assert wrong.json()["ok"] is False
    assert 'data-ok="false"' in client.get(wrong.json()["url"]).text
    broken = upload(bundle.content.replace(b'"events"', b'"evants"', 1))
    assert broken.json()["ok"] is False
    assert upload(b"not json").json()["ok"] is False
    assert client.post("/web/integrity/bundles", headers=SAME,
                       json={"bundle": "***"}).status_code == 400
    assert upload(bundle.content, log_key="-----BEGIN nonsense").status_code == 400
    # results are their uploader's only
    assert site.sign_in("office-01").get(good.json()["url"]).status_code == 404
