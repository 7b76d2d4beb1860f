"""Test-only tools that do what an attacker with database superuser rights could do."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg

from ledger.log.keys import Signer
from ledger.log.statement import Envelope, Statement, format_time, now_us
from ledger.storage.store import PendingEvent, Store


@contextmanager
def superuser(store: Store) -> Iterator[Any]:
    """A raw cursor with the append-only triggers out of the way (autocommitted at exit)."""
    if store.backend == "sqlite":
        assert store.location.path is not None
        conn = sqlite3.connect(store.location.path)
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger'"
                                ).fetchall()
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        try:
            yield conn
            conn.commit()
        finally:
            for _, sql in triggers:
                conn.execute(sql)
            conn.commit()
            conn.close()
    else:
        env = store.location.env
        assert env is not None
        with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                             port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                             autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off
            conn.execute(f'SET search_path TO "{env["POSTGRES_SCHEMA"]}"')
            yield _PgAdapter(conn)


class _PgAdapter:
    """Lets tests write sqlite-style '?' SQL against PostgreSQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)


def events_table(store: Store) -> str:
    return "stored_events" if store.backend == "sqlite" else store.recorder.events_table_name


def position_column(store: Store) -> str:
    return store.position_column


def forge(store: Store, signer: Signer, *, stream: str, action: str, actor: str,
          at: datetime, data: dict[str, Any], log_signer: Any, key: str | None = None,
          recorded_at_us: int | None = None) -> int:
    """Sign and append an event WITHOUT the write path's checks; returns its position.

    The event is properly leafed and checkpointed, so only the check aimed at is violated.
    """
    head = store.stream_head(stream)
    seq = head.seq + 1 if head else 1
    prev = Envelope.from_bytes(head.state).hash if head else "0" * 64
    origin = Statement.from_signed_bytes(Envelope.from_bytes(
        store.stream("directory")[0].state).signed).data["origin"]
    statement = Statement(origin=origin, stream=stream, seq=seq, prev=prev, type=action,
                          at=format_time(at), actor=actor, key=key or signer.key_id, data=data)
    signed = statement.signed_bytes()
    envelope = Envelope(recorded_at_us or now_us(), signer.sign(signed), signed)
    return store.append([PendingEvent(stream, seq, action, envelope.to_bytes())],
                        log_signer)[0]
