"""Lineage: the raw survey columns each indicator reads, directly or through other indicators.

An indicator's parameters name its inputs, and ``features/frame.py`` resolves them by name in registry
order: ``policy``, an indicator computed before it, or a base column. A base column is a raw household
column (survey/schema.py), a member aggregate (read from the member columns listed in
``features.members.MEMBER_AGGREGATE_INPUTS``), or a column the frame derives from raw ones
(``DERIVED_BASE_INPUTS``). Following the names down gives each indicator's lineage: the raw household
and member columns its value depends on. A task leaves out every indicator whose lineage reaches a column
its label reads (``Policy.excluded_features``), so a new indicator built on income is left out of the
poverty model without anyone remembering to list it.

Raw columns are named plainly: the household and member tables share only their keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from types import MappingProxyType

from features.frame import POLICY_PARAMETER, VILLAGE_CONTEXT, parameters
from features.members import MEMBER_AGGREGATE_INPUTS
from features.registry import INDICATORS, Indicator
from survey.schema import SHOCK_COLUMNS, Households, Members

_ROUND_YEAR = ("survey_year", "round")

DERIVED_BASE_INPUTS: dict[str, tuple[str, ...]] = {
    "poverty_line": _ROUND_YEAR,  # the line of the round's survey_year, else of base_year + round
    "monitoring_line": _ROUND_YEAR,
    **{name: ("village_id", "round", *SHOCK_COLUMNS) for name in VILLAGE_CONTEXT},
}
"""The raw columns of each base column features/frame.py derives: the round's lines from its year, the
village context from the shock answers of the village's other households in the round."""


@cache
def household_columns() -> frozenset[str]:
    """The columns of the canonical household table (survey/schema.py ``Households``)."""
    return frozenset(Households.to_schema().columns)


@cache
def raw_columns() -> frozenset[str]:
    """The columns of the canonical household and member tables (survey/schema.py)."""
    return household_columns() | frozenset(Members.to_schema().columns)


def base_lineage(name: str) -> frozenset[str]:
    """The raw columns a base column reads.

    A member aggregate reads its member columns, and the household table's own column of that name where
    the schema has one (``household_size``, for a household without member rows); a derived base column
    reads its raw columns; any other name is a raw column (or a survey's extra column) and reads itself.
    """
    if name in MEMBER_AGGREGATE_INPUTS:
        return frozenset(MEMBER_AGGREGATE_INPUTS[name]) | ({name} & household_columns())
    if name in DERIVED_BASE_INPUTS:
        return frozenset(DERIVED_BASE_INPUTS[name])
    return frozenset({name})


def base_itself(name: str) -> frozenset[str]:
    """A base column as its own lineage (``lineage(..., base=base_itself)``: the base columns each
    indicator reads)."""
    return frozenset({name})


def indicator_inputs(indicator: Indicator) -> tuple[str, ...]:
    """The names an indicator reads (its function's parameters), ``policy`` left out."""
    return tuple(name for name, _ in parameters(indicator.function) if name != POLICY_PARAMETER)


def lineage(
    indicators: Sequence[Indicator], base: Callable[[str], frozenset[str]] = base_lineage
) -> dict[str, frozenset[str]]:
    """Each indicator's raw columns, in registry order: an input naming an indicator listed before it
    brings that indicator's lineage, any other input is a base column (``base_lineage``), as
    features/frame.py resolves them. With ``base=base_itself`` the lineage stops at the base columns."""
    found: dict[str, frozenset[str]] = {}
    for indicator in indicators:
        reads = (found[name] if name in found else base(name) for name in indicator_inputs(indicator))
        found[indicator.name] = frozenset().union(*reads)
    return found


@cache
def registry_lineage() -> Mapping[str, frozenset[str]]:
    """The lineage of every registered indicator (features/registry.py), computed once."""
    return MappingProxyType(lineage(INDICATORS))


@cache
def registry_base_inputs() -> Mapping[str, frozenset[str]]:
    """The base columns (features/frame.py) every registered indicator reads, directly or through the
    indicators before it, computed once."""
    return MappingProxyType(lineage(INDICATORS, base=base_itself))


def reaching(lineages: Mapping[str, frozenset[str]], columns: Iterable[str]) -> tuple[str, ...]:
    """The indicators, in the mapping's order, whose lineage reaches any of ``columns``."""
    wanted = frozenset(columns)
    return tuple(name for name, reads in lineages.items() if reads & wanted)


def excluded_indicators(
    exclude_inputs: Iterable[str], exclude_features: Iterable[str] = ()
) -> tuple[str, ...]:
    """The registered indicators a task must not use, in registry order: those whose lineage reaches one
    of ``exclude_inputs`` (raw columns) and those named in ``exclude_features``."""
    lineages = registry_lineage()
    left_out = set(reaching(lineages, exclude_inputs)) | set(exclude_features)
    return tuple(name for name in lineages if name in left_out)
