"""Flag store databases for the monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .postgres import isolated_postgres_url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty schema on the test PostgreSQL server (skip, or fail in CI, when unreachable)."""
    with isolated_postgres_url() as url:
        yield url
