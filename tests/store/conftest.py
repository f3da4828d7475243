"""Flag store databases for the monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from store.database import create_schema, make_engine

from .postgres import isolated_postgres_url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty schema on the test PostgreSQL server (skip, or fail in CI, when unreachable)."""
    with isolated_postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database without any flag store table: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'flags.db'}")
    else:
        engine = make_engine(request.getfixturevalue("postgres_url"))
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """An empty, migrated flag store on the same two databases."""
    create_schema(empty_engine)
    return empty_engine
