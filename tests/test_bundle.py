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
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger.errors import InputError
from ledger.log.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from ledger.log.keys import Signer, load_public_pem
from ledger.log.statement import Envelope, Statement
from ledger.storage.store import Store
from ledger.verification.bundle import (
    BUNDLE_FORMAT,
    BundleReport,
    bundle_bytes,
    export_bundle,
    verify_bundle,
)
from ledger.verification.verify import Failure
from tests.tamper import forge
from tests.world import ORIGIN, World, t

DOC = Path(__file__).resolve().parent.parent / "docs" / "bundle-format.md"


# ---- helpers -----------------------------------------------------------------------------------

def trusted(world: World) -> list[bytes]:
    return [load_public_pem((world.keystore / name).read_bytes())
            for name in ("log.pub", "admin.pub")]


def export(world: World, *cases: str) -> dict[str, Any]:
    return export_bundle(world.ledger.store, list(cases))


def check(world: World, bundle: dict[str, Any] | bytes,
          keys: list[bytes] | None = None) -> BundleReport:
    """Verify with every Store entry point booby-trapped: no database may be used."""
    data = bundle if isinstance(bundle, bytes) else bundle_bytes(bundle)
    keys = trusted(world) if keys is None else keys
    with pytest.MonkeyPatch.context() as patch:
        for name in ("__init__", "query", "cursor", "stream"):
            patch.setattr(Store, name, _refuse)
        return verify_bundle(data, keys)


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


def named(failure: Failure, event: dict[str, Any]) -> tuple[Any, ...]:
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
    assert check(world, bundle, list(reversed(trusted(world)))).ok   # keys in any order


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
    assert len(report.failures) == 1
    assert named(first(report), event) and first(report).check == 7


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
    log_key, _ = trusted(world)
    failure = first(check(world, bundle, [log_key, Signer.generate("x").public]))
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
    _, admin_key = trusted(world)
    failure = first(check(world, bundle, [Signer.generate("x").public, admin_key]))
    assert (failure.position, failure.check) == (0, 7)
    assert "log key" in failure.reason


def test_checkpoint_resigned_by_another_log_key(world: World) -> None:
    bundle = export(world, world.closed_case())
    checkpoint = parse_checkpoint(bundle["checkpoint"]).checkpoint
    bundle["checkpoint"] = sign_checkpoint(Checkpoint(ORIGIN, checkpoint.size, checkpoint.root),
                                           ORIGIN, Signer.generate("log").private)
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
    keys = ["--trust", str(world.keystore / "log.pub"),
            "--trust", str(world.keystore / "admin.pub")]
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify-bundle", str(target), *keys, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output)
    assert out["ok"] is True and out["failures"] == [] and out["cases"] == [case]
    bundle = json.loads(target.read_text(encoding="utf-8"))
    bundle["events"].remove(find(bundle, case, 4))
    target.write_bytes(bundle_bytes(bundle))
    bad = runner.invoke(cli, ["verify-bundle", str(target), *keys])
    assert bad.exit_code == 1
    assert f"first bad event: {case}#5" in bad.output


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
    keys = [load_public_pem(pem.encode()) for pem in _doc_blocks("pem")]
    assert len(keys) == 2
    assert verify_bundle(vector.encode(), keys).ok
    tampered = json.loads(vector)
    tampered["events"][2]["inclusion_proof"].reverse()
    assert not verify_bundle(json.dumps(tampered).encode(), keys).ok


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

def _signed_heads_bundle(world: World) -> tuple[dict, list[bytes], str]:
    from ledger.log.checkpoint import sign_note
    from ledger.verification.bundle import export_bundle

    led = world.ledger
    case = world.closed_case()
    log = led.keystore.load("log")
    origin = led.directory().origin
    bundle = export_bundle(led.store, [case],
                           sign_heads=lambda text: sign_note(text, origin, log.private))
    keys = [log.public, led.keystore.load("admin-01").public]
    return bundle, keys, case


def test_signed_stream_heads_make_a_bundle_complete(world: World) -> None:
    from ledger.verification.bundle import bundle_bytes, verify_bundle

    bundle, keys, _ = _signed_heads_bundle(world)
    report = verify_bundle(bundle_bytes(bundle), keys)
    assert report.ok and report.complete


def test_dropping_the_newest_events_of_a_case_is_caught_with_signed_heads(world: World) -> None:
    import copy

    from ledger.verification.bundle import bundle_bytes, verify_bundle

    bundle, keys, case = _signed_heads_bundle(world)
    cut = copy.deepcopy(bundle)
    last = max(i for i, e in enumerate(cut["events"]) if e["stream"] == case)
    dropped = cut["events"].pop(last)
    report = verify_bundle(bundle_bytes(cut), keys)
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
    report = verify_bundle(bundle_bytes(forged), keys)
    assert not report.ok
    assert any(f.check == 7 and "stream-heads" in f.reason for f in report.failures)
