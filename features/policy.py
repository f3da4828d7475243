"""Policy settings as data: currency, poverty lines, money bounds, ages, deprivation weights, thresholds.

The shipped settings live in ``features/policy.yaml`` (versioned); another country's or province's
policy is another such file, named by a command's ``--policy FILE`` or by ``POVRISK_POLICY``
(``policy_path``). ``load_policy`` reads one into a frozen ``Policy`` that is passed into every
function that needs a line, an age, a money bound or a threshold. Nothing here reads a file or the
environment at import time.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from survey.catalogue import LANGUAGES, has_message, message

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")
POLICY_VARIABLE = "POVRISK_POLICY"
"""The environment variable naming the policy file in force when a command is given no ``--policy``."""

GUARANTEES = ("food_clothing", "compulsory_education", "basic_medical", "safe_housing", "safe_water")
"""The five dimensions of "two no worries, three guarantees", in the order used everywhere."""

_WEIGHT_SUM_TOLERANCE = 1e-9
_OLDEST_AGE = 120.0  # the survey schema's oldest member
_MODEL_NAME_PART = re.compile(r"[A-Za-z0-9_.\-]+")


class PolicyError(ValueError):
    """The policy file is missing, unreadable, or one of its fields is invalid (the message names it)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProcedureDeadlines(_Frozen):
    """Deadlines of the monitoring procedure, in days (the anti-relapse monitoring rules: a household
    found at risk is identified within 15 days; a village's public notice runs 5 days)."""

    identification_days: int = Field(default=15, ge=1, le=365)
    public_notice_days: int = Field(default=5, ge=1, le=60)
    timezone: str = "Asia/Shanghai"
    """Where the deadlines are counted in days and times are shown (an IANA zone name)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"timezone {zone!r} is not an IANA zone name (e.g. Asia/Shanghai)") from error
        return zone


class RiskTiers(_Frozen):
    """Lower bounds of the risk tiers on a calibrated probability (0-1)."""

    high: float = Field(gt=0.0, le=1.0)
    medium: float = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _medium_below_high(self) -> RiskTiers:
        if self.medium >= self.high:
            raise ValueError(f"risk_tiers.medium ({self.medium}) must be below risk_tiers.high ({self.high})")
        return self


class Currency(_Frozen):
    """The survey's currency: every money column of a survey and every poverty line is in it."""

    code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. CNY")
    unit: str = Field(min_length=1, description='unit of the poverty lines, e.g. "yuan per person per year"')


class MoneyBounds(_Frozen):
    """The plausible range of one yearly household money amount (an income, an expense, a debt) in the
    policy's currency: `povrisk validate` reports amounts outside it, and the commands that read a
    survey refuse them. Net farm and business income may be negative after a bad year, down to
    `min_net_yearly_amount`; every other amount is at least 0 (the schema's check)."""

    max_yearly_amount: float = Field(gt=0.0, allow_inf_nan=False)
    min_net_yearly_amount: float = Field(le=0.0, allow_inf_nan=False)


class AgeRange(_Frozen):
    """Ages from `at_least` up to, not including, `below` (years; ages may be fractional)."""

    at_least: float = Field(ge=0.0, le=_OLDEST_AGE)
    below: float = Field(gt=0.0, le=_OLDEST_AGE)

    @model_validator(mode="after")
    def _not_empty(self) -> AgeRange:
        if self.below <= self.at_least:
            raise ValueError(f"below ({self.below}) must be above at_least ({self.at_least})")
        return self


class AgeBands(_Frozen):
    """The member ages that make a household's age structure (features/members.py).

    A member of working age (`working_age`) counts as working age and, when no labour capacity is
    recorded and they are neither disabled nor seriously ill, as able to work; a member younger counts
    as a child, a member from `working_age.at_least` on as an adult (adult education); a member from
    `elderly_from` on as elderly; a member of `compulsory_school_age` out of school fails the
    compulsory-education guarantee."""

    working_age: AgeRange
    compulsory_school_age: AgeRange
    elderly_from: float = Field(gt=0.0, le=_OLDEST_AGE)

    @model_validator(mode="after")
    def _elderly_after_working_age(self) -> AgeBands:
        if self.elderly_from < self.working_age.below:
            raise ValueError(
                f"elderly_from ({self.elderly_from}) must not be below the end of working_age "
                f"({self.working_age.below}): a member would count as both elderly and of working age"
            )
        return self


class CountyModels(_Frozen):
    """Which counties are scored by models of their own (`povrisk-<task>-<county>`, trained on that county
    alone) rather than the shared model (`povrisk-<task>`) that scores every other county; and what
    scores such a county before its own model has a champion: `shared_model` (said on every answer by
    the model's name), or `refuse` (its households are not scored until then)."""

    counties: tuple[str, ...] = ()
    until_trained: Literal["shared_model", "refuse"] = "shared_model"

    @field_validator("counties")
    @classmethod
    def _distinct_identifiers(cls, counties: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(str(county).strip() for county in counties)
        blank = [county for county in names if not county]
        if blank:
            raise ValueError("a county identifier is empty")
        doubled = sorted({county for county in names if names.count(county) > 1})
        if doubled:
            raise ValueError(f"counties listed twice: {doubled}")
        unsafe = [county for county in names if not _MODEL_NAME_PART.fullmatch(county)]
        if unsafe:
            raise ValueError(
                f"counties {unsafe}: a county of its own model names a registered model "
                "(povrisk-<task>-<county>): letters, digits, '_', '-' and '.' only"
            )
        return names

    def has_own_model(self, county: str | None) -> bool:
        return county is not None and str(county) in self.counties


class MonitoringThresholds(_Frozen):
    """Thresholds the monitoring room uses to put a household into a monitoring category."""

    marginal_relapse_risk: float = Field(gt=0.0, le=1.0)
    hardship_expense_share: float = Field(gt=0.0)
    unstable_after_exit_rounds: int = Field(ge=1)


class MonitoringChanges(_Frozen):
    """Monitoring thresholds that change from a calendar year on (the fields left out keep their value)."""

    marginal_relapse_risk: float | None = Field(default=None, gt=0.0, le=1.0)
    hardship_expense_share: float | None = Field(default=None, gt=0.0)
    unstable_after_exit_rounds: int | None = Field(default=None, ge=1)


class DriftThresholds(_Frozen):
    """When a population has drifted (monitoring/drift.py): a feature drifts when its population
    stability index is above `psi_threshold`; promotion is refused (without --force) when the share of
    drifted features is above `max_drifted_share`; `bins` quantile bins of the reference."""

    psi_threshold: float = Field(gt=0.0)
    max_drifted_share: float = Field(ge=0.0, le=1.0)
    bins: int = Field(ge=2, le=100)


class TaskFeatures(_Frozen):
    """Which indicators a task's model must not see: every indicator whose lineage (features/lineage.py)
    reaches one of `exclude_inputs` (raw survey columns, e.g. those its label reads), and the indicators
    named in `exclude_features`."""

    exclude_inputs: tuple[str, ...] = ()
    exclude_features: tuple[str, ...] = ()

    @field_validator("exclude_inputs")
    @classmethod
    def _known_columns(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from features.lineage import raw_columns  # here, not on top: the registry's modules import this one

        unknown = sorted(set(names) - raw_columns())
        if unknown:
            raise ValueError(f"unknown raw survey column(s) {unknown} (survey/schema.py names the columns)")
        return names

    @field_validator("exclude_features")
    @classmethod
    def _known_indicators(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from features.lineage import registry_lineage  # here, not on top (see _known_columns)

        unknown = sorted(set(names) - set(registry_lineage()))
        if unknown:
            raise ValueError(f"unknown indicator(s) {unknown} (features/registry.py names the indicators)")
        return names


class Bound(_Frozen):
    """A condition on one indicator: its value at least / at most the bound (either or both)."""

    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.at_least is None and self.at_most is None:
            raise ValueError("a condition needs at_least or at_most")
        return self

    def holds(self, value: float) -> bool:
        """True when `value` is known (not NaN) and within the bounds."""
        if math.isnan(value):
            return False
        return (self.at_least is None or value >= self.at_least) and (
            self.at_most is None or value <= self.at_most
        )


class ReasonSettings(_Frozen):
    """Which indicators may be shown as a reason for a household's risk (models/explain.py): the models
    may use every indicator, but only these are ever named to a cadre (demographic facts that are not
    actionable, the register's own word and wealth proxies are left out; features/policy.yaml says why)."""

    eligible: tuple[str, ...] = Field(min_length=1)

    @field_validator("eligible")
    @classmethod
    def _known_indicators(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from features.lineage import registry_lineage  # here, not on top (see TaskFeatures)

        unknown = sorted(set(names) - set(registry_lineage()))
        if unknown:
            raise ValueError(f"unknown indicator(s) {unknown} (features/registry.py names the indicators)")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"indicator(s) {repeated} listed more than once")
        return names


class AssistanceMeasure(_Frozen):
    """One measure of targeted help: its family, its name and why it fits (en / zh), and the indicator
    conditions under which it fits (all must hold; none: it always fits its causes)."""

    family: str = Field(min_length=1)
    name: dict[str, str]
    why: dict[str, str]
    when: dict[str, Bound] = Field(default_factory=dict)

    @field_validator("name", "why")
    @classmethod
    def _both_languages(cls, text: dict[str, str]) -> dict[str, str]:
        missing = {"en", "zh"} - set(text)
        if missing:
            raise ValueError(f"needs a text in every language, missing {sorted(missing)}")
        return text

    def fits(self, indicators: dict[str, float]) -> bool:
        """True when every condition holds on the household's indicators (an unknown one never does)."""
        return all(bound.holds(float(indicators.get(name, math.nan))) for name, bound in self.when.items())


class AssistanceTable(_Frozen):
    """The measures and, per cause of poverty, the measures that fit it in order of preference. A
    measure's name and why come from the message catalogue (`measure.<code>.name` / `.why`) unless the
    policy file gives its own words (a county's own measures)."""

    max_measures: int = Field(ge=1, le=10)
    measures: dict[str, AssistanceMeasure] = Field(min_length=1)
    by_cause: dict[str, tuple[str, ...]] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _catalogue_words(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("measures"), dict):
            return data
        measures = {}
        for code, entry in data["measures"].items():
            if isinstance(entry, dict):
                entry = dict(entry)
                for part in ("name", "why"):
                    if part not in entry and has_message(f"measure.{code}.{part}"):
                        entry[part] = {lang: message(f"measure.{code}.{part}", lang) for lang in LANGUAGES}
            measures[code] = entry
        return {**data, "measures": measures}

    @model_validator(mode="after")
    def _known_measures(self) -> AssistanceTable:
        unknown = sorted({code for codes in self.by_cause.values() for code in codes} - set(self.measures))
        if unknown:
            raise ValueError(f"by_cause names unknown measure(s) {unknown}")
        return self


class EquivalenceScale(_Frozen):
    """Weights of an adult-equivalence scale (the OECD-modified scale: 1 / 0.5 / 0.3): the household's
    first adult (its first member when it has no adult), every other adult, every child. A child is a
    member younger than `ages.working_age.at_least` (the policy's adult age, 16 in the shipped policy)."""

    first_adult: float = Field(default=1.0, gt=0.0, le=1.0)
    other_adults: float = Field(default=0.5, gt=0.0, le=1.0)
    children: float = Field(default=0.3, gt=0.0, le=1.0)


class Welfare(_Frozen):
    """How a household's income is compared with the poverty line (features/labels.py): `per_capita`,
    net income per member; `adult_equivalent`, net income per adult equivalent of `equivalence_scale`
    (many surveys measure poverty so: a child needs less than an adult, and a household shares costs)."""

    measure: Literal["per_capita", "adult_equivalent"] = "per_capita"
    equivalence_scale: EquivalenceScale = Field(default_factory=EquivalenceScale)


class Policy(_Frozen):
    """Poverty-alleviation policy settings (see features/policy.yaml for the meaning of each field)."""

    version: str = Field(min_length=1)
    poverty_lines: dict[int, float] = Field(min_length=1)
    base_year: int
    currency: Currency
    money_bounds: MoneyBounds
    ages: AgeBands
    monitoring_line_multiple: float = Field(ge=1.0)
    deprivation_weights: dict[str, float]
    deprivation_cutoff: float = Field(gt=0.0, le=1.0)
    catastrophic_medical_share: float = Field(gt=0.0)
    risk_tiers: RiskTiers
    flag_coverage: float | None = Field(default=None, gt=0.0, lt=1.0)
    data_completeness_minimum: float = Field(default=0.0, ge=0.0, le=1.0)
    procedure: ProcedureDeadlines = Field(default_factory=ProcedureDeadlines)
    monitoring: MonitoringThresholds
    monitoring_changes: dict[int, MonitoringChanges] = Field(default_factory=dict)
    drift: DriftThresholds
    tasks: dict[str, TaskFeatures]
    assistance: AssistanceTable
    reasons: ReasonSettings
    welfare: Welfare = Field(default_factory=Welfare)
    county_models: CountyModels = Field(default_factory=CountyModels)

    @field_validator("poverty_lines")
    @classmethod
    def _lines_positive(cls, lines: dict[int, float]) -> dict[int, float]:
        for year, line in lines.items():
            if not (math.isfinite(line) and line > 0):
                raise ValueError(f"poverty line for {year} must be a positive amount, got {line}")
        return dict(sorted(lines.items()))

    @model_validator(mode="after")
    def _lines_within_money_bounds(self) -> Policy:
        above = {
            year: line
            for year, line in self.poverty_lines.items()
            if line > self.money_bounds.max_yearly_amount
        }
        if above:
            raise ValueError(
                f"poverty line(s) {above} above money_bounds.max_yearly_amount "
                f"({self.money_bounds.max_yearly_amount:g} {self.currency.code}): "
                "are the lines and the bounds in the same currency?"
            )
        return self

    @field_validator("deprivation_weights")
    @classmethod
    def _weights_cover_guarantees(cls, weights: dict[str, float]) -> dict[str, float]:
        if set(weights) != set(GUARANTEES):
            raise ValueError(f"keys must be exactly {list(GUARANTEES)}, got {sorted(weights)}")
        if any(not (math.isfinite(w) and w >= 0) for w in weights.values()):
            raise ValueError(f"weights must be non-negative numbers, got {weights}")
        total = sum(weights.values())
        if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise ValueError(f"weights must sum to 1, they sum to {total}")
        return {name: weights[name] for name in GUARANTEES}

    @field_validator("tasks")
    @classmethod
    def _both_tasks(cls, tasks: dict[str, TaskFeatures]) -> dict[str, TaskFeatures]:
        missing = {"poverty", "relapse"} - set(tasks)
        if missing:
            raise ValueError(f"missing task settings: {sorted(missing)}")
        return tasks

    @property
    def first_year(self) -> int:
        """The earliest calendar year with a poverty line."""
        return min(self.poverty_lines)

    def poverty_line(self, year: int) -> float:
        """Poverty line for a calendar year, in `currency.unit` (yuan per person per year for CNY).

        Years after the last line keep the last line; years before the first raise ``PolicyError``.
        """
        year = int(year)
        if year < self.first_year:
            raise PolicyError(
                f"no poverty line for year {year}: policy {self.version} starts in {self.first_year}"
            )
        latest_known = max(y for y in self.poverty_lines if y <= year)
        return self.poverty_lines[latest_known]

    def monitoring_for_year(self, year: int) -> MonitoringThresholds:
        """The monitoring thresholds in force in `year`: `monitoring`, updated by every entry of
        `monitoring_changes` from that year or earlier, in year order."""
        thresholds = self.monitoring
        for since, changes in sorted(self.monitoring_changes.items()):
            if since <= year:
                thresholds = thresholds.model_copy(update=changes.model_dump(exclude_none=True))
        return thresholds

    def monitoring_line(self, year: int) -> float:
        """Monitoring line (edge of the marginal band) for a year: the multiple times the poverty line."""
        return self.monitoring_line_multiple * self.poverty_line(year)

    def excluded_features(self, task: str) -> tuple[str, ...]:
        """Indicators the given task ("poverty" or "relapse") must not use, in registry order: those whose
        lineage reaches one of the task's `exclude_inputs`, and those named in its `exclude_features`."""
        from features.lineage import excluded_indicators  # here, not on top (see TaskFeatures)

        if task not in self.tasks:
            raise PolicyError(f"unknown task {task!r}; policy {self.version} knows {sorted(self.tasks)}")
        settings = self.tasks[task]
        return excluded_indicators(settings.exclude_inputs, settings.exclude_features)


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {field}: {problem['msg']}")
    return "\n".join(lines)


def policy_from_mapping(settings: dict[str, Any], source: str = "<mapping>") -> Policy:
    """Validate a mapping of settings into a Policy; ``PolicyError`` names every bad field."""
    if not isinstance(settings, dict):
        raise PolicyError(f"{source}: expected a mapping of settings, got {type(settings).__name__}")
    try:
        return Policy.model_validate(settings)
    except ValidationError as error:
        raise PolicyError(f"{source}: invalid policy\n{_describe(error)}") from error


def policy_path(option: Path | str | None = None) -> Path:
    """Which policy file is in force: `option` (a command's ``--policy``) when given, else the file named
    by the environment variable ``POVRISK_POLICY`` when set, else the shipped features/policy.yaml.

    Every command and the service resolve their policy here (through ``load_policy``), so that the
    option beats the variable and the variable beats the shipped file everywhere alike."""
    if option is not None and str(option).strip():
        return Path(option)
    named = os.environ.get(POLICY_VARIABLE, "").strip()
    return Path(named) if named else DEFAULT_POLICY_PATH


def load_policy(path: Path | str | None = None) -> Policy:
    """Read a policy YAML file into a frozen Policy: `path`, else ``POVRISK_POLICY``, else the shipped
    features/policy.yaml (``policy_path``)."""
    path = policy_path(path)
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"{path}: cannot read policy file ({error})") from error
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: not valid YAML ({error})") from error
    return policy_from_mapping(settings, source=str(path))
