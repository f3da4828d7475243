"""The household register: survey rounds in, canonical survey folders out, nothing ever overwritten.

`ingest_survey` validates a survey (the report of `povrisk validate`; nothing is written on any
failure) and appends its rounds to a county in one transaction. A round whose content (households,
members, verification findings and village register of that round) equals the stored version is left
as it is; a round that differs is refused unless `replace`, which stores a new version and keeps the old
one, marked replaced, with who replaced it, when, and what changed. `read_register` gives the current
version of every round back as a `Survey`, frame for frame as it was ingested (dtypes, column order and
a survey's extra columns included); `register_rounds` lists what is held.

Bulk writes: PostgreSQL through COPY on the psycopg connection, other databases through the driver's
executemany; never row by row through the ORM.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, Table, func, insert, select, update

from store.amendments import Amendment, apply_amendments, read_amendments
from store.database import frame_of
from store.register_tables import (
    DATA_TABLES,
    EXTRA_COLUMN,
    ID_LENGTH,
    INGEST_KEY,
    ingests,
    village_rounds,
)
from survey.io import Survey
from survey.schema import BLOCKS
from survey.text import control_characters
from survey.validate import SurveyInvalid, ValidationReport, validate_survey
from survey.village_context import village_round_context

PER_ROUND_TABLES = ("households", "members", "verification")
HouseholdIds = Sequence[str] | Select[Any]
"""Households to read: their ids, or a query giving them."""
ACTOR_MAX_LENGTH = 200


class RegisterError(ValueError):
    """A county id, an actor or a request to the register that cannot be taken (the message says why)."""


class RoundsDiffer(RegisterError):
    """Rounds already held with other content, and no `replace`: nothing was written."""


@dataclass(frozen=True)
class RoundSummary:
    """What one round of an ingest holds and how it moved since the round before it."""

    round: int
    outcome: str  # "added", "unchanged" or "replaced"
    households: int
    members: int
    new_households: int | None
    missing_households: int | None
    missing_share: dict[str, float]
    changed_village: int | None
    changed_size: int | None
    changed_status: int | None


@dataclass(frozen=True)
class IngestResult:
    county_id: str
    rounds: tuple[RoundSummary, ...] = field(default_factory=tuple)

    @property
    def changed_anything(self) -> bool:
        return any(summary.outcome != "unchanged" for summary in self.rounds)


# ----------------------------------------------------------------------------------------------- ingest


def ingest_survey(
    engine: Engine,
    survey: Survey,
    county_id: str,
    *,
    source: str,
    by: str,
    replace: bool = False,
    now: datetime | None = None,
    policy_check: ValidationReport | None = None,
) -> IngestResult:
    """Validate `survey` and append its rounds to `county_id`, all or nothing (see the module doc).
    `policy_check` (`features.policy_checks.check_against_policy` of the survey) joins the schema's
    report, as `povrisk validate` joins them: any failure of either writes nothing."""
    check_county_id(county_id)
    _check_actor(by)
    report = validate_survey(survey)
    if policy_check is not None:
        report = ValidationReport.combined(report, policy_check)
    if not report.ok:
        raise SurveyInvalid(report)
    at = now or datetime.now(UTC)
    parts = _rounds_of(survey)
    with engine.begin() as connection:
        stored = _current_versions(connection, county_id)
        hashes = {round_: _content_hash(tables) for round_, tables in parts.items()}
        differing = sorted(r for r, h in hashes.items() if r in stored and stored[r]["content_hash"] != h)
        if differing and not replace:
            raise RoundsDiffer(
                f"county {county_id} already holds round(s) {differing} with other content; nothing was "
                "written. Give --replace to store this version (the old one is kept, marked replaced)"
            )
        history = _previous_households(connection, county_id, stored, parts)
        summaries = []
        for round_, tables in sorted(parts.items()):
            old = stored.get(round_)
            if old is not None and old["content_hash"] == hashes[round_]:
                outcome = "unchanged"
            else:
                outcome = "added" if old is None else "replaced"
                changes = None if old is None else _changes(connection, old, tables)
                if old is not None:
                    connection.execute(
                        update(ingests)
                        .where(ingests.c.id == old["id"])
                        .values(current=False, replaced_at=at, replaced_by=by)
                    )
                ingest_id = _insert_ingest(
                    connection, county_id, round_, tables, hashes[round_], source, by, at, old, changes
                )
                for name, frame in tables.items():
                    _bulk_insert(connection, DATA_TABLES[name], _rows(frame, DATA_TABLES[name], ingest_id))
                context = village_round_context(tables["households"]).drop(columns="round")
                _bulk_insert(connection, village_rounds, _rows(context, village_rounds, ingest_id))
            summaries.append(_summary(round_, outcome, tables, history.get(round_ - 1)))
    return IngestResult(county_id=county_id, rounds=tuple(summaries))


def check_county_id(county_id: str) -> None:
    if not county_id or len(county_id) > ID_LENGTH or control_characters(county_id):
        raise RegisterError(
            f"county id must be 1-{ID_LENGTH} characters without control characters, got {county_id!r}"
        )


def _check_actor(by: str) -> None:
    if not by or len(by) > ACTOR_MAX_LENGTH or control_characters(by):
        raise RegisterError(f"who ingests must be 1-{ACTOR_MAX_LENGTH} printable characters")


def _rounds_of(survey: Survey) -> dict[int, dict[str, pd.DataFrame]]:
    """Each round's tables: its households, members and verification rows, and the village register."""
    rounds = pd.to_numeric(survey.households["round"]).astype(int)
    parts: dict[int, dict[str, pd.DataFrame]] = {}
    for round_ in sorted(rounds.unique()):
        tables = {}
        for name in PER_ROUND_TABLES:
            frame = getattr(survey, name)
            if frame is not None:
                tables[name] = frame[pd.to_numeric(frame["round"]).astype(int) == round_]
        if survey.villages is not None:
            tables["villages"] = survey.villages
        parts[int(round_)] = tables
    return parts


def _content_hash(tables: dict[str, pd.DataFrame]) -> str:
    """sha256 over each table's columns, dtypes and values, in the order given."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        digest.update(name.encode())
        digest.update(repr([(str(column), str(dtype)) for column, dtype in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _current_versions(connection: Connection, county_id: str) -> dict[int, dict[str, Any]]:
    rows = connection.execute(
        select(ingests).where(ingests.c.county_id == county_id, ingests.c.current.is_(True))
    ).mappings()
    return {int(row["round"]): dict(row) for row in rows}


def _insert_ingest(
    connection: Connection,
    county_id: str,
    round_: int,
    tables: dict[str, pd.DataFrame],
    content_hash: str,
    source: str,
    by: str,
    at: datetime,
    old: dict[str, Any] | None,
    changes: dict[str, Any] | None,
) -> int:
    layout = {
        name: [[str(c), str(dtype)] for c, dtype in frame.dtypes.items()] for name, frame in tables.items()
    }
    members = tables.get("members")
    result = connection.execute(
        insert(ingests).values(
            county_id=county_id,
            round=round_,
            version=1 if old is None else int(old["version"]) + 1,
            content_hash=content_hash,
            source=source,
            ingested_by=by,
            ingested_at=at,
            households=len(tables["households"]),
            members=0 if members is None else len(members),
            current=True,
            changes=None if changes is None else json.dumps(changes, ensure_ascii=False),
            layout=json.dumps(layout, ensure_ascii=False),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _rows(frame: pd.DataFrame, table: Table, ingest_id: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The table's columns and the frame's rows as driver values: missing values None, a survey's own
    columns as one JSON object per row (None when it has none)."""
    typed = [column.name for column in table.columns if column.name in frame.columns]
    extra = [column for column in frame.columns if column not in table.columns and column != "round"]
    values = [np.full(len(frame), ingest_id, dtype=object)]
    values += [_driver_values(frame[column]) for column in typed]
    columns = [INGEST_KEY, *typed]
    if extra:
        columns.append(EXTRA_COLUMN)
        values.append(np.array(_extra_json(frame[extra]), dtype=object))
    return columns, list(zip(*values, strict=True))


def _driver_values(series: pd.Series) -> np.ndarray:
    values = series.astype(object).to_numpy(copy=True)
    missing = pd.isna(series).to_numpy()
    values[missing] = None
    if pd.api.types.is_integer_dtype(series.dtype):
        values[~missing] = [int(value) for value in values[~missing]]
    elif pd.api.types.is_float_dtype(series.dtype):
        values[~missing] = [float(value) for value in values[~missing]]
    return values


def _extra_json(frame: pd.DataFrame) -> list[str]:
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [json.dumps(record, ensure_ascii=False, default=_json_default) for record in records]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot store a value of type {type(value).__name__} in the register")


def _bulk_insert(connection: Connection, table: Table, rows: tuple[list[str], list[tuple[Any, ...]]]) -> None:
    columns, values = rows
    if not values:
        return
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        raw = connection.connection.driver_connection
        assert raw is not None
        names = ", ".join(f'"{column}"' for column in columns)
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in values:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" if connection.dialect.paramstyle == "qmark" else "%s" for _ in columns)
    names = ", ".join(f'"{column}"' for column in columns)
    connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({placeholders})', values)


# ---------------------------------------------------------------------------------------------- summary


def _previous_households(
    connection: Connection,
    county_id: str,
    stored: dict[int, dict[str, Any]],
    parts: dict[int, dict[str, pd.DataFrame]],
) -> dict[int, dict[str, pd.DataFrame]]:
    """For each round before an ingested one: its households (and members) from this survey, else from
    the register's current version."""
    wanted = {round_ - 1 for round_ in parts} - set(parts)
    found = {round_: parts[round_] for round_ in parts}
    for round_ in wanted & set(stored):
        found[round_] = _read_version(connection, stored[round_])
    return found


def _summary(
    round_: int, outcome: str, tables: dict[str, pd.DataFrame], before: dict[str, pd.DataFrame] | None
) -> RoundSummary:
    households = tables["households"]
    members = tables.get("members")
    missing_share = {
        block: float(households[list(columns)].isna().to_numpy().mean())
        for block, columns in BLOCKS.items()
        if set(columns) <= set(households.columns)
    }
    if members is not None:
        member_columns = [c for c in members.columns if c not in ("household_id", "member_id", "round")]
        if member_columns:
            missing_share["members"] = float(members[member_columns].isna().to_numpy().mean())
    if before is None:
        return RoundSummary(
            round_, outcome, len(households), _count(members), None, None, missing_share, None, None, None
        )
    now_ids = pd.Index(households["household_id"])
    then_ids = pd.Index(before["households"]["household_id"])
    both = now_ids.intersection(then_ids)
    now, then = (
        households.set_index("household_id").loc[both],
        before["households"].set_index("household_id").loc[both],
    )
    return RoundSummary(
        round=round_,
        outcome=outcome,
        households=len(households),
        members=_count(members),
        new_households=len(now_ids.difference(then_ids)),
        missing_households=len(then_ids.difference(now_ids)),
        missing_share=missing_share,
        changed_village=int((now["village_id"] != then["village_id"]).sum()),
        changed_size=_changed_sizes(members, before.get("members"), both),
        changed_status=_changed(now, then, "poverty_status"),
    )


def _count(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def _changed(now: pd.DataFrame, then: pd.DataFrame, column: str) -> int | None:
    if column not in now.columns or column not in then.columns:
        return None
    return int((now[column].astype(object) != then[column].astype(object)).sum())


def _changed_sizes(members: pd.DataFrame | None, before: pd.DataFrame | None, both: pd.Index) -> int | None:
    if members is None or before is None:
        return None
    now = members.groupby("household_id").size().reindex(both, fill_value=0)
    then = before.groupby("household_id").size().reindex(both, fill_value=0)
    return int((now != then).sum())


def _changes(connection: Connection, old: dict[str, Any], tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """What a replacement changes: per table, the rows added, removed and changed (by key)."""
    stored = _read_version(connection, old)
    changes: dict[str, Any] = {
        "replaces_version": int(old["version"]),
        "content_hash_before": old["content_hash"],
    }
    for name, frame in tables.items():
        key = [column.name for column in DATA_TABLES[name].primary_key.columns if column.name != INGEST_KEY]
        before = stored.get(name)
        if before is None:
            changes[name] = {"added": len(frame), "removed": 0, "changed": 0}
            continue
        now_indexed, then_indexed = frame.set_index(key), before.set_index(key)
        common = now_indexed.index.intersection(then_indexed.index)
        columns = [c for c in now_indexed.columns if c in then_indexed.columns]
        a, b = (
            now_indexed.loc[common, columns].astype(object),
            then_indexed.loc[common, columns].astype(object),
        )
        differs = ~((a == b) | (a.isna() & b.isna()))
        changes[name] = {
            "added": len(now_indexed.index.difference(then_indexed.index)),
            "removed": len(then_indexed.index.difference(now_indexed.index)),
            "changed": int(differs.any(axis=1).sum()),
            "columns_changed": sorted(str(c) for c in differs.columns[differs.any(axis=0)]),
        }
    return changes


# ------------------------------------------------------------------------------------------------- read


def read_register(
    engine: Engine, county_id: str, rounds: Sequence[int] | None = None, *, amended: bool = True
) -> Survey:
    """The current version of the county's rounds (all, or those given) as one `Survey`, each table as it
    was ingested with the facts people corrected since laid over it (`store.amendments`; not with
    `amended=False`). `RegisterError` when the county holds none of them."""
    with engine.connect() as connection:
        versions = _current_versions(connection, county_id)
        chosen = sorted(versions if rounds is None else set(rounds) & set(versions))
        if not chosen:
            held = sorted(versions)
            asked = "no rounds" if rounds is None else f"no round {sorted(rounds)}"
            raise RegisterError(
                f"the register holds {asked} of county {county_id}"
                + (f" (it holds rounds {held})" if held else " (the county is not in the register)")
            )
        parts = [_read_version(connection, versions[round_]) for round_ in chosen]
        corrections = (
            read_amendments(connection, [versions[round_]["id"] for round_ in chosen])
            if amended
            else pd.DataFrame()
        )
    tables: dict[str, pd.DataFrame | None] = {}
    for name in PER_ROUND_TABLES:
        frames = [part[name] for part in parts if name in part]
        tables[name] = pd.concat(frames, ignore_index=True) if frames else None
    latest_villages = next((part["villages"] for part in reversed(parts) if "villages" in part), None)
    households = tables.pop("households")
    assert households is not None
    households, tables["members"] = apply_amendments(households, tables["members"], corrections)
    return Survey(households=households, villages=latest_villages, **tables)


def _read_version(connection: Connection, ingest: dict[str, Any]) -> dict[str, pd.DataFrame]:
    layout = json.loads(ingest["layout"])
    return {
        name: _read_table(connection, DATA_TABLES[name], int(ingest["id"]), int(ingest["round"]), columns)
        for name, columns in layout.items()
    }


def _read_table(
    connection: Connection, table: Table, ingest_id: int, round_: int, layout: list[list[str]]
) -> pd.DataFrame:
    key = [column for column in table.primary_key.columns if column.name != INGEST_KEY]
    result = connection.execute(select(table).where(table.c[INGEST_KEY] == ingest_id).order_by(*key))
    stored = frame_of(result)
    return _as_ingested(stored, layout, round_)


def _as_ingested(stored: pd.DataFrame, layout: list[list[str]], round_: int | np.ndarray) -> pd.DataFrame:
    """The stored rows back in the frame's columns, order and dtypes (`round_`: the rows' round, where
    the table does not store it)."""
    extras = _extras(stored.get(EXTRA_COLUMN), len(stored))
    columns = {}
    for name, dtype in layout:
        if name == "round" and name not in stored.columns:
            values: Any = np.broadcast_to(round_, len(stored)).copy()
        elif name in stored.columns:
            values = stored[name].to_numpy(dtype=object)
        else:
            values = (
                extras[name].to_numpy(dtype=object) if name in extras.columns else np.full(len(stored), None)
            )
        columns[name] = _with_dtype(values, dtype)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(stored)))


def _extras(column: pd.Series | None, rows: int) -> pd.DataFrame:
    if column is None or column.isna().all():
        return pd.DataFrame(index=pd.RangeIndex(rows))
    return pd.DataFrame([{} if text is None else json.loads(text) for text in column])


def _with_dtype(values: np.ndarray, dtype: str) -> pd.Series:
    target = pd.api.types.pandas_dtype(dtype)
    if dtype.startswith("float"):
        try:  # numpy reads None as NaN: one conversion, no pandas per column
            return pd.Series(np.asarray(values, dtype=np.dtype(dtype)), copy=False)
        except (TypeError, ValueError):
            return pd.to_numeric(pd.Series(values)).astype(target)
    return pd.Series(values).astype(target)


# ---------------------------------------------------------------------------------------------- rounds

ROUND_COLUMNS = (
    "county_id",
    "round",
    "version",
    "households",
    "members",
    "ingested_at",
    "ingested_by",
    "source",
    "content_hash",
    "current",
    "replaced_at",
)


def register_rounds(engine: Engine, county_id: str | None = None, *, history: bool = False) -> pd.DataFrame:
    """What the register holds: one row per county and round (every version with `history`)."""
    query = select(*(ingests.c[column] for column in ROUND_COLUMNS)).order_by(
        ingests.c.county_id, ingests.c.round, ingests.c.version
    )
    if county_id is not None:
        query = query.where(ingests.c.county_id == county_id)
    if not history:
        query = query.where(ingests.c.current.is_(True))
    with engine.connect() as connection:
        result = connection.execute(query)
        return frame_of(result, ROUND_COLUMNS)


# ------------------------------------------------------------------------------------ one household


@dataclass(frozen=True)
class RegisteredHousehold:
    """One household as the register knows it up to a round: its rows of that round and the rounds
    before (households and members, as ingested), and its village's counts in that round."""

    county_id: str
    household_id: str
    round: int
    village_id: str
    households: pd.DataFrame
    members: pd.DataFrame | None
    village_counts: dict[str, int] | None
    ingest_id: int
    """The version of the round read (what an amendment of this round's facts corrects)."""


def registered_household(
    engine: Engine, county_id: str, household_id: str, round_: int | None = None
) -> RegisteredHousehold | None:
    """The household's rows up to `round_` (default: its latest round) and the village context of that
    round; None when the register has no row of it in that round."""
    history = registered_history(engine, county_id, household_id, round_)
    if not history or (round_ is not None and history[-1].round != round_):
        return None
    return history[-1]


def registered_history(
    engine: Engine, county_id: str, household_id: str, up_to: int | None = None
) -> list[RegisteredHousehold]:
    """The household as the register knows it at each round it was surveyed in (up to `up_to`), earliest
    first: what `registered_household` gives for each of those rounds, read in three queries."""
    return registered_histories(engine, county_id, [household_id], up_to).get(str(household_id), [])


def registered_histories(
    engine: Engine, county_id: str, household_ids: Sequence[str], up_to: int | None = None
) -> dict[str, list[RegisteredHousehold]]:
    """`registered_history` of several households of a county (a village's pages, a phone's queued
    visits), read in the same few queries as one: by household, those the register holds."""
    wanted = list(dict.fromkeys(str(household) for household in household_ids))
    with engine.connect() as connection:
        versions = {
            r: version
            for r, version in _current_versions(connection, county_id).items()
            if up_to is None or r <= up_to
        }
        households, members = _amended_rows(connection, versions, wanted)
        if households.empty:
            return {}
        lived_in = set(zip(households["round"].tolist(), households["village_id"].astype(str), strict=True))
        counts = connection.execute(
            select(
                village_rounds.c[INGEST_KEY],
                village_rounds.c.village_id,
                village_rounds.c.households,
                village_rounds.c.answering_shocks,
                village_rounds.c.with_shocks,
            ).where(
                village_rounds.c[INGEST_KEY].in_(sorted({versions[r]["id"] for r, _ in lived_in})),
                village_rounds.c.village_id.in_(sorted({village for _, village in lived_in})),
            )
        ).all()
    village_counts = {
        (ingest_id, village): {"households": n, "answering_shocks": answering, "with_shocks": reporting}
        for ingest_id, village, n, answering, reporting in counts
    }
    members_of = (
        {
            str(h): rows.reset_index(drop=True)
            for h, rows in members.groupby("household_id", sort=False, observed=True)
        }
        if not members.empty
        else {}
    )
    return {
        str(household): _history_of(
            county_id,
            str(household),
            rows.reset_index(drop=True),
            members_of.get(str(household)),
            versions,
            village_counts,
        )
        for household, rows in households.groupby("household_id", sort=False, observed=True)
    }


def _amended_rows(
    connection: Connection, versions: dict[int, dict[str, Any]], household_ids: HouseholdIds
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Some households' rows (households, members: empty when none) in the given versions, with the
    facts people corrected since laid over them."""
    households = _household_rows(connection, DATA_TABLES["households"], versions, household_ids)
    if households.empty:
        return households, pd.DataFrame()
    members = _household_rows(connection, DATA_TABLES["members"], versions, household_ids)
    corrections = read_amendments(connection, [version["id"] for version in versions.values()], household_ids)
    amended, amended_members = apply_amendments(households, None if members.empty else members, corrections)
    return amended, pd.DataFrame() if amended_members is None else amended_members


def village_sizes(engine: Engine, county_id: str, round_: int) -> dict[str, int]:
    """Households per village in the county's round, from the register's village counts (the size of
    each part a province's round is scored in); `RegisterError` when the register lacks the round."""
    with engine.connect() as connection:
        version = _current_versions(connection, county_id).get(round_)
        if version is None:
            raise RegisterError(f"the register holds no round {round_} of county {county_id}")
        rows = connection.execute(
            select(village_rounds.c.village_id, village_rounds.c.households)
            .where(village_rounds.c[INGEST_KEY] == version["id"])
            .order_by(village_rounds.c.village_id)
        ).all()
    return {str(village): int(households) for village, households in rows}


def read_register_villages(
    engine: Engine,
    county_id: str,
    round_: int,
    villages: Sequence[str],
    *,
    through_round: int | None = None,
    verification: bool = False,
) -> Survey:
    """The households living in `villages` in the county's round `round_`, with their rows of that round
    and of the rounds before (amended, as `read_register` gives them): what scoring that round needs of
    them. Every household of those villages is in, so their context in the round is the one the whole
    county gives; a household's earlier rows elsewhere come along as its history. `through_round` also
    brings the same households' rows of the later rounds up to it (a label is the next round's status:
    what training on the round needs), `verification` their field-verification findings in the rounds
    read; the village register's rows (of the latest round read) of every village they lived in.
    `RegisterError` when the register lacks the round."""
    last = round_ if through_round is None else through_round
    with engine.connect() as connection:
        versions = {r: v for r, v in _current_versions(connection, county_id).items() if r <= last}
        if round_ not in versions:
            raise RegisterError(f"the register holds no round {round_} of county {county_id}")
        table = DATA_TABLES["households"]
        # the households as a subquery, not a list of thousands of ids: one statement text for every part
        # (SQLite keeps each distinct statement prepared: a worker grew by MBs a part with the lists)
        ids = select(table.c.household_id).where(
            table.c[INGEST_KEY] == versions[round_]["id"], table.c.village_id.in_(list(villages))
        )
        households, members = _amended_rows(connection, versions, ids)
        found = (
            _household_rows(connection, DATA_TABLES["verification"], versions, ids)
            if verification and not households.empty
            else pd.DataFrame()
        )
        latest = max(versions)  # the village register of the latest round read, as `read_register` gives
        layout = json.loads(versions[latest]["layout"]).get("villages")
        places = (
            None
            if layout is None
            else _read_table(connection, DATA_TABLES["villages"], int(versions[latest]["id"]), latest, layout)
        )
    if households.empty:
        return Survey(households=households)
    households = households.sort_values(["round", "household_id"], kind="stable").reset_index(drop=True)
    if not members.empty:
        members = members.sort_values(["round", "household_id", "member_id"], kind="stable").reset_index(
            drop=True
        )
    lived_in = set(households["village_id"].astype(str))  # a mover's earlier villages too
    chosen = (
        None
        if places is None
        else places[places["village_id"].astype(str).isin(lived_in)].reset_index(drop=True)
    )
    return Survey(
        households=households,
        members=None if members.empty else members,
        villages=chosen,
        verification=None if found.empty else found,
    )


def _history_of(
    county_id: str,
    household_id: str,
    households: pd.DataFrame,
    members: pd.DataFrame | None,
    versions: dict[int, dict[str, Any]],
    village_counts: dict[tuple[Any, str], dict[str, int]],
) -> list[RegisteredHousehold]:
    lived_in = dict(zip(households["round"].tolist(), households["village_id"].astype(str), strict=True))
    return [
        RegisteredHousehold(
            county_id=county_id,
            household_id=household_id,
            round=round_,
            village_id=village_id,
            households=households[households["round"] <= round_].reset_index(drop=True),
            members=None
            if members is None or not (members["round"] <= round_).any()
            else members[members["round"] <= round_].reset_index(drop=True),
            village_counts=village_counts.get((versions[round_]["id"], village_id)),
            ingest_id=int(versions[round_]["id"]),
        )
        for round_, village_id in sorted(lived_in.items())
    ]


def round_members(registered: RegisteredHousehold) -> pd.DataFrame | None:
    """The household's members in its round (not those of earlier rounds)."""
    members = registered.members
    if members is None:
        return None
    return members[members["round"] == registered.round].reset_index(drop=True)


def amended(registered: RegisteredHousehold, changes: Sequence[Amendment]) -> RegisteredHousehold:
    """The household with `changes` to its round laid over it, as the register will read it once they
    are stored (a visit's corrections, scored before they are written)."""
    frame = pd.DataFrame(
        [
            {
                "round": registered.round,
                "household_id": registered.household_id,
                "member_id": change.member_id,
                "field": change.field,
                "value": change.value,
            }
            for change in changes
        ],
        columns=["round", "household_id", "member_id", "field", "value"],
    )
    households, members = apply_amendments(registered.households, registered.members, frame)
    return dataclasses.replace(registered, households=households, members=members)


def _ids(household_ids: HouseholdIds) -> Any:
    """What `in_` is given: a query of ids as it is (one statement text, whatever the part: a driver that
    caches prepared statements keeps one), else the ids as a list."""
    return household_ids if isinstance(household_ids, Select) else list(household_ids)


def _household_rows(
    connection: Connection, table: Table, versions: dict[int, dict[str, Any]], household_ids: HouseholdIds
) -> pd.DataFrame:
    """Some households' rows of `table` in the given versions, each as ingested, earlier rounds first:
    one query, and the dtypes restored once per layout (a service request reads five rounds)."""
    name = next(key for key, value in DATA_TABLES.items() if value is table)
    layouts = {
        round_: layout
        for round_, version in versions.items()
        if (layout := json.loads(version["layout"]).get(name)) is not None
    }
    if not layouts:
        return pd.DataFrame()
    round_of = {versions[round_]["id"]: round_ for round_ in layouts}
    key = [column for column in table.primary_key.columns if column.name != INGEST_KEY]
    result = connection.execute(
        select(table)
        .where(table.c[INGEST_KEY].in_(list(round_of)), table.c.household_id.in_(_ids(household_ids)))
        .order_by(*key)
    )
    stored = frame_of(result)
    if stored.empty:
        return pd.DataFrame()
    rounds = stored[INGEST_KEY].map(round_of).to_numpy()
    rounds_by_layout: dict[str, list[int]] = {}
    for round_, layout in layouts.items():
        rounds_by_layout.setdefault(json.dumps(layout), []).append(round_)
    frames = []
    for same in rounds_by_layout.values():
        rows = np.isin(rounds, same)
        if rows.any():
            part = stored[rows].reset_index(drop=True)
            frames.append(_as_ingested(part, layouts[same[0]], rounds[rows]))
    together = pd.concat(frames, ignore_index=True)
    return together.sort_values("round", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------ places


def county_places(engine: Engine, county_id: str) -> dict[str, str | None]:
    """The villages of the county's latest round (where its households live, and its village table's
    villages) with each one's township (None where the survey gives none); empty for a county the
    register does not hold."""
    with engine.connect() as connection:
        versions = _current_versions(connection, county_id)
        if not versions:
            return {}
        ingest_id = versions[max(versions)]["id"]
        household_table, village_table = DATA_TABLES["households"], DATA_TABLES["villages"]
        lived_in = connection.execute(
            select(household_table.c.village_id).where(household_table.c[INGEST_KEY] == ingest_id).distinct()
        ).scalars()
        places: dict[str, str | None] = dict.fromkeys(lived_in)
        listed = connection.execute(
            select(village_table.c.village_id, village_table.c.township_id).where(
                village_table.c[INGEST_KEY] == ingest_id
            )
        ).all()
        places.update(dict(listed))
    return places


def township_of(engine: Engine, county_id: str, village_id: str) -> str | None:
    """The township the register's latest village table places a village in (None: not given)."""
    with engine.connect() as connection:
        versions = _current_versions(connection, county_id)
        if not versions:
            return None
        table = DATA_TABLES["villages"]
        township = connection.execute(
            select(table.c.township_id).where(
                table.c[INGEST_KEY] == versions[max(versions)]["id"], table.c.village_id == village_id
            )
        ).scalar_one_or_none()
    return None if township is None else str(township)


_AGGREGATES: dict[tuple[Any, ...], Any] = {}
"""Aggregates of stored versions, which never change once ingested (a replaced round is a new version):
computed once per process and kept, keyed by the database, the county and the versions read."""
_AGGREGATES_KEPT = 256


def _aggregate(engine: Engine, name: str, county_id: str, compute: Any) -> Any:
    """`compute(connection, versions)`, cached for the county's current versions."""
    with engine.connect() as connection:
        versions = _current_versions(connection, county_id)
        key = (str(engine.url), name, county_id, tuple(sorted(int(v["id"]) for v in versions.values())))
        if key not in _AGGREGATES:
            if len(_AGGREGATES) >= _AGGREGATES_KEPT:
                _AGGREGATES.clear()
            _AGGREGATES[key] = compute(connection, versions)
        return _AGGREGATES[key]


def registration_counts(engine: Engine, county_id: str) -> pd.DataFrame:
    """Households by round and registered poverty status (poor, exited, never_poor; missing as None):
    columns round, poverty_status, households. One aggregate query (kept for the versions read)."""
    return _aggregate(engine, "registration_counts", county_id, _registration_counts).copy()


def _registration_counts(connection: Connection, versions: dict[int, dict[str, Any]]) -> pd.DataFrame:
    table = DATA_TABLES["households"]
    round_of = {int(version["id"]): round_ for round_, version in versions.items()}
    if not round_of:
        return pd.DataFrame(columns=["round", "poverty_status", "households"])
    rows = connection.execute(
        select(table.c[INGEST_KEY], table.c.poverty_status, func.count())
        .where(table.c[INGEST_KEY].in_(list(round_of)))
        .group_by(table.c[INGEST_KEY], table.c.poverty_status)
    ).all()
    frame = pd.DataFrame(rows, columns=["ingest", "poverty_status", "households"])
    frame.insert(0, "round", frame.pop("ingest").map(round_of))
    return frame.sort_values(["round", "poverty_status"], na_position="last").reset_index(drop=True)


def registration_changes(engine: Engine, county_id: str) -> tuple[tuple[int, int] | None, pd.DataFrame]:
    """How the registered poverty status moved between the county's last two rounds: ((previous,
    current) round, frame of before, now, households), households in both rounds only."""
    rounds, frame = _aggregate(engine, "registration_changes", county_id, _registration_changes)
    return rounds, frame.copy()


def _registration_changes(
    connection: Connection, versions: dict[int, dict[str, Any]]
) -> tuple[tuple[int, int] | None, pd.DataFrame]:
    table = DATA_TABLES["households"]
    if len(versions) < 2:
        return None, pd.DataFrame(columns=["before", "now", "households"])
    previous, current = sorted(versions)[-2:]
    before = table.alias("before")
    rows = connection.execute(
        select(before.c.poverty_status, table.c.poverty_status, func.count())
        .select_from(
            table.join(
                before,
                (before.c.household_id == table.c.household_id)
                & (before.c[INGEST_KEY] == versions[previous]["id"]),
            )
        )
        .where(table.c[INGEST_KEY] == versions[current]["id"])
        .group_by(before.c.poverty_status, table.c.poverty_status)
    ).all()
    return (previous, current), pd.DataFrame(rows, columns=["before", "now", "households"])


def latest_households(engine: Engine, county_id: str) -> dict[str, str]:
    """Every household of the county's latest round with its village (empty when the county has none)."""
    table = DATA_TABLES["households"]
    with engine.connect() as connection:
        versions = _current_versions(connection, county_id)
        if not versions:
            return {}
        rows = connection.execute(
            select(table.c.household_id, table.c.village_id).where(
                table.c[INGEST_KEY] == versions[max(versions)]["id"]
            )
        ).all()
    return {str(household): str(village) for household, village in rows}
