"""What lets a phone work without a signal and send later, losing nothing and doubling nothing.

- A grant (`issue_grant`): when a person opens the workbench online, her phone receives a random token
  that lets it send what she records offline (visits, declarations, steps) under her name until it ends
  (`LoginRules.offline_days`), even once her session has ended or someone else logged in on that phone.
  The database keeps its SHA-256 only. A grant sends submissions and nothing else; who may send what is
  checked against her account as it is at send time (`grant_account`: disabled accounts send nothing).
- A receipt (`receipts`): the idempotency key of every submission applied, written in the same
  transaction as what it applied (`add_receipt`, called by `store.cases`), so that a submission sent twice
  (a retry after a lost response) is applied once: the second insert of the key fails and rolls the
  whole change back (`DuplicateSubmission`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from store.accounts import Account, LoginRules, _account, users
from store.database import Base
from store.register_tables import ID_LENGTH

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{7,63}$")
"""An idempotency key: what the phone made (a UUID, with a suffix for a conflict's resolution)."""
KINDS = ("step", "declaration", "note")

offline_grants = Table(
    "offline_grants",
    Base.metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey(users.c.id), nullable=False, index=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

receipts = Table(
    "submission_receipts",
    Base.metadata,
    Column("key", String(64), primary_key=True),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("county_id", String(ID_LENGTH), nullable=False),
    Column("household_id", String(ID_LENGTH), nullable=False),
    Column("flag_id", Integer, nullable=True),
    Column("made_at", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


class DuplicateSubmission(Exception):
    """A submission whose idempotency key was applied already; nothing was written this time."""

    def __init__(self, key: str) -> None:
        super().__init__(f"submission {key} was applied already; nothing was written again")
        self.key = key


@dataclass(frozen=True)
class Receipt:
    """What is kept of an applied submission: its key, whose it is and what it touched."""

    key: str
    user_id: str
    kind: str
    county_id: str
    household_id: str
    made_at: datetime | None = None

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key):
            raise ValueError(
                f"submission key {self.key[:80]!r}: 8 to 64 letters, digits, '-', '_', '.' or ':' expected"
            )
        if self.kind not in KINDS:
            raise ValueError(f"submission kind {self.kind!r}: one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Grant:
    token: str
    user_id: str
    expires_at: datetime


def issue_grant(
    engine: Engine, user_id: str, rules: LoginRules | None = None, now: datetime | None = None
) -> Grant:
    """A new grant for `user_id`'s phone (a person may hold several: one per phone)."""
    at = now or _now()
    token = secrets.token_urlsafe(32)
    expires_at = at + timedelta(days=(rules or LoginRules()).offline_days)
    with engine.begin() as connection:
        connection.execute(
            insert(offline_grants).values(
                token_hash=_hash(token), user_id=user_id, issued_at=at, expires_at=expires_at
            )
        )
    return Grant(token=token, user_id=user_id, expires_at=expires_at)


def revoke_grant(engine: Engine, token: str, now: datetime | None = None) -> None:
    """End a grant (the phone has nothing left to send); nothing happens for an unknown token."""
    with engine.begin() as connection:
        connection.execute(
            update(offline_grants)
            .where(offline_grants.c.token_hash == _hash(token), offline_grants.c.revoked_at.is_(None))
            .values(revoked_at=now or _now())
        )


def grant_account(engine: Engine, token: str | None, now: datetime | None = None) -> Account | None:
    """The account a grant sends for, as it is now; None for an unknown, ended or revoked grant, or a
    disabled account."""
    if not token or len(token) > 128:
        return None
    at = now or _now()
    with engine.connect() as connection:
        row = (
            connection.execute(
                select(offline_grants, users)
                .join(users, users.c.id == offline_grants.c.user_id)
                .where(offline_grants.c.token_hash == _hash(token))
            )
            .mappings()
            .first()
        )
        if row is None or row["revoked_at"] is not None or row["disabled"]:
            return None
        expires_at = row["expires_at"]
        expires_at = expires_at if expires_at.tzinfo is not None else expires_at.replace(tzinfo=UTC)
        if expires_at <= at:
            return None
        return _account(connection, row)


def add_receipt(connection: Connection, receipt: Receipt, flag_id: int | None, now: datetime) -> None:
    """Keep the receipt of a submission, in the caller's transaction; `DuplicateSubmission` (the
    transaction must roll back) when its key was applied already."""
    try:
        connection.execute(
            insert(receipts).values(
                key=receipt.key,
                user_id=receipt.user_id,
                kind=receipt.kind,
                county_id=receipt.county_id,
                household_id=receipt.household_id,
                flag_id=flag_id,
                made_at=receipt.made_at,
                received_at=now,
            )
        )
    except IntegrityError as error:
        raise DuplicateSubmission(receipt.key) from error


def receipt_of(engine: Engine, key: str) -> dict[str, Any] | None:
    """The receipt of an applied submission, or None."""
    with engine.connect() as connection:
        row = connection.execute(select(receipts).where(receipts.c.key == key)).mappings().first()
    return None if row is None else dict(row)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)
