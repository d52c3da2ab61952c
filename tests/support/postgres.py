"""Scratch PostgreSQL databases for tests marked ``postgres``."""
from __future__ import annotations

import contextlib
import secrets
import string

import psycopg


@contextlib.contextmanager
def scratch_database(admin_url: str):
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    name = "portico_test_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
