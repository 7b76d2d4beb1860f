"""Fixtures: every storage test runs on SQLite and on the PostgreSQL server.

PostgreSQL tests use a fresh schema each. When XINFANG_REQUIRE_POSTGRES=1 (as in CI) an
unreachable server fails them; otherwise they are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.world import World, build_world

PG_DSN = os.environ.get("XINFANG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_DSN.split("?")[0], connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unavailable
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@pytest.fixture(scope="session")
def pg_problem() -> str | None:
    return _pg_available()


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path,
               pg_problem: str | None) -> Iterator[str]:
    yield from scratch_ledger_url(request.param, tmp_path, pg_problem)


@pytest.fixture
def pg_url(pg_problem: str | None, tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL-only ledger URL, for what exists only there (e.g. TRUNCATE)."""
    yield from scratch_ledger_url("postgresql", tmp_path, pg_problem)


def scratch_ledger_url(backend: str, directory: Path, pg_problem: str | None) -> Iterator[str]:
    """A fresh ledger URL: a file in ``directory``, or a new PostgreSQL schema dropped
    afterwards (failing instead of skipping when CI requires PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'ledger.db'}"
        return
    if pg_problem is not None:
        if os.environ.get("XINFANG_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_DSN}: {pg_problem}")
        pytest.skip(f"PostgreSQL unreachable: {pg_problem}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{PG_DSN}?schema={schema}"
    drop_schema(schema)


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def world(ledger_url: str, keystore: Path) -> Iterator[World]:
    w = build_world(ledger_url, keystore)
    yield w
    w.ledger.close()
