"""The flag store's Alembic migrations: they make exactly the models' schema, on SQLite and PostgreSQL,
run idempotently, and adopt a store that `Base.metadata.create_all` made before migrations existed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import store.accounts
import store.register_tables  # noqa: F401 - the register's tables on Base.metadata
from store.cases import list_flags, set_status, upsert_flags
from store.database import (
    LEGACY_VERSION_TABLE,
    MIGRATIONS_DIR,
    UNVERSIONED_REVISION,
    VERSION_TABLE,
    Base,
    SchemaMismatch,
    _alembic_config,
    _foreign_keys_off_on_sqlite,
    create_schema,
    head_revision,
    schema_revision,
)

from .test_cases import _flags

REGISTER_TABLES = (
    "register_village_rounds",
    "register_households",
    "register_members",
    "register_verification",
    "register_villages",
    "register_ingests",
)


def _differences(engine: Engine) -> list:
    """What Alembic's autogenerate would change to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return compare_metadata(context, Base.metadata)


def _version_rows(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]


def _downgraded(engine: Engine, revision: str) -> None:
    """A migrated store taken back to `revision` (every later revision's downgrade, rows kept) and its
    version table dropped."""
    from alembic import command

    with engine.connect() as connection, _foreign_keys_off_on_sqlite(connection), connection.begin():
        command.downgrade(_alembic_config(connection), revision)
        connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))


def _as_revision_0001(engine: Engine) -> None:
    """What create_all made before flags had a main cause, the service an audit trail and keys a
    county (revision 0001's tables), without a version table."""
    _downgraded(engine, UNVERSIONED_REVISION)


def test_migrations_ship_inside_the_package() -> None:
    assert MIGRATIONS_DIR.parent == Path(__file__).resolve().parents[2] / "store"
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_flag_store.py").is_file()
    assert head_revision() == "0012"


def test_migrated_schema_matches_the_models(empty_engine: Engine) -> None:
    create_schema(empty_engine)
    assert _differences(empty_engine) == []
    assert schema_revision(empty_engine) == head_revision()


def test_create_schema_is_idempotent_and_keeps_rows(empty_engine: Engine) -> None:
    create_schema(empty_engine)
    upsert_flags(empty_engine, _flags())
    create_schema(empty_engine)
    assert _version_rows(empty_engine) == [head_revision()]
    assert len(list_flags(empty_engine)) == 3


def test_a_store_without_migrations_is_adopted_and_upgraded_without_data_loss(empty_engine: Engine) -> None:
    engine = empty_engine
    create_schema(engine)
    upsert_flags(engine, _flags())
    flag_id = int(list_flags(engine).loc[0, "id"])
    set_status(engine, flag_id, "verified", by="cadre Li", note="visited")
    _as_revision_0001(engine)
    flags_before, history_before = _read_raw(engine, "flags"), _read_raw(engine, "flag_history")
    assert schema_revision(engine) is None

    create_schema(engine)

    assert schema_revision(engine) == head_revision()
    assert _differences(engine) == []
    flags_after = _read_raw(engine, "flags")
    assert flags_after["main_cause"].isna().all() and (flags_after["county_id"] == "").all()
    assert flags_after["data_completeness"].isna().all() and (flags_after["channel"] == "model").all()
    added = ["main_cause", "county_id", "data_completeness", "channel", "notice_ends"]
    pd.testing.assert_frame_equal(flags_after.drop(columns=added), flags_before, check_like=True)
    history_after = _read_raw(engine, "flag_history")
    assert history_after[["role", "details"]].isna().all().all()
    pd.testing.assert_frame_equal(
        history_after.drop(columns=["county_id", "role", "details"]), history_before
    )
    assert set_status(engine, flag_id, "village_reviewed", by="cadre Li").version == 3


def test_a_store_made_by_the_current_models_is_adopted_at_its_revision(empty_engine: Engine) -> None:
    Base.metadata.create_all(empty_engine)
    upsert_flags(empty_engine, _flags(main_cause=["illness", None, "disability"]))
    create_schema(empty_engine)
    assert _version_rows(empty_engine) == [head_revision()]
    assert list_flags(empty_engine).set_index("household_id").loc["h1", "main_cause"] == "illness"


def test_a_partial_store_without_version_is_refused(empty_engine: Engine) -> None:
    Base.metadata.tables["flags"].create(empty_engine)
    with pytest.raises(SchemaMismatch, match="flag_history"):
        create_schema(empty_engine)
    assert VERSION_TABLE not in inspect(empty_engine).get_table_names()


def _read_raw(engine: Engine, table: str) -> pd.DataFrame:
    with engine.connect() as connection:
        result = connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def test_a_store_versioned_as_the_flag_store_alone_moves_to_the_one_history(empty_engine: Engine) -> None:
    """Stores migrated while the history held only the flag store kept their revision in
    `povrisk_flag_store_version`: the revision moves to the store's version table, rows kept."""
    create_schema(empty_engine)
    upsert_flags(empty_engine, _flags())
    _downgraded(empty_engine, "0004")
    with empty_engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {LEGACY_VERSION_TABLE} (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES ('0004')"))

    create_schema(empty_engine)

    tables = set(inspect(empty_engine).get_table_names())
    assert LEGACY_VERSION_TABLE not in tables and set(REGISTER_TABLES) <= tables
    assert _version_rows(empty_engine) == [head_revision()]
    assert _differences(empty_engine) == []
    assert len(list_flags(empty_engine)) == 3
