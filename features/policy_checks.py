"""A survey checked against a policy: what the schema cannot know without one.

`survey.validate` checks a survey against the canonical schema and knows no policy (survey/ does not
import features/). Two things depend on the policy in force and are checked here, reported in the same
form (a `survey.validate.ValidationReport`, one failure a row) so that a command can show both reports as
one:

- every survey year has a poverty line: a row's year (``survey_year``, else ``base_year + round``)
  before the policy's first line year has none, and its features and labels cannot be computed;
- every money amount is within the policy's ``money_bounds`` (in the policy's currency).
"""

from __future__ import annotations

import pandas as pd

from features.policy import Policy
from survey.schema import MONEY_COLUMNS, NET_MONEY_COLUMNS
from survey.validate import ValidationReport, failure_rows, no_failures

TABLE = "households"


def check_against_policy(households: pd.DataFrame, policy: Policy, source: str) -> ValidationReport:
    """Failures of a household table against `policy` (read from `source`, named in the report): the
    survey years without a poverty line, one failure per year; the money amounts outside the policy's
    bounds, one failure per row and column. Values that are not numbers are the schema's to report and
    are skipped here. Rows are numbered by position, as `survey.validate` numbers them."""
    households = households.reset_index(drop=True)
    failures = pd.concat(
        [
            no_failures(),
            _years_without_line(households, policy, source),
            _money_out_of_bounds(households, policy),
        ],
        ignore_index=True,
    )
    return ValidationReport(failures=failures)


def one_line(report: ValidationReport, examples: int = 10) -> str:
    """The report's failures on one line (`ValidationReport.summary` without its header, joined by ';')."""
    return "; ".join(line.strip() for line in report.summary(examples=examples).splitlines()[1:])


def survey_years(households: pd.DataFrame, policy: Policy) -> pd.Series:
    """Calendar year of each row that has one: ``survey_year`` where recorded, else base_year + round
    (as `features.frame.survey_years`); rows with neither, or with a year that is not a whole number,
    are left out."""
    rounds = _numbers(households, "round")
    years = policy.base_year + rounds
    if "survey_year" in households.columns:
        years = _numbers(households, "survey_year").fillna(years)
    years = years.dropna()
    return years[years == years.round()].astype("int64")


def _years_without_line(households: pd.DataFrame, policy: Policy, source: str) -> pd.DataFrame:
    years = survey_years(households, policy)
    missing = sorted(int(year) for year in years[years < policy.first_year].unique())
    if not missing:
        return no_failures()
    recorded = "survey_year" in households.columns
    how = "" if recorded else f" (base_year {policy.base_year} + round)"
    check = (
        f"poverty_line_for_year{how}: policy {policy.version} ({source}) has lines from {policy.first_year}"
    )
    return failure_rows(TABLE, "survey_year" if recorded else "round", check, [None] * len(missing), missing)


def _money_out_of_bounds(households: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    bounds, code = policy.money_bounds, policy.currency.code
    parts = [no_failures()]
    for column in MONEY_COLUMNS:
        if column not in households.columns:
            continue
        amounts = _numbers(households, column)
        above = amounts > bounds.max_yearly_amount
        check = f"at_most {bounds.max_yearly_amount:,.0f} {code}: policy {policy.version} money_bounds"
        parts.append(failure_rows(TABLE, column, check, list(amounts.index[above]), list(amounts[above])))
        if column in NET_MONEY_COLUMNS:
            below = amounts < bounds.min_net_yearly_amount
            check = (
                f"at_least {bounds.min_net_yearly_amount:,.0f} {code}: policy {policy.version} money_bounds"
            )
            parts.append(failure_rows(TABLE, column, check, list(amounts.index[below]), list(amounts[below])))
    return pd.concat(parts, ignore_index=True)


def _numbers(households: pd.DataFrame, column: str) -> pd.Series:
    """A column as float64 (NaN where absent or not a number), on the table's index."""
    if column not in households.columns:
        return pd.Series(float("nan"), index=households.index, dtype="float64")
    return pd.to_numeric(households[column], errors="coerce").astype("float64")
