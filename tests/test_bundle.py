"""Offline bundles: a clean bundle passes and every tamper is caught, naming the first bad event.

Bundles are built from the ``world`` ledger (SQLite and PostgreSQL) and verified with the
database made unreachable, as an inspector's laptop would verify them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from ledger.errors import InputError
from ledger.log.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from ledger.log.keys import PublicKey, Signer
from ledger.log.merkle import inclusion_proof, leaf_hash, node_hash
from ledger.log.statement import (
    EVENT_CONTEXT,
    ZERO_HASH,
    Envelope,
    Statement,
    leaf_bytes,
    now_us,
)
from ledger.storage.store import PendingEvent, Store
from ledger.verification.bundle import (
    BUNDLE_FORMAT,
    MAX_BUNDLE_BYTES,
    BundleReport,
    bundle_bytes,
    export_bundle,
    verify_bundle,
)
from ledger.verification.verify import Failure
from tests.tamper import forge
from tests.world import ACTORS, ORIGIN, World, build_world, t

DOC = Path(__file__).resolve().parent.parent / "docs" / "bundle-format.md"


# ---- helpers -----------------------------------------------------------------------------------

def trusted(world: World) -> tuple[bytes, bytes]:
    """The world's trust anchors by role: (log key, admin key)."""
    log, admin = (PublicKey.from_pem((world.keystore / name).read_bytes()).raw
                  for name in ("log.pub", "admin.pub"))
    return log, admin


def export(world: World, *cases: str) -> dict[str, Any]:
    return export_bundle(world.ledger.store, list(cases))


_WORLD: Any = object()   # "the world's own anchor"


def check(world: World, bundle: dict[str, Any] | bytes, *, log_key: Any = _WORLD,
          admin_key: Any = _WORLD) -> BundleReport:
    """Verify with every Store entry point booby-trapped: no database may be used."""
    data = bundle if isinstance(bundle, bytes) else bundle_bytes(bundle)
    log, admin = trusted(world)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("__init__", "query", "cursor", "stream"):
            patch.setattr(Store, name, _refuse)
        return verify_bundle(data, log_key=log if log_key is _WORLD else log_key,
                             admin_key=admin if admin_key is _WORLD else admin_key)


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("verify_bundle touched the database")


def first(report: BundleReport) -> Failure:
    assert not report.ok, "tampering went undetected"
    assert report.first_failure is not None
    return report.first_failure


def find(bundle: dict[str, Any], stream: str, seq: int) -> dict[str, Any]:
    return next(e for e in bundle["events"] if (e["stream"], e["seq"]) == (stream, seq))


def envelope(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["envelope"])


def set_envelope(event: dict[str, Any], state: bytes) -> None:
    event["envelope"] = base64.b64encode(state).decode("ascii")


def named(failure: Failure, event: dict[str, Any]) -> bool:
    return (failure.stream, failure.seq, failure.position) == \
        (event["stream"], event["seq"], event["position"])


def forge_event(world: World, case: str, action: str, data: dict[str, Any], *, by: str,
                at: Any, signer: Signer | None = None, recorded_at_us: int | None = None) -> int:
    return forge(world.ledger.store, signer or world.ledger.keystore.load(by), stream=case,
                 action=action, actor=by, at=at, data=data,
                 log_signer=world.ledger._checkpoint_signer(), recorded_at_us=recorded_at_us)


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                    *args])


# ---- clean bundles -----------------------------------------------------------------------------

def test_clean_bundle_passes_without_a_database(world: World) -> None:
    case = world.closed_case()
    other = world.closed_case("2025-04-01")
    bundle = export(world, case)
    store = world.ledger.store
    assert bundle["format"] == BUNDLE_FORMAT and bundle["origin"] == ORIGIN
    assert bundle["cases"] == [case] and bundle["referenced_cases"] == []
    directory = store.stream("directory")
    assert [e["seq"] for e in bundle["events"] if e["stream"] == "directory"] == \
        [r.seq for r in directory]
    assert [e["seq"] for e in bundle["events"] if e["stream"] == case] == \
        [r.seq for r in store.stream(case)]
    assert other not in {e["stream"] for e in bundle["events"]}
    positions = [e["position"] for e in bundle["events"]]
    assert positions == sorted(positions)
    assert all(e["inclusion_proof"] for e in bundle["events"])
    assert parse_checkpoint(bundle["checkpoint"]).checkpoint.size == store.leaf_count()
    event = find(bundle, case, 3)
    record = store.event_at(case, 3)
    assert record is not None and envelope(event) == record.state
    report = check(world, bundle)
    assert report.ok, report.failures
    assert (report.events, report.streams, report.checkpoint_size) == \
        (len(bundle["events"]), 2, store.leaf_count())


def test_several_cases_and_repeat_of_references(world: World) -> None:
    first_case = world.closed_case()
    repeat = world.register(t("2025-05-06"), repeat_of=[first_case])
    again = world.register(t("2025-05-07"), repeat_of=[repeat])
    bundle = export(world, again)
    assert bundle["referenced_cases"] == sorted([first_case, repeat])
    assert check(world, bundle).ok
    both = export(world, first_case, again, first_case)
    assert both["cases"] == [first_case, again] and both["referenced_cases"] == [repeat]
    assert check(world, both).ok


def test_missing_referenced_case_is_caught(world: World) -> None:
    earlier = world.closed_case()
    repeat = world.register(t("2025-05-06"), repeat_of=[earlier])
    bundle = export(world, repeat)
    bundle["referenced_cases"] = []
    bundle["events"] = [e for e in bundle["events"] if e["stream"] != earlier]
    failure = first(check(world, bundle))
    assert named(failure, find(bundle, repeat, 1)) and failure.check == 4
    assert earlier in failure.reason


def test_export_refuses_unknown_case(world: World) -> None:
    with pytest.raises(InputError):
        export(world, "XF-2025-999999")
    with pytest.raises(InputError):
        export(world)


# ---- the tamper matrix of a bundle ---------------------------------------------------------

def test_flip_a_byte_in_an_event(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    event = find(bundle, case, 4)
    state = bytearray(envelope(event))
    state[state.index("已约谈".encode()) + 1] ^= 0x01
    set_envelope(event, bytes(state))
    report = check(world, bundle)
    failure = first(report)
    assert named(failure, event) and failure.check in (1, 2)
    assert {f.check for f in report.failures if named(f, event)} >= {7}


def test_flip_a_byte_in_a_signature(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    event = find(bundle, case, 7)
    state = bytearray(envelope(event))
    state[20] ^= 0x80                       # inside the 64-byte signature
    set_envelope(event, bytes(state))
    failure = first(check(world, bundle))
    assert named(failure, event) and failure.check == 2


def test_flip_a_byte_in_a_proof_node(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    event = find(bundle, case, 5)
    node = bytearray(bytes.fromhex(event["inclusion_proof"][1]))
    node[0] ^= 0x01
    event["inclusion_proof"][1] = node.hex()
    report = check(world, bundle)
    assert named(first(report), event) and first(report).check == 7
    assert [f for f in report.failures if f.check == 7] == [first(report)]
    # an event that fails a check never counts: the later events that need it fail too
    assert all(f.position > event["position"] for f in report.failures[1:])


@pytest.mark.parametrize("line", [0, 1, 2, 4])
def test_flip_a_byte_in_the_checkpoint_note(world: World, line: int) -> None:
    bundle = export(world, world.closed_case())
    lines = bundle["checkpoint"].split("\n")
    text = lines[line]
    column = len(text) // 2
    lines[line] = text[:column] + ("A" if text[column] != "A" else "B") + text[column + 1:]
    bundle["checkpoint"] = "\n".join(lines)
    failure = first(check(world, bundle))
    assert (failure.check, failure.position, failure.stream) == (7, 0, None)
    assert "checkpoint" in failure.reason


def test_swap_two_events_in_the_list(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    events = bundle["events"]
    i, j = events.index(find(bundle, case, 3)), events.index(find(bundle, case, 4))
    events[i], events[j] = events[j], events[i]
    failure = first(check(world, bundle))
    assert failure.check == 7 and "log order" in failure.reason


def test_swap_two_events_positions(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    a, b = find(bundle, case, 3), find(bundle, case, 4)
    a["position"], b["position"] = b["position"], a["position"]
    a["leaf_index"], b["leaf_index"] = b["leaf_index"], a["leaf_index"]
    bundle["events"].sort(key=lambda e: e["position"])
    report = check(world, bundle)
    failure = first(report)
    assert (failure.stream, failure.position) == (case, min(a["position"], b["position"]))
    assert {(f.seq, f.check) for f in report.failures} >= {(3, 7), (4, 7)}


@pytest.mark.parametrize("seq", [4, 1, 9])
def test_drop_an_event(world: World, seq: int) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    bundle["events"].remove(find(bundle, case, seq))
    report = check(world, bundle)
    if seq == 9:   # the newest event: a stream's tail cannot be proven complete (documented)
        assert report.ok
        return
    failure = first(report)
    assert named(failure, find(bundle, case, seq + 1))
    # without its register event the case is unregistered (4) before the chain gap (5)
    assert failure.check == (4 if seq == 1 else 5)
    assert any(f.check == 5 and f"from {seq - 1} to {seq + 1}" in f.reason
               for f in report.failures)


def test_drop_a_directory_event(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    dropped = next(e for e in bundle["events"] if e["type"] == "actor.add"
                   and b'"actor":"lead-03"' in envelope(e))
    bundle["events"].remove(dropped)
    report = check(world, bundle)
    failure = first(report)
    assert (failure.stream, failure.seq, failure.check) == ("directory", dropped["seq"] + 1, 5)
    consent = find(bundle, case, 7)
    assert any(named(f, consent) and f.check == 3 for f in report.failures)


def test_replace_the_trusted_admin_key(world: World) -> None:
    bundle = export(world, world.closed_case())
    failure = first(check(world, bundle, admin_key=Signer.generate("x").public))
    assert (failure.stream, failure.seq, failure.check) == ("directory", 1, 3)
    assert "admin key" in failure.reason


def test_forged_init_with_another_admin_key(world: World) -> None:
    bundle = export(world, world.closed_case())
    init = find(bundle, "directory", 1)
    env = Envelope.from_bytes(envelope(init))
    statement = Statement.from_signed_bytes(env.signed)
    rogue = Signer.generate("admin-01")
    data = {**statement.data, "admin_key": rogue.public.hex()}
    forged = Statement(**{**statement.to_object(), "data": data, "key": rogue.key_id})
    signed = forged.signed_bytes()
    set_envelope(init, Envelope(env.recorded_at_us, rogue.sign(signed), signed).to_bytes())
    report = check(world, bundle)
    failure = first(report)
    assert named(failure, init) and failure.check == 3
    assert any(f.check == 7 and named(f, init) for f in report.failures)


def test_replace_the_trusted_log_key(world: World) -> None:
    bundle = export(world, world.closed_case())
    failure = first(check(world, bundle, log_key=Signer.generate("x").public))
    assert (failure.position, failure.check) == (0, 7)
    assert "log key" in failure.reason


def test_checkpoint_resigned_by_another_log_key(world: World) -> None:
    bundle = export(world, world.closed_case())
    checkpoint = parse_checkpoint(bundle["checkpoint"]).checkpoint
    bundle["checkpoint"] = sign_checkpoint(Checkpoint(ORIGIN, checkpoint.size, checkpoint.root),
                                           ORIGIN, Signer.generate("log"))
    failure = first(check(world, bundle))
    assert (failure.position, failure.check) == (0, 7)
    assert "does not verify" in failure.reason


def test_change_a_position(world: World) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    event = bundle["events"][-1]
    event["position"] += 100
    report = check(world, bundle)
    assert [(f.check, f.stream, f.seq) for f in report.failures] == \
        [(7, case, event["seq"])]


@pytest.mark.parametrize("how", ["empty", "removed", "truncated"])
def test_remove_a_proof(world: World, how: str) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    event = find(bundle, case, 6)
    if how == "empty":
        event["inclusion_proof"] = []
    elif how == "removed":
        del event["inclusion_proof"]
    else:
        event["inclusion_proof"].pop()
    failure = first(check(world, bundle))
    assert named(failure, event) and failure.check == (0 if how == "removed" else 7)


def test_forged_event_added_to_the_bundle(world: World) -> None:
    case = world.accepted_case()
    bundle = export(world, case)
    last = bundle["events"][-1]
    officer = world.ledger.keystore.load("officer-08")      # a valid key, not the assignee
    prev = Envelope.from_bytes(envelope(last)).hash
    statement = Statement(origin=ORIGIN, stream=case, seq=last["seq"] + 1, prev=prev,
                          type="progress", at=t("2025-03-05").isoformat(), actor="officer-08",
                          key=officer.key_id, data={"note": "伪造进展", "follow_up": False})
    signed = statement.signed_bytes()
    state = Envelope(Envelope.from_bytes(envelope(last)).recorded_at_us + 1,
                     officer.sign(signed), signed).to_bytes()
    bundle["events"].append({"position": last["position"] + 1,
                             "leaf_index": last["leaf_index"] + 1, "stream": case,
                             "seq": statement.seq, "type": "progress",
                             "envelope": base64.b64encode(state).decode(),
                             "inclusion_proof": last["inclusion_proof"]})
    report = check(world, bundle)
    forged = bundle["events"][-1]
    assert named(first(report), forged)
    assert {f.check for f in report.failures if named(f, forged)} == {4, 7}


def test_forged_event_in_the_ledger_is_caught_by_its_rules(world: World) -> None:
    """Well proven (it is in the log) and well signed, but by a handler not assigned."""
    case = world.accepted_case()
    position = forge_event(world, case, "progress", {"note": "伪造进展", "follow_up": False},
                           by="officer-08", at=t("2025-03-05"))
    report = check(world, export(world, case))
    assert [(f.check, f.stream, f.position) for f in report.failures] == \
        [(4, case, position)]
    assert "officer-08" in report.failures[0].reason


def test_revoked_key_and_backdated_recording_in_the_ledger(world: World) -> None:
    case = world.accepted_case()
    world.ledger.revoke_key("officer-07", as_actor="admin-01", at=t("2025-03-04"))
    revoked = forge_event(world, case, "progress", {"note": "吊销后签名", "follow_up": False},
                          by="officer-07", at=t("2025-03-05"))
    recorded = t("2025-03-05") - timedelta(days=1)
    backdated = forge_event(world, case, "remind", {}, by="supervisor-01", at=t("2025-03-06"),
                            recorded_at_us=int(recorded.timestamp() * 1_000_000))
    report = check(world, export(world, case))
    assert (report.failures[0].position, report.failures[0].check) == (revoked, 3)
    assert "revoked" in report.failures[0].reason
    assert any(f.position == backdated and f.check == 6 for f in report.failures)


@pytest.mark.parametrize("mutate", ["not json", "wrong format", "extra field", "case gone"])
def test_malformed_bundles(world: World, mutate: str) -> None:
    case = world.closed_case()
    bundle = export(world, case)
    if mutate == "not json":
        data = bundle_bytes(bundle)[:-40]
    else:
        if mutate == "wrong format":
            bundle["format"] = "xinfang-ledger/bundle/v9"
        elif mutate == "extra field":
            bundle["note"] = "trust me"
        else:
            bundle["events"] = [e for e in bundle["events"] if e["stream"] != case]
        data = bundle_bytes(bundle)
    failure = first(check(world, data))
    assert failure.check == 0


# ---- CLI ---------------------------------------------------------------------------------------

def test_cli_export_and_verify_bundle(world: World, tmp_path: Path) -> None:
    case = world.closed_case()
    target = tmp_path / "case.bundle.json"
    result = run(world, "export", case, "--out", str(target))
    assert result.exit_code == 0, result.output
    keys = ["--log-key", str(world.keystore / "log.pub"),
            "--admin-key", str(world.keystore / "admin.pub")]
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify-bundle", str(target), *keys, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert out["ok"] is True and out["failures"] == [] and out["cases"] == [case]
    bundle = json.loads(target.read_text(encoding="utf-8"))
    bundle["events"].remove(find(bundle, case, 4))
    target.write_bytes(bundle_bytes(bundle))
    bad = runner.invoke(cli, ["verify-bundle", str(target), *keys, "--lang", "en"])
    assert bad.exit_code == 1
    assert f"first bad event: {case}#5" in bad.output
    zh = runner.invoke(cli, ["verify-bundle", str(target), *keys])   # Chinese by default
    assert zh.exit_code == 1 and f"首个异常事件：{case}#5" in zh.output


def test_cli_export_all_closed_to_stdout(world: World) -> None:
    closed = world.closed_case()
    world.accepted_case("2025-04-01")
    result = run(world, "export", "--all-closed")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cases"] == [closed]
    assert run(world, "export").exit_code == 2
    assert run(world, "export", "XF-2025-999999").exit_code == 2


# ---- the specification's worked example and test vector ------------------------------------

def _doc_blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_doc_test_vector_verifies() -> None:
    vector = next(b for b in _doc_blocks("json") if '"format"' in b)
    log_key, admin_key = [PublicKey.from_pem(pem.encode()).raw for pem in _doc_blocks("pem")]
    assert verify_bundle(vector.encode(), log_key=log_key, admin_key=admin_key).ok
    tampered = json.loads(vector)
    tampered["events"][2]["inclusion_proof"].reverse()
    assert not verify_bundle(json.dumps(tampered).encode(), log_key=log_key,
                             admin_key=admin_key).ok
    assert not verify_bundle(vector.encode(), log_key=admin_key, admin_key=log_key).ok


def test_doc_worked_example_numbers() -> None:
    """Every hash the worked example states is what its recipe computes."""
    text = DOC.read_text(encoding="utf-8")
    vector = json.loads(next(b for b in _doc_blocks("json") if '"format"' in b))
    event = copy.deepcopy(vector["events"][2])
    leaf = struct.pack(">Q", event["position"]) + base64.b64decode(event["envelope"])
    value = hashlib.sha256(b"\x00" + leaf).digest()
    steps = [value]
    proof = [bytes.fromhex(p) for p in event["inclusion_proof"]]
    for sibling, right in zip(proof, [True, False, True], strict=True):
        pair = value + sibling if right else sibling + value
        value = hashlib.sha256(b"\x01" + pair).digest()
        steps.append(value)
    root = base64.b64decode(vector["checkpoint"].split("\n")[2])
    assert value == root
    for digest in steps:
        assert digest.hex() in text


# ---- signed stream heads: nothing left out ----------------------------------------------------

def _signed_heads_bundle(world: World) -> tuple[dict, dict[str, bytes], str]:
    from ledger.log.checkpoint import sign_note
    from ledger.verification.bundle import export_bundle

    led = world.ledger
    case = world.closed_case()
    log = led.keystore.load("log")
    origin = led.directory().origin
    bundle = export_bundle(led.store, [case],
                           sign_heads=lambda text: sign_note(text, origin, log))
    keys = {"log_key": log.public, "admin_key": led.keystore.load("admin-01").public}
    return bundle, keys, case


def test_signed_stream_heads_make_a_bundle_complete(world: World) -> None:
    from ledger.verification.bundle import bundle_bytes, verify_bundle

    bundle, keys, _ = _signed_heads_bundle(world)
    report = verify_bundle(bundle_bytes(bundle), **keys)
    assert report.ok and report.complete


def test_dropping_the_newest_events_of_a_case_is_caught_with_signed_heads(world: World) -> None:
    import copy

    from ledger.verification.bundle import bundle_bytes, verify_bundle

    bundle, keys, case = _signed_heads_bundle(world)
    cut = copy.deepcopy(bundle)
    last = max(i for i, e in enumerate(cut["events"]) if e["stream"] == case)
    dropped = cut["events"].pop(last)
    report = verify_bundle(bundle_bytes(cut), **keys)
    assert not report.ok and not report.complete
    assert any(f.check == 7 and f.stream == case and "left out" in f.reason
               for f in report.failures)
    assert dropped["type"] == "close"


def test_forged_stream_heads_note_is_caught(world: World) -> None:
    import copy

    from ledger.verification.bundle import bundle_bytes, verify_bundle

    bundle, keys, _ = _signed_heads_bundle(world)
    forged = copy.deepcopy(bundle)
    forged["stream_heads"] = forged["stream_heads"].replace(" 9 ", " 8 ", 1)
    assert forged["stream_heads"] != bundle["stream_heads"]
    report = verify_bundle(bundle_bytes(forged), **keys)
    assert not report.ok
    assert any(f.check == 7 and "stream-heads" in f.reason for f in report.failures)


# ---- anchors by role (issue 9, class 4) --------------------------------------------------------

OTHER_ORIGIN = "other-city.example/ledger"


def rebuild(world: World, bundle: dict[str, Any], *, log: Signer, admin: Signer,
            origin: str = ORIGIN, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bundle as a forger holding ``log`` and ``admin`` would rebuild it from scratch: the
    init names those keys and ``origin``; every event is re-signed for ``origin`` (admin-01's
    by ``admin``, the others by their own signers, whose keys the world's keystore holds),
    re-chained, renumbered 1..n and proven against a checkpoint signed by ``log``. ``policy``
    replaces settings of the init's policy."""
    heads: dict[str, str] = {}
    states: list[bytes] = []
    for event in bundle["events"]:
        env = Envelope.from_bytes(envelope(event))
        statement = Statement.from_signed_bytes(env.signed)
        data = statement.data
        if statement.type == "init":
            data = {**data, "origin": origin, "log_key": log.public.hex(),
                    "admin_key": admin.public.hex()}
            if policy is not None:
                data["policy"] = {**data["policy"], **policy}
        signer = admin if statement.actor == "admin-01" else \
            world.ledger.keystore.load(statement.actor)
        forged = Statement(**{**statement.to_object(), "origin": origin, "data": data,
                              "key": signer.key_id,
                              "prev": heads.get(statement.stream, ZERO_HASH)})
        signed = forged.signed_bytes()
        heads[statement.stream] = hashlib.sha256(signed).hexdigest()
        states.append(Envelope(env.recorded_at_us, signer.sign(signed), signed).to_bytes())
    leaves = [leaf_hash(leaf_bytes(i + 1, state)) for i, state in enumerate(states)]

    @cache
    def node(level: int, index: int) -> bytes:
        return leaves[index] if level == 0 else node_hash(node(level - 1, 2 * index),
                                                          node(level - 1, 2 * index + 1))

    size, root = len(leaves), _root(leaves)
    events = [{**event, "position": i + 1, "leaf_index": i,
               "envelope": base64.b64encode(state).decode("ascii"),
               "inclusion_proof": [n.hex() for n in inclusion_proof(i, size, node)]}
              for i, (event, state) in enumerate(zip(bundle["events"], states, strict=True))]
    rebuilt = {key: value for key, value in bundle.items() if key != "stream_heads"}
    rebuilt.update(origin=origin, events=events,
                   checkpoint=sign_checkpoint(Checkpoint(origin, size, root), origin,
                                              log))
    return rebuilt


def _root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash, straight from the definition."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_root(leaves[:k]), _root(leaves[k:]))


def reasons(report: BundleReport) -> str:
    return "\n".join(f.reason for f in report.failures)


def test_the_forgers_rebuild_passes_under_its_own_two_keys(sample: Sample) -> None:
    """The forging tool below is sound: with two keys of its own, its bundle verifies under
    them (so the failures of the next tests come from the rules, not from a broken forgery)."""
    log, admin = Signer.generate("log"), Signer.generate("admin-01")
    forged = rebuild(sample.world, copy.deepcopy(sample.bundle), log=log, admin=admin)
    report = check(sample.world, forged, log_key=log.public, admin_key=admin.public)
    assert report.ok, report.failures


def test_one_key_for_both_roles_fails(sample: Sample) -> None:
    """Issue 9 class 4: a forged ledger whose init names one key as log key and admin key used
    to pass when that one key was trusted; now each anchor is given by role and fails."""
    rogue = Signer.generate("admin-01")
    forged = rebuild(sample.world, copy.deepcopy(sample.bundle), log=rogue, admin=rogue)
    init = find(forged, "directory", 1)
    report = check(sample.world, forged, log_key=rogue.public, admin_key=rogue.public)
    assert not report.ok
    assert any((f.position, f.check, f.stream) == (0, 3, None) and "same key" in f.reason
               for f in report.failures)
    assert any(named(f, init) and f.check == 3 and "one key for both" in f.reason
               for f in report.failures)
    # the same forged file under the real anchors fails on the keys themselves
    real = check(sample.world, forged)
    assert any(named(f, init) and "not the trusted admin key" in f.reason
               for f in real.failures)
    assert any(f.check == 7 and "does not verify" in f.reason for f in real.failures)
    # and with only one anchor given, the other is reported missing
    half = check(sample.world, forged, log_key=rogue.public, admin_key=None)
    assert any("no trusted admin key given" in f.reason for f in half.failures)


@pytest.mark.parametrize("missing", ["log", "admin", "both"])
def test_missing_anchor_is_named_as_missing(sample: Sample, missing: str) -> None:
    bundle = copy.deepcopy(sample.bundle)
    log, admin = trusted(sample.world)
    report = check(sample.world, bundle, log_key=None if missing in ("log", "both") else log,
                   admin_key=None if missing in ("admin", "both") else admin)
    assert not report.ok
    text = reasons(report)
    for role, option in (("log", "--log-key"), ("admin", "--admin-key")):
        given_ = missing not in (role, "both")
        assert (f"no trusted {role} key given: pass {option} {role}.pub" in text) != given_
        # a missing anchor is not a wrong one
        assert f"is not the trusted {role} key" not in text
    if missing == "admin":   # everything the log key anchors still verifies
        assert report.checkpoint_size is not None
        assert [f.check for f in report.failures] == [3]
    else:
        assert report.checkpoint_size is None


def test_cli_missing_anchor_exits_1_with_the_reason(sample: Sample, tmp_path: Path) -> None:
    target = tmp_path / "case.bundle.json"
    target.write_bytes(sample.data)
    result = CliRunner().invoke(cli, ["verify-bundle", str(target),
                                      "--log-key", str(sample.log_pub)])
    assert result.exit_code == 1, result.output
    assert "no trusted admin key given: pass --admin-key admin.pub" in result.output


def test_swapped_or_doubled_anchors_fail(sample: Sample) -> None:
    bundle = copy.deepcopy(sample.bundle)
    log, admin = trusted(sample.world)
    init = find(bundle, "directory", 1)
    swapped = check(sample.world, bundle, log_key=admin, admin_key=log)
    assert not swapped.ok and swapped.checkpoint_size is None
    assert any(named(f, init) and f.check == 3 and "not the trusted admin key" in f.reason
               for f in swapped.failures)
    assert any(f.check == 7 and "checkpoint does not verify" in f.reason
               for f in swapped.failures)
    for key in (log, admin):
        doubled = check(sample.world, bundle, log_key=key, admin_key=key)
        assert not doubled.ok
        assert "the trusted log key and admin key are the same key" in reasons(doubled)


def test_cli_trust_option_is_refused(sample: Sample, tmp_path: Path) -> None:
    target = tmp_path / "case.bundle.json"
    target.write_bytes(sample.data)
    pub = [str(sample.log_pub), str(sample.admin_pub)]
    result = CliRunner().invoke(cli, ["verify-bundle", str(target),
                                      "--trust", pub[0], "--trust", pub[1]])
    assert result.exit_code == 2
    assert "--log-key" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("problem", ["missing", "not pem", "directory",
                                     "bundle missing"])
def test_cli_bad_key_files_exit_2(sample: Sample, tmp_path: Path, problem: str) -> None:
    target = tmp_path / "case.bundle.json"
    target.write_bytes(sample.data)
    bad = tmp_path / "bad.pub"
    if problem == "not pem":
        bad.write_bytes(b"\x00\xffnot a key")
    elif problem == "directory":
        bad = tmp_path
    bundle = tmp_path / "nowhere.json" if problem == "bundle missing" else target
    result = CliRunner().invoke(cli, ["verify-bundle", str(bundle), "--log-key", str(bad),
                                      "--admin-key", str(sample.admin_pub)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


# ---- cross-ledger replay ----------------------------------------------------------------------

def test_event_signed_for_another_ledger_is_named(world: World) -> None:
    """An officer's event signed for another ledger (same key, other origin), planted in this
    ledger's log and covered by its checkpoint: check 1 names it."""
    case = world.accepted_case()
    store = world.ledger.store
    head = store.stream_head(case)
    assert head is not None
    officer = world.ledger.keystore.load("officer-07")
    statement = Statement(origin=OTHER_ORIGIN, stream=case, seq=head.seq + 1,
                          prev=Envelope.from_bytes(head.state).hash, type="progress",
                          at=t("2025-03-05").isoformat(), actor="officer-07",
                          key=officer.key_id, data={"note": "另一台账的进展", "follow_up": False})
    signed = statement.signed_bytes()
    state = Envelope(now_us(), officer.sign(signed), signed).to_bytes()
    position = store.append([PendingEvent(case, statement.seq, "progress", state)],
                            world.ledger._checkpoint_signer())[0]
    report = check(world, export(world, case))
    assert [(f.check, f.stream, f.seq, f.position) for f in report.failures] == \
        [(1, case, statement.seq, position)]
    assert OTHER_ORIGIN in report.failures[0].reason


def test_bundle_of_another_ledger_fails(sample: Sample) -> None:
    bundle = copy.deepcopy(sample.bundle)
    other = rebuild(sample.world, bundle, log=Signer.generate("log"),
                    admin=Signer.generate("admin-01"), origin=OTHER_ORIGIN)
    report = check(sample.world, other)
    init = find(other, "directory", 1)
    assert not report.ok and report.checkpoint_size is None
    assert any(named(f, init) and f.check == 3 for f in report.failures)
    assert any(named(f, init) and f.check == 7 and "log key" in f.reason
               for f in report.failures)
    # relabelled as this ledger's: the origins disagree
    other["origin"] = ORIGIN
    assert any(f.check == 0 and "origin" in f.reason for f in check(sample.world, other).failures)


def test_event_spliced_from_another_ledger_is_named(sample: Sample) -> None:
    case = sample.bundle["cases"][0]
    bundle = copy.deepcopy(sample.bundle)
    other = rebuild(sample.world, bundle, log=Signer.generate("log"),
                    admin=Signer.generate("admin-01"), origin=OTHER_ORIGIN)
    target = find(bundle, case, 4)
    target["envelope"] = find(other, case, 4)["envelope"]
    report = check(sample.world, bundle)
    assert named(first(report), target)
    assert any(named(f, target) and f.check == 1 and OTHER_ORIGIN in f.reason
               for f in report.failures)
    assert any(named(f, target) and f.check == 7 for f in report.failures)


def test_init_signed_for_another_origin_than_it_records(sample: Sample) -> None:
    """The admin signs an init whose statement origin is not the origin it records."""
    bundle = copy.deepcopy(sample.bundle)
    init = find(bundle, "directory", 1)
    env = Envelope.from_bytes(envelope(init))
    statement = Statement.from_signed_bytes(env.signed)
    admin = sample.world.ledger.keystore.load("admin-01")
    signed = Statement(**{**statement.to_object(), "origin": OTHER_ORIGIN}).signed_bytes()
    set_envelope(init, Envelope(env.recorded_at_us, admin.sign(signed), signed).to_bytes())
    report = check(sample.world, bundle)
    assert any(named(f, init) and f.check == 1 and "origin" in f.reason
               for f in report.failures)


# ---- hostile bundles (issue 9, class 5): any bytes give a report, exit 0 or 1 ----------------

@dataclass
class Sample:
    """One exported bundle (a closed case, with signed stream heads) of a SQLite world, shared
    by the hostile-input tests: they attack the file, not the database."""

    world: World
    bundle: dict[str, Any]
    data: bytes
    keys: dict[str, bytes]
    paths: list[tuple[Any, ...]]
    log_pub: Path
    admin_pub: Path
    signers: dict[str, Signer]   # every actor's key


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sample]:
    from ledger.log.checkpoint import sign_note

    root = tmp_path_factory.mktemp("hostile")
    world = build_world(f"sqlite:///{root / 'ledger.db'}", root / "keys")
    case = world.closed_case()
    log = world.ledger.keystore.load("log")
    bundle = export_bundle(world.ledger.store, [case],
                           sign_heads=lambda text: sign_note(text, ORIGIN, log))
    keys = dict(zip(("log_key", "admin_key"), trusted(world), strict=True))
    assert verify_bundle(bundle_bytes(bundle), **keys).complete
    signers = {actor: world.ledger.keystore.load(actor)
               for actor in ["admin-01", *(a for a, _, _, _ in ACTORS)]}
    yield Sample(world, bundle, bundle_bytes(bundle), keys, list(_paths(bundle)),
                 root / "keys" / "log.pub", root / "keys" / "admin.pub", signers)
    world.ledger.close()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every member and element path of a JSON value, containers included."""
    if prefix:
        yield prefix
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


DEEP = "\x00deep:"   # a placeholder replaced by JSON nested this deep after encoding


def _dumps(obj: Any, *, sort: bool = False) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, sort_keys=sort,
                      separators=(",", ":") if sort else None)
    for depth in {int(m) for m in re.findall(r'"\\u0000deep:(\d+)"', text)}:
        text = text.replace(f'"\\u0000deep:{depth}"', "[" * depth + "]" * depth)
    return text.encode("utf-8", "surrogatepass")


def resign(sample: Sample, event: dict[str, Any], path: tuple[Any, ...], value: Any,
           recorded_at_us: int | None = None) -> None:
    """Replace a value inside an event's statement and sign the result with the key of the
    actor it names, as an insider holding that key would: the hostile content gets past
    check 2 and into the parsers."""
    state = envelope(event)   # split by hand: it may be anything, e.g. flipped bytes
    magic, old_recorded, _ = struct.unpack_from(">4sQ64s", state.ljust(76, b"\0"))
    signed = state[76:]
    try:
        obj = json.loads(signed[len(EVENT_CONTEXT):])
    except ValueError:   # flipped bytes: signed as they are
        obj = None
    if path:
        _set(obj, path, value)
        signed = EVENT_CONTEXT + _dumps(obj, sort=True)
    actor = obj.get("actor") if isinstance(obj, dict) else None
    signer = sample.signers.get(actor if isinstance(actor, str) else "", sample.signers["admin-01"])
    recorded = old_recorded if recorded_at_us is None else recorded_at_us
    set_envelope(event, struct.pack(">4sQ64s", magic, recorded, signer.sign(signed)) + signed)


HOSTILE_VALUES: list[Any] = [2**64 + 5, 2**64 - 1, 2**63, -1, 0, -(2**63), 10**30, 1.5, 1e308, True,
                  None, "", "x" * 200_000, "\x1b[31m", f"{DEEP}100000", f"{DEEP}50",
                  "9999-12-31T23:59:59-12:00", [[[[]]]], {"a": {}}]


def _hostile(sample: Sample, name: str) -> bytes:
    bundle = copy.deepcopy(sample.bundle)
    case = sample.bundle["cases"][0]
    init = find(bundle, "directory", 1)
    event = find(bundle, case, 3)
    if name == "position 2^64+5":
        event["position"] = 2**64 + 5
    elif name == "position negative":
        event["position"] = -5
    elif name == "seq 2^64+5":
        event["seq"] = 2**64 + 5
    elif name == "leaf index 2^70":
        event["leaf_index"] = 2**70
    elif name == "float position":
        event["position"] = 3.0
    elif name == "bool seq":
        event["seq"] = True
    elif name == "huge base64":
        event["envelope"] = "QUFB" * 1_000_000
    elif name == "65 proof nodes":
        event["inclusion_proof"] = event["inclusion_proof"] * 20
    elif name == "nested proof":
        event["inclusion_proof"] = [[["00" * 32]]]
    elif name == "deep nesting value":
        event["type"] = f"{DEEP}100000"
    elif name == "deep nesting document":
        return b"[" * 100_000 + b"]" * 100_000
    elif name == "not an object":
        return b"[1, 2, 3]"
    elif name == "a number":
        return b"18446744073709551621"
    elif name == "huge integer literal":
        return b'{"format": "xinfang-ledger/bundle/v1", "x": ' + b"9" * 10_000 + b"}"
    elif name == "NaN":
        event["position"] = float("nan")
    elif name == "not utf-8":
        return b'{"format": "\xff\xfe"}'
    elif name == "empty":
        return b""
    elif name == "duplicate events":
        bundle["events"].insert(bundle["events"].index(event), copy.deepcopy(event))
    elif name == "duplicate member":
        return sample.data.replace(b'"cases": [', b'"cases": ["XF-2025-999999"], "cases": [', 1)
    elif name == "control characters in a stream":
        event["stream"] = "XF\x1b[2J"
    elif name == "huge case list":
        bundle["cases"] = [f"XF-2025-{n:06d}" for n in range(5_000)]
    elif name == "events not a list":
        bundle["events"] = {"0": event}
    elif name == "absurd clock tolerance":
        resign(sample, init, ("data", "policy", "clock_tolerance_seconds"), 10**30)
    elif name == "negative clock tolerance":
        resign(sample, init, ("data", "policy", "clock_tolerance_seconds"), -(2**63))
    elif name == "unknown policy key":
        resign(sample, init, ("data", "policy", "evil"), 1)
    elif name == "policy not an object":
        resign(sample, init, ("data", "policy"), [1, 2])
    elif name == "huge handling days":
        resign(sample, init, ("data", "policy", "handling_days"), 2**62)
    elif name == "init log key is its admin key":
        resign(sample, init, ("data", "log_key"), init_data(init)["admin_key"])
    elif name == "recorded time 2^64-1":
        resign(sample, event, (), None, recorded_at_us=2**64 - 1)
    elif name == "business time year 9999 at -12:00":
        resign(sample, event, ("at",), "9999-12-31T23:59:59-12:00")
    elif name == "statement seq 2^64+5":
        resign(sample, event, ("seq",), 2**64 + 5)
    elif name == "statement data deeply nested":
        resign(sample, event, ("data", "note"), f"{DEEP}5000")
    elif name == "statement not an object":
        env = Envelope.from_bytes(envelope(event))
        signer = sample.world.ledger.keystore.load("officer-07")
        signed = EVENT_CONTEXT + b"[" * 100_000 + b"]" * 100_000
        set_envelope(event, Envelope(env.recorded_at_us, signer.sign(signed),
                                     signed).to_bytes())
    elif name == "short envelope":
        set_envelope(event, b"XFE1\x00")
    else:
        raise AssertionError(name)
    return _dumps(bundle)


def init_data(event: dict[str, Any]) -> dict[str, Any]:
    return Statement.from_signed_bytes(Envelope.from_bytes(envelope(event)).signed).data


HOSTILE = ["position 2^64+5", "position negative", "seq 2^64+5", "leaf index 2^70",
           "float position", "bool seq", "huge base64", "65 proof nodes", "nested proof",
           "deep nesting value", "deep nesting document", "not an object", "a number",
           "huge integer literal", "NaN", "not utf-8", "empty", "duplicate events",
           "duplicate member", "control characters in a stream", "huge case list",
           "events not a list", "absurd clock tolerance", "negative clock tolerance",
           "unknown policy key", "policy not an object", "huge handling days",
           "init log key is its admin key", "recorded time 2^64-1",
           "business time year 9999 at -12:00", "statement seq 2^64+5",
           "statement data deeply nested", "statement not an object", "short envelope"]


def verify_cli(sample: Sample, data: bytes) -> Result:
    return CliRunner().invoke(cli, ["verify-bundle", "-", "--log-key", str(sample.log_pub),
                                    "--admin-key", str(sample.admin_pub), "--format", "json"],
                              input=data)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_bundle_gives_a_failure_report(sample: Sample, name: str) -> None:
    data = _hostile(sample, name)
    report = verify_bundle(data, **sample.keys)
    assert not report.ok and report.failures
    assert all(f.reason.isprintable() and len(f.reason) <= 401 for f in report.failures)
    assert all(0 <= f.position < 2**63 and (f.seq is None or 0 < f.seq < 2**63)
               for f in report.failures)
    result = verify_cli(sample, data)
    assert result.exit_code == 1, (result.output, result.exception)
    assert json.loads(result.output)["ok"] is False


@pytest.mark.parametrize("policy", [
    {"clock_tolerance_seconds": 2**53 - 1}, {"evil": 1}, {"handling_days": 2**53 - 1},
    {"day_counting": "working", "handling_days": 2**40}, {"acceptance_days": -1},
    {"permissions": {"handler": "close"}}, {"categories": [[]]}])
def test_hostile_policy_in_a_genuinely_signed_init_names_the_init(sample: Sample,
                                                                   policy: dict) -> None:
    """The admin and log keys sign an init with an absurd policy (the operator holds both):
    every proof holds, and the init event fails by name, never a crash or a hang."""
    keystore = sample.world.ledger.keystore
    forged = rebuild(sample.world, sample.bundle, log=keystore.load("log"),
                     admin=keystore.load("admin-01"), policy=policy)
    report = verify_bundle(bundle_bytes(forged), **sample.keys)
    failure = first(report)
    assert (failure.stream, failure.seq, failure.position, failure.check) == \
        ("directory", 1, 1, 1), report.failures
    assert "policy" in failure.reason
    assert not any(f.check == 7 for f in report.failures)


def test_oversize_bundle_is_a_failure(sample: Sample) -> None:
    report = verify_bundle(b" " * (MAX_BUNDLE_BYTES + 1), **sample.keys)
    assert not report.ok and "larger than" in report.failures[0].reason


# ---- fuzzing (Hypothesis) -----------------------------------------------------------------------

def _hostile_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.sampled_from(HOSTILE_VALUES), st.integers(-(2**80), 2**80),
                        st.floats(), st.text(max_size=30), st.booleans(), st.none(),
                        st.integers(2, 3000).map(lambda n: f"{DEEP}{n}"))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                        max_leaves=6)


def _flip(draw: st.DrawFn, data: bytes, start: int = 0) -> bytes:
    """A few bytes xor-ed, mostly within ASCII (so that most results still decode)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        out[draw(st.integers(start, len(out) - 1))] ^= draw(st.sampled_from([1, 2, 4, 8, 16, 32])
                                                            | st.integers(1, 255))
    return bytes(out)


@st.composite
def mutated_bundles(draw: st.DrawFn, sample: Sample) -> bytes:
    """A real exported bundle with hostile changes: bytes of the file or of one envelope
    flipped, any JSON value replaced, or a value inside one statement replaced and re-signed
    by the actor it names (so the hostile content gets past the signature check)."""
    how = draw(st.sampled_from(["file", "value", "envelope", "statement", "statement"]))
    if how == "file":
        return _flip(draw, sample.data)
    bundle = copy.deepcopy(sample.bundle)
    if how == "value":
        path = draw(st.sampled_from(sample.paths))
        _set(bundle, path, draw(_hostile_values()))
        return _dumps(bundle)
    event = draw(st.sampled_from(bundle["events"]))
    if how == "envelope":
        set_envelope(event, _flip(draw, envelope(event)))
        if draw(st.booleans()):   # and signed as it now reads, by its actor
            resign(sample, event, (), None)
        return _dumps(bundle)
    obj = json.loads(Envelope.from_bytes(envelope(event)).signed[len(EVENT_CONTEXT):])
    path = draw(st.sampled_from(list(_paths(obj))))
    recorded = draw(st.none() | st.integers(0, 2**64 - 1))
    resign(sample, event, path, draw(_hostile_values()), recorded_at_us=recorded)
    return _dumps(bundle)


def _judge(sample: Sample, data: bytes, ok: bool, complete: bool) -> None:
    """A bundle may pass only if it says what the exported one says (``exported_at`` is
    informational; without its stream heads it is no longer complete)."""
    if not ok:
        return
    changed, original = json.loads(data), dict(sample.bundle)
    for obj in (changed, original):
        obj.pop("exported_at", None)
        if not complete:
            obj.pop("stream_heads", None)
    assert changed == original


FUZZ = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=st.data())
def test_fuzzed_bundles_never_crash_verify_bundle(sample: Sample, data: st.DataObject) -> None:
    mutated = data.draw(mutated_bundles(sample))
    report = verify_bundle(mutated, **sample.keys)
    assert isinstance(report, BundleReport) and report.ok is (not report.failures)
    _judge(sample, mutated, report.ok, report.complete)


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_fuzzed_bundles_never_crash_the_cli(sample: Sample, data: st.DataObject) -> None:
    mutated = data.draw(mutated_bundles(sample))
    result = verify_cli(sample, mutated)
    assert result.exit_code in (0, 1), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = json.loads(result.output)
    assert out["ok"] is (result.exit_code == 0)
    _judge(sample, mutated, out["ok"], out["complete"])


def test_unmodified_bundle_passes_through_the_fuzz_harness(sample: Sample) -> None:
    assert verify_bundle(sample.data, **sample.keys).ok
    result = verify_cli(sample, sample.data)
    assert result.exit_code == 0 and json.loads(result.output)["complete"] is True
