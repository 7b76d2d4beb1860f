"""C2SP tlog-cosignature ``cosignature/v1`` lines and witness keys, byte for byte (issue 13).

Known answers come from published sources, each named where it is used:

* C2SP/C2SP ``tlog-cosignature.md`` -- the signed message example and the example
  cosignature line (its key ID and timestamp);
* transparency-dev/witness ``README.md`` -- a real checkpoint cosigned by two Armored Witness
  devices, whose public keys are published in transparency-dev/distributor
  ``config/witnesses-prod.yaml``: both cosignatures must verify under our message format;
* transparency-dev/formats ``note/note_cosigv1_test.go`` -- verifier keys (valid and invalid)
  and a cosignature timestamp;
* FiloSottile/litetlog ``internal/witness/witness_test.go`` -- a witness private key, whose
  published public key we derive; its cosignature must equal PyNaCl's independent signature of
  the spec's message.
"""

from __future__ import annotations

import base64

import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log.checkpoint import (
    Checkpoint,
    CheckpointError,
    note_key_id,
    parse_checkpoint,
    sign_checkpoint,
)
from ledger.log.cosignature import (
    Cosignature,
    CosignatureError,
    Cosigner,
    cosigned_message,
    cosigner_key_id,
    cosigner_vkey,
    judge_witnessed,
    merge_witnessed,
    parse_cosigner_vkey,
    parse_signature_lines,
    sign_cosignature,
    verify_cosignature,
    with_signature_lines,
)
from ledger.log.keys import Signer

# ---- C2SP/C2SP tlog-cosignature.md -------------------------------------------------------------

SPEC_BODY = ("example.com/behind-the-sofa\n20852163\n"
             "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
SPEC_MESSAGE = ("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
                "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
SPEC_LINE = ("\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWX"
             "EhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")

# ---- transparency-dev/witness README.md + transparency-dev/distributor witnesses-prod.yaml -----

PIXEL = """developers.google.com/android/binary_transparency/0
611
2GZ1zmS5VkfUZmn2ZyR4KZXwHLD+xnwBIWzql/cD50w=

— pixel_transparency_log csh42zBFAiAd3Y1FwqNTt5RglY0uG7heC6Yu1gEbXXPYmZ7LdOILMAIhAIt68PnR/3TADAaC7hvrSHbpziV7TmpIwOUydLmcjyTQ
— ArmoredWitness-small-breeze nRq5UQAAAABnoqrsRIofXn68vTohcAm2KG4ACGyRPNePUk02BSWD0WKV5ElejTk5Z+Tm3GmJ5j/etA+fkL9XuaQsnTyZbr437sF4AQ==
— ArmoredWitness-autumn-wood qZb5XQAAAABnoqrl57G9CblEl3lwwuqzbaJvVMqNiZCbYZseYT1YZHYmls3CmT1wxZ1fNgM4RxHuUxjAwcI2ghTx6R5aCg+L0DGPBA==
"""  # noqa: E501
SMALL_BREEZE = "ArmoredWitness-small-breeze+7b3ada3a+AQAWYpUjfGGPQiWOgt6sLWap0P9rVOe+Ofu2uNZbO4FD"
AUTUMN_WOOD = "ArmoredWitness-autumn-wood+863571a5+AesIVCbad7gbU07JnA6YfZD0qg4B1c8xF4ISdnt9vjip"

# ---- FiloSottile/litetlog internal/witness/witness_test.go (gentest seed b4e385f4…) -----------

LITETLOG_SEED = bytes.fromhex("31ffc2116ecbe003acaa800ab70757bd7d53206e3febef6a6d0796d95530b34f")
LITETLOG_PUBLIC = bytes.fromhex(
    "64848ad8abed6e85981b3b3875b252b8767ebb4b02f703aca3b1e71bbd6a8e50")


def litetlog_witness() -> Signer:
    return Signer("witness", Ed25519PrivateKey.from_private_bytes(LITETLOG_SEED))


def test_signed_message_is_the_spec_example() -> None:
    assert cosigned_message(SPEC_BODY, 1679315147) == SPEC_MESSAGE.encode()
    with pytest.raises(CosignatureError):
        cosigned_message(SPEC_BODY, 2**63)          # the timestamp is at most 2^63-1
    with pytest.raises(CosignatureError):
        cosigned_message(SPEC_BODY.rstrip("\n"), 1)  # the whole note text, final newline too


def test_spec_example_line_decodes() -> None:
    """The example line's key ID and timestamp are the message example's (time 1679315147)."""
    signed = parse_checkpoint(SPEC_BODY + "\n" + SPEC_LINE)
    cosig = Cosignature.from_note_signature(signed.signatures[0])
    assert (cosig.name, cosig.key_id.hex(), cosig.timestamp) == (
        "witness.example.com/w1", "8d66cf3f", 1679315147)
    assert cosig.line() == SPEC_LINE


@pytest.mark.parametrize(("vkey", "timestamp"), [(SMALL_BREEZE, 1738713836),
                                                 (AUTUMN_WOOD, 1738713829)])
def test_published_armored_witness_cosignatures_verify(vkey: str, timestamp: int) -> None:
    """Real cosignatures (README: 2025-02-05T00:03:56Z and 00:03:49Z) verify under the
    published keys: our message, key ID rule (0x04) and line format are the reference's."""
    name, public = parse_cosigner_vkey(vkey)   # published as 0x01 vkeys of the same key
    signed = parse_checkpoint(PIXEL)
    mine = [s for s in signed.signatures if Cosigner(public, name).owns(s)]
    assert len(mine) == 1 and mine[0].key_id == cosigner_key_id(name, public)
    assert mine[0].key_id != note_key_id(name, public)
    cosig = Cosignature.from_note_signature(mine[0])
    assert cosig.timestamp == timestamp
    assert verify_cosignature(signed.checkpoint.body(), cosig, public)
    assert cosig.line() in PIXEL   # re-encoded byte for byte
    other = Checkpoint(signed.checkpoint.origin, 612, signed.checkpoint.root)
    assert not verify_cosignature(other.body(), cosig, public)
    later = Cosignature(cosig.name, cosig.key_id, cosig.timestamp + 1, cosig.signature)
    assert not verify_cosignature(signed.checkpoint.body(), later, public)


def test_transparency_dev_verifier_keys() -> None:
    """transparency-dev/formats note_cosigv1_test.go TestCoSigV1NewVerifier."""
    name, public = parse_cosigner_vkey(
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")  # native 0x04
    assert name == "remora.n621.de"
    assert cosigner_vkey(name, public) == \
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    assert parse_cosigner_vkey(   # an 0x01 vkey "converts": same key
        "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")[0] == "TEST"
    for bad in ("bananas.sigstore.dev+12344556",
                "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
                "rekor.sigstore.dev+12345678+AwEB",
                "remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
                "remora.n621.de+da77ade7+AevN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"):
        with pytest.raises(CosignatureError):
            parse_cosigner_vkey(bad)


def test_transparency_dev_timestamps() -> None:
    """transparency-dev/formats note_cosigv1_test.go TestCoSigV1Timestamp."""
    def timestamp(b64: str) -> int:
        line = parse_checkpoint(SPEC_BODY + "\n\u2014 w " + b64 + "\n").signatures[0]
        return Cosignature.from_note_signature(line).timestamp

    assert timestamp("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7"
                     "S5gxEHWWOworDcFiEBYJXORmnFBOBA==") == 1727964367
    with pytest.raises(CosignatureError):   # "wrong type of signature": no timestamp in it
        timestamp("eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUML"
                  "XpWs1hPb/W/4xkNQY=")


def test_signing_matches_an_independent_ed25519() -> None:
    """litetlog's witness key: we derive its published public key, and our cosignature of the
    spec's checkpoint at the spec's time is PyNaCl's signature of the spec's message."""
    witness = litetlog_witness()
    assert witness.public == LITETLOG_PUBLIC
    cosig = sign_cosignature(SPEC_BODY, "example.com", witness, 1679315147)
    expected = nacl.signing.SigningKey(LITETLOG_SEED).sign(SPEC_MESSAGE.encode()).signature
    assert cosig.signature == expected
    raw = base64.b64decode(cosig.line().split(" ")[-1])
    assert raw == cosigner_key_id("example.com", LITETLOG_PUBLIC) + \
        (1679315147).to_bytes(8, "big") + expected
    assert verify_cosignature(SPEC_BODY, cosig, LITETLOG_PUBLIC)
    with pytest.raises(CheckpointError):   # only checkpoints are cosigned
        sign_cosignature("not\na checkpoint\n", "example.com", witness, 1)


# ---- several signatures on one note: unknown ones are ignored (c2sp.org/signed-note) -----------

ORIGIN = "test.example/ledger"


def _log_and_witnesses() -> tuple[Signer, list[Signer], list[Cosigner], str]:
    log = Signer.generate("log")
    witnesses = [Signer.generate(f"w{i}") for i in range(3)]
    cosigners = [Cosigner(w.public, name=f"w{i}.example/witness") for i, w in
                 enumerate(witnesses)]
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, bytes(range(32))), ORIGIN, log)
    return log, witnesses, cosigners, note


def test_judge_counts_valid_cosignatures_and_ignores_unknown_lines() -> None:
    log, witnesses, cosigners, note = _log_and_witnesses()
    body = parse_checkpoint(note).checkpoint.body()
    lines = [sign_cosignature(body, f"w{i}.example/witness", w, 1700000000 + i).line()
             for i, w in enumerate(witnesses[:2])]
    stranger = Signer.generate("x")
    lines.append(sign_cosignature(body, "stranger.example", stranger, 5).line())   # unknown
    lines.append("\u2014 w2.example/witness " + base64.b64encode(b"\0" * 76).decode() + "\n")
    forged = sign_cosignature(body, "w2.example/witness", stranger, 9)   # w2's name, not key
    lines.append(forged.line())
    text = with_signature_lines(note, lines)
    judged = judge_witnessed(text, ORIGIN, log.public, cosigners)
    assert judged.cosigners == {0, 1}
    assert judged.problems == ()      # lines whose key ID is not w2's are simply ignored
    assert judged.note.count("\u2014 ") == 3 and lines[0] in judged.note
    # A line with w2's name and key ID whose signature fails is not counted, and is reported.
    bad = Cosignature("w2.example/witness", cosigner_key_id("w2.example/witness",
                                                            witnesses[2].public), 3, b"\1" * 64)
    judged = judge_witnessed(with_signature_lines(note, [bad.line()]), ORIGIN, log.public,
                             cosigners)
    assert judged.cosigners == frozenset() and "does not verify" in judged.problems[0]
    # A name-less cosigner (a PEM key) accepts any name whose key ID matches its key.
    anonymous = [Cosigner(w.public) for w in witnesses]
    assert judge_witnessed(text, ORIGIN, log.public, anonymous).cosigners == {0, 1}


def test_judge_needs_the_log_signature_and_merges_views() -> None:
    log, witnesses, cosigners, note = _log_and_witnesses()
    body = parse_checkpoint(note).checkpoint.body()
    one = with_signature_lines(note, [sign_cosignature(body, "w0.example/witness",
                                                       witnesses[0], 10).line()])
    two = with_signature_lines(note, [sign_cosignature(body, "w1.example/witness",
                                                       witnesses[1], 11).line()])
    merged = merge_witnessed(judge_witnessed(one, ORIGIN, log.public, cosigners),
                             judge_witnessed(two, ORIGIN, log.public, cosigners))
    assert merged.cosigners == {0, 1}
    assert judge_witnessed(merged.note, ORIGIN, log.public, cosigners).cosigners == {0, 1}
    unsigned = body + "\n" + sign_cosignature(body, "w0.example/witness", witnesses[0],
                                              10).line()
    with pytest.raises(CheckpointError):
        judge_witnessed(unsigned, ORIGIN, log.public, cosigners)   # no log signature
    with pytest.raises(CheckpointError):
        judge_witnessed(one, ORIGIN, Signer.generate("y").public, cosigners)


def test_answer_lines_are_bounded() -> None:
    assert parse_signature_lines(SPEC_LINE) == [SPEC_LINE]
    for bad in ("", SPEC_LINE.rstrip("\n"), "hello\n", SPEC_LINE + "hello\n"):
        with pytest.raises(CosignatureError):
            parse_signature_lines(bad)
    with pytest.raises(CosignatureError):
        parse_signature_lines(SPEC_LINE * 101)
    with pytest.raises(CosignatureError):
        cosigner_vkey("two words", LITETLOG_PUBLIC)
