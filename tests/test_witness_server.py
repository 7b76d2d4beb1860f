"""The witness (server/witness.py): C2SP tlog-witness ``add-checkpoint`` status codes, atomic
persistence, serialization, bounds and the read endpoint; and the witness client against it.

Published vectors: FiloSottile/litetlog ``cmd/litewitness/testdata/litewitness.txt`` and
``internal/witness/witness_test.go`` (a sigsum log key, its signed checkpoints of sizes 1, 3
and 5, and consistency proofs between them). litetlog answered an unknown origin with 403;
c2sp.org/tlog-witness now requires 404, which is what we check.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import EnvironmentProblem
from ledger.log.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from ledger.log.cosignature import Cosigner, judge_witnessed, parse_signature_lines
from ledger.log.keys import Signer
from ledger.log.merkle import CompactRange, consistency_proof, leaf_hash
from ledger.log.witness_client import (
    WitnessClient,
    WitnessRefused,
    WitnessUnavailable,
    cosign,
    fetch_cosigned,
)
from server.witness import EMPTY_ROOT, MAX_PROOF_LINES, LogKey, Witness, create_app

# ---- FiloSottile/litetlog test data ----------------------------------------------------------

SIGSUM_KEY = bytes.fromhex("ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f")
SIGSUM = "sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562"
SIGSUM_1 = f"""{SIGSUM}
1
KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=

— {SIGSUM} UgIom7fPZTqpxWWhyjWduBvTvGVqsokMbqTArsQilegKoFBJQjUFAmQ0+YeSPM3wfUQMFSzVnnNuWRTYrajXpNUbIQY=
"""  # noqa: E501
SIGSUM_3 = f"""{SIGSUM}
3
RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0=

— {SIGSUM} UgIom2VbtIcdFbwFAy1n7s6IkAxIY6J/GQOTuZF2ORV39d75cbAj2aQYwyJre36kezNobZs4SUUdrcawfAB8WVrx6go=
"""  # noqa: E501
SIGSUM_3_BAD_SIG = SIGSUM_3.replace("WVrx6go=", "WVrx6gx=")
SIGSUM_3_OTHER_LOG = SIGSUM_3.replace("0309e562", "0309e563")
SIGSUM_5 = f"""{SIGSUM}
5
QrtXrQZCCvpIgsSmOsah7HdICzMLLyDfxToMql9WTjY=

— {SIGSUM} UgIomw/EOJmWi0i1FQsOj+etB7F8IccFam/jgd6wzRns4QPVmyEZtdvl1U2KEmLOZ/ASRcWJi0tW90dJWAShei7sDww=
"""  # noqa: E501
PROOF_1_3 = ["KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
             "KgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
PROOF_1_3_BAD = ["KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                 "KgIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABA="]
PROOF_1_5 = ["KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
             "+fUDV+k970B4I3uKrqJM4aP1lloPZP8mvr2Z4wRw2LI=",
             "KgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]


def body(old: int, proof: list[str], note: str) -> bytes:
    return (f"old {old}\n" + "".join(p + "\n" for p in proof) + "\n" + note).encode()


def status(witness: Witness, data: bytes) -> tuple[int, str, bytes]:
    """(status, content type, body) of one add-checkpoint, without HTTP."""
    from server.witness import WitnessHTTPError

    try:
        return 200, "text/plain; charset=utf-8", witness.add_checkpoint(data)
    except WitnessHTTPError as exc:
        return exc.status, exc.content_type, exc.body


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("witness")


@pytest.fixture
def sigsum_witness(tmp_path: Path, signer: Signer) -> Witness:
    return Witness("example.com/witness", signer, {SIGSUM: [LogKey(SIGSUM, SIGSUM_KEY)]},
                   tmp_path / "witness.db")


def test_litetlog_sequence(sigsum_witness: Witness, signer: Signer) -> None:
    """litewitness.txt, request by request, with the status codes c2sp.org/tlog-witness fixes."""
    w = sigsum_witness
    code, kind, answer = status(w, body(0, [], SIGSUM_1))
    assert code == 200 and kind.startswith("text/plain")
    (line,) = parse_signature_lines(answer.decode())
    assert line.startswith("\u2014 example.com/witness ")
    judged = judge_witnessed(SIGSUM_1 + line, SIGSUM, SIGSUM_KEY,
                             [Cosigner(signer.public, "example.com/witness")])
    assert judged.cosigners == {0} and judged.cosignatures[0].timestamp > 0
    assert status(w, body(1, PROOF_1_3, SIGSUM_3_BAD_SIG))[0] == 403
    assert status(w, body(1, PROOF_1_3, SIGSUM_3_OTHER_LOG))[0] == 404
    assert status(w, body(1, [], SIGSUM_3))[0] == 422           # no proof
    assert status(w, body(1, PROOF_1_3_BAD, SIGSUM_3))[0] == 422
    assert status(w, body(0, [], SIGSUM_3))[:3] == (409, "text/x.tlog.size", b"1\n")
    assert status(w, body(1, PROOF_1_3, SIGSUM_3))[0] == 200
    assert w.state(SIGSUM)[:2] == (3, base64.b64decode(
        "RcCI1Nk56ZcSmIEfIn0SleqtV7uvrlXNccFx595Iwl0="))
    # the two refused proofs are kept as evidence; the 403/404/409 are not
    assert [r[1] for r in w.refusals(SIGSUM)] == [422, 422]


def test_litetlog_race_cannot_roll_back(sigsum_witness: Witness) -> None:
    """witness_test.go TestRace: 1→3 and 1→5 at once; whatever the order, the state never
    goes back, and the loser gets 409 with the winner's size."""
    w = sigsum_witness
    assert status(w, body(0, [], SIGSUM_1))[0] == 200
    results: dict[int, tuple[int, str, bytes]] = {}
    barrier = threading.Barrier(2)

    def submit(size: int, data: bytes) -> None:
        barrier.wait()
        results[size] = status(w, data)

    threads = [threading.Thread(target=submit, args=(3, body(1, PROOF_1_3, SIGSUM_3))),
               threading.Thread(target=submit, args=(5, body(1, PROOF_1_5, SIGSUM_5)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r[0] for r in results.values())
    assert codes == [200, 409]
    winner = 3 if results[3][0] == 200 else 5
    loser = 8 - winner
    assert results[loser][1:] == ("text/x.tlog.size", f"{winner}\n".encode())
    if winner == 3:
        assert w.state(SIGSUM)[0] == 3
    else:   # witness_test.go's expected root of the tree of 5
        assert w.state(SIGSUM)[:2] == (5, bytes.fromhex(
            "42bb57ad06420afa4882c4a63ac6a1ec77480b330b2f20dfc53a0caa5f564e36"))


# ---- our own log --------------------------------------------------------------------------------

ORIGIN = "test.example/witnessed"


class Log:
    """A log of ``n`` leaves with every node kept: signed checkpoints and real proofs."""

    def __init__(self, key: Signer | None = None, seed: bytes = b"") -> None:
        self.key = key or Signer.generate("log")
        self.seed = seed
        self.tree = CompactRange()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT}

    def grow(self, to: int) -> Log:
        while self.tree.size < to:
            digest = leaf_hash(self.seed + self.tree.size.to_bytes(8, "big"))
            self.nodes[(0, self.tree.size)] = digest
            for level, idx, h in self.tree.append(digest):
                self.nodes[(level, idx)] = h
            self.roots[self.tree.size] = self.tree.root()
        return self

    def note(self, size: int) -> str:
        return sign_checkpoint(Checkpoint(ORIGIN, size, self.roots[size]), ORIGIN, self.key)

    def proof(self, old: int, new: int) -> list[bytes]:
        return consistency_proof(old, new, lambda level, idx: self.nodes[(level, idx)])

    def b64proof(self, old: int, new: int) -> list[str]:
        return [base64.b64encode(h).decode() for h in self.proof(old, new)]


@pytest.fixture
def log() -> Log:
    return Log().grow(40)


@pytest.fixture
def witness(tmp_path: Path, signer: Signer, log: Log) -> Witness:
    return Witness("w.example/witness", signer, {ORIGIN: [LogKey(ORIGIN, log.key.public)]},
                   tmp_path / "w.db")


def test_statuses_follow_the_spec(witness: Witness, log: Log) -> None:
    w = witness
    assert status(w, body(0, [], log.note(0)))[0] == 200          # size 0, empty root
    empty_but_not = sign_checkpoint(Checkpoint(ORIGIN, 0, b"\1" * 32), ORIGIN, log.key)
    assert status(w, body(0, [], empty_but_not))[0] == 422
    assert status(w, body(0, log.b64proof(5, 10), log.note(10)))[0] == 422   # proof after old 0
    assert status(w, body(0, [], log.note(10)))[0] == 200
    assert status(w, body(11, [], log.note(10)))[0] == 400        # old above the size
    assert status(w, body(4, log.b64proof(4, 12), log.note(12)))[:3] == (
        409, "text/x.tlog.size", b"10\n")
    assert status(w, body(10, [], log.note(10)))[0] == 200        # same tree again: fine
    assert status(w, body(10, log.b64proof(9, 10), log.note(10)))[0] == 422  # proof at =
    fork = Log(log.key, seed=b"fork").grow(12)
    assert status(w, body(10, log.b64proof(10, 12), fork.note(12)))[0] == 422
    other_root = sign_checkpoint(Checkpoint(ORIGIN, 10, b"\2" * 32), ORIGIN, log.key)
    code, _, answer = status(w, body(10, [], other_root))
    assert code == 422 and b"forked" in answer
    assert status(w, body(10, log.b64proof(10, 12), log.note(12)))[0] == 200
    stranger = sign_checkpoint(Checkpoint(ORIGIN, 13, log.grow(13).roots[13]), ORIGIN,
                               Signer.generate("x"))
    assert status(w, body(12, log.b64proof(12, 13), stranger))[0] == 403
    assert w.state(ORIGIN)[0] == 12
    assert [r[1] for r in w.refusals(ORIGIN)] == [422] * 5   # kept as evidence of a fork


@pytest.mark.parametrize("data", [
    b"", b"old 1", b"old 01\n\n", b"old -1\n\n", b"new 0\n\n", b"old 0\nnot base64!\n\n",
    b"old 0\nAAAA\n\n", b"old 0\n", b"\xff\xfe\n\n", b"old 0\n\nnot a checkpoint\n",
    b"old 0\n" + b"KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * (MAX_PROOF_LINES + 1) + b"\n",
])
def test_malformed_requests_are_400(witness: Witness, data: bytes) -> None:
    assert status(witness, data)[0] == 400


def test_unknown_signature_lines_are_ignored(witness: Witness, log: Log) -> None:
    """signed-note: a checkpoint may carry lines of keys the witness does not know (another
    witness's cosignature, a line of another algorithm); they neither help nor hurt."""
    note = log.note(8)
    other = Signer.generate("z")
    extra = sign_checkpoint(parse_checkpoint(note).checkpoint, "someone.else", other)
    text = note + extra.split("\n\n", 1)[1] + "\u2014 weird.name AAECAwQFBgcICQ==\n"
    code, _, answer = status(witness, body(0, [], text))
    assert code == 200
    held = witness.latest(hashlib.sha256(ORIGIN.encode()).hexdigest())
    assert held is not None and "someone.else" not in held and "weird.name" not in held
    assert held == log.note(8) + answer.decode()   # the log's line and the cosignature only
    only_unknown = parse_checkpoint(note).checkpoint.body() + "\n" + extra.split("\n\n")[1]
    assert status(witness, body(8, [], only_unknown))[0] == 403


def test_state_persists_and_belongs_to_one_key(tmp_path: Path, log: Log, signer: Signer
                                               ) -> None:
    keys = {ORIGIN: [LogKey(ORIGIN, log.key.public)]}
    first = Witness("w.example/witness", signer, keys, tmp_path / "w.db")
    assert status(first, body(0, [], log.note(6)))[0] == 200
    again = Witness("w.example/witness", signer, keys, tmp_path / "w.db")
    assert again.state(ORIGIN)[0] == 6
    assert status(again, body(0, [], log.note(7)))[2] == b"6\n"
    with pytest.raises(EnvironmentProblem, match="another witness key"):
        Witness("w.example/witness", Signer.generate("other"), keys, tmp_path / "w.db")


def test_timestamps_never_go_back(tmp_path: Path, log: Log, signer: Signer) -> None:
    clock = [2_000_000_000.0]
    w = Witness("w.example/witness", signer, {ORIGIN: [LogKey(ORIGIN, log.key.public)]},
                tmp_path / "w.db", clock=lambda: clock[0])
    cosigner = [Cosigner(signer.public, "w.example/witness")]

    def stamp(old: int, new: int) -> int:
        line = w.add_checkpoint(body(old, log.b64proof(old, new) if old else [],
                                     log.note(new))).decode()
        return judge_witnessed(log.note(new) + line, ORIGIN, log.key.public,
                               cosigner).cosignatures[0].timestamp

    assert stamp(0, 3) == 2_000_000_000
    clock[0] = 1_000_000_000.0   # the clock stepped back
    assert stamp(3, 5) == 2_000_000_000


def test_one_origin_is_serialized(witness: Witness, log: Log) -> None:
    """Twelve submissions of different sizes, all claiming `old 0`, at once: exactly one wins
    and every other answer names its size -- check and update are one step."""
    barrier = threading.Barrier(12)
    results: list[tuple[int, str, bytes]] = []

    def submit(size: int) -> None:
        barrier.wait()
        results.append(status(witness, body(0, [], log.note(size))))

    threads = [threading.Thread(target=submit, args=(size,)) for size in range(3, 15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = witness.state(ORIGIN)[0]
    assert sorted(r[0] for r in results) == [200] + [409] * 11
    assert {r[2] for r in results if r[0] == 409} == {f"{held}\n".encode()}


# ---- HTTP and the client --------------------------------------------------------------------

@pytest.fixture
def http(witness: Witness) -> Any:
    with warnings.catch_warnings():   # starlette's testclient uses a deprecated anyio alias
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient
    return TestClient(create_app(witness), base_url="http://witness.test")


def test_http_routes(http: Any, log: Log) -> None:
    read = f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
    assert http.get(read).status_code == 404
    answer = http.post("/add-checkpoint", content=body(0, [], log.note(9)))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "text/plain")
    conflict = http.post("/add-checkpoint", content=body(0, [], log.note(11)))
    assert (conflict.status_code, conflict.headers["content-type"], conflict.text) == (
        409, "text/x.tlog.size", "9\n")
    got = http.get(read)
    assert got.status_code == 200 and got.text == log.note(9) + answer.text
    assert http.get("/" + "0" * 64 + "/checkpoint").status_code == 404
    assert http.get("/NOTHEX/checkpoint").status_code == 404
    assert http.get("/add-checkpoint").status_code == 405
    huge = http.post("/add-checkpoint", content=b"old 0\n" + b"x" * (1 << 20))
    assert huge.status_code == 413
    assert "w.example/witness+" in http.get("/").text


def test_client_recovers_from_409_and_reports_refusals(http: Any, witness: Witness,
                                                       log: Log, signer: Signer) -> None:
    cosigner = Cosigner(signer.public, "w.example/witness", "http://witness.test")
    assert http.post("/add-checkpoint", content=body(0, [], log.note(5))).status_code == 200
    client = WitnessClient(cosigner, http=http)           # knows nothing: starts at old 0
    cosignature = client.submit(log.note(20), log.proof)
    assert client.known_size == 20 and witness.state(ORIGIN)[0] == 20
    assert cosignature.timestamp > 0
    assert fetch_cosigned(cosigner, ORIGIN, http=http) == log.note(20) + cosignature.line()
    fork = Log(log.key, seed=b"fork").grow(30)
    with pytest.raises(WitnessRefused) as refused:
        WitnessClient(cosigner, http=http).submit(fork.note(30), fork.proof)
    assert refused.value.status == 422 and refused.value.exit_code == 1
    with pytest.raises(WitnessRefused, match="larger than this checkpoint"):
        WitnessClient(cosigner, http=http).submit(log.note(10), log.proof)   # a rollback
    impostor = Cosigner(Signer.generate("q").public, None, "http://witness.test")
    with pytest.raises(WitnessUnavailable, match="no valid cosignature"):
        WitnessClient(impostor, known_size=20, http=http).submit(log.note(21), log.proof)
    down = Cosigner(signer.public, None, "http://127.0.0.1:9")
    result = cosign(log.note(22), [WitnessClient(cosigner, known_size=20, http=http),
                                   WitnessClient(down, timeout=2)], log.proof)
    assert set(result.cosignatures) == {0} and isinstance(result.errors[1], WitnessUnavailable)
    assert result.note.startswith(log.note(22)) and result.cosignatures[0].line() in result.note
