"""Accounts of the people who use the workbench, their sessions, and who looked at what.

A person has one account: an id (what they type at login), a role and the places it covers:
- cadre: her villages (`--village`, one or more) in one county;
- township: its townships (`--township`) in one county; it sees every village the register places there;
- monitor: one county, every village in it;
- analyst: models only (no household pages).
Passwords are kept as Argon2id hashes (argon2-cffi's defaults, RFC 9106's second profile), never in
clear. Five wrong passwords in a row lock an account for 15 minutes (`LoginRules`); a lock is lifted by
time or by `reset_password`. Sessions live in the database, so that every worker of the service knows
them: the browser holds a random token, the database its SHA-256 (a stolen database opens no session),
with the session's CSRF token, when it started, when it was last used and when it ends.

`access_log` records what the workbench lets and refuses: logins (and failed ones), logouts, every view
of a household page (who looked at whom) and every refused attempt (a cadre typing another village's
household URL). Rows are only inserted. Every public function runs in one transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from store.database import Base
from store.register_tables import ID_LENGTH

Role = Literal["cadre", "township", "monitor", "analyst"]
ROLES: tuple[Role, ...] = ("cadre", "township", "monitor", "analyst")
AREA_KINDS = ("village", "township")
USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1_024
"""Argon2 takes any length; the bound keeps a login form from being used to make the server hash
megabytes."""
DETAIL_MAX_LENGTH = 500

_hasher = PasswordHasher()
# Checked against when the account does not exist, so that a wrong id takes as long as a wrong password.
_UNKNOWN_ACCOUNT_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class LoginRules:
    """How many wrong passwords lock an account, for how long, and how long a session lasts."""

    failures_before_lock: int = 5
    lock_minutes: int = 15
    session_hours: float = 10.0
    """A working day in the field; the session ends then even when in use."""
    idle_minutes: int = 120
    """A session unused for this long ends (a phone left on a table)."""
    offline_days: int = 14
    """How long a phone may hold a person's queued submissions (visits, declarations, steps recorded
    without a signal) and still send them under her name (`store.offline`): a fortnight in the hills."""


users = Table(
    "users",
    Base.metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("county_id", String(ID_LENGTH), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
)

user_areas = Table(
    "user_areas",
    Base.metadata,
    Column("user_id", ForeignKey(users.c.id), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("area_id", String(ID_LENGTH), primary_key=True),
)

web_sessions = Table(
    "web_sessions",
    Base.metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey(users.c.id), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)

access_log = Table(
    "access_log",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("action", String(32), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("county_id", String(ID_LENGTH), nullable=True),
    Column("household_id", String(ID_LENGTH), nullable=True),
    Column("path", Text, nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_access_log_household", "county_id", "household_id"),
    Index("ix_access_log_user_at", "user_id", "at"),
)


class AccountError(ValueError):
    """An account cannot be made or changed as asked; the message says what is wrong."""


@dataclass(frozen=True)
class Account:
    """A person and the places the account covers."""

    user_id: str
    role: Role
    county_id: str | None
    villages: frozenset[str]
    townships: frozenset[str]

    def covers(self, county_id: str, village_id: str, township_id: str | None) -> bool:
        """Whether the account may see a household of this village (households are seen by role:
        cadres their villages, townships theirs, monitors their county; analysts none)."""
        if self.role == "analyst" or county_id != self.county_id:
            return False
        if self.role == "monitor":
            return True
        if self.role == "township":
            return township_id is not None and township_id in self.townships
        return village_id in self.villages


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: a session (token for the cookie, CSRF token) or why not."""

    outcome: Literal["ok", "wrong", "locked", "disabled"]
    account: Account | None = None
    token: str | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True)
class WebSession:
    """A live session: whose, its CSRF token, when it ends."""

    account: Account
    csrf_token: str
    ends_at: datetime


def add_user(
    engine: Engine,
    user_id: str,
    role: str,
    password: str,
    *,
    county_id: str | None = None,
    villages: Sequence[str] = (),
    townships: Sequence[str] = (),
    known_places: tuple[frozenset[str], frozenset[str]] | None = None,
    now: datetime | None = None,
) -> Account:
    """Create an account. `known_places` (villages, townships of the county in the register) lets the
    caller refuse places that do not exist; every problem is named in one `AccountError`."""
    account = Account(
        user_id=user_id,
        role=role,  # type: ignore[arg-type]  # checked just below
        county_id=county_id,
        villages=frozenset(villages),
        townships=frozenset(townships),
    )
    problems = _account_problems(account, known_places) + _password_problems(password)
    with engine.begin() as connection:
        if connection.execute(select(users.c.id).where(users.c.id == user_id)).first() is not None:
            problems.append(
                f"an account {user_id!r} exists already (users reset-password changes its password)"
            )
        if problems:
            raise AccountError("; ".join(problems))
        at = now or _now()
        connection.execute(
            insert(users).values(
                id=user_id,
                role=role,
                county_id=county_id,
                password_hash=_hasher.hash(password),
                disabled=False,
                failed_logins=0,
                created_at=at,
                password_changed_at=at,
            )
        )
        areas = [{"user_id": user_id, "kind": "village", "area_id": v} for v in sorted(account.villages)]
        areas += [{"user_id": user_id, "kind": "township", "area_id": t} for t in sorted(account.townships)]
        if areas:
            connection.execute(insert(user_areas), areas)
    return account


def _account_problems(
    account: Account, known_places: tuple[frozenset[str], frozenset[str]] | None
) -> list[str]:
    problems: list[str] = []
    if not USER_ID_PATTERN.match(account.user_id):
        problems.append(
            f"account id {account.user_id!r}: 2-64 letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    if account.role not in ROLES:
        problems.append(f"role {account.role!r}: one of {', '.join(ROLES)}")
        return problems
    if account.role != "analyst" and not account.county_id:
        problems.append(f"a {account.role} account needs --county")
    if account.role == "cadre" and not account.villages:
        problems.append("a cadre account needs at least one --village")
    if account.role == "township" and not account.townships:
        problems.append("a township account needs at least one --township")
    if account.role != "cadre" and account.villages:
        problems.append(f"--village is for cadre accounts, not {account.role}")
    if account.role != "township" and account.townships:
        problems.append(f"--township is for township accounts, not {account.role}")
    if known_places is not None:
        known_villages, known_townships = known_places
        unknown = sorted(account.villages - known_villages) + sorted(account.townships - known_townships)
        if unknown:
            problems.append(f"county {account.county_id} has no {', '.join(unknown)} in the register")
    return problems


def _password_problems(password: str) -> list[str]:
    if len(password) < MIN_PASSWORD_LENGTH:
        return [f"the password is {len(password)} characters; at least {MIN_PASSWORD_LENGTH} are needed"]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"the password is longer than {MAX_PASSWORD_LENGTH} characters"]
    return []


def list_users(engine: Engine) -> pd.DataFrame:
    """Every account: id, role, county, places, disabled, locked until, created (no hashes)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                users.c.id,
                users.c.role,
                users.c.county_id,
                users.c.disabled,
                users.c.locked_until,
                users.c.created_at,
            ).order_by(users.c.id)
        ).all()
        areas = connection.execute(select(user_areas).order_by(user_areas.c.area_id)).all()
    places: dict[str, list[str]] = {}
    for user_id, _kind, area_id in areas:
        places.setdefault(user_id, []).append(area_id)
    frame = pd.DataFrame(
        rows, columns=["user_id", "role", "county_id", "disabled", "locked_until", "created_at"]
    )
    frame.insert(3, "places", [" ".join(places.get(user_id, [])) for user_id in frame["user_id"]])
    return frame


def set_disabled(engine: Engine, user_id: str, disabled: bool = True) -> None:
    """Disable (or enable again) an account; disabling ends its sessions at once."""
    with engine.begin() as connection:
        changed = connection.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
        if changed.rowcount == 0:
            raise AccountError(f"no account {user_id!r}")
        if disabled:
            _end_sessions(connection, user_id, _now())


def reset_password(engine: Engine, user_id: str, password: str, now: datetime | None = None) -> None:
    """Set a new password, lift a lock and end the account's sessions."""
    problems = _password_problems(password)
    if problems:
        raise AccountError("; ".join(problems))
    at = now or _now()
    with engine.begin() as connection:
        changed = connection.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(
                password_hash=_hasher.hash(password),
                password_changed_at=at,
                failed_logins=0,
                locked_until=None,
            )
        )
        if changed.rowcount == 0:
            raise AccountError(f"no account {user_id!r}")
        _end_sessions(connection, user_id, at)


def log_in(
    engine: Engine,
    user_id: str,
    password: str,
    rules: LoginRules = LoginRules(),
    now: datetime | None = None,
) -> Login:
    """Check a password; on success open a session. Wrong passwords count towards the lock; the
    answer for an unknown id is the same as for a wrong password (and takes as long)."""
    at = now or _now()
    with engine.begin() as connection:
        row = connection.execute(select(users).where(users.c.id == user_id)).mappings().first()
        if row is None or len(password) > MAX_PASSWORD_LENGTH:
            _password_matches(_UNKNOWN_ACCOUNT_HASH, password[:MAX_PASSWORD_LENGTH])
            return Login("wrong")
        locked_until = _aware(row["locked_until"])
        if locked_until is not None and locked_until > at:
            return Login("locked", locked_until=locked_until)
        if not _password_matches(row["password_hash"], password):
            failures = int(row["failed_logins"]) + 1
            lock = (
                at + timedelta(minutes=rules.lock_minutes) if failures >= rules.failures_before_lock else None
            )
            connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(failed_logins=0 if lock else failures, locked_until=lock)
            )
            return Login("locked", locked_until=lock) if lock else Login("wrong")
        if row["disabled"]:
            return Login("disabled")
        connection.execute(
            update(users).where(users.c.id == user_id).values(failed_logins=0, locked_until=None)
        )
        token = secrets.token_urlsafe(32)
        connection.execute(
            insert(web_sessions).values(
                token_hash=_token_hash(token),
                user_id=user_id,
                csrf_token=secrets.token_urlsafe(32),
                started_at=at,
                last_seen_at=at,
                ends_at=at + timedelta(hours=rules.session_hours),
            )
        )
        account = _account(connection, row)
    return Login("ok", account=account, token=token)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def session_of(
    engine: Engine,
    token: str | None,
    rules: LoginRules = LoginRules(),
    now: datetime | None = None,
) -> WebSession | None:
    """The live session a cookie's token opens (and mark it used); None when it is unknown, ended,
    past its end or idle too long, or its account is disabled."""
    if not token:
        return None
    at = now or _now()
    token_hash = _token_hash(token)
    with engine.begin() as connection:
        row = (
            connection.execute(
                select(web_sessions, users)
                .join(users, users.c.id == web_sessions.c.user_id)
                .where(web_sessions.c.token_hash == token_hash)
            )
            .mappings()
            .first()
        )
        if row is None or row["ended_at"] is not None or row["disabled"]:
            return None
        ends_at = _aware(row["ends_at"])
        idle_since = _aware(row["last_seen_at"])
        if ends_at is None or ends_at <= at or idle_since is None:
            return None
        if at - idle_since > timedelta(minutes=rules.idle_minutes):
            return None
        connection.execute(
            update(web_sessions).where(web_sessions.c.token_hash == token_hash).values(last_seen_at=at)
        )
        return WebSession(account=_account(connection, row), csrf_token=row["csrf_token"], ends_at=ends_at)


def log_out(engine: Engine, token: str, now: datetime | None = None) -> None:
    """End the session the token opened (nothing happens for an unknown token)."""
    with engine.begin() as connection:
        connection.execute(
            update(web_sessions)
            .where(web_sessions.c.token_hash == _token_hash(token), web_sessions.c.ended_at.is_(None))
            .values(ended_at=now or _now())
        )


def forget_ended_sessions(engine: Engine, before: datetime) -> int:
    """Delete sessions that ended (or ran out) before `before`; how many."""
    with engine.begin() as connection:
        result = connection.execute(delete(web_sessions).where(web_sessions.c.ends_at < before))
    return int(result.rowcount or 0)


def record_access(
    engine: Engine,
    entries: Iterable[dict[str, object]],
    now: datetime | None = None,
) -> None:
    """Append to the access log; each entry: user_id, action, allowed, and optionally county_id,
    household_id, path, detail (cut to DETAIL_MAX_LENGTH)."""
    at = now or _now()
    rows = [
        {
            "at": at,
            "county_id": None,
            "household_id": None,
            "path": None,
            **entry,
            "detail": None if entry.get("detail") is None else str(entry["detail"])[:DETAIL_MAX_LENGTH],
        }
        for entry in entries
    ]
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(access_log), rows)


def access_entries(
    engine: Engine, *, county_id: str | None = None, household_id: str | None = None, limit: int = 200
) -> pd.DataFrame:
    """The latest access log entries, newest first (of one household when given)."""
    query = select(access_log).order_by(access_log.c.id.desc()).limit(limit)
    if household_id is not None:
        query = query.where(access_log.c.county_id == county_id, access_log.c.household_id == household_id)
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=list(access_log.c.keys()))


def _account(connection: Connection, row: RowMapping) -> Account:
    """The account of a `users` row (or of a session row joined with it)."""
    user_id = str(row.get("user_id") or row["id"])
    areas = connection.execute(
        select(user_areas.c.kind, user_areas.c.area_id).where(user_areas.c.user_id == user_id)
    ).all()
    return Account(
        user_id=user_id,
        role=row["role"],
        county_id=row["county_id"],
        villages=frozenset(area for kind, area in areas if kind == "village"),
        townships=frozenset(area for kind, area in areas if kind == "township"),
    )


def _end_sessions(connection: Connection, user_id: str, at: datetime) -> None:
    connection.execute(
        update(web_sessions)
        .where(web_sessions.c.user_id == user_id, web_sessions.c.ended_at.is_(None))
        .values(ended_at=at)
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes for timezone-aware columns; they were written in UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
