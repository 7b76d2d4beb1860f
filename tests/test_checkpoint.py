"""Tests for ledger.checkpoint (c2sp.org/tlog-checkpoint in a c2sp.org/signed-note, Ed25519)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log.checkpoint import (
    ED25519_ALG,
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    NoteSignature,
    SignedCheckpoint,
    note_key_id,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_checkpoint,
    verify_note,
)
from ledger.log.keys import Signer

EM = "\u2014"

# --------------------------------------------------------------------------------------------
# Known-answer vectors from golang.org/x/mod/sumdb/note, file sumdb/note/note_test.go
# (TestNewVerifier, TestNewSigner, TestSign, TestOpen) and the package doc in note.go.
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    f"{EM} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    f"{EM} EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# A real sum.golang.org signed tree head (a tlog-checkpoint whose origin differs from the key
# name), from google/trillian-examples formats/log/checkpoint_test.go (TestSumDBNoteParsing).
# The verifier key is Go's built-in one, golang/go src/cmd/go/internal/modfetch/key.go.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_NOTE = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    f"{EM} sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)

# The illustrative example at the top of C2SP/C2SP tlog-checkpoint.md (no public key is given,
# so it is only parsed).
C2SP_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    f"{EM} example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

# --------------------------------------------------------------------------------------------
# Golden output of this module for a fixed key (all-zero Ed25519 seed), computed once.
# (That seed is also Go's "EnochRoot" test key, see test_go_enoch_key_is_zero_seed.)
NAME = "example.com/ledger"
SEED0 = Signer("seed0", Ed25519PrivateKey.from_private_bytes(bytes(32)))
GOLDEN_CP = Checkpoint(NAME, 3, bytes(range(32)), ("ledger-ext alpha",))
GOLDEN_NOTE = (
    "example.com/ledger\n"
    "3\n"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    "ledger-ext alpha\n"
    "\n"
    f"{EM} example.com/ledger "
    "66/Ci+58ciUe4xWqTepPlarl5LmphrKeDs1H+kVFIzTTWXJCdNkMdYEW3b3fYbUDguXBkIGjtCIEz193Ahd+O1Z8DQE=\n"
)
GOLDEN_VKEY = "example.com/ledger+ebafc28b+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
OTHER_KEY = Signer("other", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))
OTHER_VKEY = "witness.example/w1+52f2363b+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"


def _go_peter_private() -> Signer:
    raw = base64.b64decode(GO_PETER_SKEY.split("+", 4)[4])
    assert raw[0] == ED25519_ALG and len(raw) == 33
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(raw[1:]))


def _sig_line(name: str, kid: bytes, sig: bytes) -> str:
    return f"{EM} {name} {base64.b64encode(kid + sig).decode()}\n"


# ============================================================================================
# Known-answer tests


def test_go_verifier_key_roundtrip() -> None:
    name, pub = parse_verifier_key(GO_PETER_VKEY)
    assert name == "PeterNeumann"
    assert note_key_id(name, pub) == bytes.fromhex("c74f20a3")
    assert verifier_key(name, pub) == GO_PETER_VKEY
    assert _go_peter_private().public == pub


def test_go_sign_reproduces_note_byte_for_byte() -> None:
    want = GO_TEXT + "\n" + GO_PETER_SIG
    assert sign_note(GO_TEXT, "PeterNeumann", _go_peter_private()) == want
    _, pub = parse_verifier_key(GO_PETER_VKEY)
    assert verify_note(want, "PeterNeumann", pub) == GO_TEXT
    assert verify_note(want.encode(), "PeterNeumann", pub) == GO_TEXT


def test_go_enoch_key_is_zero_seed() -> None:
    pub = SEED0.public
    assert verifier_key("EnochRoot", pub) == GO_ENOCH_VKEY
    assert parse_verifier_key(GO_ENOCH_VKEY) == ("EnochRoot", pub)
    assert sign_note(GO_TEXT, "EnochRoot", SEED0) == GO_TEXT + "\n" + GO_ENOCH_SIG


def test_go_open_two_signatures() -> None:
    msg = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    _, peter = parse_verifier_key(GO_PETER_VKEY)
    _, enoch = parse_verifier_key(GO_ENOCH_VKEY)
    assert verify_note(msg, "PeterNeumann", peter) == GO_TEXT
    assert verify_note(msg, "EnochRoot", enoch) == GO_TEXT
    # Enoch's key is unknown to a Peter-only verifier and must not be required.
    with pytest.raises(CheckpointError, match="no signature by PeterNeumann"):
        verify_note(GO_TEXT + "\n" + GO_ENOCH_SIG, "PeterNeumann", peter)


def test_go_open_invalid_signature() -> None:
    # TestOpen "Invalid signature": four base64 chars inserted into Peter's signature.
    _, peter = parse_verifier_key(GO_PETER_VKEY)
    bad = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(bad, "PeterNeumann", peter)


@pytest.mark.parametrize(
    "msg",
    [
        GO_TEXT.encode(),
        (GO_TEXT + "\n").encode(),
        (GO_TEXT + "\n" + GO_PETER_SIG[:-1]).encode(),
        ("\x01" + GO_TEXT + "\n" + GO_PETER_SIG).encode(),
        b"\xff" + (GO_TEXT + "\n" + GO_PETER_SIG).encode(),
        (GO_TEXT + "\n" + GO_PETER_SIG.replace("PeterNeumann", "Bad Name")).encode(),
        (GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n").encode(),
        (GO_TEXT + "\n" + GO_PETER_SIG * (MAX_SIGNATURES + 1)).encode(),
    ],
)
def test_go_open_malformed(msg: bytes) -> None:
    # TestOpen "Invalid encoded message syntax" and "too many signatures".
    _, peter = parse_verifier_key(GO_PETER_VKEY)
    with pytest.raises(CheckpointError):
        verify_note(msg, "PeterNeumann", peter)


def test_go_verifier_key_manglings_rejected() -> None:
    # TestNewVerifier: every proper substring and every single-byte increment must fail.
    b = GO_PETER_VKEY.encode()
    bad: list[str] = []
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                bad.append(b[i:j].decode())
    for i in range(len(b)):
        bad.append((b[:i] + bytes([b[i] + 1]) + b[i + 1 :]).decode())
    # Wrong-length key and unknown algorithm, each with an adjusted key hash.
    bad.append("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    bad.append("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    for vkey in bad:
        with pytest.raises(CheckpointError):
            parse_verifier_key(vkey)


def test_sumdb_checkpoint_verifies() -> None:
    name, pub = parse_verifier_key(SUMDB_VKEY)
    assert name == "sum.golang.org"
    cp = verify_checkpoint(SUMDB_NOTE, name, pub, origin="go.sum database tree")
    assert cp.origin == "go.sum database tree"
    assert cp.size == 6476701
    assert cp.root == base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
    assert cp.extensions == ()
    with pytest.raises(CheckpointError, match="origin"):
        verify_checkpoint(SUMDB_NOTE, name, pub, origin="Go rocks but I might have the wrong ID")
    tampered = SUMDB_NOTE.replace("6476701", "6476702")
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(tampered, name, pub)


def test_c2sp_spec_example_parses() -> None:
    signed = parse_checkpoint(C2SP_EXAMPLE)
    assert signed.text == C2SP_EXAMPLE
    assert signed.checkpoint == Checkpoint(
        "example.com/behind-the-sofa",
        20852163,
        base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    (sig,) = signed.signatures
    assert sig.name == "example.com/behind-the-sofa"
    assert sig.key_id == bytes.fromhex("033de0ae")
    assert len(sig.signature) == 64


# ============================================================================================
# Round trip and golden output


def test_note_key_id_definition() -> None:
    pub = SEED0.public
    want = hashlib.sha256(NAME.encode() + b"\n\x01" + pub).digest()[:4]
    assert note_key_id(NAME, pub) == want
    assert verifier_key(NAME, pub) == GOLDEN_VKEY
    assert parse_verifier_key(GOLDEN_VKEY) == (NAME, pub)
    assert verifier_key("witness.example/w1", OTHER_KEY.public) == (
        OTHER_VKEY
    )


def test_body_format() -> None:
    assert GOLDEN_CP.body() == (
        "example.com/ledger\n3\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nledger-ext alpha\n"
    )
    assert Checkpoint("o", 0, bytes(32)).body() == "o\n0\n" + "A" * 43 + "=\n"
    assert Checkpoint.from_body(GOLDEN_CP.body()) == GOLDEN_CP


def test_sign_is_deterministic_golden() -> None:
    assert sign_checkpoint(GOLDEN_CP, NAME, SEED0) == GOLDEN_NOTE
    assert sign_checkpoint(GOLDEN_CP, NAME, SEED0) == GOLDEN_NOTE


def test_round_trip() -> None:
    signed = parse_checkpoint(GOLDEN_NOTE)
    assert isinstance(signed, SignedCheckpoint)
    assert signed.checkpoint == GOLDEN_CP
    assert signed.text == GOLDEN_NOTE
    pub = SEED0.public
    assert signed.signatures == (
        NoteSignature(NAME, note_key_id(NAME, pub), signed.signatures[0].signature),
    )
    assert len(signed.signatures[0].signature) == 64
    assert verify_checkpoint(GOLDEN_NOTE, NAME, SEED0.public_key) == GOLDEN_CP
    assert verify_checkpoint(GOLDEN_NOTE, NAME, pub, origin=NAME) == GOLDEN_CP
    assert verify_checkpoint(GOLDEN_NOTE.encode(), NAME, pub) == GOLDEN_CP


@pytest.mark.parametrize("size", [0, 1, 10, 2**63, 2**64 - 1])
def test_round_trip_sizes(size: int) -> None:
    cp = Checkpoint("log.example/x", size, hashlib.sha256(str(size).encode()).digest())
    text = sign_checkpoint(cp, "log.example/x", OTHER_KEY)
    assert verify_checkpoint(text, "log.example/x", OTHER_KEY.public_key) == cp


def test_cosigned_note_unknown_signatures_ignored() -> None:
    # Another key's signature (a "witness") is appended; each verifier ignores the other's.
    body = GOLDEN_CP.body()
    witness_line = sign_note(body, "witness.example/w1", OTHER_KEY).split("\n\n", 1)[1]
    text = GOLDEN_NOTE + witness_line
    signed = parse_checkpoint(text)
    assert [s.name for s in signed.signatures] == [NAME, "witness.example/w1"]
    assert verify_checkpoint(text, NAME, SEED0.public_key) == GOLDEN_CP
    assert verify_checkpoint(text, "witness.example/w1", OTHER_KEY.public_key) == GOLDEN_CP
    # A signature with the right name but an unknown key ID is ignored too (garbage inside).
    junk = _sig_line(NAME, b"\x00\x00\x00\x00", b"\x01" * 64)
    assert verify_checkpoint(GOLDEN_NOTE + junk, NAME, SEED0.public_key) == GOLDEN_CP


# ============================================================================================
# Tampering


def _verify(text: str | bytes) -> Checkpoint:
    return verify_checkpoint(text, NAME, SEED0.public_key)


ROOT_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SIG_B64 = GOLDEN_NOTE.rsplit(" ", 1)[1].rstrip("\n")


def _flip_sig_byte(index: int) -> str:
    raw = bytearray(base64.b64decode(SIG_B64))
    raw[index] ^= 0x01
    return GOLDEN_NOTE.replace(SIG_B64, base64.b64encode(bytes(raw)).decode())


@pytest.mark.parametrize(
    ("tampered", "message"),
    [
        (GOLDEN_NOTE.replace("\n3\n", "\n4\n"), "does not verify"),
        (GOLDEN_NOTE.replace(ROOT_B64, base64.b64encode(bytes(32)).decode()), "does not verify"),
        (GOLDEN_NOTE.replace("example.com/ledger\n3", "example.com/ledgeR\n3"), "does not verify"),
        (GOLDEN_NOTE.replace("ext alpha", "ext beta"), "does not verify"),
        (GOLDEN_NOTE.replace("ledger-ext alpha\n", ""), "does not verify"),
        (GOLDEN_NOTE.replace("alpha\n", "alpha\nmore\n"), "does not verify"),
        (_flip_sig_byte(4), "does not verify"),
        (_flip_sig_byte(40), "does not verify"),
        (_flip_sig_byte(67), "does not verify"),
        (_flip_sig_byte(0), "no signature by"),  # key ID byte: the line is now an unknown key
        (_flip_sig_byte(3), "no signature by"),
        (GOLDEN_NOTE.replace(f"{EM} example.com/ledger", f"{EM} example.com/ledgeR"), "no sig"),
        (GOLDEN_NOTE.replace(SIG_B64, SIG_B64[:-8] + "AAAA" + SIG_B64[-8:]), "does not verify"),
    ],
)
def test_tamper_fails(tampered: str, message: str) -> None:
    assert tampered != GOLDEN_NOTE
    with pytest.raises(CheckpointError, match=message):
        _verify(tampered)


@pytest.mark.parametrize(
    "tampered",
    [
        GOLDEN_NOTE[:-1],  # missing final newline
        GOLDEN_NOTE + "\n",  # trailing blank line
        GOLDEN_NOTE.replace("alpha\n\n", "alpha\n\n\n"),  # two blank lines before signatures
        "\n" + GOLDEN_NOTE,  # leading blank line
        GOLDEN_NOTE.replace("\n3\n", "\n\n3\n"),  # blank line inside the body
        GOLDEN_NOTE.replace("\n\n", "\n"),  # no blank line separator
        GOLDEN_NOTE + "\n" + GOLDEN_NOTE.split("\n\n")[1],  # blank line between signatures
        GOLDEN_NOTE.replace("\n", "\r\n"),  # CRLF
        GOLDEN_NOTE.replace(EM, "-"),  # ASCII hyphen instead of em dash
        GOLDEN_NOTE.replace(f"{EM} ", f"{EM}  "),  # double space
        GOLDEN_NOTE.replace("\n3\n", "\n03\n"),  # leading zero
        GOLDEN_NOTE.replace("\n3\n", "\n+3\n"),
        GOLDEN_NOTE.replace("\n3\n", "\n 3\n"),
        GOLDEN_NOTE.replace("\n3\n", "\n\u0663\n"),  # ARABIC-INDIC DIGIT THREE
        GOLDEN_NOTE.replace(ROOT_B64, ROOT_B64[:-1]),  # missing padding
        GOLDEN_NOTE.replace(ROOT_B64, ROOT_B64[:-2] + "9="),  # non-canonical trailing bits
        GOLDEN_NOTE.replace(ROOT_B64, base64.b64encode(bytes(31)).decode()),  # short root
        GOLDEN_NOTE.replace(ROOT_B64, base64.urlsafe_b64encode(b"\xff" * 32).decode()),
        GOLDEN_NOTE.replace(SIG_B64, SIG_B64[:-1]),
        GOLDEN_NOTE.replace(SIG_B64, "AAAA"),  # signature shorter than 5 bytes
        GOLDEN_NOTE.replace("example.com/ledger\n3", "\n3"),  # empty origin
        GOLDEN_NOTE.replace("alpha", "al\x00pha"),
        GOLDEN_NOTE.replace("alpha", "al\tpha"),
    ],
)
def test_malformed_rejected(tampered: str) -> None:
    assert tampered != GOLDEN_NOTE
    with pytest.raises(CheckpointError):
        parse_checkpoint(tampered)
    with pytest.raises(CheckpointError):
        _verify(tampered)


def test_wrong_key_fails() -> None:
    with pytest.raises(CheckpointError, match="no signature by example.com/ledger"):
        verify_checkpoint(GOLDEN_NOTE, NAME, OTHER_KEY.public_key)
    with pytest.raises(CheckpointError, match="no signature by other.example"):
        verify_checkpoint(GOLDEN_NOTE, "other.example", SEED0.public_key)


def test_forged_key_id_collision_fails() -> None:
    # A line claiming our (name, key ID) but signed by another key must be verified and fail.
    body = GOLDEN_CP.body()
    kid = note_key_id(NAME, SEED0.public)
    forged = body + "\n" + _sig_line(NAME, kid, OTHER_KEY.sign(body.encode()))
    with pytest.raises(CheckpointError, match="does not verify"):
        _verify(forged)
    # Wrong-length Ed25519 signature under our key ID.
    short = body + "\n" + _sig_line(NAME, kid, b"\x00" * 63)
    with pytest.raises(CheckpointError, match="does not verify"):
        _verify(short)


def test_any_bad_signature_by_known_key_rejects_note() -> None:
    body = GOLDEN_CP.body()
    kid = note_key_id(NAME, SEED0.public)
    bad = _sig_line(NAME, kid, OTHER_KEY.sign(body.encode()))
    with pytest.raises(CheckpointError, match="does not verify"):
        _verify(GOLDEN_NOTE + bad)
    with pytest.raises(CheckpointError, match="does not verify"):
        _verify(GOLDEN_NOTE.replace("\n\n", "\n\n" + bad))


def test_signature_limit() -> None:
    line = GOLDEN_NOTE.split("\n\n")[1]
    body = GOLDEN_CP.body()
    assert _verify(body + "\n" + line * MAX_SIGNATURES) == GOLDEN_CP
    with pytest.raises(CheckpointError, match="more than"):
        parse_checkpoint(body + "\n" + line * (MAX_SIGNATURES + 1))


def test_not_a_checkpoint() -> None:
    # A valid Go note whose text is not a checkpoint.
    with pytest.raises(CheckpointError, match="checkpoint"):
        parse_checkpoint(GO_TEXT + "\n" + GO_PETER_SIG)
    two_lines = "o\n1\n\n" + _sig_line("o", b"abcd", b"x" * 64)
    with pytest.raises(CheckpointError, match="at least 3 lines"):
        parse_checkpoint(two_lines)
    big = f"o\n{2**64}\n{ROOT_B64}\n\n" + _sig_line("o", b"abcd", b"x" * 64)
    with pytest.raises(CheckpointError, match="exceeds"):
        parse_checkpoint(big)


def test_invalid_utf8_and_surrogates() -> None:
    with pytest.raises(CheckpointError, match="UTF-8"):
        parse_checkpoint(GOLDEN_NOTE.encode().replace(b"alpha", b"alph\xe0"))
    with pytest.raises(CheckpointError, match="UTF-8"):
        parse_checkpoint(GOLDEN_NOTE.replace("alpha", "alpha\ud800"))


# ============================================================================================
# Construction and argument validation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root": bytes(32)},
        {"origin": "a\nb", "size": 1, "root": bytes(32)},
        {"origin": "a\rb", "size": 1, "root": bytes(32)},
        {"origin": "o", "size": -1, "root": bytes(32)},
        {"origin": "o", "size": 2**64, "root": bytes(32)},
        {"origin": "o", "size": True, "root": bytes(32)},
        {"origin": "o", "size": "1", "root": bytes(32)},
        {"origin": "o", "size": 1, "root": bytes(31)},
        {"origin": "o", "size": 1, "root": "0" * 32},
        {"origin": "o", "size": 1, "root": bytes(32), "extensions": ("",)},
        {"origin": "o", "size": 1, "root": bytes(32), "extensions": ("a\nb",)},
        {"origin": "o", "size": 1, "root": bytes(32), "extensions": ["x"]},
    ],
)
def test_checkpoint_validation(kwargs: dict) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(**kwargs)


def test_unicode_origin_and_extension_round_trip() -> None:
    cp = Checkpoint("信访.example/台账 v1", 7, bytes(range(32)), ("扩展 行",))
    text = sign_checkpoint(cp, NAME, SEED0)
    assert _verify(text) == cp


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\u3000b", "a\nb"])
def test_invalid_key_names(name: str) -> None:
    pub = SEED0.public
    with pytest.raises(CheckpointError, match="key name"):
        sign_checkpoint(GOLDEN_CP, name, SEED0)
    with pytest.raises(CheckpointError, match="key name"):
        verifier_key(name, pub)
    with pytest.raises(CheckpointError, match="key name"):
        verify_checkpoint(GOLDEN_NOTE, name, pub)


def test_key_argument_validation() -> None:
    with pytest.raises(CheckpointError, match="32 bytes"):
        note_key_id(NAME, bytes(31))
    with pytest.raises(CheckpointError, match="32 bytes"):
        verify_checkpoint(GOLDEN_NOTE, NAME, bytes(33))
    with pytest.raises(TypeError):
        verify_checkpoint(GOLDEN_NOTE, NAME, "not a key")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign_checkpoint(GOLDEN_CP, NAME, SEED0.public_key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):   # a bare private key: signing goes through a Signer
        sign_checkpoint(GOLDEN_CP, NAME, Ed25519PrivateKey.generate())  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="newline"):
        sign_note("no newline", NAME, SEED0)


def test_error_is_value_error() -> None:
    assert issubclass(CheckpointError, ValueError)
