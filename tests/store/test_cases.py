"""Flag store on a temporary SQLite file and on PostgreSQL: upsert, human decisions, transitions,
history, filters."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from store.cases import (
    ACTOR_MAX_LENGTH,
    LARGEST_FLAG_ID,
    NOTE_MAX_LENGTH,
    FlagConflict,
    FlagHistory,
    FlagNotFound,
    IllegalTransition,
    UpsertResult,
    field_decisions,
    flag_history,
    list_flags,
    set_status,
    upsert_flags,
)
from store.database import Base, create_schema, db_url, make_engine


def _flags(**overrides: list) -> pd.DataFrame:
    columns = {
        "household_id": ["h1", "h2", "h3"],
        "village_id": ["v1", "v1", "v2"],
        "round": [2, 2, 2],
        "category": ["poor", "marginal", "sudden_hardship"],
        "category_rule": ["poverty risk 0.81 >= 0.60", "relapse risk 0.34 >= 0.20", "shock and expenses"],
        "poverty_risk": [0.81, 0.12, 0.30],
        "relapse_risk": [float("nan"), 0.34, 0.25],
        "risk_tier": ["high", "low", "medium"],
        "reasons_json": [json.dumps([{"indicator": "dangerous_house"}])] * 3,
        "model_name": ["povrisk-poverty;povrisk-relapse"] * 3,
        "model_version": ["1;1"] * 3,
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'flags.db'}")
    create_schema(engine)
    return engine


def _id_of(engine: Engine, household_id: str) -> int:
    flags = list_flags(engine)
    return int(flags.loc[flags["household_id"] == household_id, "id"].item())


def test_db_url_prefers_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("POVRISK_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert db_url() == f"sqlite:///{tmp_path / 'povrisk.db'}"
    monkeypatch.setenv("POVRISK_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert db_url() == "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_create_schema_is_idempotent(engine: Engine) -> None:
    create_schema(engine)
    assert list_flags(engine).empty


def test_insert_writes_flags_and_one_history_row_each(engine: Engine) -> None:
    result = upsert_flags(engine, _flags())
    assert result == UpsertResult(inserted=3, updated=0, unchanged=0)
    flags = list_flags(engine)
    assert sorted(flags["household_id"]) == ["h1", "h2", "h3"]
    assert set(flags["status"]) == {"flagged"}
    assert set(flags["version"]) == {1}
    assert flags.loc[flags["household_id"] == "h1", "relapse_risk"].isna().item()
    history = flag_history(engine)
    assert len(history) == 3
    assert history["from_status"].isna().all()
    assert set(history["to_status"]) == {"flagged"}


def test_reupsert_of_the_same_list_changes_nothing(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    before = list_flags(engine)
    assert upsert_flags(engine, _flags()) == UpsertResult(inserted=0, updated=0, unchanged=3)
    pd.testing.assert_frame_equal(list_flags(engine), before)
    assert len(flag_history(engine)) == 3


def test_rescoring_updates_open_flags(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    rescored = _flags(poverty_risk=[0.81, 0.15, 0.30], category_rule=["r1", "r2", "shock and expenses"])
    assert upsert_flags(engine, rescored) == UpsertResult(inserted=0, updated=2, unchanged=1)
    flags = list_flags(engine).set_index("household_id")
    assert flags.loc["h2", "poverty_risk"] == pytest.approx(0.15)
    assert flags.loc["h2", "category_rule"] == "r2"
    assert flags.loc["h2", "version"] == 2
    assert flags.loc["h3", "version"] == 1


def test_rescoring_never_overwrites_a_human_decision(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    set_status(engine, _id_of(engine, "h2"), "verified", by="cadre Li", note="visited")
    rescored = _flags(poverty_risk=[0.5, 0.99, 0.5], category=["poor", "poor", "poor"])
    assert upsert_flags(engine, rescored) == UpsertResult(inserted=0, updated=2, unchanged=1)
    flags = list_flags(engine).set_index("household_id")
    assert flags.loc["h2", "status"] == "verified"
    assert flags.loc["h2", "poverty_risk"] == pytest.approx(0.12)
    assert flags.loc["h2", "category"] == "marginal"
    assert flags.loc["h1", "poverty_risk"] == pytest.approx(0.5)


def test_a_new_round_opens_no_second_case_for_a_household(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    set_status(engine, _id_of(engine, "h1"), "rejected", by="team 3", note="not at risk")  # h1's case closed
    result = upsert_flags(engine, _flags(round=[3, 3, 3]))
    assert result == UpsertResult(inserted=1, updated=0, unchanged=0, already_open=2)
    assert "2 with a case still open" in str(result)
    assert sorted(zip(*[list_flags(engine)[c] for c in ("household_id", "round")], strict=True)) == [
        ("h1", 2),
        ("h1", 3),
        ("h2", 2),
        ("h3", 2),
    ]


FULL_PROCEDURE = (
    "verified",
    "village_reviewed",
    "notice_running",
    "township_reviewed",
    "monitored",
    "assisted",
    "elimination_proposed",
    "elimination_verified",
    "elimination_reviewed",
    "elimination_notice",
    "risk_eliminated",
)


def test_legal_transitions_walk_the_procedure(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h1")
    for status in FULL_PROCEDURE:
        change = set_status(engine, flag_id, status, by="team 3", role="monitor")
        assert change.to_status == status
    rejected = set_status(engine, _id_of(engine, "h2"), "rejected", by="team 3", note="income misreported")
    assert rejected.from_status == "flagged"
    reopened = set_status(engine, _id_of(engine, "h2"), "flagged", by="township", note="new evidence")
    assert reopened.from_status == "rejected"
    history = flag_history(engine, flag_id)
    assert list(history["to_status"]) == ["flagged", *FULL_PROCEDURE]
    assert list(history["from_status"].iloc[1:]) == ["flagged", *FULL_PROCEDURE[:-1]]
    assert set(history["role"].iloc[1:]) == {"monitor"}
    assert list_flags(engine).set_index("household_id").loc["h1", "version"] == len(FULL_PROCEDURE) + 1


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), "assisted"),
        ((), "risk_eliminated"),
        (("rejected",), "verified"),
        (("verified",), "assisted"),
        (("verified", "village_reviewed"), "township_reviewed"),
        (FULL_PROCEDURE, "verified"),
        ((), "cleared"),
    ],
)
def test_illegal_transitions_raise_and_write_nothing(
    engine: Engine, path: tuple[str, ...], illegal: str
) -> None:
    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h1")
    for status in path:
        set_status(engine, flag_id, status, by="team 3")
    history_before = flag_history(engine)
    with pytest.raises(IllegalTransition, match=repr(illegal)):
        set_status(engine, flag_id, illegal, by="team 3")
    pd.testing.assert_frame_equal(flag_history(engine), history_before)


def test_unknown_flag_raises(engine: Engine) -> None:
    with pytest.raises(FlagNotFound, match="999"):
        set_status(engine, 999, "verified", by="team 3")


def test_status_change_needs_an_actor(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    with pytest.raises(ValueError, match="who made the decision"):
        set_status(engine, _id_of(engine, "h1"), "verified", by=" ")


def test_history_is_append_only(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h3")
    first = flag_history(engine)
    set_status(engine, flag_id, "verified", by="a")
    upsert_flags(engine, _flags(poverty_risk=[0.2, 0.2, 0.2]))
    set_status(engine, flag_id, "village_reviewed", by="b")
    after = flag_history(engine)
    pd.testing.assert_frame_equal(_plain(after.iloc[: len(first)]), _plain(first))
    assert len(after) == len(first) + 2


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Object dtype with None for missing values, so frames read at different times compare equal."""
    return frame.astype(object).where(frame.notna(), None)


def test_list_flags_filters(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    for household in ("h1", "h2", "h3"):  # closed, so that round 3 opens new cases
        set_status(engine, _id_of(engine, household), "rejected", by="a", note="not at risk")
    upsert_flags(engine, _flags(round=[3, 3, 3]))
    set_status(engine, _id_of_round(engine, "h2", 3), "verified", by="a")
    assert sorted(list_flags(engine, village="v1")["household_id"]) == ["h1", "h1", "h2", "h2"]
    verified = list_flags(engine, status="verified")
    assert list(zip(verified["household_id"], verified["round"], strict=True)) == [("h2", 3)]
    assert len(list_flags(engine, round=2)) == 3
    assert list(list_flags(engine, village="v1", round=3)["household_id"]) == ["h1", "h2"]  # risk descending
    assert list_flags(engine, village="nowhere").empty


def _id_of_round(engine: Engine, household_id: str, round: int) -> int:
    flags = list_flags(engine, round=round)
    return int(flags.loc[flags["household_id"] == household_id, "id"].item())


def test_failed_upsert_leaves_nothing_half_written(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    upsert_flags(engine, _flags())
    # A trigger makes the last insert fail after the updates of h1-h3 and the inserts of h7-h8 ran
    # inside the same transaction: all of it must roll back.
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER fail_h9 BEFORE INSERT ON flags WHEN NEW.household_id = 'h9' "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        )
    mixed = pd.concat([_flags(poverty_risk=[0.9, 0.9, 0.9]), _flags(household_id=["h7", "h8", "h9"])])
    with pytest.raises(Exception, match="boom"):
        upsert_flags(engine, mixed)
    flags = list_flags(engine)
    assert sorted(flags["household_id"]) == ["h1", "h2", "h3"]
    assert flags["poverty_risk"].round(2).tolist() != [0.9, 0.9, 0.9]
    assert len(flag_history(engine)) == 3


def test_flag_frame_without_required_column_is_rejected(engine: Engine) -> None:
    with pytest.raises(ValueError, match="category_rule"):
        upsert_flags(engine, _flags().drop(columns=["category_rule"]))


def test_duplicate_keys_are_rejected(engine: Engine) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        upsert_flags(engine, _flags(household_id=["h1", "h1", "h3"]))


def test_schema_compiles_for_postgresql() -> None:
    ddl = "\n".join(
        str(CreateTable(table).compile(dialect=postgresql.dialect())) for table in Base.metadata.sorted_tables
    )
    assert "TIMESTAMP WITH TIME ZONE" in ddl
    assert "CONSTRAINT uq_flags_county_household_round UNIQUE (county_id, household_id, round)" in ddl
    assert "REFERENCES flags (id)" in ddl


def test_not_monitored_households_are_not_flags(engine: Engine) -> None:
    with pytest.raises(ValueError, match="not_monitored"):
        upsert_flags(engine, _flags(category=["poor", "not_monitored", "marginal"]))
    assert list_flags(engine).empty


def test_main_cause_is_stored_when_the_flag_list_has_one(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    assert list_flags(engine)["main_cause"].isna().all()
    with_causes = _flags(main_cause=["illness", None, "disaster"])
    assert upsert_flags(engine, with_causes) == UpsertResult(inserted=0, updated=2, unchanged=1)
    causes = list_flags(engine).set_index("household_id")["main_cause"]
    assert (causes["h1"], causes["h3"]) == ("illness", "disaster")
    assert pd.isna(causes["h2"])


def test_a_flag_list_without_main_cause_keeps_the_stored_causes(engine: Engine) -> None:
    upsert_flags(engine, _flags(main_cause=["illness", "lack_of_labour", "disaster"]))
    set_status(engine, _id_of(engine, "h3"), "verified", by="cadre Li")
    assert upsert_flags(engine, _flags(poverty_risk=[0.5, 0.5, 0.5])).updated == 2
    recaused = _flags(poverty_risk=[0.5, 0.5, 0.5], main_cause=["illness", "disability", "illness"])
    assert upsert_flags(engine, recaused).updated == 1  # h2 only: h1 unchanged, h3 decided
    causes = list_flags(engine).set_index("household_id")["main_cause"]
    assert causes.to_dict() == {"h1": "illness", "h2": "disability", "h3": "disaster"}


@pytest.mark.parametrize(
    ("flag_id", "by", "note", "error"),
    [
        (
            99999999999999999999,
            "cadre Li",
            None,
            r"flag id 99999999999999999999 is out of range: .* 1 to 2147483647",
        ),
        (0, "cadre Li", None, "flag id 0 is out of range"),
        (None, "", None, r"by \(who made the decision\) is empty"),
        (None, "x" * (ACTOR_MAX_LENGTH + 1), None, "201 characters long; at most 200 are allowed"),
        (None, "cadre\x00Li", None, r"by \(who made the decision\) holds control character\(s\) U\+0000"),
        (None, "cadre Li", "n" * (NOTE_MAX_LENGTH + 1), "the note is 2,001 characters long; at most 2,000"),
        (
            None,
            "cadre Li",
            "visited\r\nforged line",
            r"the note holds control character\(s\) U\+000D, U\+000A",
        ),
    ],
)
def test_a_status_change_the_store_cannot_keep_is_refused_before_writing(
    engine: Engine, flag_id: int | None, by: str, note: str | None, error: str
) -> None:
    upsert_flags(engine, _flags())
    history_before = flag_history(engine)
    with pytest.raises(ValueError, match=error):
        set_status(engine, _id_of(engine, "h1") if flag_id is None else flag_id, "verified", by=by, note=note)
    pd.testing.assert_frame_equal(flag_history(engine), history_before)
    assert set(list_flags(engine)["status"]) == {"flagged"}


def test_an_actor_and_a_note_at_their_limits_are_kept(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    by, note = "李" * ACTOR_MAX_LENGTH, "查" * NOTE_MAX_LENGTH
    set_status(engine, _id_of(engine, "h1"), "verified", by=by, note=note)
    last = flag_history(engine).iloc[-1]
    assert (last["by"], last["note"]) == (by, note)


def test_the_actor_limit_is_the_history_column_length() -> None:
    assert FlagHistory.__table__.c.by.type.length == ACTOR_MAX_LENGTH


def test_the_largest_flag_id_is_one_the_database_can_look_up(engine: Engine) -> None:
    with pytest.raises(FlagNotFound, match=str(LARGEST_FLAG_ID)):
        set_status(engine, LARGEST_FLAG_ID, "verified", by="cadre Li")


def test_a_discovery_opens_a_case_or_joins_the_open_one(engine: Engine) -> None:
    from store.cases import open_case

    upsert_flags(engine, _flags())
    declared = {**_flags().iloc[0].to_dict(), "household_id": "h9", "category": "not_monitored"}
    opened = open_case(engine, declared, "declaration", "li.cadre", role="cadre", note="phoned: surgery")
    assert opened.created
    case = list_flags(engine, household="h9").iloc[0]
    assert (case["channel"], case["status"], case["category"]) == ("declaration", "flagged", "not_monitored")
    created = flag_history(engine, opened.flag_id).iloc[0]
    assert (created["by"], created["role"], created["note"]) == ("li.cadre", "cadre", "phoned: surgery")
    assert json.loads(created["details"])["channel"] == "declaration"

    again = open_case(engine, {**declared, "round": 3}, "department", "zhao", role="monitor", note="bill")
    assert again == type(opened)(opened.flag_id, created=False)  # never two open cases
    assert len(list_flags(engine, household="h9")) == 1
    joined = flag_history(engine, opened.flag_id).iloc[-1]
    assert joined["from_status"] == joined["to_status"] == "flagged"


def test_a_discovery_reopens_a_case_closed_in_its_round(engine: Engine) -> None:
    from store.cases import open_case

    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h2")
    set_status(engine, flag_id, "rejected", by="li", note="not at risk")
    reopened = open_case(
        engine, _flags().iloc[1].to_dict(), "declaration", "li", role="cadre", note="ill again"
    )
    assert reopened == type(reopened)(flag_id, created=False)
    assert list_flags(engine, household="h2").iloc[0]["status"] == "flagged"


def test_a_note_on_a_case_keeps_its_status(engine: Engine) -> None:
    from store.cases import add_case_note

    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h1")
    add_case_note(
        engine, flag_id, "villager", "objects: owns a car", role="cadre", details={"kind": "objection"}
    )
    last = flag_history(engine, flag_id).iloc[-1]
    assert (last["from_status"], last["to_status"], last["note"]) == (
        "flagged",
        "flagged",
        "objects: owns a car",
    )
    assert list_flags(engine, household="h1").iloc[0]["version"] == 1


def test_a_person_acting_on_an_old_view_of_a_case_gets_a_conflict(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h1")
    set_status(engine, flag_id, "verified", by="li", expected_version=1, expected_status="flagged")
    seen_then_now = r"read at version 1 \('flagged'\), now at version 2 \('verified'\)"
    with pytest.raises(FlagConflict, match=seen_then_now):
        set_status(
            engine, flag_id, "rejected", by="wang", note="x", expected_version=1, expected_status="flagged"
        )


def test_field_decisions_are_what_the_visit_found(engine: Engine) -> None:
    upsert_flags(engine, _flags())
    visited, closed = _id_of(engine, "h1"), _id_of(engine, "h2")
    set_status(engine, visited, "verified", by="li")
    set_status(engine, visited, "rejected", by="village", note="review: not agreed")  # a later review
    set_status(engine, closed, "rejected", by="li", note="not at risk")
    set_status(engine, closed, "flagged", by="wang", note="reopened")
    set_status(engine, closed, "verified", by="li")  # visited again: at risk after all
    decisions = field_decisions(engine).set_index("household_id")["decision"].to_dict()
    assert decisions == {"h1": "verified", "h2": "verified"}


def test_a_discovery_joins_the_open_case_even_when_this_rounds_case_is_closed(engine: Engine) -> None:
    from store.cases import open_case

    upsert_flags(engine, _flags())
    older = _id_of_round(engine, "h1", 2)
    set_status(engine, older, "rejected", by="li", note="not at risk")
    upsert_flags(engine, _flags(round=[3, 3, 3]).iloc[[0]])  # h1 closed: round 3 opens a case
    newer = _id_of_round(engine, "h1", 3)
    set_status(engine, newer, "rejected", by="li", note="not at risk")
    set_status(engine, older, "flagged", by="wang", note="reopened")  # open in round 2, closed in round 3
    joined = open_case(engine, {**_flags().iloc[0].to_dict(), "round": 3}, "declaration", "li", note="ill")
    assert joined == type(joined)(older, created=False)
    assert list_flags(engine, household="h1").set_index("round")["status"].to_dict() == {
        2: "flagged",
        3: "rejected",
    }


def test_a_household_whose_risk_was_eliminated_can_enter_again(engine: Engine) -> None:
    from store.cases import open_case

    upsert_flags(engine, _flags())
    flag_id = _id_of(engine, "h1")
    for status in FULL_PROCEDURE:
        set_status(engine, flag_id, status, by="team")
    again = open_case(
        engine, _flags().iloc[0].to_dict(), "declaration", "li", role="cadre", note="new illness"
    )
    assert again == type(again)(flag_id, created=False)
    assert list_flags(engine, household="h1").iloc[0]["status"] == "flagged"
