"""Known-answer tests (RFC 8785, RFC 8032) and the keystore's promises."""

from __future__ import annotations

import json
import os
import stat

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import KeyUnavailableError
from ledger.log.keys import Keystore, PublicKey, Signer, event_key_id
from ledger.log.statement import EVENT_CONTEXT, Envelope, Statement, canonical_bytes

# RFC 8785 §3.2.2 (sample input and its canonical output).
RFC8785_INPUT = {
    "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
    "literals": [None, True, False],
}
RFC8785_OUTPUT = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,'
                  '1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}').encode()


def test_rfc8785_sample() -> None:
    assert canonical_bytes(RFC8785_INPUT) == RFC8785_OUTPUT


def test_rfc8785_utf16_key_order() -> None:
    # RFC 8785 §3.2.3: properties sorted by UTF-16 code units.
    obj = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7}
    out = canonical_bytes(obj).decode()
    order = ["\\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    positions = [out.index(f'"{k}"') for k in order]
    assert positions == sorted(positions)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                      st.text(max_size=20))
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(alphabet=st.characters(max_codepoint=127), max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_value)
def test_fast_canonical_path_equals_reference(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


# RFC 8032 §7.1, TEST 1 and TEST 2.
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
     "9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f"
     "11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(secret: str, public: str, message: str, signature: str) -> None:
    signer = Signer("kat", Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret)))
    assert signer.public.hex() == public
    assert signer.sign(bytes.fromhex(message)).hex() == signature
    key = PublicKey.from_raw(bytes.fromhex(public))
    assert key.verify(bytes.fromhex(signature), bytes.fromhex(message))
    assert not key.verify(bytes.fromhex(signature), bytes.fromhex(message) + b"x")


def _statement() -> Statement:
    return Statement(origin="o.example/l", stream="XF-2025-000001", seq=1, prev="0" * 64,
                     type="register", at="2025-03-02T09:30:00+08:00", actor="registrar-01",
                     key="00" * 8, data={"summary": "户口", "persons": 2})


def test_signed_bytes_are_domain_separated_canonical_json() -> None:
    signed = _statement().signed_bytes()
    assert signed.startswith(EVENT_CONTEXT)
    assert signed[len(EVENT_CONTEXT):] == rfc8785.dumps(_statement().to_object())
    assert Statement.from_signed_bytes(signed) == _statement()


def test_golden_statement_bytes() -> None:
    # Golden bytes: a change here is a format change and needs a new format version.
    assert _statement().signed_bytes() == (
        b'xinfang-ledger/v1/event\n{"actor":"registrar-01","at":"2025-03-02T09:30:00+08:00",'
        b'"data":{"persons":2,"summary":"\xe6\x88\xb7\xe5\x8f\xa3"},"key":"0000000000000000",'
        b'"origin":"o.example/l","prev":"' + b"0" * 64 + b'","seq":1,"stream":"XF-2025-000001",'
        b'"type":"register","v":1}')


def test_non_canonical_statement_rejected() -> None:
    signed = _statement().signed_bytes().replace(b'{"actor"', b'{ "actor"')
    with pytest.raises(ValueError, match="canonical"):
        Statement.from_signed_bytes(signed)


def test_envelope_round_trip() -> None:
    env = Envelope(123456, b"s" * 64, _statement().signed_bytes())
    assert Envelope.from_bytes(env.to_bytes()) == env
    with pytest.raises(ValueError):
        Envelope.from_bytes(b"nope" + env.to_bytes()[4:])


def test_key_id_is_short_digest_of_raw_public_key() -> None:
    signer = Signer("a", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert event_key_id(signer.public) == signer.key_id and len(signer.key_id) == 16


def test_keystore_encrypts_at_rest_with_mode_0600(tmp_path) -> None:  # noqa: ANN001
    store = Keystore(tmp_path / "keys", passphrase="correct horse")
    signer = store.create("officer-07")
    path = tmp_path / "keys" / "officer-07.key"
    data = path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in data
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert Keystore(tmp_path / "keys", passphrase="correct horse").load("officer-07").public \
        == signer.public
    with pytest.raises(KeyUnavailableError, match="XINFANG_PASSPHRASE"):
        Keystore(tmp_path / "keys").load("officer-07")
    with pytest.raises(KeyUnavailableError, match="cannot unlock"):
        Keystore(tmp_path / "keys", passphrase="wrong").load("officer-07")


def test_keystore_missing_key_is_environment_error(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(KeyUnavailableError) as info:
        Keystore(tmp_path).load("nobody")
    assert info.value.exit_code == 3


def test_strict_parse_demands_utf16_key_order_not_code_point_order() -> None:
    # U+1F600 sorts before U+FB33 by UTF-16 code units (0xD83D < 0xFB33), after it by code
    # point: Python's sort_keys order is not RFC 8785's once keys leave the BMP.
    obj = {**_statement().to_object(), "data": {"\ufb33": 1, "\U0001f600": 2}}
    code_point = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert code_point.encode() != rfc8785.dumps(obj)
    with pytest.raises(ValueError, match="canonical"):
        Statement.from_signed_bytes(EVENT_CONTEXT + code_point.encode())
    parsed = Statement.from_signed_bytes(EVENT_CONTEXT + rfc8785.dumps(obj))
    assert parsed.data == obj["data"]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(("old", "new", "reason"), [
    (b'"persons":2', b'"persons":2.0', "not an integer"),
    (b'"persons":2', b'"persons":9007199254740992', "2\\^53"),
    (b'"seq":1', b'"seq":0', "not positive"),
    (b'"at":"2025-03-02T09:30:00+08:00"', b'"at":"2025-03-02 09:30:00+08:00"', "form"),
    (b'"at":"2025-03-02T09:30:00+08:00"', b'"at":"9999-12-31T23:59:59-12:00"', "years"),
    (b'"at":"2025-03-02T09:30:00+08:00"', b'"at":"2025-03-02T09:30:00+14:30"', "offset"),
    (b'"summary":"', b'"summary":"\\ud800', "surrogate"),
    (b'"summary":"', b'"summary":"\xff', "utf-8"),
    (b'"actor":"registrar-01"', b'"actor":"' + b"r" * 2000 + b'"', "longer than"),
])
def test_parse_refuses_out_of_bound_values_in_either_mode(strict: bool, old: bytes, new: bytes,
                                                         reason: str) -> None:
    signed = _statement().signed_bytes()
    assert old in signed
    with pytest.raises(ValueError, match=reason):
        Statement.from_signed_bytes(signed.replace(old, new), strict=strict)


def test_parse_refuses_deep_nesting_and_huge_statements() -> None:
    signed = _statement().signed_bytes()
    deep = signed.replace(b'"persons":2', b'"persons":' + b"[" * 40 + b"]" * 40)
    with pytest.raises(ValueError, match="nests deeper"):
        Statement.from_signed_bytes(deep, strict=False)
    deeper = signed.replace(b'"persons":2', b'"persons":' + b"[" * 200000 + b"]" * 200000)
    with pytest.raises(ValueError, match="nests deeper"):
        Statement.from_signed_bytes(deeper, strict=False)
    huge = signed.replace(b'"summary":"', b'"summary":"' + b"x" * (1 << 20))
    with pytest.raises(ValueError, match="bytes, more than"):
        Statement.from_signed_bytes(huge, strict=False)
