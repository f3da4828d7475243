"""The store's database: one URL, one engine, one Alembic history for every persistent table.

The household register, the cases (flags and their history) and the audit trail live in one database:
a SQLite file `povrisk.db` in the working folder by default, PostgreSQL (or any SQLAlchemy URL) through
`POVRISK_DB_URL`. `create_schema` brings it to the newest revision of `store/migrations`; a database
made by earlier code is adopted, every row kept:
- a flag store made by `create_all` before there were migrations is stamped at the revision its tables
  match, then upgraded;
- a store migrated while the history was the flag store's alone (version table
  `povrisk_flag_store_version`) moves its revision to `povrisk_store_version`, then upgrades.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase

DB_URL_ENV = "POVRISK_DB_URL"
# Alembic's version table; not `alembic_version`, so that the store can share a database with MLflow's
# tracking store, which keeps its own migrations there.
VERSION_TABLE = "povrisk_store_version"
# Where the revision was kept while the history held only the flag store (revisions 0001-0004).
LEGACY_VERSION_TABLE = "povrisk_flag_store_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The revision whose schema `Base.metadata.create_all` made before the store had migrations.
UNVERSIONED_REVISION = "0001"
# PostgreSQL advisory lock held while migrating, so that commands starting at once migrate one by one
# (any 64-bit number no other code uses for an advisory lock on the same database; this one spells
# "povrisk" in ASCII).
MIGRATION_LOCK_KEY = 0x706F767269736B
CONNECT_TIMEOUT_SECONDS = 5
"""How long a server database (PostgreSQL) may take to accept a connection before the caller hears it
is unreachable (its driver would otherwise wait for the operating system, minutes)."""

# Tables of the flag store as `create_all` made them before migrations, and what each later one means.
_FLAG_TABLES = frozenset({"flags", "flag_history"})


class Base(DeclarativeBase):
    pass


class SchemaMismatch(RuntimeError):
    """The database holds part of the store without Alembic's record of its revision."""


def db_url() -> str:
    """The store URL: env POVRISK_DB_URL, else a SQLite file `povrisk.db` in the working folder."""
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{Path.cwd() / 'povrisk.db'}"


def make_engine(url: str | None = None) -> Engine:
    """An engine for `url` (default `db_url()`); SQLite connections enforce foreign keys. Server
    databases: connections are checked before use (a restarted server costs one failed query, not one
    per pooled connection) and give up connecting after CONNECT_TIMEOUT_SECONDS, unless the URL says."""
    parsed = make_url(url or db_url())
    options: dict[str, Any] = {}
    if parsed.get_backend_name() != "sqlite":
        options["pool_pre_ping"] = True
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_engine(parsed, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def create_schema(engine: Engine) -> None:
    """Bring the database to the newest store revision with Alembic (idempotent).

    Adopts what earlier code made (see the module docstring), then upgrades. Runs in one transaction
    on databases with transactional DDL (PostgreSQL), where concurrent calls wait for each other
    instead of creating the same tables twice.
    """
    from alembic import command

    with engine.connect() as connection, _foreign_keys_off_on_sqlite(connection), connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config = _alembic_config(connection)
        adopted_at = _legacy_revision(connection) or _revision_of_unversioned_store(connection)
        if adopted_at is not None:
            command.stamp(config, adopted_at)
        command.upgrade(config, "head")
        _check_foreign_keys(connection)
    refresh_statistics(engine, ("flags",))


STATISTICS_ROWS = 1_000
"""Rows SQLite's ANALYZE samples per index (`PRAGMA analysis_limit`): enough to rank the indexes, fast on
a county's 52,000 cases."""


def refresh_statistics(engine: Engine, tables: Sequence[str]) -> None:
    """Refresh the query planner's statistics of `tables` on SQLite (PostgreSQL's autovacuum does its
    own). Without them SQLite ranks indexes by shape alone: a worklist read every case of the county
    through the county index (23-34 ms instead of 3 ms), a household's cases the county's through the
    county-village index."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"PRAGMA analysis_limit={STATISTICS_ROWS}")
            for table in tables:
                connection.exec_driver_sql(f'ANALYZE "{table}"')
    except DBAPIError:  # another writer holds the database: the statistics wait for the next write
        return


@contextmanager
def _foreign_keys_off_on_sqlite(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it and dropping the old one, which its foreign-key enforcement
    refuses while other tables refer to it (flag_history -> flags); the pragma can only change outside a
    transaction, so it is switched off around the migration, and the keys checked before commit."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise SchemaMismatch(
                f"the migrated store has {len(broken)} row(s) whose foreign key points nowhere"
            )


def schema_revision(engine: Engine) -> str | None:
    """The store revision the database is at (None: no store migrated there yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str:
    """The newest revision of the store migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    if head is None:
        raise RuntimeError(f"no store migrations found in {MIGRATIONS_DIR}")
    return head


def _alembic_config(connection: Connection | None) -> Any:
    """Alembic settings built in code: the shipped migrations folder and the connection to migrate."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _legacy_revision(connection: Connection) -> str | None:
    """The revision a store migrated under the flag store's own version table is at (that table is
    dropped: the revision moves to VERSION_TABLE); None when there is no such table."""
    tables = set(inspect(connection).get_table_names())
    if LEGACY_VERSION_TABLE not in tables or VERSION_TABLE in tables:
        return None
    revision = connection.execute(text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")).scalar()
    connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))
    return None if revision is None else str(revision)


def _revision_of_unversioned_store(connection: Connection) -> str | None:
    """The revision to stamp a flag store made without migrations at; None when there is none to adopt."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    present = _FLAG_TABLES & tables
    if VERSION_TABLE in tables or not present:
        return None
    if present != _FLAG_TABLES:
        raise SchemaMismatch(
            f"the database has table(s) {sorted(present)} of the flag store but not "
            f"{sorted(_FLAG_TABLES - present)}, and no {VERSION_TABLE} table; restore the missing "
            "table(s) or drop the partial store before running create_schema"
        )
    flag_columns = {column["name"] for column in inspector.get_columns("flags")}
    # create_all with the models of revision 0012 adds the offline grants and receipts, of 0011 the
    # flags' county-village index, of 0010 the
    # register's amendments, of 0009 the flags' channel, of 0008 the accounts, of 0007 the flags' data
    # completeness, of 0006 their county, of 0005 the register, of 0004 the rejected-audit table, of 0003
    # the audit table, of 0002 main_cause; earlier ones made 0001
    flag_indexes = {index["name"] for index in inspector.get_indexes("flags")}
    if "submission_receipts" in tables:
        return "0012"
    if "ix_flags_county_village" in flag_indexes:
        return "0011"
    if "register_amendments" in tables:
        return "0010"
    if "channel" in flag_columns:
        return "0009"
    if "users" in tables:
        return "0008"
    if "data_completeness" in flag_columns:
        return "0007"
    if "county_id" in flag_columns:
        return "0006"
    if "register_ingests" in tables:
        return "0005"
    if "score_audit_rejected" in tables:
        return "0004"
    if "score_audit" in tables:
        return "0003"
    return "0002" if "main_cause" in flag_columns else UNVERSIONED_REVISION


def frame_of(result: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A query's rows as a frame, read as plain tuples first: pandas probes every row object for
    attributes, which SQLAlchemy's Row answers through its slow missing-key path (the 52,000 cases of a
    county: 615 ms as rows, 184 ms as tuples)."""
    names = list(result.keys()) if columns is None else list(columns)
    return pd.DataFrame(list(map(tuple, result)), columns=names)
