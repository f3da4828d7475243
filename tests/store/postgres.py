"""The test PostgreSQL server: each test gets its own empty schema, so runs never see each other's rows.

The server is this project's CI database (127.0.0.1:5432, trust auth, database `test`; another URL by
POVRISK_TEST_PG_URL). Where it is absent the PostgreSQL tests skip, except when POVRISK_REQUIRE_POSTGRES
is set (as `.ci/run` does): then a missing driver or server fails the run.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

POSTGRES_URL = os.environ.get("POVRISK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES_ENV = "POVRISK_REQUIRE_POSTGRES"
# A test that waits this long for a lock has a bug (a leaked transaction, a deadlock between threads):
# fail it instead of hanging the run.
LOCK_TIMEOUT = "20s"


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_POSTGRES_ENV, "").strip() not in ("", "0")


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when PostgreSQL is required."""
    if postgres_required():
        pytest.fail(f"{reason}; {REQUIRE_POSTGRES_ENV} is set, so the store tests must run on PostgreSQL")
    pytest.skip(reason)


@contextmanager
def isolated_postgres_url(url: str = POSTGRES_URL) -> Iterator[str]:
    """A URL of `url`'s database whose search path is a fresh schema, dropped (with its tables) after;
    every connection of the URL, and the drop, give up waiting for a lock after LOCK_TIMEOUT."""
    if importlib.util.find_spec("psycopg") is None:
        postgres_unavailable("PostgreSQL driver psycopg is not installed")
    schema = f"povrisk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, connect_args={"options": f"-clock_timeout={LOCK_TIMEOUT}"})
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        postgres_unavailable(f"PostgreSQL not reachable at {url}: {error}")
    try:
        options = f"-csearch_path={schema} -clock_timeout={LOCK_TIMEOUT}"
        yield make_url(url).update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
