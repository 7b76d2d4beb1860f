"""Reads through the ledger server, by role (issue 12, "Who may read what"), on SQLite and
PostgreSQL: jurisdiction, units' cases, a petitioner's own cases, the petitioner hidden from
the accused unit of a police-misconduct case (条例 Art. 30), the raw log only for readers who
see everything — and the inspector's independent verification from a mirror of the raw log,
trusting nothing the server computed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Envelope, Keystore, LedgerClient, Statement, verify_bundle
from ledger.log.keys import PublicKey
from server.access import HIDDEN
from tests.tamper import events_table, superuser
from tests.test_server import Served, make_served, raw
from tests.world import t


@pytest.fixture
def served(ledger_url: str, tmp_path: Path) -> Iterator[Served]:
    running = make_served(ledger_url, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def served_sqlite(tmp_path: Path) -> Iterator[Served]:
    running = make_served(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _misconduct_case(served: Served) -> str:
    """A police-misconduct complaint by pet-0001, handled by station-03 (the accused unit)."""
    with served.client("registrar-01") as registrar:
        case = registrar.execute("register", None, {
            "channel": "letter", "source": "direct", "category": "police_misconduct",
            "petitioner": "pet-0001", "summary": "举报民警违法违纪"}, as_actor="registrar-01",
            at=t("2025-04-01")).stream
    with served.client("office-01") as office:
        office.execute("accept", case, {"decision": "accepted"}, as_actor="office-01",
                       at=t("2025-04-02"))
        office.execute("assign", case, {"unit": "station-03", "handler": "officer-07"},
                       as_actor="office-01", at=t("2025-04-02", 10))
    return case


def _cases(served: Served, actor: str) -> dict[str, dict[str, object]]:
    result = served.cli(actor, "case", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return {c["case"]: c for c in json.loads(result.stdout)["cases"]}


def test_reads_by_role(served: Served) -> None:
    ours = served.case   # assigned to station-03 / officer-07, petitioner pet-0001
    with served.client("registrar-01") as registrar:
        other = registrar.execute("register", None, {
            "channel": "visit", "source": "direct", "category": "help",
            "petitioner": "pet-0001", "summary": "另一件"}, as_actor="registrar-01",
            at=t("2025-04-05")).stream
    with served.client("office-01") as office:
        office.execute("accept", other, {"decision": "accepted"}, as_actor="office-01",
                       at=t("2025-04-06"))
        office.execute("assign", other, {"unit": "county-01", "handler": "officer-08"},
                       as_actor="office-01", at=t("2025-04-06", 10))
    assert set(_cases(served, "inspector-01")) == {ours, other}
    assert set(_cases(served, "officer-07")) == {ours}          # their unit's case only
    assert set(_cases(served, "lead-03")) == {ours}              # unit leader of station-03
    assert set(_cases(served, "officer-08")) == {other}
    assert set(_cases(served, "lead-01")) == {other}
    assert set(_cases(served, "pet-0001")) == {ours, other}      # their own cases

    history = served.cli("officer-08", "case", "history", ours)
    assert history.exit_code == 2 and "not a case you may read" in history.output
    mine = served.cli("officer-07", "case", "history", ours, "--format", "json")
    assert mine.exit_code == 0, mine.output
    document = json.loads(mine.stdout)
    assert document["judged_by"] == "server" and document["ok"] is True
    assert [e["type"] for e in document["events"]] == ["register", "accept", "assign"]
    # reports and the raw log are for readers who see every case
    stats = served.cli("officer-07", "report", "statistics", "--from", "2025-01-01", "--to",
                       "2025-12-31")
    assert stats.exit_code == 2 and "covers the whole ledger" in stats.output
    assert raw(served, "officer-07", "GET", "/v1/log/events").status_code == 403
    assert raw(served, "pet-0001", "GET", "/v1/log/head").status_code == 403
    assert raw(served, "inspector-01", "GET", "/v1/log/head").status_code == 200
    for report in ("supervision", "accountability", "closures"):
        result = served.cli("inspector-01", "report", report, "--format", "json")
        assert result.exit_code == 0, (report, result.output)
    statistics = served.cli("leader-01", "report", "statistics", "--from", "2025-01-01",
                            "--to", "2025-12-31", "--format", "json")
    assert statistics.exit_code == 0 and json.loads(statistics.stdout)["total"] == 2
    xlsx = served.root / "stats.xlsx"
    result = served.cli("office-01", "report", "statistics", "--from", "2025-01-01", "--to",
                        "2025-12-31", "--format", "xlsx", "--out", str(xlsx))
    assert result.exit_code == 0 and xlsx.stat().st_size > 0
    # a petitioner's export of their own case verifies offline; someone else's is refused
    bundle = served.root / "mine.bundle.json"
    exported = served.cli("pet-0001", "export", ours, "--out", str(bundle))
    assert exported.exit_code == 0, exported.output
    keys = served.keys_of("pet-0001")
    report = verify_bundle(bundle.read_bytes(),
                           log_key=PublicKey.from_pem((keys / "log.pub").read_bytes()).raw,
                           admin_key=PublicKey.from_pem((keys / "admin.pub").read_bytes()).raw)
    assert report.ok and report.complete
    refused = served.cli("officer-08", "export", ours, "--out", str(served.root / "x.json"))
    assert refused.exit_code == 2 and not (served.root / "x.json").exists()


def test_the_petitioner_is_hidden_from_the_accused_unit(served_sqlite: Served) -> None:
    served = served_sqlite
    case = _misconduct_case(served)
    seen = _cases(served, "officer-07")[case]
    assert seen["petitioner"] == HIDDEN and seen["petitioner_name"] == HIDDEN
    history = served.cli("lead-03", "case", "history", case, "--format", "json")
    assert history.exit_code == 0, history.output
    text = history.stdout
    assert "pet-0001" not in text and "王某" not in text and HIDDEN in text
    assert _cases(served, "inspector-01")[case]["petitioner"] == "pet-0001"
    assert _cases(served, "pet-0001")[case]["petitioner"] == "pet-0001"
    refused = served.cli("officer-07", "export", case)
    assert refused.exit_code == 2 and "Art. 30" in refused.output
    # signed bytes carry the identity: a reader of that unit gets no raw log
    assert raw(served, "inspector-01", "GET", "/v1/log/head").status_code == 200


def test_inspector_verifies_from_a_mirror_trusting_nothing_the_server_computed(
        served: Served, tmp_path: Path) -> None:
    keys = served.keys_of("inspector-01")
    anchors = ["--log-key", str(keys / "log.pub"), "--admin-key", str(keys / "admin.pub")]
    first = served.cli("inspector-01", "verify", *anchors, "--format", "json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["ok"] is True
    mirrors = list((keys / "mirrors").glob("*.db"))
    assert len(mirrors) == 1
    # more writes: the mirror catches up incrementally, the history is judged locally
    with served.client("officer-07") as client:
        client.execute("progress", served.case, {"note": "镜像增量"}, as_actor="officer-07",
                       at=t("2025-03-07"))
    again = served.cli("inspector-01", "verify", *anchors, "--format", "json")
    assert again.exit_code == 0 and json.loads(again.stdout)["events"] == served.events()
    history = served.cli("inspector-01", "case", "history", served.case, "--format", "json")
    assert history.exit_code == 0, history.output
    assert "judged_by" not in json.loads(history.stdout)   # the mirror's own verdicts
    # pinned to another ledger's keys, the same mirror fails
    other = LedgerClient(served.url, Keystore(tmp_path / "stranger"), actor="inspector-01",
                         log_key=PublicKey.from_pem((keys / "admin.pub").read_bytes()).raw)
    try:
        try:
            other.info()
            raise AssertionError("a server of another log key was accepted")
        except Exception as exc:   # noqa: BLE001 - the library's VerificationError
            assert "another log key" in str(exc)
    finally:
        other.close()
    # the operator edits an event in the database: a fresh mirror's verify names it
    with served.store() as store, superuser(store) as db:
        record = store.event_at(served.case, 2)
        assert record is not None
        envelope = Envelope.from_bytes(record.state)
        statement = Statement.from_signed_bytes(envelope.signed)
        forged = envelope.signed.replace(b'"accepted"', b'"not_accepted"')
        assert forged != envelope.signed and statement.type == "accept"
        db.execute(f"UPDATE {events_table(store)} SET state=? WHERE originator_id=? AND "
                   "originator_version=?", (Envelope(envelope.recorded_at_us,
                                                      envelope.signature, forged).to_bytes(),
                                             served.case, 2))
    fresh = served.root / "devices" / "inspector-fresh"
    fresh.mkdir()
    for name in ("inspector-01.key", "inspector-01.pub", "log.pub", "admin.pub"):
        (fresh / name).write_bytes((keys / name).read_bytes())
    tampered = served.cli("inspector-01", "verify", *anchors, "--format", "json", keys=fresh)
    assert tampered.exit_code == 1, tampered.output
    failures = json.loads(tampered.stdout)["failures"]
    assert failures and failures[0]["stream"] == served.case and failures[0]["seq"] == 2
    # the inspector's old mirror still holds the original: its verify passes, and the server's
    # export of that case no longer verifies here, so it is not written
    bundle = served.root / "case.bundle.json"
    export = served.cli("inspector-01", "export", served.case, "--out", str(bundle))
    assert export.exit_code == 1 and not bundle.exists()


def test_jurisdiction_follows_the_unit_tree(tmp_path: Path) -> None:
    """The read rights themselves (server/access.py), on a local ledger: a leader of a county
    bureau sees the cases its stations handle, not the city's others; the city's leader all."""
    from server.access import AccessIndex, reader_of
    from tests.world import build_world

    world = build_world(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "keys")
    led = world.ledger
    led.add_actor("leader-county", "县局领导", roles=["leader"], unit="county-01",
                  as_actor="admin-01", at=t("2025-01-01", 8))
    station = world.accepted_case("2025-03-02", handler="officer-07", unit="station-03")
    city = world.register(t("2025-03-04"))
    index = AccessIndex(led.store)
    index.refresh()
    directory = led.directory()
    county = reader_of(directory, "leader-county")
    boss = reader_of(directory, "leader-01")
    petitioner = reader_of(directory, "pet-0001")
    registrar = reader_of(directory, "registrar-01")
    assert county is not None and county.scope == "jurisdiction"
    assert county.subtree == {"county-01", "station-03"}
    assert index.may_see(county, station) and not index.may_see(county, city)
    assert boss is not None and boss.everything and index.may_see(boss, city)
    assert petitioner is not None and index.visible(petitioner, [station, city]) == [station,
                                                                                     city]
    assert registrar is not None and index.may_see(registrar, city)   # they registered it
    assert not index.may_see(county, "XF-2025-999999")   # unknown: not even its absence
    # a case registered in the county and not yet assigned waits for the county's office
    led.add_actor("registrar-county", "县局登记员", roles=["registrar"], unit="county-01",
                  as_actor="admin-01", at=t("2025-01-01", 8))
    waiting = world.do("register", None, {"channel": "letter", "source": "direct",
                       "category": "household_registration", "petitioner": "pet-0001",
                       "summary": "待受理"}, by="registrar-county", at=t("2025-03-05")).stream
    index.refresh()
    assert index.may_see(county, waiting) and not index.may_see(county, city)
    assert index.may_read_log(boss) and not index.may_read_log(county)
    led.close()
