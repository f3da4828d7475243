"""Mapping files: how the columns of an external survey table become the canonical survey's columns.

A mapping is YAML, loaded into the frozen `TableMapping` below; `povrisk import table --mapping NAME|FILE`
takes a shipped mapping by name (`survey/mappings/<name>.yaml`: `archive-card`, `costa-rica`) or any
file. docs/interfaces.md ("Importing a survey with a mapping file") describes the format with an
example; the shipped mappings are commented examples of every part of it.

A column is given as a source header (any language) or as a spec: ``column`` (the header), ``values``
(a value map, or the name of one of the mapping's ``value_sets``), ``scale`` (multiplies numbers: 10000
for 万元 to 元), ``per`` (the period an amount is given for: year, month, week or day; amounts become
yearly), ``optional`` (the header may be absent: the canonical column is then left out), ``fill`` (the
value of a missing answer); or ``value`` (a constant), or ``one_hot`` (a group of 0/1 columns, one per
level, as the Costa Rica survey has them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from survey.schema import Households, Members

MAPPINGS_FOLDER = Path(__file__).with_name("mappings")
PER_YEAR = {"year": 1.0, "month": 12.0, "week": 52.0, "day": 365.0}
"""How many of each period make a year: an amount given per month is multiplied by 12."""
SLICE_COLUMNS = ("region", "area", "head_sex")
"""Household columns the evaluation reports metrics by (training/cross_validation.py reads them); `area`
is `urban` or `rural` (the rural baseline reads it)."""
AREAS = ("urban", "rural")
LABEL_COLUMNS = {"poor": "label_poor", "level": "label_level"}
"""A survey's own label: `label_poor` (1 poor, 0 not: overrides the policy's rule where known) and
`label_level` (the survey's poverty levels, e.g. Costa Rica's 1-4)."""

Scalar = str | int | float | bool | None


class MappingError(ValueError):
    """A mapping file that cannot be read, or whose content is invalid (the message names every field)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Frozen):
    """Where one canonical column comes from: a source column (with a value map, a scale, a period), a
    constant, or a one-hot group of 0/1 columns."""

    column: str | None = None
    value: Scalar = None
    one_hot: dict[str, Scalar] | None = None
    values: dict[str, Scalar] | str | None = None
    scale: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    per: Literal["year", "month", "week", "day"] = "year"
    optional: bool = False
    fill: Scalar = None

    @model_validator(mode="before")
    @classmethod
    def _header_alone(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        given = [name for name in ("column", "value", "one_hot") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of column, value, one_hot (got {given or 'none'})")
        return self

    @property
    def headers(self) -> tuple[str, ...]:
        """The source headers this column reads."""
        if self.column is not None:
            return (self.column,)
        return tuple(self.one_hot or ())

    @property
    def factor(self) -> float:
        """What a source number is multiplied by: the scale, and the periods per year."""
        return self.scale * PER_YEAR[self.per]


class TableSpec(_Frozen):
    """One canonical table: the sheet it is read from (XLSX; default: the first sheet, or the second
    file's first sheet for members) and its columns (canonical name: spec)."""

    sheet: str | None = None
    columns: dict[str, ColumnSpec]


class HeadSpec(_Frozen):
    """For member rows: the source column and value that mark the head's row, whose household answers
    are the household's (a household without a head row takes its first row's)."""

    column: str
    value: Scalar


class TableMapping(_Frozen):
    """A mapping file (see the module docstring and docs/interfaces.md)."""

    name: str = Field(min_length=1)
    description: str = ""
    rows: Literal["household", "member"] = "household"
    round: ColumnSpec
    head: HeadSpec | None = None
    households: TableSpec
    members: TableSpec | None = None
    villages: dict[str, ColumnSpec] = Field(default_factory=dict)
    slices: dict[str, ColumnSpec] = Field(default_factory=dict)
    features: dict[str, ColumnSpec] = Field(default_factory=dict)
    label: dict[str, ColumnSpec] = Field(default_factory=dict)
    value_sets: dict[str, dict[str, Scalar]] = Field(default_factory=dict)
    text_columns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    derivations: tuple[str, ...] = ()

    @field_validator("value_sets", mode="before")
    @classmethod
    def _keys_as_text(cls, sets: Any) -> Any:
        if not isinstance(sets, dict):
            return sets
        return {name: _text_keys(values) for name, values in sets.items()}

    @field_validator("households")
    @classmethod
    def _household_keys(cls, table: TableSpec) -> TableSpec:
        return _with_known_columns(table, set(Households.to_schema().columns), ("household_id", "village_id"))

    @field_validator("members")
    @classmethod
    def _member_keys(cls, table: TableSpec | None) -> TableSpec | None:
        if table is None:
            return None
        return _with_known_columns(
            table, set(Members.to_schema().columns) | _MEMBER_EXTRAS, ("household_id", "member_id")
        )

    @field_validator("villages")
    @classmethod
    def _village_columns(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        unknown = sorted(set(columns) - {"township_id"})
        if unknown:
            raise ValueError(f"villages may name township_id only, got {unknown}")
        return columns

    @field_validator("slices")
    @classmethod
    def _slice_names(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        unknown = sorted(set(columns) - set(SLICE_COLUMNS))
        if unknown:
            raise ValueError(f"unknown slice(s) {unknown}; the evaluation slices by {list(SLICE_COLUMNS)}")
        return columns

    @field_validator("features")
    @classmethod
    def _feature_names(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        clash = sorted(set(columns) & (set(Households.to_schema().columns) | set(SLICE_COLUMNS)))
        if clash:
            raise ValueError(f"{clash} are canonical columns or slices: map them under households or slices")
        return columns

    @field_validator("label")
    @classmethod
    def _label_parts(cls, columns: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        unknown = sorted(set(columns) - set(LABEL_COLUMNS))
        if unknown:
            raise ValueError(f"label may give {sorted(LABEL_COLUMNS)}, got {unknown}")
        return columns

    @model_validator(mode="after")
    def _consistent(self) -> TableMapping:
        problems = []
        named_sets = [spec.values for spec in self.all_specs().values() if isinstance(spec.values, str)]
        problems += [
            f"value set {name!r} is not among value_sets"
            for name in named_sets
            if name not in self.value_sets
        ]
        if self.rows == "member" and self.members is None:
            problems.append("rows: member needs a members table")
        if self.rows == "household" and self.head is not None:
            problems.append("head is for rows: member (one row per member)")
        area = self.slices.get("area")
        if area is not None:
            levels = {value for value in self.value_map(area).values() if value is not None}
            if area.one_hot is not None:
                levels = {value for value in area.one_hot.values() if value is not None}
            if not levels or not levels <= set(AREAS):
                problems.append(f"slices.area must map to {list(AREAS)}, got {sorted(map(str, levels))}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def value_map(self, spec: ColumnSpec) -> dict[str, Scalar]:
        """The spec's value map, keys as text (`value_key`); empty when it has none."""
        if spec.values is None:
            return {}
        if isinstance(spec.values, str):
            return self.value_sets[spec.values]
        return _text_keys(spec.values)

    def all_specs(self) -> dict[str, ColumnSpec]:
        """Every spec by a name saying where it is (`households.income_wages`, `slices.region`, ...)."""
        parts: dict[str, dict[str, ColumnSpec]] = {
            "households": self.households.columns,
            "members": self.members.columns if self.members else {},
            "villages": self.villages,
            "slices": self.slices,
            "features": self.features,
            "label": self.label,
        }
        specs = {f"{part}.{name}": spec for part, columns in parts.items() for name, spec in columns.items()}
        return {"round": self.round, **specs}


_MEMBER_EXTRAS = {"education_level", "marital_status", "member_target"}
"""Member columns beyond the schema that a mapping may fill (the Costa Rica adapter keeps them)."""


def _with_known_columns(table: TableSpec, known: set[str], required: tuple[str, ...]) -> TableSpec:
    missing = [name for name in required if name not in table.columns]
    if missing:
        raise ValueError(f"needs the key column(s) {missing}")
    if "round" in table.columns:
        raise ValueError("round is given once, at the top level (round: {column: ...} or {value: 0})")
    unknown = sorted(set(table.columns) - known)
    if unknown:
        raise ValueError(
            f"{unknown} are not canonical columns (survey/schema.py); declare extra columns under "
            "features or slices"
        )
    return table


def value_key(value: object) -> str | None:
    """A source value as the text a value map is looked up by: "是" for "是 ", "1" for 1, 1.0 and "1"; None
    for a missing value or empty text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value).strip() or None
        if math.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    return text or None


def _text_keys(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {value_key(key) or str(key): value for key, value in values.items()}


def shipped_mappings() -> tuple[str, ...]:
    """The names of the mappings shipped in survey/mappings/."""
    return tuple(sorted(path.stem for path in MAPPINGS_FOLDER.glob("*.yaml")))


def mapping_path(name_or_file: str | Path) -> Path:
    """The file of a shipped mapping's name, else the path itself."""
    text = str(name_or_file)
    shipped = MAPPINGS_FOLDER / f"{text}.yaml"
    if "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml")) and shipped.is_file():
        return shipped
    return Path(name_or_file)


def load_mapping(name_or_file: str | Path) -> TableMapping:
    """A shipped mapping by name (`archive-card`, `costa-rica`) or a mapping file; `MappingError` names
    the file and every bad field."""
    path = mapping_path(name_or_file)
    if not path.is_file():
        raise MappingError(
            f"no mapping {str(name_or_file)!r}: neither a file nor a shipped mapping "
            f"({', '.join(shipped_mappings())})"
        )
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(f"{path}: cannot read the mapping file ({error})") from error
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error
    return mapping_from_settings(settings, str(path))


def mapping_from_settings(settings: Any, source: str = "<mapping>") -> TableMapping:
    """Validate a parsed mapping; `MappingError` names every bad field."""
    if not isinstance(settings, dict):
        raise MappingError(f"{source}: expected a mapping of settings, got {type(settings).__name__}")
    try:
        return TableMapping.model_validate(settings)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(top level)'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise MappingError(f"{source}: invalid mapping: {fields}") from error
