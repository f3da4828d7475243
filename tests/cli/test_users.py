"""`povrisk users`: accounts made from the command line, the password read from stdin only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from store.accounts import log_in
from store.database import create_schema, make_engine
from store.register import ingest_survey
from survey.simulate import CountySettings, simulate_county

from .invoking import invoke, one_error_line

runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'povrisk.db'}"
    monkeypatch.setenv("POVRISK_DB_URL", url)
    engine = make_engine(url)
    create_schema(engine)
    county = simulate_county(CountySettings(households=60, villages=3, rounds=1, seed=0, monte_carlo_draws=2))
    ingest_survey(engine, county, "C1", source="test", by="test")
    engine.dispose()
    return url


def _users(*arguments: str, password: str = PASSWORD) -> tuple[int, str]:
    result = runner.invoke(app, ["users", *arguments], input=f"{password}\n")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_add_list_disable_and_reset(database: str) -> None:
    code, output = _users(
        "add",
        "--id",
        "li.cadre",
        "--role",
        "cadre",
        "--county",
        "C1",
        "--village",
        "V0001",
        "--password-stdin",
    )
    assert code == 0, output
    assert "li.cadre" in output and "V0001" in output
    engine = make_engine(database)
    assert log_in(engine, "li.cadre", PASSWORD).outcome == "ok"
    code, listing = invoke("users", "list")
    assert code == 0 and "li.cadre" in listing and "cadre" in listing and PASSWORD not in listing
    assert _users("disable", "--id", "li.cadre")[0] == 0
    assert log_in(engine, "li.cadre", PASSWORD).outcome == "disabled"
    assert _users("disable", "--id", "li.cadre", "--enable")[0] == 0
    code, _ = _users("reset-password", "--id", "li.cadre", "--password-stdin", password="another long one")
    assert code == 0
    assert log_in(engine, "li.cadre", "another long one").outcome == "ok"
    engine.dispose()


def test_an_unknown_village_or_a_short_password_is_refused(database: str) -> None:
    code, output = _users(
        "add",
        "--id",
        "li.cadre",
        "--role",
        "cadre",
        "--county",
        "C1",
        "--village",
        "V0099",
        "--password-stdin",
        password="short",
    )
    assert code == 1
    assert "no V0099 in the register" in output and "at least 10" in output


def test_the_password_never_comes_as_an_argument(database: str) -> None:
    line = one_error_line("users", "add", "--id", "x.y", "--role", "monitor", "--county", "C1")
    assert "--password-stdin" in line


def test_a_county_not_in_the_register_is_named(database: str) -> None:
    code, output = _users(
        "add",
        "--id",
        "li.cadre",
        "--role",
        "cadre",
        "--county",
        "C9",
        "--village",
        "V0001",
        "--password-stdin",
    )
    assert code == 1 and "no county C9" in output
