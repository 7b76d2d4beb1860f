"""Witnesses end to end (issue 13), on both backends: two real `xinfang witness serve`
processes on loopback (纪检监察室 and 市局信访处), the embedded `xinfang checkpoint --witness`,
and `verify` / `verify-bundle` under the inspector's witness policy.

The attack it closes: the operator holds the database *and* the log key, rewrites history,
rebuilds the Merkle tree and re-signs every checkpoint. Without witnesses such a ledger can look
perfect; with them the witnesses refuse to cosign and every verifier holding the policy fails,
naming the first event that differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger.log.checkpoint import Checkpoint, sign_checkpoint
from ledger.log.cosignature import Cosigner, parse_cosigner_vkey
from ledger.log.keys import LOG_KEY_NAME
from ledger.log.merkle import CompactRange, leaf_hash
from ledger.log.statement import leaf_bytes
from ledger.log.witness_client import WitnessClient, WitnessRefused
from ledger.storage.store import Store
from ledger.writing.witnessing import cosign_latest
from tests.tamper import events_table, superuser
from tests.world import ORIGIN, World, t

XINFANG = Path(sys.executable).with_name("xinfang")


@dataclass
class RunningWitness:
    label: str
    url: str
    dir: Path
    proc: subprocess.Popen[str]

    @property
    def pub(self) -> Path:
        return self.dir / "witness.pub"

    @property
    def cosigner(self) -> Cosigner:
        name, public = parse_cosigner_vkey((self.dir / "witness.vkey").read_text())
        return Cosigner(public, name, self.url)

    def option(self) -> str:
        return f"{self.url}={self.pub}"


def _start(directory: Path, name: str, label: str, log_pub: Path) -> RunningWitness:
    init = CliRunner().invoke(cli, ["witness", "init", "--keystore", str(directory),
                                    "--name", name])
    assert init.exit_code == 0, init.output
    env = {k: v for k, v in os.environ.items() if k != "XINFANG_PASSPHRASE"}
    proc = subprocess.Popen(
        [str(XINFANG), "witness", "serve", "--keystore", str(directory), "--state",
         str(directory / "state.db"), "--listen", "127.0.0.1:0", "--log",
         f"{ORIGIN}={log_pub}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    if not first or "listening on http://" not in first[0]:
        proc.kill()
        raise AssertionError(f"the witness did not start: {first} {proc.stderr.read()}")  # type: ignore[union-attr]
    url = first[0].split("listening on ")[1].split("/ ")[0].rstrip("/")
    return RunningWitness(label, url, directory, proc)


@pytest.fixture
def witnesses(world: World, tmp_path: Path) -> Iterator[list[RunningWitness]]:
    """Two witnesses of the world's log, started as real processes; stopped at the end."""
    log_pub = world.keystore / "log.pub"
    running: list[RunningWitness] = []
    threads = [threading.Thread(target=lambda n=n, label=label: running.append(_start(
        tmp_path / label, n, label, log_pub))) for n, label in (
        ("jjjc.test.example/witness", "jjjc"), ("sj-xfc.test.example/witness", "sjxfc"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(running) == 2
        yield sorted(running, key=lambda w: w.label)
    finally:
        for witness in running:
            witness.proc.terminate()
            try:
                witness.proc.wait(10)
            except subprocess.TimeoutExpired:
                witness.proc.kill()


# ---- helpers ------------------------------------------------------------------------------------

def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                    *args])


def policy_args(ws: list[RunningWitness], quorum: int = 2) -> list[str]:
    return [arg for w in ws for arg in ("--witness", w.option())] + ["--quorum", str(quorum)]


def cosigned(world: World, ws: list[RunningWitness]) -> None:
    """What the embedded mode does after a write: the latest checkpoint, cosigned by both."""
    outcome = cosign_latest(world.ledger.store, world.ledger.checkpoint(),
                            [w.cosigner for w in ws], 2)
    assert outcome.ok, outcome.result.errors


def verify_json(world: World, *args: str) -> tuple[int, dict]:
    result = run(world, "verify", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def history(world: World, ws: list[RunningWitness]) -> tuple[str, str]:
    """Two cases written one command at a time, each write cosigned: (kept case, other)."""
    def do(action: str, case: str | None, data: dict, by: str, day: str) -> str:
        stream = world.do(action, case, data, by=by, at=t(day)).stream
        cosigned(world, ws)
        return stream

    cosigned(world, ws)   # the directory as built
    first = do("register", None, {"channel": "letter", "source": "direct",
                                  "category": "household_registration",
                                  "petitioner": "pet-0001", "summary": "户口迁移不予办理"},
               "registrar-01", "2025-03-02")
    do("accept", first, {"decision": "accepted"}, "office-01", "2025-03-03")
    other = do("register", None, {"channel": "visit", "source": "direct",
                                  "category": "household_registration",
                                  "petitioner": "pet-0001", "summary": "再次反映"},
               "registrar-01", "2025-03-04")
    do("assign", first, {"unit": "station-03", "handler": "officer-07"}, "office-01",
       "2025-03-05")
    do("accept", other, {"decision": "accepted"}, "office-01", "2025-03-06")
    return first, other


def rebuild_and_resign(world: World, rows: list[tuple[int, bytes]]) -> None:
    """The operator's move: a tree over ``rows`` ((position, state), in log order), and every
    checkpoint re-signed with the real log key; the log key's own state is reset, which the
    holder of the keystore can do."""
    store = world.ledger.store
    sizes = {cp.size for cp in store.iter_checkpoints()} | {len(rows)}
    log_key = world.ledger.keystore.load(LOG_KEY_NAME)
    tree, leaves, nodes, checkpoints = CompactRange(), [], [], []
    for position, state in rows:
        digest = leaf_hash(leaf_bytes(position, state))
        leaves.append((tree.size, position, digest))
        nodes.extend(tree.append(digest))
        if tree.size in sizes:
            note = sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), ORIGIN, log_key)
            checkpoints.append((tree.size, tree.root(), note, tree.to_bytes()))
    with superuser(store) as db:
        for table in ("xf_leaves", "xf_nodes", "xf_checkpoints"):
            db.execute(f"DELETE FROM {table}")
        for row in leaves:
            db.execute("INSERT INTO xf_leaves VALUES (?,?,?)", row)
        for row in nodes:
            db.execute("INSERT INTO xf_nodes VALUES (?,?,?)", row)
        for row in checkpoints:
            db.execute("INSERT INTO xf_checkpoints VALUES (?,?,?,?)", row)
    world.ledger._checkpoint_signer().forget()


def log_rows(store: Store) -> list[tuple[int, str, int, bytes]]:
    return [(n.id, str(n.originator_id), n.originator_version, bytes(n.state))
            for n in store.iter_log()]


def rewrite_event(world: World, case: str, seq: int) -> int:
    """Flip a payload byte of one event, then rebuild and re-sign; its position."""
    store = world.ledger.store
    rows = log_rows(store)
    position, state = next((p, bytearray(s)) for p, c, q, s in rows if c == case and q == seq)
    state[-3] ^= 0x01
    with superuser(store) as db:
        db.execute(f"UPDATE {events_table(store)} SET state=? WHERE originator_id=? AND "
                   "originator_version=?", (bytes(state), case, seq))
    rebuild_and_resign(world, [(p, bytes(state) if p == position else s)
                               for p, _, _, s in rows])
    return position


def check8(report: dict) -> list[dict]:
    return [f for f in report["failures"] if f["check"] == 8]


# ---- the attack ---------------------------------------------------------------------------------

def test_operator_rewrite_is_refused_and_caught(world: World,
                                                witnesses: list[RunningWitness],
                                                tmp_path: Path) -> None:
    kept, other = history(world, witnesses)
    policy = policy_args(witnesses)
    code, report = verify_json(world, *policy)
    size = report["checkpoint"]["size"]
    assert code == 0 and report["witnessed"]["size"] == size
    assert report["witnessed"]["unwitnessed"] == 0 and report["witnessed"]["quorum"] == 2
    printed = run(world, "checkpoint")   # the cosigned note, as stored
    assert printed.exit_code == 0 and printed.output.count("\u2014 ") == 3
    assert "jjjc.test.example/witness" in printed.output

    # The operator rewrites the case's first event (its register) and re-signs everything.
    changed = rewrite_event(world, kept, 1)

    # The witnesses refuse: the same size with another root (422), and from `old 0` first a
    # 409 naming their size, then 422 once re-proven from there.
    refused = run(world, "checkpoint", *policy)
    assert refused.exit_code == 1, refused.output
    assert "422" in refused.output and "rewritten" in refused.output
    with pytest.raises(WitnessRefused) as caught:
        WitnessClient(witnesses[0].cosigner).submit(
            world.ledger.checkpoint(), lambda a, b: [])
    assert caught.value.status == 422

    # verify under the witness policy fails and names the rewritten event.
    code, report = verify_json(world, *policy)
    assert code == 1
    first = check8(report)[0]
    assert (first["stream"], first["seq"], first["position"]) == (kept, 1, changed)
    assert "cosigned" in first["reason"] and "first that differs" in first["reason"]

    # A bundle cut from the rewritten log, of a case the operator did not touch: it passes
    # on its own, and fails under the same witness policy (the witnesses hold another tree
    # of this very size).
    bundle = tmp_path / "other.bundle.json"
    assert run(world, "export", other, "--out", str(bundle)).exit_code == 0
    keys = ["--log-key", str(world.keystore / "log.pub"), "--admin-key",
            str(world.keystore / "admin.pub")]
    alone = run(world, "verify-bundle", str(bundle), *keys)
    assert alone.exit_code == 0, alone.output
    judged = run(world, "verify-bundle", str(bundle), *keys, *policy, "--format", "json")
    assert judged.exit_code == 1, judged.output
    reasons = [f["reason"] for f in check8(json.loads(judged.stdout))]
    assert any("another tree of size" in r for r in reasons)

    # Deleting the stored cosignatures hides nothing: the witnesses' own checkpoints remain.
    with superuser(world.ledger.store) as db:
        db.execute("DELETE FROM xf_cosignatures")
    code, report = verify_json(world, *policy)
    assert code == 1 and check8(report)
    first = check8(report)[0]   # the range 1..N, and the first event in it that fails
    assert (first["stream"], first["seq"], first["position"]) == (kept, 1, changed)
    assert "fails its own checks" in first["reason"]


def test_a_deleted_case_passes_alone_but_not_under_witnesses(
        world: World, witnesses: list[RunningWitness], tmp_path: Path) -> None:
    """The rewrite no per-event check sees: a whole case deleted and the tree rebuilt and
    re-signed. Only the witnesses' checkpoints catch it; the first event that differs is
    the one now at the deleted case's first leaf."""
    kept, doomed = history(world, witnesses)
    store = world.ledger.store
    rows = log_rows(store)
    first_doomed = next(i for i, r in enumerate(rows) if r[1] == doomed)
    with superuser(store) as db:
        db.execute(f"DELETE FROM {events_table(store)} WHERE originator_id=?", (doomed,))
    rest = [(p, s) for p, c, _, s in rows if c != doomed]
    rebuild_and_resign(world, rest)
    code, report = verify_json(world)
    assert code == 0, report["failures"]            # consistent on its own
    code, report = verify_json(world, *policy_args(witnesses))
    assert code == 1
    moved = rows[first_doomed + 1]                   # the kept case's event that moved up
    first = check8(report)[0]
    assert (first["stream"], first["position"]) == (moved[1], moved[0])
    assert any("rolled back" in f["reason"] for f in check8(report))
    # The trust policy file says the same as the options.
    policy = tmp_path / "trust.toml"
    policy.write_text(f'log_key = "{world.keystore / "log.pub"}"\n'
                      f'admin_key = "{world.keystore / "admin.pub"}"\n'
                      "quorum = 2\n" + "".join(
                          f'[[witness]]\nlabel = "{w.label}"\nurl = "{w.url}"\n'
                          f'key = "{w.dir / "witness.vkey"}"\n' for w in witnesses),
                      encoding="utf-8")
    code, by_file = verify_json(world, "--trust-policy", str(policy))
    assert code == 1
    assert (check8(by_file)[0]["stream"], check8(by_file)[0]["position"]) == (moved[1],
                                                                             moved[0])


def test_rollback_grace_and_bundles(world: World, witnesses: list[RunningWitness],
                                    tmp_path: Path) -> None:
    kept, _ = history(world, witnesses)
    policy = policy_args(witnesses)
    # One more write, not yet witnessed: reported, and within the grace period it passes.
    world.do("progress", kept, {"note": "已约谈"}, by="officer-07", at=t("2025-03-07"))
    code, report = verify_json(world, *policy)
    assert code == 0 and report["witnessed"]["unwitnessed"] == 1
    text = run(world, "verify", *policy)
    assert "1 later event(s) not yet witnessed" in text.output
    # A bundle now carries the last cosigned checkpoint and a consistency proof to its own.
    bundle = tmp_path / "kept.bundle.json"
    assert run(world, "export", kept, "--out", str(bundle)).exit_code == 0
    carried = json.loads(bundle.read_text())
    assert carried["witnessed"]["consistency_proof"]
    keys = ["--log-key", str(world.keystore / "log.pub"), "--admin-key",
            str(world.keystore / "admin.pub")]
    ok = run(world, "verify-bundle", str(bundle), *keys, *policy, "--format", "json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["witnessed"]["unwitnessed"] == 1
    # With no grace at all, the unwitnessed event fails (and so does the bundle).
    strict = tmp_path / "strict.toml"
    strict.write_text("quorum = 2\ngrace_period = 0\n" + "".join(
        f'[[witness]]\nurl = "{w.url}"\nkey = "{w.pub}"\n' for w in witnesses))
    code, report = verify_json(world, "--trust-policy", str(strict))
    late = check8(report)
    assert code == 1 and late[0]["stream"] == kept and "grace period" in late[0]["reason"]
    assert run(world, "verify-bundle", str(bundle), "--trust-policy", str(strict),
               *keys).exit_code == 1
    # Cosigned now: everything is witnessed again, and a kept cosigned note is accepted too.
    noted = run(world, "checkpoint", *policy)
    assert noted.exit_code == 0, noted.output
    (tmp_path / "cosigned.txt").write_text(noted.stdout)
    code, report = verify_json(world, "--trust-policy", str(strict), "--witnessed",
                               str(tmp_path / "cosigned.txt"))
    assert code == 0 and report["witnessed"]["unwitnessed"] == 0
    # The database rolled back to an older copy: the witnesses have seen more.
    store = world.ledger.store
    size = store.leaf_count()
    position = store.position_of_leaf(size - 3)
    with superuser(store) as db:
        db.execute(f"DELETE FROM {events_table(store)} WHERE {store.position_column}>=?",
                   (position,))
    rebuild_and_resign(world, [(p, s) for p, _, _, s in log_rows(store)])
    code, report = verify_json(world, *policy)
    assert code == 1
    assert any("rolled back" in f["reason"] and f"tree of {size} events" in f["reason"]
               for f in check8(report))


def test_bad_witness_options_are_input_errors(world: World, tmp_path: Path) -> None:
    assert run(world, "verify", "--quorum", "1").exit_code == 2
    pem = world.keystore / "admin.pub"
    assert run(world, "verify", "--witness", str(pem), "--quorum", "2").exit_code == 2
    assert run(world, "verify", "--witness", str(tmp_path / "missing.pub")).exit_code == 2
    assert run(world, "checkpoint", "--witness", str(pem)).exit_code == 2   # no URL
    (tmp_path / "bad.toml").write_text("quorum = 'two'\n")
    assert run(world, "verify", "--trust-policy", str(tmp_path / "bad.toml")).exit_code == 2
    (tmp_path / "mixed.toml").write_text("")
    assert run(world, "verify", "--trust-policy", str(tmp_path / "mixed.toml"),
               "--witness", str(pem)).exit_code == 2
    down = run(world, "checkpoint", "--witness", f"http://127.0.0.1:9={pem}")
    assert down.exit_code == 3 and "cannot reach" in down.output


def test_witness_commands_refuse_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path / "w")
    made = runner.invoke(cli, ["witness", "init", "--keystore", home, "--name", "w.example/w"])
    assert made.exit_code == 0 and (tmp_path / "w" / "witness.pub").exists()
    assert oct((tmp_path / "w" / "witness.key").stat().st_mode & 0o777) == "0o600"
    assert runner.invoke(cli, ["witness", "init", "--keystore", home, "--name",
                               "w.example/w"]).exit_code == 2          # already there
    assert runner.invoke(cli, ["witness", "init", "--keystore", str(tmp_path / "x"),
                               "--name", "two words"]).exit_code == 2
    serve = ["witness", "serve", "--keystore", home, "--state", str(tmp_path / "s.db")]
    assert runner.invoke(cli, [*serve, "--log", "no-file-given"]).exit_code == 2
    assert runner.invoke(cli, [*serve, "--log", f"o={tmp_path / 'none.pub'}"]).exit_code == 2
    pub = str(tmp_path / "w" / "witness.pub")
    assert runner.invoke(cli, [*serve, "--log", f"o={pub}", "--listen", "nowhere"]
                         ).exit_code == 2
    nokey = ["witness", "serve", "--keystore", str(tmp_path / "empty"), "--state",
             str(tmp_path / "e.db"), "--log", f"o={pub}"]
    assert runner.invoke(cli, nokey).exit_code == 3


def test_trust_policy_files(tmp_path: Path) -> None:
    from ledger.errors import InputError
    from ledger.log.keys import Keystore
    from ledger.verification.trust import load_trust_policy

    for name in ("w1", "w2"):
        made = CliRunner().invoke(cli, ["witness", "init", "--keystore", str(tmp_path / name),
                                        "--name", f"{name}.example/w"])
        assert made.exit_code == 0
    Keystore(tmp_path).write_public("log", Keystore(tmp_path / "k").create("log").public)
    vkey = (tmp_path / "w1" / "witness.vkey").read_text().strip()
    good = tmp_path / "t.json"
    good.write_text(json.dumps({"log_key": "log.pub", "grace_period": 60, "witness": [
        {"key": vkey, "url": "http://127.0.0.1:1/", "label": "纪检监察室"},
        {"key": "w2/witness.pub"}]}))
    policy = load_trust_policy(good)
    assert policy.admin_key is None and policy.log_key is not None
    assert policy.witnesses is not None and policy.witnesses.quorum == 2
    assert policy.witnesses.grace_seconds == 60 and policy.witnesses.label(0) == "纪检监察室"
    assert policy.witnesses.witnesses[0].url == "http://127.0.0.1:1"
    assert policy.witnesses.witnesses[0].name == "w1.example/w"
    for bad in ('quorum = 1\n', 'colour = "red"\n', '[[witness]]\nurl = "x"\n',
                '[[witness]]\nkey = "w1/witness.pub"\n[[witness]]\nkey = "w1/witness.vkey"\n',
                'quorum = 3\n[[witness]]\nkey = "w1/witness.pub"\n', "not toml ==\n",
                'log_key = "missing.pub"\n'):
        (tmp_path / "bad.toml").write_text(bad)
        with pytest.raises(InputError):
            load_trust_policy(tmp_path / "bad.toml")


def test_stored_cosignatures_are_sampled() -> None:
    from ledger.verification.witnessed import stored_sources

    class Many:
        def cosigned_sizes(self) -> list[int]:
            return list(range(1, 1001))

        def cosignatures(self, size: int) -> list[tuple[int, str, str, str]]:
            return [(size, "w", "line", f"note {size}")]

    sources = stored_sources(Many(), limit=256)
    sizes = [int(text.split()[1]) for _, text in sources]
    assert len(sizes) == 256 and sizes == sorted(sizes)
    assert sizes[0] == 1 and sizes[-128:] == list(range(873, 1001))
