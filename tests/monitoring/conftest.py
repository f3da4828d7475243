"""The monitoring tests use the store's databases (a SQLite file and a fresh PostgreSQL schema)."""

from tests.store.conftest import empty_engine, engine, postgres_url

__all__ = ["empty_engine", "engine", "postgres_url"]
