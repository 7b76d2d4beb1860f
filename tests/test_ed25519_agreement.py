"""libsodium verifies, OpenSSL signs: the two must agree on every signature the ledger can meet.

The rule (docs/integrity.md §5): a signature verifies only if both libraries accept it.
``PublicKey.verify`` runs libsodium alone, which implements the rule because what it accepts
is a subset of what OpenSSL accepts — shown here on the RFC 8032 vectors, on every class of
edge case (tests/ed25519_edge.py builds them from first principles), and on random valid and
corrupted signatures. Where the libraries differ, each class is named with both verdicts.
"""

from __future__ import annotations

import re

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ledger.log.keys import PublicKey, Signer, ed25519_verify, event_key_id, verify_signatures
from ledger.verification.checks import Check
from ledger.verification.verify import verify_ledger
from tests import ed25519_edge as edge
from tests.tamper import forge
from tests.world import World, t


def openssl(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sodium(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        crypto_sign_open(signature + message, public)
    except BadSignatureError:
        return False
    return True


# ---- RFC 8032 §7.1 --------------------------------------------------------------------------

RFC8032 = [   # TEST 1, TEST 2, TEST 3: secret key, public key, message, signature
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
     "9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f"
     "11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984"
     "dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors_sign_with_openssl_and_verify_with_libsodium(
        secret: str, public: str, message: str, signature: str) -> None:
    signer = Signer("kat", Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret)))
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert signer.public == pub and signer.sign(msg) == sig   # the signer reproduces the RFC
    assert openssl(pub, sig, msg) and sodium(pub, sig, msg)
    assert PublicKey.from_raw(pub).verify(sig, msg)
    s = int.from_bytes(sig[32:], "little")
    for bad_sig, bad_msg in [(sig, msg + b"\x00"), (sig[:63] + bytes([sig[63] ^ 1]), msg),
                             (sig[:32] + (s + edge.L).to_bytes(32, "little"), msg)]:
        assert not openssl(pub, bad_sig, bad_msg) and not sodium(pub, bad_sig, bad_msg)
        assert not PublicKey.from_raw(pub).verify(bad_sig, bad_msg)


# ---- edge cases -------------------------------------------------------------------------------

# (OpenSSL, libsodium) for each class. Where they differ, libsodium is the stricter one.
EXPECTED = {
    "honest": (True, True),
    "S + L (non-canonical S)": (False, False),
    "S with the top bits set": (False, False),
    "R = identity (small order), prime-order key": (True, False),
    "small-order key, small-order R, S = 0": (True, False),
    "small-order key, prime-order R": (True, False),
    "non-canonical small-order key, canonical small-order R": (True, False),
    "non-canonical small-order key, non-canonical small-order R": (False, False),
    "small-order key, non-canonical small-order R": (False, False),
    "mixed-order key, cofactorless equation holds": (True, True),
    "mixed-order key, only cofactored": (False, False),
    "mixed-order key, mixed-order R, cofactorless holds": (True, True),
    "mixed-order R, prime-order key": (False, False),
    "public key not on the curve": (False, False),
}


def _class(kind: str) -> str:
    """The class of a case, without the orders it was built with."""
    return re.sub(r" \((?:torsion )?\d\)", "", kind)


@pytest.fixture(scope="module")
def cases() -> list[edge.Case]:
    return list(edge.edge_cases())


def test_the_edge_cases_cover_every_class_and_every_torsion_point(cases: list[edge.Case]
                                                                    ) -> None:
    assert {_class(c.kind) for c in cases} == set(EXPECTED)
    small_keys = {c.public for c in cases if _class(c.kind) == "small-order key, prime-order R"}
    assert small_keys == {edge.encode(t) for t in edge.TORSION}   # all eight small-order keys
    assert len(cases) > 100


def test_each_class_gets_the_documented_verdict_from_each_library(cases: list[edge.Case]
                                                                  ) -> None:
    for case in cases:
        got = (openssl(case.public, case.signature, case.message),
               sodium(case.public, case.signature, case.message))
        assert got == EXPECTED[_class(case.kind)], case.kind


def test_public_key_verify_is_the_strict_rule_on_every_edge_case(cases: list[edge.Case]) -> None:
    for case in cases:
        both = openssl(case.public, case.signature, case.message) and \
            sodium(case.public, case.signature, case.message)
        assert PublicKey.from_raw(case.public).verify(case.signature, case.message) is both, \
            case.kind
        # libsodium never accepts what OpenSSL rejects: libsodium alone is "both accept"
        assert not (sodium(case.public, case.signature, case.message)
                    and not openssl(case.public, case.signature, case.message)), case.kind
    jobs = [(c.public, c.signature, c.message) for c in cases]
    assert verify_signatures(jobs) == [i for i, c in enumerate(cases)
                                       if not EXPECTED[_class(c.kind)][1]]


def test_the_identity_key_is_a_universal_forgery_for_openssl_only() -> None:
    identity = edge.encode(edge.IDENTITY)
    forged = identity + bytes(32)   # R = identity, S = 0
    for message in (b"", b"any message", b"x" * 1000):
        assert openssl(identity, forged, message)
        assert not PublicKey.from_raw(identity).verify(forged, message)


# ---- random valid and corrupted signatures ----------------------------------------------------

MUTATIONS = ["none", "flip signature bit", "flip message bit", "other key", "S + L",
             "truncate signature", "extend signature", "flip key bit"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.binary(min_size=32, max_size=32), other=st.binary(min_size=32, max_size=32),
       message=st.binary(max_size=300), mutation=st.sampled_from(MUTATIONS),
       bit=st.integers(0, 10_000))
def test_libsodium_and_openssl_agree_on_random_and_corrupted_signatures(
        seed: bytes, other: bytes, message: bytes, mutation: str, bit: int) -> None:
    signer = Signer("h", Ed25519PrivateKey.from_private_bytes(seed))
    public, signature = signer.public, signer.sign(message)
    if mutation == "flip signature bit":
        i = bit % 512
        signature = bytes(b ^ (1 << (i % 8)) if n == i // 8 else b
                          for n, b in enumerate(signature))
    elif mutation == "flip message bit" and message:
        i = bit % (8 * len(message))
        message = bytes(b ^ (1 << (i % 8)) if n == i // 8 else b for n, b in enumerate(message))
    elif mutation == "other key":
        public = Signer("o", Ed25519PrivateKey.from_private_bytes(other)).public
    elif mutation == "S + L":
        s = int.from_bytes(signature[32:], "little") + edge.L
        signature = signature[:32] + s.to_bytes(32, "little")
    elif mutation == "truncate signature":
        signature = signature[:bit % 64]
    elif mutation == "extend signature":
        signature = signature + b"\x00" * (1 + bit % 8)
    elif mutation == "flip key bit":
        i = bit % 256
        public = bytes(b ^ (1 << (i % 8)) if n == i // 8 else b for n, b in enumerate(public))
    ours = PublicKey.from_raw(public).verify(signature, message)
    valid_lengths = len(signature) == 64
    theirs = valid_lengths and openssl(public, signature, message)
    assert ours is theirs
    assert ours is (valid_lengths and sodium(public, signature, message))
    unchanged = mutation == "none" or (mutation == "flip message bit" and not message) or \
        (mutation == "other key" and other == seed)
    assert ours is unchanged


@pytest.mark.parametrize("bad", [None, "text", 7, b"", bytes(31), bytes(33)])
def test_hostile_inputs_never_raise(bad: object) -> None:
    key = Signer.generate("k").public
    assert ed25519_verify(bad, bytes(64), b"m") is False  # type: ignore[arg-type]
    assert ed25519_verify(key, bad, b"m") is False  # type: ignore[arg-type]
    assert PublicKey.from_raw(key).verify(bad, b"m") is False  # type: ignore[arg-type]
    if bad is None or isinstance(bad, str | int):
        assert ed25519_verify(key, bytes(64), bad) is False  # type: ignore[arg-type]


# ---- in a ledger --------------------------------------------------------------------------------

class _IdentityKeyForger:
    """What a rogue admin gets by registering the identity point as an actor's key: a
    signature (R = identity, S = 0) that OpenSSL accepts for every message."""

    key_id = event_key_id(edge.encode(edge.IDENTITY))

    def sign(self, message: bytes) -> bytes:
        return edge.encode(edge.IDENTITY) + bytes(32)


def test_an_event_under_a_small_order_key_fails_check_2(world: World) -> None:
    led = world.ledger
    identity = edge.encode(edge.IDENTITY)
    led.add_actor("registrar-99", "某登记员", roles=["registrar"], unit="city",
                  public_key_pem=PublicKey.from_raw(identity).to_pem(), as_actor="admin-01",
                  at=t("2025-01-01", 9))
    at = t("2025-03-05", 10)
    position = forge(led.store, _IdentityKeyForger(), stream="XF-2025-000099",  # type: ignore[arg-type]
                     action="register", actor="registrar-99", at=at,
                     data={"channel": "letter", "source": "direct", "category": "help",
                           "petitioner": "pet-0001", "summary": "伪造"},
                     log_signer=led._checkpoint_signer())
    record = led.store.stream("XF-2025-000099")[0]
    signed = record.state[76:]
    assert openssl(identity, identity + bytes(32), signed)   # OpenSSL would have let it count
    report = verify_ledger(led.store)
    assert not report.ok
    assert [(f.position, f.check) for f in report.failures
            if f.stream == "XF-2025-000099"] == [(position, Check.SIGNATURE)]
