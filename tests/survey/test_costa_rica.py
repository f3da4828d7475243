"""The Costa Rica adapter: hand-written rows in the Kaggle train.csv format (made-up values) for the
mapping, labels and log; the real file (when present) for the published counts and the feature pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.frame import build_features
from features.policy import load_policy
from survey.adapters.costa_rica import (
    CostaRicaFormatError,
    ImportResult,
    costa_rica_survey,
    household_labels,
    import_costa_rica,
    parse_yes_no_number,
)
from survey.validate import validate_survey

from ..shared_data import costa_rica_train_csv

NAN = np.nan

# One-hot groups of the Kaggle format, by the column set to 1 in each made-up household below.
GROUPS = {
    "wall": ("paredblolad", "paredzocalo", "paredpreb", "pareddes", "paredmad", "paredzinc", "paredfibras"),
    "floor": ("pisomoscer", "pisocemento", "pisoother", "pisonatur", "pisonotiene", "pisomadera"),
    "roof": ("techozinc", "techoentrepiso", "techocane", "techootro"),
    "water": ("abastaguadentro", "abastaguafuera", "abastaguano"),
    "power": ("public", "planpri", "noelec", "coopele"),
    "toilet": ("sanitario1", "sanitario2", "sanitario3", "sanitario5", "sanitario6"),
    "cooking": ("energcocinar1", "energcocinar2", "energcocinar3", "energcocinar4"),
    "rubbish": ("elimbasu1", "elimbasu2", "elimbasu3", "elimbasu4", "elimbasu5", "elimbasu6"),
    "walls_state": ("epared1", "epared2", "epared3"),
    "roof_state": ("etecho1", "etecho2", "etecho3"),
    "floor_state": ("eviv1", "eviv2", "eviv3"),
    "tenure": ("tipovivi1", "tipovivi2", "tipovivi3", "tipovivi4", "tipovivi5"),
    "region": ("lugar1", "lugar2", "lugar3", "lugar4", "lugar5", "lugar6"),
    "area": ("area1", "area2"),
    "relation": tuple(f"parentesco{number}" for number in range(1, 13)),
    "marital": tuple(f"estadocivil{number}" for number in range(1, 8)),
    "level": tuple(f"instlevel{number}" for number in range(1, 10)),
}


def one_hot(group: str, chosen: str) -> dict[str, int]:
    return {column: int(column == chosen) for column in GROUPS[group]}


def household(**answers: Any) -> dict[str, Any]:
    """The household block repeated on each member's row (made-up values)."""
    chosen = answers.pop("one_hot")
    block: dict[str, Any] = {
        "v2a1": "",
        "hacdor": 0,
        "rooms": 4,
        "hacapo": 0,
        "v14a": 1,
        "refrig": 1,
        "v18q": 0,
        "v18q1": "",
        "hhsize": 2,
        "cielorazo": 1,
        "hogar_nin": 0,
        "hogar_adul": 2,
        "hogar_mayor": 0,
        "hogar_total": 2,
        "dependency": "0",
        "edjefe": "6",
        "edjefa": "no",
        "meaneduc": 6.0,
        "bedrooms": 2,
        "overcrowding": 1.0,
        "computer": 0,
        "television": 1,
        "mobilephone": 1,
        "qmobilephone": 1,
        "SQBhogar_total": 4,
        "SQBedjefe": 36,
        "SQBdependency": 0.0,
    }
    for group, column in chosen.items():
        block |= one_hot(group, column)
    return block | answers


def person(
    person_id: str, household_id: str, relation: str, sex: str, age: int, target: Any, **answers: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Id": person_id,
        "idhogar": household_id,
        "escolari": answers.pop("escolari", 6),
        "rez_esc": answers.pop("rez_esc", ""),
        "dis": answers.pop("dis", 0),
        "male": int(sex == "m"),
        "female": int(sex == "f"),
        "age": age,
        "SQBescolari": 36,
        "SQBage": age * age,
        "agesq": age * age,
        "Target": target,
    }
    row |= one_hot("relation", relation)
    row |= one_hot("marital", answers.pop("marital", "estadocivil3"))
    row |= one_hot("level", answers.pop("level", "instlevel3"))
    return row | answers


POOR_RURAL = household(
    one_hot={
        "wall": "paredmad",
        "floor": "pisonatur",
        "roof": "techozinc",
        "water": "abastaguafuera",
        "power": "noelec",
        "toilet": "sanitario1",
        "cooking": "energcocinar4",
        "rubbish": "elimbasu3",
        "walls_state": "epared1",
        "roof_state": "etecho2",
        "floor_state": "eviv1",
        "tenure": "tipovivi4",
        "region": "lugar4",
        "area": "area2",
    },
    rooms=2,
    bedrooms=1,
    refrig=0,
    qmobilephone=2,
    dependency="yes",
    edjefe="yes",
    edjefa="no",
)
NO_HEAD = household(
    one_hot={
        "wall": "paredzocalo",
        "floor": "pisocemento",
        "roof": "techozinc",
        "water": "abastaguadentro",
        "power": "coopele",
        "toilet": "sanitario5",
        "cooking": "energcocinar1",
        "rubbish": "elimbasu1",
        "walls_state": "epared2",
        "roof_state": "etecho1",
        "floor_state": "eviv2",
        "tenure": "tipovivi5",
        "region": "lugar6",
        "area": "area2",
    },
    hhsize=3,
    rooms=3,
    dependency="2",
    edjefe="no",
    edjefa="no",
)
RENTING_URBAN = household(
    one_hot={
        "wall": "paredblolad",
        "floor": "pisomoscer",
        "roof": "techoentrepiso",
        "water": "abastaguadentro",
        "power": "public",
        "toilet": "sanitario2",
        "cooking": "energcocinar3",
        "rubbish": "elimbasu1",
        "walls_state": "epared3",
        "roof_state": "etecho3",
        "floor_state": "eviv3",
        "tenure": "tipovivi3",
        "region": "lugar1",
        "area": "area1",
    },
    v2a1=120000.0,
    v18q=1,
    v18q1=2,
    computer=1,
    qmobilephone=3,
    dependency=".5",
    edjefe="no",
    edjefa="14",
    bedrooms=0,
)
UNLABELLED = household(
    one_hot={
        "wall": "paredpreb",
        "floor": "pisomoscer",
        "roof": "techozinc",
        "water": "abastaguadentro",
        "power": "public",
        "toilet": "sanitario3",
        "cooking": "energcocinar2",
        "rubbish": "elimbasu1",
        "walls_state": "epared3",
        "roof_state": "etecho3",
        "floor_state": "eviv3",
        "tenure": "tipovivi1",
        "region": "lugar3",
        "area": "area1",
    },
    hhsize=1,
)

ROWS = [
    # poor rural household: a head whose edjefe is "yes", a spouse with a disability
    person("ID_r1", "rural01", "parentesco1", "m", 41, 2, escolari=1) | POOR_RURAL,
    person("ID_r2", "rural01", "parentesco2", "f", 39, 2, dis=1, marital="estadocivil2") | POOR_RURAL,
    # no head row: two children and a non-family member who disagrees on Target
    person("ID_n1", "nohead02", "parentesco3", "f", 15, 1, rez_esc=2, level="instlevel2") | NO_HEAD,
    person("ID_n2", "nohead02", "parentesco6", "m", 8, 1, rez_esc=0, marital="estadocivil1") | NO_HEAD,
    person("ID_n3", "nohead02", "parentesco12", "m", 30, 3) | NO_HEAD,
    # renting urban household: the head says 4, the 17-year-old says 3 (the head's Target is the label)
    person("ID_u1", "urban03", "parentesco1", "f", 50, 4, escolari=14) | RENTING_URBAN,
    person("ID_u2", "urban03", "parentesco4", "m", 17, 3, rez_esc=1, marital="estadocivil7") | RENTING_URBAN,
    # a household whose only member has no Target
    person("ID_x1", "nolabel04", "parentesco1", "m", 70, "") | UNLABELLED,
]


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    path = tmp_path / "train.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    return path


@pytest.fixture
def imported(train_csv: Path) -> ImportResult:
    return import_costa_rica(train_csv)


def household_row(imported: ImportResult, household_id: str) -> pd.Series:
    households = imported.survey.households
    return households.set_index("household_id").loc[household_id]


def test_log_counts_every_anomaly(imported: ImportResult) -> None:
    log = imported.log
    assert log["persons"] == 8 and log["households"] == 4
    assert log["households_without_head"] == 1
    assert log["households_with_disagreeing_targets"] == 2
    assert log["households_without_label"] == 1
    assert log["households_with_several_heads"] == 0
    assert log["columns_mapped"] > 60 and log["columns_kept_extra"] > 60
    assert log["columns_dropped"] == 3  # SQBescolari, SQBage, agesq


def test_imported_survey_is_valid(imported: ImportResult) -> None:
    report = validate_survey(imported.survey)
    assert report.ok, report.summary()
    assert set(imported.survey.villages["village_id"]) == {
        "brunca",
        "huetar_norte",
        "central",
        "pacifico_central",
    }


def test_labels_come_from_the_head_then_the_members_majority(imported: ImportResult) -> None:
    rural, no_head = household_row(imported, "rural01"), household_row(imported, "nohead02")
    urban, unlabelled = household_row(imported, "urban03"), household_row(imported, "nolabel04")
    assert (rural["label_level"], rural["label_poor"]) == (2.0, 1.0)
    assert (no_head["label_level"], no_head["label_poor"]) == (1.0, 1.0)  # two of three say 1
    assert (urban["label_level"], urban["label_poor"]) == (4.0, 0.0)  # the head's 4, not the son's 3
    assert np.isnan(unlabelled["label_level"]) and np.isnan(unlabelled["label_poor"])


def test_tied_members_give_the_poorer_level() -> None:
    labels = household_labels(
        pd.Series(["h", "h", "k"]), pd.Series([False, False, True]), pd.Series([3.0, 2.0, 7.0])
    )
    assert labels.loc["h", "label_level"] == 2.0 and labels.loc["h", "targets_disagree"]
    assert np.isnan(labels.loc["k", "label_level"])  # 7 is not a Target level


def test_household_mapping(imported: ImportResult) -> None:
    rural, no_head = household_row(imported, "rural01"), household_row(imported, "nohead02")
    urban, owned = household_row(imported, "urban03"), household_row(imported, "nolabel04")
    assert (rural["village_id"], rural["region"], rural["area"]) == ("brunca", "brunca", "rural")
    assert (urban["village_id"], urban["area"]) == ("central", "urban")
    assert rural["head_sex"] == "male" and urban["head_sex"] == "female" and pd.isna(no_head["head_sex"])
    assert [rural["housing_structure"], no_head["housing_structure"]] == ["earth_wood", "brick_wood"]
    assert [urban["housing_structure"], owned["housing_structure"]] == [
        "brick_concrete",
        "reinforced_concrete",
    ]
    # bad walls (rural) or a bad roof (no head) make a dangerous house; a bad floor alone would not
    assert [rural["dangerous_house"], no_head["dangerous_house"], urban["dangerous_house"]] == [1, 1, 0]
    assert [rural["safe_drinking_water"], no_head["safe_drinking_water"]] == [0.0, 1.0]
    assert [rural["electricity"], no_head["electricity"], urban["electricity"]] == [0.0, 1.0, 1.0]
    assert [rural["toilet"], no_head["toilet"], urban["toilet"]] == [0.0, 1.0, 1.0]
    assert [rural["cooking_fuel"], no_head["cooking_fuel"], urban["cooking_fuel"]] == [
        "firewood",
        "other",
        "gas",
    ]
    assert [rural["tenure"], no_head["tenure"], urban["tenure"], owned["tenure"]] == [
        "precarious",
        "other",
        "rented",
        "owned",
    ]
    assert urban["rent_paid"] == 12 * 120000.0 and rural["rent_paid"] == 0.0 and owned["rent_paid"] == 0.0
    assert rural["durable_assets"] == 0 + 1 + 0 + 2 + 0  # fridge, TV, computer, phones, tablets
    assert urban["durable_assets"] == 1 + 1 + 1 + 3 + 2
    assert (rural["rooms"], rural["bedrooms"], no_head["household_size"]) == (2.0, 1.0, 3.0)
    assert [rural["wall_state"], rural["roof_state"], rural["floor_state"]] == ["bad", "regular", "bad"]
    assert [no_head["wall_state"], no_head["roof_state"], urban["floor_state"]] == ["regular", "bad", "good"]
    assert [rural["floor_material"], no_head["floor_material"], urban["floor_material"]] == [
        "natural",
        "cement",
        "tiles",
    ]
    assert rural["ceiling"] == 1.0 and (rural["mobile_phones"], urban["mobile_phones"]) == (2.0, 3.0)


def test_mixed_yes_no_columns_are_numbers(imported: ImportResult) -> None:
    rural, no_head = household_row(imported, "rural01"), household_row(imported, "nohead02")
    urban = household_row(imported, "urban03")
    assert (rural["dependency"], rural["edjefe"], rural["edjefa"]) == (1.0, 1.0, 0.0)
    assert (no_head["dependency"], no_head["edjefe"]) == (2.0, 0.0)
    assert (urban["dependency"], urban["edjefe"], urban["edjefa"]) == (0.5, 0.0, 14.0)
    households = imported.survey.households
    assert all(households[name].dtype == np.float64 for name in ("dependency", "edjefe", "edjefa"))


def test_raw_columns_are_kept_as_extras(imported: ImportResult) -> None:
    households = imported.survey.households
    for column in ("paredmad", "epared1", "eviv1", "pisonatur", "hacdor", "v2a1", "lugar4", "elimbasu3"):
        assert column in households.columns
    assert household_row(imported, "rural01")["paredmad"] == 1
    for person_column in ("Id", "escolari", "parentesco1", "Target", "SQBage", "agesq"):
        assert person_column not in households.columns


def test_member_mapping(imported: ImportResult) -> None:
    members = imported.survey.members.set_index("member_id")
    assert len(members) == 8
    assert members.loc["ID_r1", "relation_to_head"] == "head"
    assert members.loc["ID_u2", "relation_to_head"] == "child"  # stepson
    assert members.loc["ID_n2", "relation_to_head"] == "grandchild"
    assert members.loc["ID_n3", "relation_to_head"] == "other"
    assert members.loc["ID_r2", "sex"] == "female" and members.loc["ID_r2", "disability"] == 1.0
    assert members.loc["ID_u1", "education_years"] == 14.0 and members.loc["ID_u1", "age"] == 50.0
    assert members.loc["ID_n1", "school_years_behind"] == 2.0
    assert np.isnan(members.loc["ID_r1", "school_years_behind"])
    assert members.loc["ID_n1", "education_level"] == "primary_incomplete"
    assert members.loc["ID_n2", "marital_status"] == "under_10"
    assert "in_school" not in members.columns  # not derivable from this survey
    assert (members["round"] == 0).all()


def test_features_of_the_imported_survey(imported: ImportResult) -> None:
    survey = imported.survey
    features = build_features(survey.households, survey.members, load_policy())
    rural, no_head, urban = (features.loc[(key, 0)] for key in ("rural01", "nohead02", "urban03"))
    assert rural["persons_per_room"] == 1.0 and rural["persons_per_bedroom"] == 2.0
    assert np.isnan(urban["persons_per_bedroom"])  # no bedroom recorded
    assert rural["no_toilet"] == 1.0 and rural["tenure_precarious"] == 1.0
    assert urban["rent_per_capita"] == 12 * 120000.0 / 2
    assert no_head["share_children"] == pytest.approx(2 / 3)
    assert no_head["schooling_gap"] == 1.0 and urban["schooling_gap"] == 1.0
    assert rural["share_disabled"] == 0.5 and np.isnan(rural["schooling_gap"])
    assert rural["housing_state_score"] == pytest.approx(0.5 / 3) and urban["housing_state_score"] == 1.0
    assert rural["floor_finished"] == 0.0 and urban["floor_finished"] == 1.0 and rural["no_ceiling"] == 0.0
    assert rural["mobile_phones_per_capita"] == 1.0
    assert (rural["head_age"], rural["head_education_years"]) == (41.0, 1.0)
    assert np.isnan(no_head["head_age"])  # no head row
    assert urban["mean_member_education_years"] == (14 + 6) / 2


def test_input_frame_is_not_modified() -> None:
    people = pd.DataFrame(ROWS)
    snapshot = people.copy(deep=True)
    costa_rica_survey(people)
    pd.testing.assert_frame_equal(people, snapshot)


def test_parse_yes_no_number() -> None:
    parsed = parse_yes_no_number(pd.Series(["yes", "no", "8", ".33333334", None, "YES ", "maybe"]))
    np.testing.assert_allclose(parsed.to_numpy(), [1, 0, 8, 0.33333334, NAN, 1, NAN], equal_nan=True)
    assert parsed.dtype == np.float64


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CostaRicaFormatError, match="no such file"):
        import_costa_rica(tmp_path / "absent.csv")


def test_a_gbk_file_is_refused_with_the_command_that_converts_it(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes("Id,idhogar,parentesco1,Target,备注\nID_1,h1,1,4,户主\n".encode("gbk"))
    with pytest.raises(CostaRicaFormatError) as raised:
        import_costa_rica(path)
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path} is not UTF-8")
    assert "looks like GBK/GB18030" in message and "iconv -f GB18030 -t UTF-8" in message


def test_a_csv_without_the_household_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    pd.DataFrame(ROWS).drop(columns=["idhogar", "Target"]).to_csv(path, index=False)
    with pytest.raises(CostaRicaFormatError, match=r"missing column\(s\) \['idhogar', 'Target'\]"):
        import_costa_rica(path)


def test_rows_without_a_household_id_are_refused() -> None:
    people = pd.DataFrame(ROWS)
    people.loc[0, "idhogar"] = None
    with pytest.raises(CostaRicaFormatError, match="1 row\\(s\\) without idhogar"):
        costa_rica_survey(people)


# -------------------------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_the_real_file_matches_its_provenance() -> None:
    path = costa_rica_train_csv()
    if not path.is_file():
        pytest.skip(f"shared Costa Rica data absent: {path}")
    result = import_costa_rica(path)
    assert result.log["persons"] == 9_557
    assert result.log["households"] == 2_988
    assert result.log["households_without_head"] == 15
    assert result.log["households_with_disagreeing_targets"] == 85
    assert result.log["households_without_label"] == 0
    survey = result.survey
    report = validate_survey(survey)
    assert report.ok, report.summary()
    assert len(survey.members) == 9_557
    assert set(survey.households["label_level"]) == {1.0, 2.0, 3.0, 4.0}
    features = build_features(survey.households, survey.members, load_policy())
    assert len(features) == 2_988
    new_indicators = [
        "share_children",
        "share_elderly",
        "share_disabled",
        "persons_per_room",
        "persons_per_bedroom",
        "no_toilet",
        "rent_per_capita",
        "tenure_precarious",
        "durable_assets_per_capita",
    ]
    assert features[new_indicators].notna().all().all()
    assert features["schooling_gap"].notna().sum() > 1_000  # households with a 7-17 year-old
