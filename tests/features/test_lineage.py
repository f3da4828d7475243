"""Lineage: the raw columns each indicator reads, and the task exclusions that follow from it."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.frame import base_frame, build_features, task_feature_names
from features.lineage import (
    DERIVED_BASE_INPUTS,
    lineage,
    raw_columns,
    reaching,
    registry_lineage,
)
from features.members import KEY, MEMBER_AGGREGATE_INPUTS, MEMBER_AGGREGATES, aggregate_members
from features.policy import DEFAULT_POLICY_PATH, Policy, PolicyError, policy_from_mapping
from features.registry import INDICATORS, Indicator
from survey.schema import Members

from .conftest import full_households, full_members

# ------------------------------------------------------------------------ a tiny made-up registry


def total(wages: np.ndarray, transfers: np.ndarray | None = None) -> np.ndarray:
    return wages if transfers is None else wages + transfers


def household_size(household_size: np.ndarray) -> np.ndarray:
    return household_size


def per_head(total: np.ndarray, household_size: np.ndarray) -> np.ndarray:
    return total / household_size


def below_line(per_head: np.ndarray, poverty_line: np.ndarray, policy: Policy) -> np.ndarray:
    return per_head < poverty_line


def roof(roof_state: np.ndarray) -> np.ndarray:
    return roof_state


def elders(elderly: np.ndarray, later: np.ndarray) -> np.ndarray:
    return elderly + later


def later(roof: np.ndarray) -> np.ndarray:
    return roof


TINY = tuple(
    Indicator(function.__name__, "income", function)
    for function in (total, household_size, per_head, below_line, roof, elders, later)
)


def test_lineage_of_a_tiny_registry() -> None:
    found = lineage(TINY)
    assert found["total"] == {"wages", "transfers"}  # an optional input is read when present
    assert found["household_size"] == {"household_size"}  # a member count, or the household's own column
    assert found["per_head"] == {"wages", "transfers", "household_size"}  # through `total`
    # through `per_head` and the round's line; `policy` is not a column
    assert found["below_line"] == {"wages", "transfers", "household_size", "survey_year", "round"}
    assert found["roof"] == {"roof_state"}
    # a member aggregate reads member columns; `later` comes after `elders`, so the name is a base column
    assert found["elders"] == {"age", "later"}
    assert reaching(found, ["transfers"]) == ("total", "per_head", "below_line")
    assert reaching(found, ["nothing"]) == ()


# ------------------------------------------------------------------------------- base columns


def test_every_member_aggregate_names_its_member_columns() -> None:
    assert set(MEMBER_AGGREGATE_INPUTS) == set(MEMBER_AGGREGATES)
    member_columns = set(Members.to_schema().columns) - set(KEY)
    for name, inputs in MEMBER_AGGREGATE_INPUTS.items():
        assert set(inputs) <= member_columns, name


@pytest.mark.parametrize("column", sorted(set(full_members().columns) - {*KEY, "member_id"}))
def test_an_aggregate_that_changes_without_a_member_column_lists_it(column: str, policy: Policy) -> None:
    """Derived check of MEMBER_AGGREGATE_INPUTS: drop one member column, and every aggregate whose
    values move (or that disappears) must list it."""
    _, _, with_column = aggregate_members(full_members(), policy.ages)
    _, _, without = aggregate_members(full_members().drop(columns=column), policy.ages)
    moved = {
        name
        for name, values in with_column.items()
        if name not in without or not np.array_equal(values, without[name], equal_nan=True)
    }
    assert moved, f"the test members do not exercise {column}"
    assert {name for name in moved if column not in MEMBER_AGGREGATE_INPUTS[name]} == set()


def test_every_base_column_the_frame_derives_has_a_lineage(policy: Policy) -> None:
    households = full_households()
    base = base_frame(households, full_members(), policy)
    derived = set(base.columns) - set(households.columns)
    assert derived <= set(MEMBER_AGGREGATE_INPUTS) | set(DERIVED_BASE_INPUTS)
    assert set().union(*DERIVED_BASE_INPUTS.values()) <= raw_columns()


def test_every_lineage_ends_in_raw_survey_columns() -> None:
    leaves = set().union(*registry_lineage().values())
    assert leaves <= raw_columns()


# --------------------------------------------------------------------------- task exclusions


def _walk(name: str, position: int) -> set[str]:
    """Raw columns behind an input `name` read by the indicator at `position` of the registry, walked
    from the functions' parameters (independently of features.lineage)."""
    earlier = {indicator.name: at for at, indicator in enumerate(INDICATORS[:position])}
    if name in earlier:
        at = earlier[name]
        parameters = inspect.signature(INDICATORS[at].function).parameters
        return set().union(*(_walk(parameter, at) for parameter in parameters if parameter != "policy"))
    if name in MEMBER_AGGREGATE_INPUTS:
        return set(MEMBER_AGGREGATE_INPUTS[name]) | ({name} & raw_columns())
    return set(DERIVED_BASE_INPUTS.get(name, (name,)))


def test_no_poverty_feature_reaches_an_excluded_column(policy: Policy) -> None:
    excluded_inputs = set(policy.tasks["poverty"].exclude_inputs)
    for name in task_feature_names(policy, "poverty"):
        reached = _walk(name, len(INDICATORS)) & excluded_inputs
        assert not reached, f"{name} reads {sorted(reached)}"


def test_poverty_features_do_not_move_without_the_excluded_columns(policy: Policy) -> None:
    """Behavioural check: with every excluded raw column dropped from the survey, every feature the
    poverty model reads keeps its values."""
    excluded_inputs = list(policy.tasks["poverty"].exclude_inputs)
    households, members = full_households(), full_members()
    names = list(task_feature_names(policy, "poverty"))
    full = build_features(households, members, policy)[names]
    without = build_features(
        households.drop(columns=excluded_inputs, errors="ignore"),
        members.drop(columns=excluded_inputs, errors="ignore"),
        policy,
    )[names]
    pd.testing.assert_frame_equal(without, full)


def test_the_label_inputs_leave_out_what_restates_the_label(policy: Policy) -> None:
    poverty = set(policy.excluded_features("poverty"))
    assert "income_change_since_last_round" in poverty  # the change of the income the label tests
    assert {"per_capita_net_income", "income_share_wages", "lowest_income_to_line_ratio"} <= poverty
    assert {"registered_poor", "rounds_since_exit"} <= poverty  # the register
    assert {"deprived_safe_water", "dangerous_house", "deprivation_score"} <= poverty  # the guarantees
    assert {"household_size", "dependency_ratio", "housing_structure_weak"}.isdisjoint(poverty)
    assert policy.excluded_features("relapse") == ()


def _settings() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")))


def test_named_extras_are_added_to_the_lineage_exclusions() -> None:
    settings = _settings()
    settings["tasks"]["relapse"] = {"exclude_inputs": ["debt"], "exclude_features": ["distance_road_km"]}
    relapse = policy_from_mapping(settings).excluded_features("relapse")
    assert relapse == ("debt_to_income", "distance_road_km")  # registry order


def test_an_unknown_raw_column_is_refused_by_name() -> None:
    settings = _settings()
    settings["tasks"]["poverty"]["exclude_inputs"] += ["income_salary", "consumption"]
    with pytest.raises(PolicyError, match=r"tasks\.poverty\.exclude_inputs.*'consumption', 'income_salary'"):
        policy_from_mapping(settings)


def test_an_unknown_indicator_is_refused_by_name() -> None:
    settings = _settings()
    settings["tasks"]["relapse"]["exclude_features"] = ["per_capita_income"]
    with pytest.raises(PolicyError, match="per_capita_income"):
        policy_from_mapping(settings)
