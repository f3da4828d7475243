"""Build the household feature frame: base columns -> every registered indicator, in registry order.

The base columns are, per household row: the raw household columns (``household_id``, ``round``, ...),
the member aggregates, and the round's ``poverty_line`` and ``monitoring_line`` (yuan per person per
year, from ``survey_year`` or ``policy.base_year + round``). Each indicator's parameters are looked up by
name among the base columns and the indicators computed before it; ``policy`` is passed as itself. A
missing required input makes the indicator NaN, so a survey without, say, the shock block still gets a
full frame.

Internally every column is a numpy array in the table's row order (``features.indicators.column_values``):
a serving request of one household must take milliseconds, and carrying a pandas index through ~90
indicators cost more than computing them. The (household_id, round) index is attached once, at the end.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from features.indicators import column_values
from features.members import KEY, MEMBER_AGGREGATE_INPUTS, aggregate_members, key_index
from features.policy import Policy
from features.registry import INDICATORS
from survey.village_context import shock_answers

FEATURE_NAMES: tuple[str, ...] = tuple(indicator.name for indicator in INDICATORS)
"""Every indicator name, in registry order: the columns of ``build_features``."""

POLICY_PARAMETER = "policy"
"""The parameter name under which an indicator receives the Policy itself."""


class FeatureInputError(ValueError):
    """The household table cannot be turned into features (missing key column, bad round, duplicates)."""


@cache
def parameters(function: Callable[..., object]) -> tuple[tuple[str, bool], ...]:
    """(name, required) of each parameter of an indicator function; optional ones default to None."""
    signature = inspect.signature(function)
    return tuple((p.name, p.default is inspect.Parameter.empty) for p in signature.parameters.values())


# ------------------------------------------------------------------------------------------ base columns


def _check_keys(table: pd.DataFrame, name: str) -> None:
    missing = [column for column in KEY if column not in table.columns]
    if missing:
        raise FeatureInputError(f"{name} lacks key column(s) {missing}")


def _with_history(households: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
    """History rows of the same households that the current table does not already hold, then the table."""
    if history is None or history.empty:
        return households
    _check_keys(history, "history")
    codes, _ = pd.factorize(
        pd.concat([households["household_id"], history["household_id"]], ignore_index=True)
    )
    current_codes, history_codes = codes[: len(households)], codes[len(households) :]
    current_rounds, history_rounds = _rounds(households), _rounds(history, "history")
    span = int(max(current_rounds.max(initial=0), history_rounds.max(initial=0))) + 1
    current_keys = _row_keys(current_codes, current_rounds, span)
    history_keys = _row_keys(history_codes, history_rounds, span)
    wanted = np.isin(history_codes, current_codes) & ~history_keys.isin(current_keys)
    if not wanted.any():
        return households
    return pd.concat([history[wanted], households], ignore_index=True)


def _rounds(table: pd.DataFrame, name: str = "households") -> np.ndarray:
    rounds = pd.to_numeric(table["round"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(rounds).any() or (rounds < 0).any() or (rounds != np.floor(rounds)).any():
        raise FeatureInputError(f"{name}: round must be a non-negative integer on every row")
    return rounds.astype(np.int64)


def _row_keys(household_codes: np.ndarray, rounds: np.ndarray, span: int) -> pd.Index:
    return pd.Index(household_codes.astype(np.int64) * span + rounds)


def _check_unique(household_id: pd.Series, rounds: np.ndarray) -> None:
    household_codes, _ = pd.factorize(household_id)
    keys = _row_keys(household_codes, rounds, int(rounds.max()) + 1 if len(rounds) else 1)
    if not keys.is_unique:
        duplicated = keys.duplicated()
        examples = list(zip(household_id[duplicated][:5], rounds[duplicated][:5], strict=True))
        raise FeatureInputError(f"households: duplicate (household_id, round) rows, e.g. {examples}")


def survey_years(table: pd.DataFrame, rounds: np.ndarray, policy: Policy) -> np.ndarray:
    """Calendar year of each row: ``survey_year`` where recorded, else base_year + round."""
    from_round = policy.base_year + rounds
    if "survey_year" not in table.columns:
        return from_round
    recorded = pd.to_numeric(table["survey_year"], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isnan(recorded), from_round, recorded).astype(np.int64)


def _lines(years: np.ndarray, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """Per-row poverty line and monitoring line, yuan per person per year."""
    unique_years, position = np.unique(years, return_inverse=True)
    poverty = np.array([policy.poverty_line(int(year)) for year in unique_years], dtype=np.float64)
    monitoring = np.array([policy.monitoring_line(int(year)) for year in unique_years], dtype=np.float64)
    return poverty[position], monitoring[position]


def _member_columns(
    members: pd.DataFrame, household_id: pd.Series, rounds: np.ndarray, policy: Policy
) -> dict[str, np.ndarray]:
    """Member aggregates (ages of ``policy.ages``) in the row order of the household table (NaN for a
    household without members). Aggregates whose member columns are absent stay absent."""
    group_households, group_rounds, aggregates = aggregate_members(members, policy.ages)
    both = pd.concat([household_id, group_households], ignore_index=True)
    codes, _ = pd.factorize(both)
    span = int(max(rounds.max(initial=0), group_rounds.max(initial=0))) + 1
    group_keys = _row_keys(codes[len(household_id) :], group_rounds, span)
    position = group_keys.get_indexer(_row_keys(codes[: len(household_id)], rounds, span))
    found = position >= 0
    if not found.any():  # also covers an empty member table
        return {name: np.full(len(household_id), np.nan) for name in aggregates}
    safe_position = np.where(found, position, 0)
    return {name: np.where(found, values[safe_position], np.nan) for name, values in aggregates.items()}


def _household_size(table: pd.DataFrame, counted: np.ndarray | None) -> np.ndarray | None:
    """Member count from the member table; the households' own ``household_size`` column where a
    household has no member rows (or there is no member table)."""
    recorded = (
        pd.to_numeric(table["household_size"], errors="coerce").to_numpy(dtype=np.float64)
        if "household_size" in table.columns
        else None
    )
    if counted is None or recorded is None:
        return counted if recorded is None else recorded
    return np.where(np.isnan(counted), recorded, counted)


def _base_columns(
    households: pd.DataFrame, members: pd.DataFrame | None, policy: Policy, history: pd.DataFrame | None
) -> tuple[dict[str, np.ndarray], pd.Series, np.ndarray]:
    """The base columns as arrays in row order (history rows first), each row's household id, and
    whether each row has member rows."""
    _check_keys(households, "households")
    table = _with_history(households, history).reset_index(drop=True)
    rounds = _rounds(table)
    _check_unique(table["household_id"], rounds)
    arrays: dict[str, np.ndarray] = {"round": rounds}
    member_columns = (
        _member_columns(members, table["household_id"], rounds, policy) if members is not None else {}
    )
    arrays.update(member_columns)
    size = _household_size(table, member_columns.get("household_size"))
    if size is not None:
        arrays["household_size"] = size
    arrays["poverty_line"], arrays["monitoring_line"] = _lines(survey_years(table, rounds, policy), policy)
    arrays.update(_village_others(table, rounds))
    columns = {str(name): column_values(values) for name, values in table.items() if name not in arrays}
    columns.update(arrays)
    counted = member_columns.get("household_size")
    with_members = np.zeros(len(table), dtype=bool) if counted is None else ~np.isnan(counted)
    return columns, table["household_id"], with_members


def _known_inputs(columns: Mapping[str, np.ndarray], with_members: np.ndarray) -> dict[str, np.ndarray]:
    """Per base column, the rows that have it: a member aggregate where the household has member rows
    (an aggregate can be undefined with members known, e.g. adults' schooling in a household of
    children), ``household_size`` and every other column where its value is not missing."""
    return {
        name: with_members
        if name in MEMBER_AGGREGATE_INPUTS and name != "household_size"
        else ~np.asarray(pd.isna(values), dtype=bool)
        for name, values in columns.items()
    }


VILLAGE_CONTEXT = ("village_others_answering_shocks", "village_others_with_shocks")
"""Base columns of the household's village in its round, the household itself left out: how many other
households answered a shock question, and how many of them reported a shock."""


def _village_others(table: pd.DataFrame, rounds: np.ndarray) -> dict[str, np.ndarray]:
    """VILLAGE_CONTEXT per row: given in the table (the register's village context, for a household
    scored alone) where known, else counted over the table's rows of the same village and round."""
    answered, reported = shock_answers(table)
    villages = table["village_id"] if "village_id" in table.columns else pd.Series([None] * len(table))
    village_codes, _ = pd.factorize(villages.to_numpy(dtype=object))
    span = int(rounds.max(initial=0)) + 1
    groups, _ = pd.factorize(np.where(village_codes >= 0, village_codes * span + rounds, -1))
    size = int(groups.max(initial=-1)) + 1
    counted = {}
    for name, own in zip(VILLAGE_CONTEXT, (answered, reported), strict=True):
        in_group = np.bincount(groups, weights=own, minlength=size)
        counted[name] = np.where(village_codes >= 0, in_group[groups] - own, np.nan)
    for name in VILLAGE_CONTEXT:
        if name in table.columns:
            given = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
            counted[name] = np.where(np.isnan(given), counted[name], given)
    return counted


def base_frame(
    households: pd.DataFrame,
    members: pd.DataFrame | None,
    policy: Policy,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The inputs indicators read, one row per household row (positional index; ``history`` rows first):
    the raw household columns (``round`` as int64), the member aggregates, the household size, and the
    row's ``poverty_line`` and ``monitoring_line``."""
    columns, household_id, _ = _base_columns(households, members, policy, history)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(household_id)))


# -------------------------------------------------------------------------------------------- indicators


def _resolve(
    function: Callable[..., np.ndarray | None], available: Mapping[str, np.ndarray], policy: Policy
) -> np.ndarray | None:
    """Call an indicator with its parameters looked up by name. None (the block is absent) when a
    required input is absent, or when the indicator has only optional inputs and none is present."""
    arguments: dict[str, object] = {}
    for name, required in parameters(function):
        if name == POLICY_PARAMETER:
            arguments[name] = policy
        elif name in available:
            arguments[name] = available[name]
        elif required:
            return None
    return function(**arguments)


def _compute(available: dict[str, np.ndarray], policy: Policy, n_rows: int) -> np.ndarray:
    """Every indicator in registry order, as a (rows x indicators) array. An absent indicator is a NaN
    column and stays absent for the indicators after it (so an optional block is judged as missing,
    not as unknown on every row)."""
    # column-major, so that each indicator is written contiguously and the frame wraps it without a copy
    computed = np.full((n_rows, len(INDICATORS)), np.nan, dtype=np.float64, order="F")
    for column, indicator in enumerate(INDICATORS):
        values = _resolve(indicator.function, available, policy)
        if values is not None:
            available[indicator.name] = values
            computed[:, column] = values
    computed[np.isinf(computed)] = np.nan  # an infinite raw value must not reach a model
    return computed


def compute_indicators(base: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Every registered indicator on a base frame: float64, columns FEATURE_NAMES, the base frame's
    index, inf replaced by NaN. The base frame is not modified."""
    computed = _compute({str(name): column_values(base[name]) for name in base.columns}, policy, len(base))
    return pd.DataFrame(computed, index=base.index, columns=list(FEATURE_NAMES), copy=False)


@dataclass(frozen=True)
class FeatureFrames:
    """The feature frame and which base columns each of its households has (`known_inputs`: one bool
    array per base column present, in the frame's row order; an absent base column is unknown
    everywhere): what data completeness reads (features/completeness.py). Plain arrays, not a frame: a
    service request of one household pays for every pandas column access."""

    features: pd.DataFrame
    known_inputs: dict[str, np.ndarray]


def build_features(
    households: pd.DataFrame,
    members: pd.DataFrame | None,
    policy: Policy,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The feature frame of a household table: index (household_id, round) in the table's row order,
    one float64 column per indicator (FEATURE_NAMES).

    ``members`` may be None (household size then comes from the households' ``household_size``);
    ``history`` holds earlier rounds' raw household rows (e.g. when serving one household) so that the
    trend indicators can look back; its rows are used but not returned. Member rows of those earlier
    rounds, if passed in ``members``, give their household size.
    """
    return _frames(households, members, policy, history, with_known=False).features


def build_feature_frames(
    households: pd.DataFrame,
    members: pd.DataFrame | None,
    policy: Policy,
    history: pd.DataFrame | None = None,
) -> FeatureFrames:
    """``build_features`` and the known base inputs of the same households, from one pass."""
    return _frames(households, members, policy, history, with_known=True)


def _frames(
    households: pd.DataFrame,
    members: pd.DataFrame | None,
    policy: Policy,
    history: pd.DataFrame | None,
    with_known: bool,
) -> FeatureFrames:
    """The feature frame, and the known inputs when asked (training never reads them)."""
    available, household_id, with_members = _base_columns(households, members, policy, history)
    rounds = available["round"]
    skip = len(household_id) - len(households)  # history rows come first and are not returned
    known: dict[str, np.ndarray] = {}
    if with_known:  # the returned rows only, taken before the indicators join `available`
        known = _known_inputs(
            {name: values[skip:] for name, values in available.items()}, with_members[skip:]
        )
    computed = _compute(available, policy, len(household_id))
    index = key_index(household_id.iloc[skip:], rounds[skip:])
    return FeatureFrames(
        pd.DataFrame(computed[skip:], index=index, columns=list(FEATURE_NAMES), copy=False), known
    )


def task_feature_names(policy: Policy, task: str) -> tuple[str, ...]:
    """The indicators a task's model uses: FEATURE_NAMES minus the policy's exclusions for the task."""
    excluded = set(policy.excluded_features(task))
    return tuple(name for name in FEATURE_NAMES if name not in excluded)
