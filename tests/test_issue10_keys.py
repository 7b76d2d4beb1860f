"""Issue 10, part A: the key types, one verification, key ids per format, the session's
dependency on a Protocol, forbidden-vs-invalid by flag, and "no ledger" as exit 3."""

from __future__ import annotations

import ast
import copy
import hashlib
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.domain.directory import Directory, DirectoryViolation
from ledger.errors import ForbiddenError, InputError
from ledger.log.checkpoint import note_key_id, sign_note, verify_note
from ledger.log.keys import PublicKey, Signer, event_key_id
from ledger.storage.store import Store, parse_location
from ledger.verification.checker import check_signatures
from ledger.verification.checks import Check
from tests.world import World, t

ZERO_SEED = Signer("zero", Ed25519PrivateKey.from_private_bytes(bytes(32)))
# RFC 8032 §7.1 test 1: the public key of the all-zero seed.
ZERO_PUBLIC = bytes.fromhex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29")


# ---- PublicKey --------------------------------------------------------------------------------

def test_public_key_round_trips_raw_and_pem() -> None:
    key = ZERO_SEED.public_key
    assert key.raw == ZERO_SEED.public == ZERO_PUBLIC
    assert PublicKey.from_raw(bytearray(ZERO_PUBLIC)) == key
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert PublicKey.from_pem(pem) == key
    assert hash(PublicKey.from_pem(pem)) == hash(key)   # usable as a dict key
    signature = ZERO_SEED.sign(b"m")
    assert key.verify(signature, b"m")   # loads (and caches) the key object
    for copied in (pickle.loads(pickle.dumps(key)), copy.deepcopy(key)):
        assert copied == key and copied.verify(signature, b"m")


def test_public_key_refuses_what_is_not_an_ed25519_key() -> None:
    for raw in (b"", bytes(31), bytes(33)):
        with pytest.raises(ValueError, match="32 bytes"):
            PublicKey.from_raw(raw)
    with pytest.raises(InputError, match="not a PEM public key"):
        PublicKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(InputError, match="not Ed25519"):
        PublicKey.from_pem(other)


def test_verify_accepts_only_this_keys_signature_of_this_message() -> None:
    message = b"xinfang-ledger/v1/event\n{}"
    signature = ZERO_SEED.sign(message)
    assert ZERO_SEED.public_key.verify(signature, message)
    assert not Signer.generate("other").public_key.verify(signature, message)   # wrong key
    assert not ZERO_SEED.public_key.verify(signature, message + b" ")            # altered message
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not ZERO_SEED.public_key.verify(flipped, message)                     # altered sig
    # Hostile input never raises: it just does not verify.
    assert not ZERO_SEED.public_key.verify(signature[:63], message)
    assert not ZERO_SEED.public_key.verify(b"", message)
    assert not ZERO_SEED.public_key.verify("sig", message)  # type: ignore[arg-type]


def test_event_and_note_key_ids_are_two_named_formats() -> None:
    # The event key id: 8 bytes of SHA-256 over the raw key, hex (Statement.key).
    assert event_key_id(ZERO_PUBLIC) == hashlib.sha256(ZERO_PUBLIC).hexdigest()[:16]
    assert ZERO_SEED.key_id == ZERO_SEED.public_key.key_id == event_key_id(ZERO_PUBLIC)
    # The C2SP note key id: 4 bytes over name || 0x0A || 0x01 || key; golang sumdb/note's
    # EnochRoot test key is the zero seed (af0cfe78).
    assert note_key_id("EnochRoot", ZERO_PUBLIC) == bytes.fromhex("af0cfe78")


# ---- Signer -----------------------------------------------------------------------------------

def test_signer_never_hands_out_its_private_key() -> None:
    signer = Signer.generate("officer-07")
    assert not hasattr(signer, "private")
    public_names = [name for name in dir(signer) if not name.startswith("_")]
    assert set(public_names) >= {"name", "public", "public_key", "key_id", "sign", "generate"}
    for name in public_names:
        assert not isinstance(getattr(signer, name), Ed25519PrivateKey), name
    with pytest.raises(AttributeError):
        signer.private = Ed25519PrivateKey.generate()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        signer.name = "someone-else"  # type: ignore[misc]
    assert "officer-07" in repr(signer) and signer.key_id in repr(signer)
    with pytest.raises(TypeError):
        Signer("x", Ed25519PrivateKey.generate().public_key())  # type: ignore[arg-type]


def test_notes_are_signed_by_a_signer_and_verified_by_its_public_key() -> None:
    text = "a note\n"
    note = sign_note(text, "log.example/l", ZERO_SEED)
    assert verify_note(note, "log.example/l", ZERO_SEED.public_key) == text
    assert verify_note(note, "log.example/l", ZERO_SEED.public) == text
    bare = Ed25519PrivateKey.from_private_bytes(bytes(32))   # signing goes through a Signer
    with pytest.raises(TypeError):
        sign_note(text, "log.example/l", bare)  # type: ignore[arg-type]


def test_batch_verification_is_the_public_key_verification() -> None:
    signed = b"not a statement"
    good = (1, "s", 1, ZERO_PUBLIC, ZERO_SEED.sign(signed), signed)
    stranger = Signer.generate("x")
    wrong_key = (2, "s", 2, stranger.public, ZERO_SEED.sign(signed), signed)
    short_key = (3, "s", 3, ZERO_PUBLIC[:31], ZERO_SEED.sign(signed), signed)
    failures = check_signatures([good, wrong_key, short_key, good])
    by_position = {f.position: f.check for f in failures}
    # Position 1 verifies (and then fails parsing); 2 and 3 fail the signature check.
    assert by_position == {1: Check.PARSE, 2: Check.SIGNATURE, 3: Check.SIGNATURE}


# ---- the write side's shape ---------------------------------------------------------------------

def _imported(path: Path) -> set[str]:
    """Every module a source file imports, anywhere in it (TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_session_and_commands_do_not_import_the_service() -> None:
    writing = Path(__file__).parents[1] / "ledger" / "writing"
    for name in ("session.py", "commands.py"):
        assert "ledger.writing.service" not in _imported(writing / name), name
    assert "ledger.writing.session" in _imported(writing / "service.py")


def test_directory_violations_say_whether_they_are_about_who_acts() -> None:
    directory = Directory()
    directory.apply("init", {"origin": "o", "log_key": "00" * 32, "admin": "admin-01",
                             "admin_name": "A", "admin_key": ZERO_PUBLIC.hex(), "policy": {}},
                    1)
    directory.apply("unit.add", {"unit": "controller", "name": "U"}, 2)
    cases = [("nobody", "unit.add", {"unit": "u2", "name": "U"}, True),
             ("admin-01", "unit.add", {"unit": "controller", "name": "U"}, False),
             ("admin-01", "actor.rotate_key", {"actor": "ghost", "public_key": "00" * 32}, False)]
    for actor, action, data, forbidden in cases:
        with pytest.raises(DirectoryViolation) as info:
            directory.check(action, actor, data)
        assert info.value.forbidden is forbidden, (actor, action)


def test_forbidden_is_decided_by_the_rule_not_by_words_in_the_message(world: World) -> None:
    led = world.ledger
    led.add_unit("controller", "指挥中心", as_actor="admin-01", at=t("2025-01-03"))
    # "controller" contains "role": the old substring test called this refusal forbidden.
    with pytest.raises(InputError) as info:
        led.add_unit("controller", "again", as_actor="admin-01", at=t("2025-01-03"))
    assert not isinstance(info.value, ForbiddenError)
    with pytest.raises(ForbiddenError, match="no role"):
        led.add_unit("unit-x", "x", as_actor="officer-07", at=t("2025-01-03"))


# ---- "no ledger" is an environment problem (exit 3) ---------------------------------------------

COMMANDS = [("case", "history", "XF-2025-000001"),
            ("report", "statistics", "--from", "2025-01-01", "--to", "2025-12-31"),
            ("export", "XF-2025-000001"),
            ("verify",), ("checkpoint",), ("actor", "list")]


@pytest.mark.parametrize("tables", [False, True], ids=["empty-database", "tables-no-init"])
def test_no_ledger_exits_3_for_every_command(ledger_url: str, tmp_path: Path,
                                             tables: bool) -> None:
    from cli.main import cli

    location = parse_location(ledger_url)
    if location.path is not None:
        location.path.write_bytes(b"")   # an empty database file
    if tables:
        Store(location, create=True).close()
    runner = CliRunner()
    for command in COMMANDS:
        result = runner.invoke(cli, ["--ledger", ledger_url, "--keystore", str(tmp_path / "k"),
                                     *command], catch_exceptions=False)
        assert result.exit_code == 3, (command, result.output)
        assert "Traceback" not in result.output
        if tables:
            assert "not initialized" in result.output, (command, result.output)
