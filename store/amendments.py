"""Register amendments: facts a person corrected after the survey (a visit's findings), on top of what was
ingested.

An amendment sets one field of one household's row (or of one of its members' rows) in one version of a
round, with who, in which role, when and from which case. Nothing ingested is changed: the register reads
a round's rows and lays the latest amendment of each field over them (`apply_amendments`), in
`store.register.read_register` (batch scoring, exports) and in `registered_history` (the service, the
workbench) alike, so a household gets one answer everywhere. A member's `left_household` amendment
takes the member out of the round. An amendment belongs to the version of the round it corrected: a
round replaced later (`povrisk ingest --replace`) is a newer statement of the facts and starts clean.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, insert, select

from store.register_tables import INGEST_KEY, amendments

LEFT_HOUSEHOLD = "left_household"
"""The member field that takes a member out of the household's round (moved away, died)."""
AMENDMENT_COLUMNS = (
    "id",
    INGEST_KEY,
    "county_id",
    "household_id",
    "round",
    "member_id",
    "field",
    "value",
    "previous",
    "flag_id",
    "amended_by",
    "role",
    "amended_at",
)


@dataclass(frozen=True)
class Amendment:
    """One corrected field: of the household's row (`member_id` None) or of a member's row."""

    field: str
    value: Any
    previous: Any = None
    member_id: str | None = None


# ------------------------------------------------------------------------------------------------ apply


def apply_amendments(
    households: pd.DataFrame, members: pd.DataFrame | None, amended: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The rows with the latest amendment of each field laid over them (`amended`: rows of
    `read_amendments`, earliest first). Rows without an amendment are left as they are; a field the rows
    do not have yet becomes a column (empty elsewhere)."""
    if amended.empty:
        return households, members
    latest = amended.drop_duplicates(["round", "household_id", "member_id", "field"], keep="last")
    of_households = latest[latest["member_id"].isna()]
    households = _laid_over(households, of_households, ["household_id", "round"])
    if members is not None:
        of_members = latest[latest["member_id"].notna()]
        members = _laid_over(members, of_members[of_members["field"] != LEFT_HOUSEHOLD], _MEMBER_KEY)
        left = of_members[(of_members["field"] == LEFT_HOUSEHOLD) & of_members["value"].map(_is_yes)]
        if len(left):
            gone = pd.MultiIndex.from_frame(left[_MEMBER_KEY].astype({"round": "int64"}))
            keys = pd.MultiIndex.from_frame(members[_MEMBER_KEY].astype({"round": "int64"}))
            members = members[~keys.isin(gone)].reset_index(drop=True)
    return households, members


_MEMBER_KEY = ["household_id", "member_id", "round"]


def _laid_over(rows: pd.DataFrame, changes: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    if changes.empty or rows.empty:
        return rows
    rows = rows.copy()
    position = pd.Series(
        np.arange(len(rows)), index=pd.MultiIndex.from_frame(rows[key].astype({"round": "int64"}))
    )
    for field, of_field in changes.groupby("field", sort=False):
        where = pd.MultiIndex.from_frame(of_field[key].astype({"round": "int64"}))
        found = where.isin(position.index)
        if not found.any():
            continue
        at = position.loc[where[found]].to_numpy()
        values = of_field["value"].to_numpy(dtype=object)[found]
        if field not in rows.columns:
            rows[field] = pd.Series([None] * len(rows), dtype=_dtype_for(values))
        column = rows[field].copy()
        column.iloc[at] = [_as_cell(value, column.dtype) for value in values]
        rows[field] = column
    return rows


def _dtype_for(values: np.ndarray) -> str:
    return "object" if any(isinstance(value, str) for value in values) else "float64"


def _as_cell(value: Any, dtype: Any) -> Any:
    if value is None:
        return np.nan if pd.api.types.is_float_dtype(dtype) else None
    if isinstance(value, bool):
        return float(value)
    return value


def _is_yes(value: Any) -> bool:
    return value is True or value == 1


# ------------------------------------------------------------------------------------------ read, write


def read_amendments(
    connection: Connection,
    ingest_ids: Iterable[int],
    household_id: str | Sequence[str] | Select[Any] | None = None,
) -> pd.DataFrame:
    """The amendments of these versions of rounds (of one household, or some, when given: their ids or a
    query giving them), earliest first, each value and previous value decoded from JSON."""
    ids = sorted({int(ingest_id) for ingest_id in ingest_ids})
    query = select(*(amendments.c[column] for column in AMENDMENT_COLUMNS)).where(
        amendments.c[INGEST_KEY].in_(ids)
    )
    if isinstance(household_id, str):
        query = query.where(amendments.c.household_id == household_id)
    elif isinstance(household_id, Select):
        query = query.where(amendments.c.household_id.in_(household_id))
    elif household_id is not None:
        query = query.where(amendments.c.household_id.in_(list(household_id)))
    rows = connection.execute(query.order_by(amendments.c.id)).all()
    frame = pd.DataFrame(rows, columns=list(AMENDMENT_COLUMNS))
    for column in ("value", "previous"):
        frame[column] = [None if text is None else json.loads(text) for text in frame[column]]
    return frame


def household_amendments(engine: Engine, county_id: str, household_id: str) -> pd.DataFrame:
    """Every amendment of a household in any version of any round, earliest first (its case history)."""
    with engine.connect() as connection:
        ids = connection.execute(
            select(amendments.c[INGEST_KEY]).where(
                amendments.c.county_id == county_id, amendments.c.household_id == household_id
            )
        ).scalars()
        return read_amendments(connection, list(ids), household_id)


def write_amendments(
    connection: Connection,
    ingest_id: int,
    where: tuple[str, str, int],
    changes: Sequence[Amendment],
    *,
    by: str,
    role: str | None,
    flag_id: int | None,
    at: datetime,
) -> None:
    """Append `changes` of the household (`where`: county, household, round) in version `ingest_id`,
    inside the caller's transaction (a visit's step and its corrections land together or not at all)."""
    if not changes:
        return
    county_id, household_id, round_ = where
    connection.execute(
        insert(amendments),
        [
            {
                INGEST_KEY: ingest_id,
                "county_id": county_id,
                "household_id": household_id,
                "round": round_,
                "member_id": change.member_id,
                "field": change.field,
                "value": json.dumps(change.value, ensure_ascii=False),
                "previous": json.dumps(_plain(change.previous), ensure_ascii=False),
                "flag_id": flag_id,
                "amended_by": by,
                "role": role,
                "amended_at": at,
            }
            for change in changes
        ],
    )


def _plain(value: Any) -> Any:
    """A stored cell as JSON can hold it (numpy scalars, NaN and pandas' missing values as None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value
