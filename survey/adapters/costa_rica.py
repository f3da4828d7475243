"""The Costa Rica household survey (IDB, Kaggle "Costa Rican Household Poverty Level Prediction") in the
canonical schema.

The source has one row per person (``Id``) keyed to a household (``idhogar``); household answers are
repeated on every member's row, categorical answers are groups of 0/1 one-hot columns, and the poverty
level ``Target`` (1 extreme poverty, 2 moderate poverty, 3 vulnerable, 4 not vulnerable) is given per
person. The adapter builds one household row per ``idhogar`` (round 0, ``village_id`` = the planning
region) and one member row per person.

Rules (the constants below are the mapping table):

- Household answers come from the head's row (``parentesco1``), or the first member's row when a
  household has no head row. Every household-level source column that is not a canonical field of the
  same name is kept as an extra column (the material and state one-hots too); ``dependency``, ``edjefe``
  and ``edjefa`` mix numbers with "yes"/"no" and are parsed to floats ("yes" = 1, "no" = 0, as their
  squares SQBdependency / SQBedjefe confirm). The person-level squares (SQBescolari, SQBage, agesq) are
  dropped: they restate ``age`` and ``escolari``.
- ``housing_structure`` from the outside-wall material; ``dangerous_house`` = 1 when the walls or the
  roof are in bad state (``epared1`` or ``etecho1``: the load-bearing parts a safety appraisal judges),
  0 when both are known and not bad. ``wall_state``, ``roof_state``, ``floor_state`` (good / regular /
  bad) from ``epared*``, ``etecho*``, ``eviv*``; ``floor_material`` from ``piso*``; ``ceiling`` =
  ``cielorazo``; ``mobile_phones`` = ``qmobilephone``. ``safe_drinking_water`` = 1 only for water piped
  inside the dwelling. ``cooking_fuel`` "other" means no kitchen / no cooking energy.
  ``durable_assets`` = refrigerator + television + computer + mobile phones + tablets (items).
  ``rent_paid`` = 12 x the monthly payment ``v2a1`` (rent, or instalments on a house being bought);
  tenures that pay nothing (owned outright, precarious, borrowed/assigned) have 0. Money stays in the
  survey's currency (colones per year).
- Members: ``in_school`` is not derivable (``rez_esc`` is recorded for every 7-17 year-old, enrolled or
  not) and ``labour_capacity``, ``health_status`` and migrant work are not asked: those columns are left
  out, so the feature pipeline falls back on age and disability. ``school_years_behind`` = ``rez_esc``.
- Labels: ``label_level`` = the head's Target, ``label_poor`` = 1 when it is 1 or 2, else 0. Where the
  head's Target is unknown (no head row), the members' most frequent Target (a tie goes to the poorer
  level). Households with no usable Target keep NaN labels. Each case is counted in the log.

One-hot groups: a row with no column set is unknown (NaN); a row with several set takes the first in
the mapping's order. A group whose columns are all absent leaves its canonical field out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from survey.io import Survey, not_utf8_message
from survey.schema import Households

ROUND = 0
"""The survey is a single cross-section: every row is round 0."""
REQUIRED_COLUMNS = ("Id", "idhogar", "parentesco1", "Target")
TEXT_COLUMNS = ("Id", "idhogar", "dependency", "edjefe", "edjefa")
"""Read as text: identifiers, and the columns that mix numbers with yes/no."""
YES_NO_NUMBER_COLUMNS = ("dependency", "edjefe", "edjefa")
YES_NO_VALUES = {"yes": 1.0, "no": 0.0}
TARGET_LEVELS = (1.0, 2.0, 3.0, 4.0)
POOR_LEVELS = (1.0, 2.0)
"""Targets counted as poor: extreme (1) and moderate (2) poverty."""
UNKNOWN_REGION = "unknown"
MONTHS_PER_YEAR = 12

REGIONS = {
    "lugar1": "central",
    "lugar2": "chorotega",
    "lugar3": "pacifico_central",
    "lugar4": "brunca",
    "lugar5": "huetar_atlantica",
    "lugar6": "huetar_norte",
}
AREAS = {"area1": "urban", "area2": "rural"}
WALL_STRUCTURES = {
    "paredpreb": "reinforced_concrete",  # prefabricated or cement
    "paredblolad": "brick_concrete",  # block or brick
    "paredzocalo": "brick_wood",  # socket: masonry base, wood / zinc / asbestos above
    "paredmad": "earth_wood",  # wood
    "pareddes": "other",  # waste material
    "paredzinc": "other",
    "paredfibras": "other",  # natural fibres
    "paredother": "other",
}
BAD_STATE_COLUMNS = ("epared1", "etecho1")
"""Walls bad, roof bad: either makes the house dangerous."""
STATE_GROUPS = (("epared1", "epared2", "epared3"), ("etecho1", "etecho2", "etecho3"))
BUILDING_STATES = {
    "wall_state": {"epared1": "bad", "epared2": "regular", "epared3": "good"},
    "roof_state": {"etecho1": "bad", "etecho2": "regular", "etecho3": "good"},
    "floor_state": {"eviv1": "bad", "eviv2": "regular", "eviv3": "good"},
}
FLOOR_MATERIALS = {
    "pisomoscer": "tiles",  # mosaic, ceramic, terrazzo
    "pisocemento": "cement",
    "pisomadera": "wood",
    "pisonatur": "natural",
    "pisonotiene": "none",
    "pisoother": "other",
}
SAFE_WATER = {"abastaguadentro": 1.0, "abastaguafuera": 0.0, "abastaguano": 0.0}
ELECTRICITY = {"public": 1.0, "planpri": 1.0, "coopele": 1.0, "noelec": 0.0}
TOILET = {
    "sanitario1": 0.0,  # no toilet
    "sanitario2": 1.0,  # sewer or cesspool
    "sanitario3": 1.0,  # septic tank
    "sanitario5": 1.0,  # black hole or latrine
    "sanitario6": 1.0,  # other system
}
COOKING_FUELS = {
    "energcocinar2": "electricity",
    "energcocinar3": "gas",
    "energcocinar4": "firewood",  # wood, charcoal
    "energcocinar1": "other",  # no kitchen, no main cooking energy
}
TENURES = {
    "tipovivi1": "owned",
    "tipovivi2": "owned_paying",
    "tipovivi3": "rented",
    "tipovivi4": "precarious",
    "tipovivi5": "other",  # assigned, borrowed
}
NO_RENT_TENURES = ("owned", "precarious", "other")
ASSET_COLUMNS = ("refrig", "television", "computer", "qmobilephone", "v18q1")
"""Counted into durable_assets; v18q1 (tablets) is blank when v18q (owns a tablet) is 0, i.e. none."""
NUMERIC_HOUSEHOLD_FIELDS = {
    "rooms": "rooms",
    "bedrooms": "bedrooms",
    "hhsize": "household_size",
    "cielorazo": "ceiling",
    "qmobilephone": "mobile_phones",
}

RELATIONS = {
    "parentesco1": "head",
    "parentesco2": "spouse",
    "parentesco3": "child",
    "parentesco4": "child",  # stepchild
    "parentesco5": "child_in_law",
    "parentesco6": "grandchild",
    "parentesco7": "parent",
    "parentesco8": "parent",  # parent-in-law
    "parentesco9": "sibling",
    "parentesco10": "sibling",  # sibling-in-law
    "parentesco11": "other",  # other family member
    "parentesco12": "other",  # not family
}
SEXES = {"male": "male", "female": "female"}
NUMERIC_MEMBER_FIELDS = {"age": "age", "escolari": "education_years", "rez_esc": "school_years_behind"}
EDUCATION_LEVELS = {
    "instlevel1": "none",
    "instlevel2": "primary_incomplete",
    "instlevel3": "primary_complete",
    "instlevel4": "academic_secondary_incomplete",
    "instlevel5": "academic_secondary_complete",
    "instlevel6": "technical_secondary_incomplete",
    "instlevel7": "technical_secondary_complete",
    "instlevel8": "undergraduate",
    "instlevel9": "postgraduate",
}
MARITAL_STATUSES = {
    "estadocivil1": "under_10",
    "estadocivil2": "union",
    "estadocivil3": "married",
    "estadocivil4": "divorced",
    "estadocivil5": "separated",
    "estadocivil6": "widowed",
    "estadocivil7": "single",
}
PERSON_COLUMNS = frozenset(
    {"Id", "idhogar", "escolari", "rez_esc", "dis", "male", "female", "age", "Target"}
    | set(RELATIONS)
    | set(EDUCATION_LEVELS)
    | set(MARITAL_STATUSES)
    | {"SQBescolari", "SQBage", "agesq"}
)
"""Source columns that vary by person (everything else is a household answer repeated per member)."""
DROPPED_COLUMNS = ("SQBescolari", "SQBage", "agesq")

MAPPED_COLUMNS = frozenset(
    {"Id", "idhogar", "Target", "dis"}
    | set(REGIONS)
    | set(AREAS)
    | set(WALL_STRUCTURES)
    | {column for group in STATE_GROUPS for column in group}
    | {column for levels in BUILDING_STATES.values() for column in levels}
    | set(FLOOR_MATERIALS)
    | set(SAFE_WATER)
    | set(ELECTRICITY)
    | set(TOILET)
    | set(COOKING_FUELS)
    | set(TENURES)
    | set(ASSET_COLUMNS)
    | {"v18q", "v2a1"}
    | set(NUMERIC_HOUSEHOLD_FIELDS)
    | set(RELATIONS)
    | set(SEXES)
    | set(NUMERIC_MEMBER_FIELDS)
)
"""Source columns read into a canonical field or a label."""


class CostaRicaFormatError(ValueError):
    """The file is missing, unreadable, or not the Costa Rica survey's train.csv format."""


@dataclass(frozen=True)
class ImportResult:
    """The canonical survey and the import log: counts of rows, households and handled anomalies."""

    survey: Survey
    log: dict[str, int]


# ------------------------------------------------------------------------------------------------ edge


def import_costa_rica(path: Path) -> ImportResult:
    """Read the survey's ``train.csv`` at ``path`` and convert it (see the module docstring)."""
    return costa_rica_survey(read_costa_rica(path))


def read_costa_rica(path: Path) -> pd.DataFrame:
    """The person rows of ``path``; raise CostaRicaFormatError when the file is absent, unreadable or
    lacks a required column (``Id``, ``idhogar``, ``parentesco1``, ``Target``)."""
    source = Path(path)
    if not source.is_file():
        raise CostaRicaFormatError(f"{source}: no such file")
    try:
        people = pd.read_csv(source, dtype={column: "str" for column in TEXT_COLUMNS}, low_memory=False)
    except UnicodeDecodeError as error:
        raise CostaRicaFormatError(not_utf8_message(source)) from error
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise CostaRicaFormatError(f"{source} is not a readable CSV file: {error}") from error
    check_columns(people, str(source))
    return people


def check_columns(people: pd.DataFrame, name: str = "input") -> None:
    """Raise CostaRicaFormatError when a required column is absent or an identifier is blank."""
    missing = [column for column in REQUIRED_COLUMNS if column not in people.columns]
    if missing:
        raise CostaRicaFormatError(f"{name} is not the Costa Rica survey format: missing column(s) {missing}")
    for column in ("Id", "idhogar"):
        blank = int(people[column].isna().sum())
        if blank:
            raise CostaRicaFormatError(f"{name}: {blank} row(s) without {column}")


# ------------------------------------------------------------------------------------------- conversion


def costa_rica_survey(people: pd.DataFrame) -> ImportResult:
    """Convert the person rows of the Costa Rica survey into a canonical Survey (households, members,
    villages = the regions) and the import log. ``people`` is not modified."""
    check_columns(people)
    household_id = people["idhogar"].astype("str")
    is_head = _numbers(people["parentesco1"]) == 1.0
    rows, row_is_head = _household_rows(people, household_id, is_head)
    labels = household_labels(household_id, is_head, _numbers(people["Target"]))
    households = _households(rows, row_is_head, labels.reindex(rows.index))
    members = _members(people, household_id)
    villages = pd.DataFrame({"village_id": pd.Series(sorted(set(households["village_id"])), dtype="str")})
    kept_extra = _extra_columns(people.columns)
    log = {
        "persons": len(people),
        "households": len(households),
        "households_without_head": int((~households["household_id"].isin(household_id[is_head])).sum()),
        "households_with_several_heads": int((is_head.groupby(household_id).sum() > 1).sum()),
        "households_with_disagreeing_targets": int(labels["targets_disagree"].sum()),
        "households_without_label": int(labels["label_level"].isna().sum()),
        "columns_mapped": len(MAPPED_COLUMNS & set(people.columns)),
        "columns_kept_extra": len(kept_extra)
        + len((set(EDUCATION_LEVELS) | set(MARITAL_STATUSES)) & set(people.columns)),
        "columns_dropped": len(set(DROPPED_COLUMNS) & set(people.columns)),
    }
    return ImportResult(Survey(households=households, members=members, villages=villages), log)


def household_labels(household_id: pd.Series, is_head: pd.Series, target: pd.Series) -> pd.DataFrame:
    """Per household (index = household id): ``label_level`` (1-4), ``label_poor`` (1.0 for level 1
    or 2, else 0.0; NaN when unknown) and ``targets_disagree`` (members' known Targets differ).

    The level is the head's Target; where it is unknown, the members' most frequent known Target, a tie
    going to the poorer (lower) level.
    """
    known = target.where(target.isin(TARGET_LEVELS))
    head_level = known[is_head.to_numpy()].groupby(household_id[is_head.to_numpy()]).first()
    counts = known.groupby([household_id, known]).size().unstack()
    # columns are the levels in ascending order, so idxmax breaks ties towards the poorer level
    mode_level = counts.fillna(0).idxmax(axis=1).astype(np.float64)
    households = pd.Index(household_id.unique())
    level = head_level.reindex(households).fillna(mode_level.reindex(households))
    distinct = known.groupby(household_id).nunique().reindex(households)
    poor = np.where(level.isna(), np.nan, level.isin(POOR_LEVELS).astype(np.float64))
    return pd.DataFrame(
        {
            "label_level": level.astype(np.float64),
            "label_poor": poor,
            "targets_disagree": (distinct > 1).to_numpy(),
        },
        index=households,
    )


def parse_yes_no_number(values: pd.Series) -> pd.Series:
    """A column mixing numbers with "yes"/"no" as float64: "yes" = 1, "no" = 0 (any case), numbers as
    numbers, anything else NaN."""
    text = values.astype("str").str.strip().str.lower()
    answered = text.map(YES_NO_VALUES)
    numbers = pd.to_numeric(values.where(~text.isin(list(YES_NO_VALUES))), errors="coerce")
    return answered.astype(np.float64).fillna(numbers.astype(np.float64))


# ---------------------------------------------------------------------------------------------- helpers


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _household_rows(
    people: pd.DataFrame, household_id: pd.Series, is_head: pd.Series
) -> tuple[pd.DataFrame, np.ndarray]:
    """One source row per household, indexed by household id (sorted): the head's row, else the first
    member's row; and whether each of those rows is the head's."""
    order = np.lexsort((~is_head.to_numpy(), household_id.to_numpy()))
    first = ~household_id.iloc[order].duplicated().to_numpy()
    chosen = order[first]
    index = pd.Index(household_id.iloc[chosen].to_numpy(), name="household_id")
    return people.iloc[chosen].set_axis(index), is_head.iloc[chosen].to_numpy()


def _one_hot(rows: pd.DataFrame, levels: Mapping[str, object]) -> tuple[np.ndarray, np.ndarray] | None:
    """(chosen level, any column set) per row for a one-hot group; None when no column is present."""
    present = [column for column in levels if column in rows.columns]
    if not present:
        return None
    flags = np.column_stack([_numbers(rows[column]).to_numpy() == 1.0 for column in present])
    choices = np.array([levels[column] for column in present], dtype=object)
    return choices[flags.argmax(axis=1)], np.asarray(flags.any(axis=1), dtype=bool)


def _category(rows: pd.DataFrame, levels: Mapping[str, str]) -> pd.Series | None:
    """The level of a one-hot group as text (NaN when no column is set)."""
    found = _one_hot(rows, levels)
    if found is None:
        return None
    chosen, known = found
    return pd.Series(chosen, index=rows.index, dtype="str").where(known)


def _yes_no(rows: pd.DataFrame, levels: Mapping[str, float]) -> pd.Series | None:
    """A 0/1 answer from a one-hot group whose columns map to 0 or 1 (NaN when no column is set)."""
    found = _one_hot(rows, levels)
    if found is None:
        return None
    chosen, known = found
    return pd.Series(np.where(known, chosen, np.nan).astype(np.float64), index=rows.index)


def _dangerous_house(rows: pd.DataFrame) -> pd.Series | None:
    """1 when the walls or the roof are in bad state, 0 when both states are known and not bad."""
    if not all(column in rows.columns for group in STATE_GROUPS for column in group):
        return None
    states = [_yes_no(rows, {group[0]: 1.0, group[1]: 0.0, group[2]: 0.0}) for group in STATE_GROUPS]
    stacked = np.column_stack([state.to_numpy() for state in states if state is not None])
    bad = (stacked == 1.0).any(axis=1)
    known = ~np.isnan(stacked).any(axis=1)
    return pd.Series(np.where(bad, 1.0, np.where(known, 0.0, np.nan)), index=rows.index)


def _durable_assets(rows: pd.DataFrame) -> pd.Series | None:
    """Refrigerator + television + computer + mobile phones + tablets, items (present columns only)."""
    present = [column for column in ASSET_COLUMNS if column in rows.columns]
    if not present:
        return None
    counts = {column: _numbers(rows[column]) for column in present}
    if "v18q1" in counts and "v18q" in rows.columns:
        counts["v18q1"] = counts["v18q1"].where(_numbers(rows["v18q"]) != 0.0, 0.0)
    return pd.concat(counts, axis=1).sum(axis=1, min_count=len(present)).astype(np.float64)


def _rent_paid(rows: pd.DataFrame, tenure: pd.Series | None) -> pd.Series | None:
    """12 x the monthly payment v2a1; 0 for tenures that pay nothing when v2a1 is blank."""
    if "v2a1" not in rows.columns:
        return None
    yearly = _numbers(rows["v2a1"]) * MONTHS_PER_YEAR
    if tenure is None:
        return yearly
    return yearly.where(yearly.notna() | ~tenure.isin(NO_RENT_TENURES), 0.0)


def _head_sex(rows: pd.DataFrame, row_is_head: np.ndarray) -> pd.Series | None:
    """Sex of the head; NaN for a household without a head row."""
    sex = _category(rows, SEXES)
    return None if sex is None else sex.where(row_is_head)


def _extra_columns(columns: pd.Index) -> list[str]:
    """Household-level source columns kept as extra columns: all but the person columns and the
    columns that are themselves canonical fields of the same name."""
    canonical = set(Households.to_schema().columns)
    return [str(column) for column in columns if column not in PERSON_COLUMNS and column not in canonical]


def _households(rows: pd.DataFrame, row_is_head: np.ndarray, labels: pd.DataFrame) -> pd.DataFrame:
    region = _category(rows, REGIONS)
    village = (
        pd.Series(UNKNOWN_REGION, index=rows.index, dtype="str")
        if region is None
        else region.fillna(UNKNOWN_REGION)
    )
    tenure = _category(rows, TENURES)
    canonical: dict[str, pd.Series | None] = {
        "household_id": pd.Series(rows.index.to_numpy(), index=rows.index, dtype="str"),
        "village_id": village,
        "round": pd.Series(ROUND, index=rows.index, dtype=np.int64),
        "region": region,
        "area": _category(rows, AREAS),
        "head_sex": _head_sex(rows, row_is_head),
        **{
            field: _numbers(rows[column]) if column in rows.columns else None
            for column, field in NUMERIC_HOUSEHOLD_FIELDS.items()
        },
        "housing_structure": _category(rows, WALL_STRUCTURES),
        "dangerous_house": _dangerous_house(rows),
        **{field: _category(rows, levels) for field, levels in BUILDING_STATES.items()},
        "floor_material": _category(rows, FLOOR_MATERIALS),
        "safe_drinking_water": _yes_no(rows, SAFE_WATER),
        "electricity": _yes_no(rows, ELECTRICITY),
        "toilet": _yes_no(rows, TOILET),
        "cooking_fuel": _category(rows, COOKING_FUELS),
        "durable_assets": _durable_assets(rows),
        "tenure": tenure,
        "rent_paid": _rent_paid(rows, tenure),
        "label_level": labels["label_level"],
        "label_poor": labels["label_poor"],
    }
    extras = {
        column: parse_yes_no_number(rows[column]) if column in YES_NO_NUMBER_COLUMNS else rows[column]
        for column in _extra_columns(rows.columns)
        if column not in canonical
    }
    columns = {name: values for name, values in canonical.items() if values is not None} | extras
    return pd.DataFrame(columns).reset_index(drop=True)


def _members(people: pd.DataFrame, household_id: pd.Series) -> pd.DataFrame:
    canonical: dict[str, pd.Series | None] = {
        "household_id": household_id,
        "member_id": people["Id"].astype("str"),
        "round": pd.Series(ROUND, index=people.index, dtype=np.int64),
        "relation_to_head": _category(people, RELATIONS),
        "sex": _category(people, SEXES),
        **{
            field: _numbers(people[column]) if column in people.columns else None
            for column, field in NUMERIC_MEMBER_FIELDS.items()
        },
        "disability": _numbers(people["dis"]) if "dis" in people.columns else None,
        "education_level": _category(people, EDUCATION_LEVELS),
        "marital_status": _category(people, MARITAL_STATUSES),
        "member_target": _numbers(people["Target"]),
    }
    return pd.DataFrame(
        {name: values for name, values in canonical.items() if values is not None}
    ).reset_index(drop=True)
