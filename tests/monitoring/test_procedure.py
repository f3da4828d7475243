"""The monitoring procedure's rules (monitoring.procedure): who may take which step, in which order,
after which notice, and when identification is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from features.policy import ProcedureDeadlines
from monitoring.procedure import (
    CaseState,
    StepRefused,
    check_step,
    days_over,
    declared_changes,
    identification_due,
    notice_end,
    procedure_steps,
    steps_open_to,
)
from store.cases import ALLOWED_TRANSITIONS

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


def _case(status: str, notice_ends: datetime | None = None) -> CaseState:
    return CaseState(status=status, discovered_at=T0, notice_ends=notice_ends)


def test_every_transition_of_the_store_is_a_step_someone_may_take() -> None:
    taken = {(step.from_status, step.to_status) for step in procedure_steps().values()}
    allowed = {(status, onward) for status, onwards in ALLOWED_TRANSITIONS.items() for onward in onwards}
    assert taken == allowed


def test_the_identification_path_needs_each_role_in_turn() -> None:
    assert [step.name for step in steps_open_to("cadre", _case("flagged"))] == [
        "visit_at_risk",
        "visit_not_at_risk",
    ]
    assert [step.name for step in steps_open_to("cadre", _case("verified"))] == [
        "village_review",
        "village_review_reject",
    ]
    assert steps_open_to("cadre", _case("township_reviewed")) == []
    assert [step.name for step in steps_open_to("monitor", _case("township_reviewed"))] == [
        "county_approve",
        "county_reject",
    ]
    assert [step.name for step in steps_open_to("analyst", _case("flagged"))] == []


def test_a_step_out_of_order_is_refused_with_the_reason() -> None:
    with pytest.raises(StepRefused) as refused:
        check_step("county_approve", "monitor", _case("flagged"), None, T0)
    assert refused.value.reason == "procedure.refused_out_of_order"
    assert refused.value.values == {"step": "county_approve", "status": "flagged"}


def test_a_step_of_another_role_is_refused() -> None:
    with pytest.raises(StepRefused) as refused:
        check_step("county_approve", "cadre", _case("township_reviewed"), None, T0)
    assert refused.value.reason == "procedure.refused_role"


def test_closing_or_reopening_needs_a_reason() -> None:
    with pytest.raises(StepRefused) as refused:
        check_step("visit_not_at_risk", "cadre", _case("flagged"), "  ", T0)
    assert refused.value.reason == "procedure.refused_no_note"
    assert check_step("reopen", "township", _case("rejected"), "new evidence", T0).to_status == "flagged"


def test_the_township_reviews_only_once_the_notice_has_run() -> None:
    ends = notice_end(T0, ProcedureDeadlines())
    running = _case("notice_running", notice_ends=ends)
    with pytest.raises(StepRefused) as refused:
        check_step("township_review", "township", running, None, ends - timedelta(minutes=1))
    assert refused.value.reason == "procedure.refused_notice_running"
    assert check_step("township_review", "township", running, None, ends).to_status == "township_reviewed"


def test_a_five_day_notice_runs_to_the_end_of_its_fifth_day_in_beijing() -> None:
    ends = notice_end(T0, ProcedureDeadlines())  # started 1 December, 10:00 Beijing time
    assert ends == datetime(2026, 12, 5, 16, 0, tzinfo=UTC)  # 6 December 00:00 in Beijing


def test_identification_is_due_fifteen_days_after_discovery_while_being_identified() -> None:
    deadlines = ProcedureDeadlines()
    due = identification_due(_case("village_reviewed"), deadlines)
    assert due == T0 + timedelta(days=15)
    assert days_over(due, T0 + timedelta(days=16), deadlines) == 1
    assert days_over(due, T0 + timedelta(days=10), deadlines) == -5
    assert identification_due(_case("monitored"), deadlines) is None


def test_a_declaration_sets_its_shock_and_adds_its_amount() -> None:
    assert declared_changes("serious_illness", 20_000.0, {"medical_expenses": 3_000.0}) == {
        "shock_serious_illness": True,
        "medical_expenses": 23_000.0,
    }
    assert declared_changes("accident", 500.0, {"medical_expenses": float("nan")}) == {
        "shock_accident": True,
        "medical_expenses": 500.0,
    }
    assert declared_changes("disaster", 9_000.0, {}) == {"shock_disaster": True}
