"""SQLite storage: schema, first-start seeding and every query the CRM makes.

stdlib sqlite3 is synchronous; the queries are single-row or tiny-table lookups on a local
file, so handlers call them directly. Only seeding (which hashes passwords) runs in a thread.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from . import seed_data
from .passwords import hash_password

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY COLLATE NOCASE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    company TEXT NOT NULL DEFAULT '',
    phone   TEXT NOT NULL UNIQUE,
    email   TEXT NOT NULL DEFAULT '',
    notes   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS customers_name ON customers (name COLLATE NOCASE);
-- Only a hash of the session id is stored: a leaked database file cannot be replayed as cookies.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash  TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    csrf     TEXT NOT NULL,
    created  REAL NOT NULL,
    expires  REAL NOT NULL
);
-- The gateway's call events (call_log.py); the event id makes a repeated delivery a no-op.
CREATE TABLE IF NOT EXISTS call_events (
    event_id  TEXT PRIMARY KEY,
    type      TEXT NOT NULL,
    job_id    TEXT NOT NULL,
    direction TEXT NOT NULL,
    number    TEXT,            -- the customer's side, normalised (caller inbound, callee outbound)
    agent     TEXT NOT NULL,
    crm_user  TEXT,
    at        TEXT NOT NULL,
    started   TEXT,
    duration  INTEGER,
    outcome   TEXT,
    notes     TEXT,
    body      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_events_number ON call_events (number);
"""


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    company: str
    phone: str
    email: str
    notes: str


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    password_hash: str


@dataclass(frozen=True)
class SessionRow:
    username: str
    display_name: str
    csrf: str
    expires: float


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the database with foreign keys on (they are off by default in SQLite)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def initialise(path: str | os.PathLike[str]) -> None:
    """Create the schema and add any missing seed rows; safe to run on every start."""
    conn = connect(path)
    try:
        with conn:
            conn.executescript(SCHEMA)
            _seed_users(conn)
            _seed_customers(conn)
    finally:
        conn.close()


def _seed_users(conn: sqlite3.Connection) -> None:
    for user in seed_data.USERS:
        exists = conn.execute("SELECT 1 FROM users WHERE username = ?", (user.username,))
        # Checked first so a restart neither re-hashes (slow) nor resets a changed password.
        if exists.fetchone() is None:
            conn.execute(
                "INSERT INTO users (username, display_name, password_hash) VALUES (?, ?, ?)",
                (user.username, user.display_name, hash_password(user.password)),
            )


def _seed_customers(conn: sqlite3.Connection) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO customers (name, company, phone, email, notes)"
        " VALUES (?, ?, ?, ?, ?)",
        seed_data.CUSTOMERS,
    )


_CUSTOMER_COLUMNS = "id, name, company, phone, email, notes"


class Database:
    """The CRM's queries over one open connection (owned by the app's cleanup context)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def close(self) -> None:
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection, for call_log.py's own table."""
        return self._conn

    # users

    def user(self, username: str) -> User | None:
        row = self._conn.execute(
            "SELECT username, display_name, password_hash FROM users WHERE username = ?",
            (username,),
        ).fetchone()
        return None if row is None else User(*row)

    # customers

    def customers(self) -> list[Customer]:
        rows = self._conn.execute(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers ORDER BY name COLLATE NOCASE"  # noqa: S608 - constant column list
        ).fetchall()
        return [Customer(*row) for row in rows]

    def customer_by_phone(self, candidates: tuple[str, ...]) -> Customer | None:
        for phone in candidates:
            row = self._conn.execute(
                f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE phone = ?",  # noqa: S608 - constant column list
                (phone,),
            ).fetchone()
            if row is not None:
                return Customer(*row)
        return None

    def customer_by_name(self, name: str) -> Customer | None:
        row = self._conn.execute(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE name = ? COLLATE NOCASE"  # noqa: S608 - constant column list
            " ORDER BY id LIMIT 1",
            (name,),
        ).fetchone()
        return None if row is None else Customer(*row)

    # sessions

    def add_session(
        self, id_hash: str, username: str, csrf: str, created: float, expires: float
    ) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO sessions (id_hash, username, csrf, created, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (id_hash, username, csrf, created, expires),
            )

    def session(self, id_hash: str, now: float) -> SessionRow | None:
        row = self._conn.execute(
            "SELECT s.username, u.display_name, s.csrf, s.expires FROM sessions s"
            " JOIN users u ON u.username = s.username WHERE s.id_hash = ? AND s.expires > ?",
            (id_hash, now),
        ).fetchone()
        return None if row is None else SessionRow(*row)

    def delete_session(self, id_hash: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    def purge_expired_sessions(self, now: float) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
