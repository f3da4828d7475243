"""Accounts, sessions and the access log (store.accounts), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from store.accounts import (
    AccountError,
    LoginRules,
    access_entries,
    add_user,
    list_users,
    log_in,
    log_out,
    record_access,
    reset_password,
    session_of,
    set_disabled,
    users,
)

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
PLACES = (frozenset({"V001", "V002", "V003"}), frozenset({"T01", "T02"}))


def _cadre(engine: Engine, user_id: str = "li.na") -> None:
    add_user(
        engine, user_id, "cadre", PASSWORD, county_id="C1", villages=["V001", "V002"], known_places=PLACES
    )


def test_a_cadre_covers_her_villages_only(engine: Engine) -> None:
    _cadre(engine)
    login = log_in(engine, "li.na", PASSWORD, now=T0)
    assert login.outcome == "ok" and login.account is not None
    account = login.account
    assert account.villages == {"V001", "V002"}
    assert account.covers("C1", "V001", "T01")
    assert not account.covers("C1", "V003", "T01")
    assert not account.covers("C2", "V001", "T01")  # the same village id in another county


def test_township_and_monitor_scopes(engine: Engine) -> None:
    add_user(engine, "wang", "township", PASSWORD, county_id="C1", townships=["T01"], known_places=PLACES)
    add_user(engine, "zhao", "monitor", PASSWORD, county_id="C1")
    add_user(engine, "an", "analyst", PASSWORD)
    township = log_in(engine, "wang", PASSWORD).account
    monitor = log_in(engine, "zhao", PASSWORD).account
    analyst = log_in(engine, "an", PASSWORD).account
    assert township is not None and monitor is not None and analyst is not None
    assert township.covers("C1", "V003", "T01") and not township.covers("C1", "V001", "T02")
    assert monitor.covers("C1", "V003", None) and not monitor.covers("C2", "V003", None)
    assert not analyst.covers("C1", "V001", "T01")


def test_every_problem_with_a_new_account_is_named_and_nothing_written(engine: Engine) -> None:
    with pytest.raises(AccountError) as raised:
        add_user(engine, "x", "cadre", "short", county_id="C1", villages=["V009"], known_places=PLACES)
    message = str(raised.value)
    assert "account id 'x'" in message
    assert "at least 10" in message
    assert "no V009 in the register" in message
    with pytest.raises(AccountError, match="needs at least one --village"):
        add_user(engine, "li.na", "cadre", PASSWORD, county_id="C1")
    with pytest.raises(AccountError, match="role 'boss'"):
        add_user(engine, "li.na", "boss", PASSWORD, county_id="C1")
    assert list_users(engine).empty
    _cadre(engine)
    with pytest.raises(AccountError, match="exists already"):
        _cadre(engine)


def test_passwords_are_stored_as_argon2_hashes(engine: Engine) -> None:
    _cadre(engine)
    with engine.connect() as connection:
        stored = connection.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert "password_hash" not in list_users(engine).columns


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(engine: Engine) -> None:
    _cadre(engine)
    outcomes = [log_in(engine, "li.na", "wrong password", now=T0).outcome for _ in range(5)]
    assert outcomes == ["wrong"] * 4 + ["locked"]
    assert log_in(engine, "li.na", PASSWORD, now=T0 + timedelta(minutes=14)).outcome == "locked"
    assert log_in(engine, "li.na", PASSWORD, now=T0 + timedelta(minutes=16)).outcome == "ok"


def test_a_right_password_resets_the_count_of_wrong_ones(engine: Engine) -> None:
    _cadre(engine)
    for _ in range(4):
        log_in(engine, "li.na", "wrong password", now=T0)
    assert log_in(engine, "li.na", PASSWORD, now=T0).outcome == "ok"
    assert log_in(engine, "li.na", "wrong password", now=T0).outcome == "wrong"


def test_an_unknown_account_looks_like_a_wrong_password(engine: Engine) -> None:
    assert log_in(engine, "nobody", PASSWORD).outcome == "wrong"


def test_sessions_end_at_logout_at_their_end_and_when_idle(engine: Engine) -> None:
    _cadre(engine)
    rules = LoginRules(session_hours=8, idle_minutes=60)
    token = log_in(engine, "li.na", PASSWORD, rules, now=T0).token
    assert token is not None
    live = session_of(engine, token, rules, now=T0 + timedelta(minutes=30))
    assert live is not None and live.account.user_id == "li.na" and len(live.csrf_token) >= 32
    assert session_of(engine, token, rules, now=T0 + timedelta(minutes=89)) is not None  # used at 0:30
    assert session_of(engine, token, rules, now=T0 + timedelta(minutes=150)) is None  # idle 61 minutes
    other = log_in(engine, "li.na", PASSWORD, rules, now=T0).token
    assert session_of(engine, other, rules, now=T0 + timedelta(hours=8, minutes=1)) is None
    third = log_in(engine, "li.na", PASSWORD, rules, now=T0).token
    assert third is not None
    log_out(engine, third, now=T0)
    assert session_of(engine, third, rules, now=T0) is None
    assert session_of(engine, "not a token", rules, now=T0) is None


def test_disabling_or_resetting_ends_every_session(engine: Engine) -> None:
    _cadre(engine)
    token = log_in(engine, "li.na", PASSWORD).token
    set_disabled(engine, "li.na")
    assert session_of(engine, token) is None
    assert log_in(engine, "li.na", PASSWORD).outcome == "disabled"
    set_disabled(engine, "li.na", disabled=False)
    token = log_in(engine, "li.na", PASSWORD).token
    reset_password(engine, "li.na", "another long password")
    assert session_of(engine, token) is None
    assert log_in(engine, "li.na", PASSWORD).outcome == "wrong"
    assert log_in(engine, "li.na", "another long password").outcome == "ok"
    with pytest.raises(AccountError, match="no account 'nobody'"):
        set_disabled(engine, "nobody")


def test_a_reset_lifts_a_lock(engine: Engine) -> None:
    _cadre(engine)
    for _ in range(5):
        log_in(engine, "li.na", "wrong password")
    reset_password(engine, "li.na", "another long password")
    assert log_in(engine, "li.na", "another long password").outcome == "ok"


def test_the_access_log_keeps_who_looked_at_whom(engine: Engine) -> None:
    record_access(
        engine,
        [
            {
                "user_id": "li.na",
                "action": "view_household",
                "allowed": True,
                "county_id": "C1",
                "household_id": "H1",
                "path": "/app/households/C1/H1",
            },
            {
                "user_id": "li.na",
                "action": "view_household",
                "allowed": False,
                "county_id": "C1",
                "household_id": "H9",
                "detail": "x" * 2_000,
            },
        ],
        now=T0,
    )
    of_h1 = access_entries(engine, county_id="C1", household_id="H1")
    assert of_h1[["user_id", "action", "allowed"]].values.tolist() == [["li.na", "view_household", True]]
    everything = access_entries(engine)
    assert len(everything) == 2 and len(everything.loc[0, "detail"]) == 500
