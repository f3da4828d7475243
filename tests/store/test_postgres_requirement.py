"""Where PostgreSQL is missing the store tests skip, unless POVRISK_REQUIRE_POSTGRES (set by CI) says
they must run: then they fail."""

from __future__ import annotations

import pytest

from .postgres import REQUIRE_POSTGRES_ENV, isolated_postgres_url

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens on port 1


def test_unreachable_server_skips_when_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_POSTGRES_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not reachable"), isolated_postgres_url(UNREACHABLE):
        pass


@pytest.mark.parametrize("value", ["1", "yes"])
def test_unreachable_server_fails_when_required(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(REQUIRE_POSTGRES_ENV, value)
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_POSTGRES_ENV), isolated_postgres_url(UNREACHABLE):
        pass


def test_zero_means_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_POSTGRES_ENV, "0")
    with pytest.raises(pytest.skip.Exception), isolated_postgres_url(UNREACHABLE):
        pass
