"""Hostile bytes never crash a verifier; non-canonical signed bytes fail check 1.

Issue 9, classes 5 and 6 (docs/integrity.md, "Verifiers never crash" and "Strict canonical
bytes"): whatever a database superuser writes into the events table, `verify_ledger` and
`xinfang verify` report a failure naming that event (exit 1), never a traceback, exit 2 or 3.
The bounds themselves live in schemas/bounds.py and ledger/domain/policy.py.

The stored-envelope tests run on SQLite and PostgreSQL (the `world` fixture); the fuzzing edits
one stored row in place per example and puts the original bytes back afterwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cli.main import cli
from ledger.domain.policy import (
    MAX_CLOCK_TOLERANCE_SECONDS,
    MAX_POLICY_DAYS,
    Policy,
    PolicyError,
    business_date,
)
from ledger.errors import InputError
from ledger.log.keys import Signer
from ledger.log.statement import (
    EVENT_CONTEXT,
    Envelope,
    Statement,
    canonical_bytes,
    format_time,
    leaf_bytes,
    now_us,
    parse_time,
)
from ledger.storage.store import PendingEvent
from ledger.verification.verify import VerifyReport, verify_ledger
from schemas.actions import data_problem, json_identical, parse_data
from schemas.bounds import MAX_INT, MAX_RECORDED_US, MAX_STATEMENT_BYTES
from tests.conftest import scratch_ledger_url
from tests.tamper import events_table, superuser
from tests.world import ORIGIN, World, build_world, t

FUZZ = settings(max_examples=50, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# ---- helpers -------------------------------------------------------------------------------

def check(world: World) -> VerifyReport:
    return verify_ledger(world.ledger.store, workers=1)


def cli_verify(world: World) -> tuple[int, dict[str, Any]]:
    """`xinfang verify --format json`; a crash propagates (catch_exceptions=False)."""
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "verify", "--format", "json", "--workers", "1"],
                                catch_exceptions=False)
    try:
        body = json.loads(result.output)
    except ValueError:
        body = {"unparsed": result.output}
    return result.exit_code, body


def assert_named(world: World, position: int, *, check_no: int | None = None) -> VerifyReport:
    """verify and the CLI both fail (exit 1) with a failure at ``position`` (of ``check_no``)."""
    try:
        report = check(world)
    except Exception as exc:  # noqa: BLE001 - any exception is the bug this file hunts
        pytest.fail(f"verify_ledger crashed instead of naming position {position}: {exc!r}")
    assert not report.ok, "hostile bytes went undetected"
    at_position = {f.check for f in report.failures if f.position == position}
    assert at_position, f"no failure names position {position}: {report.failures[:3]}"
    if check_no is not None:
        assert check_no in at_position, (check_no, report.failures[:3])
    try:
        code, body = cli_verify(world)
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"xinfang verify crashed instead of naming position {position}: {exc!r}")
    assert code == 1, body
    assert any(f["position"] == position for f in body["failures"]), body
    return report


def set_state(world: World, position: int, state: bytes) -> None:
    store = world.ledger.store
    column = store.position_column
    with superuser(store) as db:
        db.execute(f"UPDATE {events_table(store)} SET state=? WHERE {column}=?",
                   (state, position))


def rows(world: World) -> list[tuple[int, str, str, bytes]]:
    """(position, stream, type, state) of every stored event, in log order."""
    return [(n.id, str(n.originator_id), n.topic, bytes(n.state))
            for n in world.ledger.store.iter_log(after=0)]


def signer_of(world: World, statement: Statement) -> Signer:
    return world.ledger.keystore.load(statement.actor)


def append_signed(world: World, stream: str, action: str, signed: bytes, signer: Signer) -> int:
    """Append exact signed bytes, signed by ``signer``, leafed and checkpointed like an honest
    write (as tests.tamper.forge does, but without re-encoding the statement)."""
    store = world.ledger.store
    head = store.stream_head(stream)
    seq = head.seq + 1 if head else 1
    envelope = Envelope(now_us(), signer.sign(signed), signed)
    return store.append([PendingEvent(stream, seq, action, envelope.to_bytes())],
                        world.ledger._checkpoint_signer())[0]


def register_bytes(world: World, **data: Any) -> tuple[str, bytes]:
    """Canonical signed bytes of a well-formed register by registrar-01 on a new case."""
    case = world.ledger.next_case_number(2025)
    body = {"channel": "letter", "source": "direct", "category": "household_registration",
            "petitioner": "pet-0001", "persons": 2, "summary": "户口迁移不予办理",
            "repeat_of": [], "reception_day": False, **data}
    statement = Statement(origin=ORIGIN, stream=case, seq=1, prev="0" * 64, type="register",
                          at=format_time(t("2025-03-02")), actor="registrar-01",
                          key=world.ledger.keystore.load("registrar-01").key_id, data=body)
    return case, statement.signed_bytes()


def populate(world: World) -> None:
    """A closed case and an extended one: every kind of event the hostile edits aim at."""
    world.closed_case()
    world.do("extend", world.accepted_case("2025-04-02"), {"days": 5, "reason": "调查"},
             by="leader-01", at=t("2025-04-10"))   # the accepting organ's head (Art. 34)
    assert check(world).ok


# ---- class 6: non-canonical signed bytes, signed by the real key, fail check 1 --------------

def test_float_persons_signed_by_the_registrar_fails_check_1(world: World) -> None:
    case, signed = register_bytes(world)
    forged = signed.replace(b'"persons":2,', b'"persons":2.0,')
    assert forged != signed
    position = append_signed(world, case, "register", forged,
                             world.ledger.keystore.load("registrar-01"))
    report = assert_named(world, position, check_no=1)
    assert {(f.position, f.check) for f in report.failures} == {(position, 1)}


def test_integer_reception_day_signed_by_the_registrar_fails_check_1(world: World) -> None:
    # 0 is canonical JSON, and 0 == False in Python: only a type-exact schema check sees it.
    case, signed = register_bytes(world, reception_day=0)
    assert b'"reception_day":0' in signed
    position = append_signed(world, case, "register", signed,
                             world.ledger.keystore.load("registrar-01"))
    report = assert_named(world, position, check_no=1)
    assert {(f.position, f.check) for f in report.failures} == {(position, 1)}
    assert any("register" in f.reason for f in report.failures)


@pytest.mark.parametrize(("name", "edit"), [
    ("reordered keys", lambda b: b.replace(b'{"actor":"registrar-01","at":',
                                           b'{"at":"2025-03-02T09:00:00+08:00","actor":'
                                           b'"registrar-01","at":')),
    ("whitespace", lambda b: b.replace(b'"persons":2', b'"persons": 2')),
    ("escaped ASCII", lambda b: b.replace(b'"type":"register"', b'"type":"regist\\u0065r"')),
    ("escaped CJK", lambda b: b.replace("户口".encode(), b"\\u6237\\u53e3")),
    ("exponent", lambda b: b.replace(b'"persons":2,', b'"persons":2e0,')),
    ("true for an integer", lambda b: b.replace(b'"persons":2,', b'"persons":true,')),
    ("string for an integer", lambda b: b.replace(b'"persons":2,', b'"persons":"2",')),
    ("duplicate key", lambda b: b.replace(b'"persons":2,', b'"persons":1,"persons":2,')),
    ("null optional", lambda b: b.replace(b'"persons":2,', b'"persons":2,"ref":null,')),
    ("untrimmed text", lambda b: b.replace("户口".encode(), " 户口".encode())),
])
def test_non_canonical_forms_signed_by_the_real_key_fail_check_1(
        world: World, name: str, edit: Callable[[bytes], bytes]) -> None:
    case, signed = register_bytes(world)
    forged = edit(signed)
    assert forged != signed, name
    position = append_signed(world, case, "register", forged,
                             world.ledger.keystore.load("registrar-01"))
    assert_named(world, position, check_no=1)


# ---- class 5: the named hostile values, stored in place and signed by the real key ----------

def _replace_field(signed: bytes, path: tuple[str, ...], raw: str) -> bytes:
    """The statement with the JSON value at ``path`` replaced by the raw JSON text ``raw``."""
    obj = json.loads(signed[len(EVENT_CONTEXT):])
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "\u0000HOSTILE\u0000"
    body = canonical_bytes(obj).replace(b'"\\u0000HOSTILE\\u0000"', raw.encode("utf-8",
                                                                               "surrogatepass"))
    return EVENT_CONTEXT + body


def _resign(world: World, state: bytes, signed: bytes, recorded: int | None = None) -> bytes:
    envelope = Envelope.from_bytes(state)
    statement = Statement.from_signed_bytes(envelope.signed)
    signature = signer_of(world, statement).sign(signed)
    header = envelope.to_bytes()[:4] + (recorded if recorded is not None else
                                        envelope.recorded_at_us).to_bytes(8, "big")
    return header + signature + signed


HOSTILE_EVENTS: list[tuple[str, str, tuple[str, ...], str]] = [
    # (name, event type, JSON path, raw JSON value)
    ("business time in year 9999 at -12:00", "progress", ("at",), '"9999-12-31T23:59:59-12:00"'),
    ("business time in year 1 at +14:00", "progress", ("at",), '"0001-01-01T00:00:00+14:00"'),
    ("business time offset +23:59", "progress", ("at",), '"2025-03-07T09:00:00+23:59"'),
    ("business time without offset", "progress", ("at",), '"2025-03-07T09:00:00"'),
    ("business time as a number", "progress", ("at",), "1741309200"),
    ("served_at in year 9999 at -12:00", "reply", ("data", "served_at"),
     '"9999-12-31T23:59:59-12:00"'),
    ("seq beyond 2^53", "progress", ("seq",), str(2**53 + 1)),
    ("seq beyond 2^64", "progress", ("seq",), str(2**64 + 5)),
    ("seq zero", "progress", ("seq",), "0"),
    ("seq negative", "progress", ("seq",), "-1"),
    ("persons beyond 2^53", "register", ("data", "persons"), str(2**53 + 1)),
    ("persons with 5000 digits", "register", ("data", "persons"), "9" * 5000),
    ("extension of 10^30 days", "extend", ("data", "days"), str(10**30)),
    ("extension of 2^53-1 days", "extend", ("data", "days"), str(MAX_INT)),
    ("clock tolerance 10^30 s", "init", ("data", "policy", "clock_tolerance_seconds"),
     str(10**30)),
    ("a megabyte string", "progress", ("data", "note"), json.dumps("进" * (MAX_STATEMENT_BYTES
                                                                        // 3 + 10))),
    ("nesting 100 deep", "progress", ("data", "note"), "[" * 100 + "]" * 100),
    ("nesting 100000 deep", "progress", ("data", "note"), "[" * 100000 + "]" * 100000),
    ("lone surrogate", "progress", ("data", "note"), '"\\ud800"'),
    ("lone surrogate key", "progress", ("data",), '{"\\udfff":1}'),
    ("NaN", "progress", ("data", "follow_up"), "NaN"),
    ("1e400", "progress", ("data", "follow_up"), "1e400"),
    ("float", "extend", ("data", "days"), "5.0"),
]


@pytest.mark.parametrize(("name", "action", "path", "raw"), HOSTILE_EVENTS,
                         ids=[h[0] for h in HOSTILE_EVENTS])
def test_hostile_values_signed_by_the_real_key_fail_naming_the_event(
        shared_world: World, name: str, action: str, path: tuple[str, ...], raw: str) -> None:
    world = shared_world
    position, _, _, state = next(r for r in rows(world) if r[2] == action)
    forged = _replace_field(Envelope.from_bytes(state).signed, path, raw)
    with edited(world, position, _resign(world, state, forged)):
        assert_named(world, position, check_no=1)


HOSTILE_POLICIES = [
    ("clock tolerance 2^53-1 s", {"clock_tolerance_seconds": MAX_INT}),
    ("clock tolerance true", {"clock_tolerance_seconds": True}),
    ("handling days 10^9", {"handling_days": 10**9}),
    ("negative days", {"acceptance_days": -1}),
    ("unknown policy key", {"bribe_days": 1}),
    ("categories not a list", {"categories": "help"}),
    ("permissions not a table", {"permissions": ["handler"]}),
]


@pytest.mark.parametrize(("name", "change"), HOSTILE_POLICIES, ids=[h[0] for h in HOSTILE_POLICIES])
def test_hostile_policy_in_a_well_formed_init_fails_check_1(
        ledger_url: str, keystore: Path, monkeypatch: pytest.MonkeyPatch, name: str,
        change: dict[str, Any]) -> None:
    """An init event whose bytes, signature and leaf are all good but whose policy is absurd
    (an admin's own forgery): check 1 names it, never an OverflowError or exit 2."""
    from ledger import Ledger

    hostile = {**Policy().to_data(), **change}
    monkeypatch.setattr(Policy, "to_data", lambda self: hostile)
    led = Ledger.init(ledger_url, keystore, origin=ORIGIN, admin="admin-01", at=t("2025-01-01"))
    monkeypatch.undo()
    world = World(led, ledger_url, keystore)
    try:
        report = assert_named(world, 1, check_no=1)
        assert any("polic" in f.reason for f in report.failures if f.position == 1), name
    finally:
        led.close()


@pytest.mark.parametrize("recorded", [2**64 - 1, 2**63, MAX_RECORDED_US],
                         ids=["2^64-1", "2^63", "year 2200"])
def test_hostile_recorded_time_fails_naming_the_event(shared_world: World,
                                                      recorded: int) -> None:
    world = shared_world
    position, _, _, state = next(r for r in rows(world) if r[2] == "progress")
    with edited(world, position, _resign(world, state, Envelope.from_bytes(state).signed,
                                         recorded)):
        assert_named(world, position, check_no=1)


@pytest.mark.parametrize("value", ["XFE1" + "x" * 200, 12345, None, 1.5],
                         ids=["text", "integer", "null", "real"])
def test_hostile_sqlite_cell_types_fail_naming_the_event(shared_world: World,
                                                        value: Any) -> None:
    """SQLite keeps any type in any column: text, a number or NULL where the state is; the
    verifier names the row. PostgreSQL's typed bytea column either refuses the value outright
    (then the ledger is unchanged and verifies) or stores it as bytes (then it is named)."""
    world = shared_world
    position, _, _, original = next(r for r in rows(world) if r[2] == "progress")
    try:
        set_state(world, position, value)
    except psycopg.Error:
        assert world.ledger.store.backend != "sqlite"
        assert verify_ledger(world.ledger.store, workers=1).ok   # nothing was stored
        return
    try:
        assert_named(world, position)
    finally:
        set_state(world, position, original)


@pytest.mark.parametrize(("column", "value"), [
    ("originator_version", 2**63 - 1), ("originator_version", -5), ("originator_version", 0),
    ("originator_version", "x3"), ("originator_version", 1.5), ("originator_version", None),
    ("topic", "\u0000" * 3), ("topic", b"\xff"), ("topic", None), ("originator_id", "x" * 5000),
    ("originator_id", b"\xff\xfe"), ("originator_id", None),
])
def test_hostile_columns_fail_naming_the_event(shared_world: World, column: str,
                                               value: Any) -> None:
    """The columns beside the state: out-of-range numbers, and on SQLite any type at all.
    PostgreSQL's typed, NOT NULL columns refuse some of these outright (the ledger is then
    unchanged and verifies); whatever a backend stores, the verifier names the row."""
    world = shared_world
    store = world.ledger.store
    position = next(r[0] for r in rows(world) if r[2] == "progress")
    where = f"WHERE {store.position_column}=?"
    with superuser(store) as db:
        old = db.execute(f"SELECT {column} FROM {events_table(store)} {where}",
                         (position,)).fetchone()[0]
    try:
        with superuser(store) as db:
            db.execute(f"UPDATE {events_table(store)} SET {column}=? {where}",
                       (value, position))
    except psycopg.Error:
        assert store.backend != "sqlite"
        assert verify_ledger(store, workers=1).ok
        return
    try:
        assert_named(world, position)
    finally:
        with superuser(store) as db:
            db.execute(f"UPDATE {events_table(store)} SET {column}=? {where}", (old, position))


def test_shared_world_is_intact_after_the_edits(shared_world: World) -> None:
    # Every edit above is undone; a leftover would make the next test's failures ambiguous.
    assert check(shared_world).ok


# ---- fuzzing stored envelopes (both backends) ---------------------------------------------

RAW_VALUES = ['"9999-12-31T23:59:59-12:00"', str(2**53), str(2**64 + 5), "-1", "0", "1.5",
              "2.0", "1e400", "NaN", "-Infinity", "true", "false", "null", '""', "{}", "[]",
              '"\\ud800"', '"' + "x" * 5000 + '"', "[" * 40 + "]" * 40, str(10**30)]
PATHS = [("at",), ("seq",), ("v",), ("stream",), ("type",), ("key",), ("prev",), ("data",),
         ("origin",), ("actor",)]


@st.composite
def hostile_edit(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["random", "truncate", "flip", "header", "field", "data",
                                 "json", "utf8"]))
    if kind == "random":
        return kind, draw(st.binary(max_size=400))
    if kind == "truncate":
        return kind, draw(st.integers(0, 400))
    if kind == "flip":
        return kind, (draw(st.integers(0, 10**6)), draw(st.integers(1, 255)))
    if kind == "header":
        return kind, draw(st.sampled_from([0, 1, 2**63, 2**64 - 1, MAX_RECORDED_US - 1,
                                           MAX_RECORDED_US]))
    if kind == "field":
        return kind, (draw(st.sampled_from(PATHS)), draw(st.sampled_from(RAW_VALUES)),
                      draw(st.booleans()))
    if kind == "data":
        return kind, (draw(st.text(min_size=1, max_size=12)), draw(st.sampled_from(RAW_VALUES)),
                      draw(st.booleans()))
    if kind == "json":
        return kind, (draw(st.sampled_from(["indent", "ascii", "unsorted", "spaces"])),
                      draw(st.booleans()))
    return kind, draw(st.integers(0, 10**6))


def _apply(world: World, state: bytes, edit: tuple[str, Any]) -> bytes:
    kind, arg = edit
    envelope = Envelope.from_bytes(state)
    signed = envelope.signed
    if kind == "random":
        return arg
    if kind == "truncate":
        return state[:arg]
    if kind == "flip":
        index, mask = arg
        out = bytearray(state)
        out[index % len(out)] ^= mask
        return bytes(out)
    if kind == "header":
        return _resign(world, state, signed, arg)
    if kind == "utf8":
        index = len(EVENT_CONTEXT) + arg % (len(signed) - len(EVENT_CONTEXT))
        return _resign(world, state, signed[:index] + b"\xff\xfe" + signed[index:])
    if kind in ("field", "data"):
        if kind == "field":
            path, raw, resign = arg
        else:
            key, raw, resign = arg
            path = ("data", key)
        forged = _replace_field(signed, path, raw)
        return _resign(world, state, forged) if resign else \
            Envelope(envelope.recorded_at_us, envelope.signature, forged).to_bytes()
    style, resign = arg
    obj = json.loads(signed[len(EVENT_CONTEXT):])
    text = {"indent": lambda: json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False),
            "ascii": lambda: json.dumps(obj, separators=(",", ":"), sort_keys=True),
            "unsorted": lambda: json.dumps(dict(reversed(obj.items())), separators=(",", ":"),
                                           ensure_ascii=False),
            "spaces": lambda: json.dumps(obj, sort_keys=True, ensure_ascii=False)}[style]()
    forged = EVENT_CONTEXT + text.encode()
    return _resign(world, state, forged) if resign else \
        Envelope(envelope.recorded_at_us, envelope.signature, forged).to_bytes()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 pg_problem: str | None) -> Iterator[World]:
    """One populated ledger per backend for the in-place edits, each undone by ``edited``."""
    directory = tmp_path_factory.mktemp("hostile")
    for url in scratch_ledger_url(request.param, directory, pg_problem):
        world = build_world(url, directory / "keys")
        populate(world)
        yield world
        world.ledger.close()


@contextlib.contextmanager
def edited(world: World, position: int, state: Any) -> Iterator[None]:
    """Store ``state`` at ``position`` for the block, then put the original bytes back."""
    original = next(r[3] for r in rows(world) if r[0] == position)
    set_state(world, position, state)
    try:
        yield
    finally:
        set_state(world, position, original)


@FUZZ
@given(target=st.integers(0, 10**6), edit=hostile_edit())
def test_fuzzed_stored_envelopes_fail_verify_naming_the_event(
        shared_world: World, target: int, edit: tuple[str, Any]) -> None:
    world = shared_world
    stored = rows(world)
    position, _, _, state = stored[target % len(stored)]
    forged = _apply(world, state, edit)
    assume(forged != state)
    with edited(world, position, forged):
        assert_named(world, position)


# ---- parsing units (no storage) -----------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_value_error(data: bytes) -> None:
    for parse in (Envelope.from_bytes, lambda b: Statement.from_signed_bytes(EVENT_CONTEXT + b),
                  lambda b: Statement.from_signed_bytes(EVENT_CONTEXT + b, strict=False)):
        with contextlib.suppress(ValueError):   # anything else fails the test
            parse(data)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c,
                                                                        max_size=3),
                    max_leaves=12))
def test_any_json_value_in_data_only_ever_raises_value_error(value: Any) -> None:
    statement = Statement(origin=ORIGIN, stream="XF-2025-000001", seq=1, prev="0" * 64,
                          type="progress", at="2025-03-02T09:30:00+08:00", actor="officer-07",
                          key="00" * 8, data={"note": "x"})
    body = json.dumps({**statement.to_object(), "data": {"note": value}}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    try:
        parsed = Statement.from_signed_bytes(EVENT_CONTEXT + body.encode("utf-8",
                                                                        "surrogatepass"))
    except ValueError:
        return
    problem = data_problem(parsed.type, parsed.data)   # a reason or None, never an exception
    assert problem is None or isinstance(problem, str)


def test_envelope_bounds() -> None:
    good = Envelope(MAX_RECORDED_US - 1, bytes(64), b"x")
    assert Envelope.from_bytes(good.to_bytes()).recorded_at.year == 2199
    assert Envelope(0, bytes(64), b"").recorded_at == datetime(1970, 1, 1, tzinfo=UTC)
    for recorded in (MAX_RECORDED_US, 2**64 - 1):
        with pytest.raises(ValueError, match="recorded time"):
            Envelope.from_bytes(Envelope(recorded, bytes(64), b"x").to_bytes())
    with pytest.raises(ValueError, match="larger than"):
        Envelope.from_bytes(Envelope(1, bytes(64), b"x" * (MAX_STATEMENT_BYTES + 100)
                                     ).to_bytes())
    with pytest.raises(ValueError, match="not bytes"):
        Envelope.from_bytes("XFE1" + "x" * 100)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log position"):
        leaf_bytes(2**64 + 5, b"")
    with pytest.raises(ValueError, match="log position"):
        leaf_bytes(1.0, b"")  # type: ignore[arg-type]


def test_user_times_are_bounded() -> None:
    assert parse_time("2025-03-02T09:30:00+08:00").year == 2025
    for text in ("9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59+00:00",
                 "2025-03-02T09:30:00+15:00", "2025-03-02T09:30:00"):
        with pytest.raises(InputError):
            parse_time(text)
    with pytest.raises(InputError, match="outside the years"):
        format_time(datetime(2200, 1, 1, tzinfo=UTC))


# ---- the strict schema check (verifiers) beside the lax one (writers) ---------------------

REGISTER = {"channel": "letter", "source": "direct", "category": "help", "petitioner": "p-1",
            "summary": "户口"}


def test_writers_still_pass_ordinary_input_and_what_they_sign_passes_the_strict_check() -> None:
    samples = {
        "register": {**REGISTER, "persons": 2, "reception_day": True, "received_by": "l-1"},
        "accept": {"decision": "accepted", "notice_served_at": "2025-03-02T09:30:00+08:00"},
        "assign": {"unit": "u-1", "handler": "h-1", "due": date(2025, 4, 1)},
        "supervise": {"authority": "leader", "due": "2025-04-01", "form": "listed"},
        "extend": {"days": 10, "reason": "调查"},
        "reply": {"outcome": "support", "resolution": "educated", "text": "答复",
                  "served_at": datetime(2025, 3, 2, 9, tzinfo=timezone(timedelta(hours=8)))},
        "actor.add": {"actor": "a-1", "name": "甲", "roles": ["handler"]},
        "petitioner_sign": {"form": "witnessed", "opinion": "satisfied",
                            "document_sha256": "ab" * 32},
        "reverse_check_finding": {"actor": "a-1", "fault": "late", "evidence": [
            {"stream": "XF-2025-000001", "seq": 3, "hash": "cd" * 32}]},
    }
    for action, data in samples.items():
        signed = parse_data(action, data)
        assert data_problem(action, json.loads(json.dumps(signed))) is None, action
    # Lax for writers: an import file's "2" becomes the integer 2 before it is signed.
    assert parse_data("register", {**REGISTER, "persons": "2"})["persons"] == 2


@pytest.mark.parametrize(("change", "reason"), [
    ({"persons": 2.0}, "schema"), ({"persons": True}, "schema"), ({"persons": "2"}, "schema"),
    ({"reception_day": 0}, "schema"), ({"reception_day": 1}, "schema"),
    ({"persons": 0}, "schema"), ({"ref": None}, "canonical"), ({"summary": " 户口"}, "canonical"),
    ({"extra": 1}, "schema"),
])
def test_strict_check_refuses_what_lax_parsing_would_coerce(change: dict, reason: str) -> None:
    data = parse_data("register", REGISTER)
    problem = data_problem("register", {**data, **change})
    assert problem is not None and reason in problem, problem


def test_strict_check_bounds_times_dates_and_keys() -> None:
    reply = {"outcome": "support", "resolution": "educated", "text": "答复",
             "served_at": "9999-12-31T23:59:59-12:00"}
    assert "outside the years" in (data_problem("reply", reply) or "")
    assert data_problem("assign", {"unit": "u", "handler": "h", "due": "9999-12-31"})
    assert data_problem("actor.rotate_key", {"actor": "a", "public_key": 5})
    assert data_problem("actor.rotate_key", {"actor": "a", "public_key": "ab" * 32}) is None
    assert data_problem("bogus", {}) and data_problem("register", [1])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="outside the years"):   # writers: same bounds
        parse_data("reply", reply)


def test_json_identical_compares_types() -> None:
    assert json_identical({"a": [1, "x", None, True]}, {"a": [1, "x", None, True]})
    for a, b in ((1, True), (0, False), (2, 2.0), ({"a": 1}, {"a": 1, "b": 2}), ([1], [1, 1]),
                 ("1", 1)):
        assert not json_identical(a, b) and not json_identical(b, a)
    deep: Any = 1
    for _ in range(10000):
        deep = [deep]
    assert json_identical(deep, deep)


# ---- policy bounds and date arithmetic ------------------------------------------------------

@pytest.mark.parametrize("data", [
    {"clock_tolerance_seconds": 10**30}, {"clock_tolerance_seconds": MAX_CLOCK_TOLERANCE_SECONDS
                                          + 1},
    {"handling_days": MAX_POLICY_DAYS + 1}, {"acceptance_days": -1}, {"acceptance_days": True},
    {"acceptance_days": 15.0}, {"bribe_days": 1}, {"categories": "help"},
    {"categories": ["x" * 201]}, {"permissions": {"handler": "reply"}}, {"permissions": []},
    {"day_counting": "lunar"}, [], None,
])
def test_policy_refuses_unknown_keys_and_out_of_bound_values(data: Any) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_data(data)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    assert info.value.exit_code == 2


def test_policy_round_trips_at_its_bounds() -> None:
    edge = Policy(acceptance_days=MAX_POLICY_DAYS, handling_days=MAX_POLICY_DAYS,
                  clock_tolerance_seconds=MAX_CLOCK_TOLERANCE_SECONDS)
    assert Policy.from_data(edge.to_data()) == edge
    assert Policy.from_data(Policy().to_data()) == Policy()


bounded_times = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31, 23, 59)),
    st.integers(-14 * 60, 14 * 60))


@settings(max_examples=200, deadline=None)
@given(bounded_times)
def test_no_accepted_time_overflows_business_date_or_policy_arithmetic(moment: datetime) -> None:
    text = format_time(moment)           # accepted by writers ...
    assert parse_time(text) == moment    # ... and by the parsers
    policy = Policy(handling_days=MAX_POLICY_DAYS, acceptance_days=MAX_POLICY_DAYS)
    day = business_date(moment)
    assert policy.add_days(day, policy.acceptance_days) == day + timedelta(MAX_POLICY_DAYS)
    assert policy.handling_due(day, 10**9) == date.max   # saturates, never overflows


def test_working_days_at_the_latest_accepted_time() -> None:
    latest = datetime(2199, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14)))
    day = business_date(latest)
    assert day == date(2200, 1, 1)
    policy = Policy(day_counting="working", handling_days=MAX_POLICY_DAYS)
    assert policy.handling_due(day) > date(2213, 1, 1)   # ≥ 3650 weekdays later


def test_business_date_of_an_unbounded_time_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        business_date(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))))

