"""Concurrent writers on one flag, on a real PostgreSQL server (and racing scorings on SQLite too): no
change is ever lost.

Each writer is a thread with its own engine (its own connections and transactions). A listener on a
writer's engine holds its first `UPDATE flags` until the other writers have read the flag too, so the
race really happens: every writer decides on the same version of the flag before any of them writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

import store.accounts
import store.register_tables  # noqa: F401
from store.cases import (
    FlagConflict,
    StatusChange,
    UpsertResult,
    flag_history,
    list_flags,
    set_status,
    upsert_flags,
)
from store.database import VERSION_TABLE, Base, create_schema, head_revision, make_engine, schema_revision

from .test_cases import _flags

pytestmark = pytest.mark.integration
WAIT_SECONDS = 30


@pytest.fixture
def engines(postgres_url: str) -> Iterator[Callable[[], Engine]]:
    """A factory of engines on one migrated PostgreSQL schema, each engine a separate writer."""
    made: list[Engine] = []

    def new_engine() -> Engine:
        made.append(make_engine(postgres_url))
        return made[-1]

    create_schema(new_engine())
    yield new_engine
    for engine in made:
        engine.dispose()


def _before_first_flag_update(engine: Engine, action: Callable[[], None]) -> None:
    """Run `action` when `engine` is about to send its first UPDATE of the flags table (after its read)."""
    pending = [action]

    @event.listens_for(engine, "before_cursor_execute")
    def _hold(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if pending and statement.lstrip().upper().startswith("UPDATE FLAGS"):
            pending.pop()()


def _outcome(call: Callable[[], StatusChange]) -> StatusChange | Exception:
    try:
        return call()
    except Exception as error:  # the outcome under test: a change or the error that refused it
        return error


def test_racing_decisions_on_one_flag_keep_exactly_one(engines: Callable[[], Engine]) -> None:
    first = engines()
    upsert_flags(first, _flags())
    flag_id = int(list_flags(first).set_index("household_id").loc["h1", "id"])
    decisions = ["verified", "rejected", "verified", "rejected"]
    all_have_read = threading.Barrier(len(decisions))
    writers = []
    for _ in decisions:
        writer = engines()
        _before_first_flag_update(writer, lambda: all_have_read.wait(timeout=WAIT_SECONDS))
        writers.append(writer)

    with ThreadPoolExecutor(max_workers=len(decisions)) as pool:
        futures = [
            pool.submit(_outcome, lambda w=writer, s=status, i=i: set_status(w, flag_id, s, by=f"cadre {i}"))
            for i, (writer, status) in enumerate(zip(writers, decisions, strict=True))
        ]
        outcomes = [future.result(timeout=2 * WAIT_SECONDS) for future in futures]

    changes = [outcome for outcome in outcomes if isinstance(outcome, StatusChange)]
    conflicts = [outcome for outcome in outcomes if isinstance(outcome, FlagConflict)]
    assert len(changes) == 1, outcomes
    assert len(conflicts) == len(decisions) - 1, outcomes
    winner = changes[0]
    assert winner.version == 2
    for conflict in conflicts:
        assert (conflict.flag_id, conflict.read_version, conflict.read_status) == (flag_id, 1, "flagged")
        assert (conflict.current_version, conflict.current_status) == (2, winner.to_status)
        assert all(part in str(conflict) for part in (f"flag {flag_id}", "version 1", "version 2"))
    flag = list_flags(first).set_index("id").loc[flag_id]
    assert (flag["status"], flag["version"]) == (winner.to_status, 2)
    history = flag_history(first, flag_id)
    assert list(history["to_status"]) == ["flagged", winner.to_status]
    assert history["by"].iloc[-1] == f"cadre {outcomes.index(winner)}"


def test_a_decision_raced_by_rescoring_is_retried_and_both_changes_land(
    engines: Callable[[], Engine],
) -> None:
    scorer, cadre = engines(), engines()
    upsert_flags(scorer, _flags())
    flag_id = int(list_flags(scorer).set_index("household_id").loc["h2", "id"])
    cadre_has_read, rescored = threading.Event(), threading.Event()

    def let_rescoring_commit_first() -> None:
        cadre_has_read.set()
        assert rescored.wait(timeout=WAIT_SECONDS)

    _before_first_flag_update(cadre, let_rescoring_commit_first)
    with ThreadPoolExecutor(max_workers=1) as pool:
        decision = pool.submit(_outcome, lambda: set_status(cadre, flag_id, "verified", by="cadre Li"))
        assert cadre_has_read.wait(timeout=WAIT_SECONDS)
        rescoring = upsert_flags(scorer, _flags(poverty_risk=[0.81, 0.55, 0.30]))  # h2's risk changes
        rescored.set()
        change = decision.result(timeout=WAIT_SECONDS)

    assert rescoring == UpsertResult(inserted=0, updated=1, unchanged=2)
    assert isinstance(change, StatusChange), change
    assert (change.from_status, change.to_status, change.version) == ("flagged", "verified", 3)
    flag = list_flags(scorer).set_index("id").loc[flag_id]
    assert (flag["status"], flag["version"]) == ("verified", 3)
    assert flag["poverty_risk"] == pytest.approx(0.55)
    assert list(flag_history(scorer, flag_id)["to_status"]) == ["flagged", "verified"]


def test_rescoring_raced_by_a_decision_leaves_the_decision_alone(engines: Callable[[], Engine]) -> None:
    scorer, cadre = engines(), engines()
    upsert_flags(scorer, _flags())
    flag_id = int(list_flags(scorer).set_index("household_id").loc["h2", "id"])
    decided: list[StatusChange] = []

    # the scorer has read h2 as "flagged"; the cadre's decision commits before the scorer writes
    _before_first_flag_update(
        scorer, lambda: decided.append(set_status(cadre, flag_id, "verified", by="cadre Li"))
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        rescoring = pool.submit(upsert_flags, scorer, _flags(poverty_risk=[0.81, 0.55, 0.30]))
        result = rescoring.result(timeout=WAIT_SECONDS)

    assert result == UpsertResult(inserted=0, updated=0, unchanged=3)
    assert decided and decided[0].version == 2
    flag = list_flags(scorer).set_index("id").loc[flag_id]
    assert (flag["status"], flag["version"]) == ("verified", 2)
    assert flag["poverty_risk"] == pytest.approx(0.12)
    assert list(flag_history(scorer, flag_id)["to_status"]) == ["flagged", "verified"]


def test_after_a_conflict_a_decision_on_the_new_state_succeeds(engines: Callable[[], Engine]) -> None:
    first, second = engines(), engines()
    upsert_flags(first, _flags())
    flag_id = int(list_flags(first).set_index("household_id").loc["h3", "id"])
    _before_first_flag_update(second, lambda: set_status(first, flag_id, "verified", by="cadre Li"))

    with pytest.raises(FlagConflict, match=rf"flag {flag_id} .*version 1 .*version 2"):
        set_status(second, flag_id, "verified", by="cadre Wang")
    change = set_status(second, flag_id, "village_reviewed", by="cadre Wang", note="looked again: verified")

    assert (change.from_status, change.version) == ("verified", 3)
    history = flag_history(first, flag_id)
    assert list(zip(history["to_status"], history["by"], strict=True)) == [
        ("flagged", "batch-scoring"),
        ("verified", "cadre Li"),
        ("village_reviewed", "cadre Wang"),
    ]


def test_concurrent_create_schema_on_an_empty_database(engines: Callable[[], Engine]) -> None:
    writers = [engines() for _ in range(4)]
    # the `engines` fixture migrated the schema already: start again from an empty one
    with writers[0].begin() as connection:
        connection.execute(text(f"DROP TABLE {', '.join(Base.metadata.tables)}, {VERSION_TABLE}"))
    all_start = threading.Barrier(len(writers))

    def migrate(engine: Engine) -> str | None:
        all_start.wait(timeout=WAIT_SECONDS)
        create_schema(engine)
        return schema_revision(engine)

    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        revisions = list(pool.map(migrate, writers, timeout=2 * WAIT_SECONDS))

    assert revisions == [head_revision()] * len(writers)
    with writers[0].connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def writer_engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Engine]]:
    """`engines`, on a SQLite file as well as on PostgreSQL."""
    if request.param == "postgresql":
        yield request.getfixturevalue("engines")
        return
    made: list[Engine] = []

    def new_engine() -> Engine:
        made.append(make_engine(f"sqlite:///{tmp_path / 'flags.db'}"))
        return made[-1]

    create_schema(new_engine())
    yield new_engine
    for engine in made:
        engine.dispose()


def _before_first_flag_insert(engine: Engine, action: Callable[[], None]) -> None:
    """Run `action` when `engine` is about to send its first INSERT into flags (after its read)."""
    pending = [action]

    @event.listens_for(engine, "before_cursor_execute")
    def _hold(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if pending and statement.lstrip().upper().startswith("INSERT INTO FLAGS"):
            pending.pop()()


def test_racing_scorings_of_a_new_round_each_insert_or_find_the_flags(
    writer_engines: Callable[[], Engine],
) -> None:
    first = writer_engines()
    upsert_flags(first, _flags())  # round 2 is known and closed; every writer scores the new round 3
    for flag_id in list_flags(first)["id"]:
        set_status(first, int(flag_id), "rejected", by="cadre Li", note="not at risk")
    new_round = _flags(round=[3, 3, 3])
    writers = [writer_engines() for _ in range(4)]
    all_have_read = threading.Barrier(len(writers))
    for writer in writers:  # every writer has found no flag of round 3 before any of them inserts
        _before_first_flag_insert(writer, lambda: all_have_read.wait(timeout=WAIT_SECONDS))

    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        futures = [pool.submit(upsert_flags, writer, new_round) for writer in writers]
        results = [future.result(timeout=2 * WAIT_SECONDS) for future in futures]

    assert sorted(results, key=lambda result: -result.inserted) == [
        UpsertResult(inserted=3, updated=0, unchanged=0),
        *[UpsertResult(inserted=0, updated=0, unchanged=3)] * (len(writers) - 1),
    ]
    flags = list_flags(first, round=3)
    assert sorted(flags["household_id"]) == ["h1", "h2", "h3"]
    assert set(flags["version"]) == {1}
    created = flag_history(first).query("from_status.isna()", engine="python")
    assert sorted(created["flag_id"]) == sorted(list_flags(first)["id"])  # one creation row per flag
