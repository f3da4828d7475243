"""A visit's findings through the workbench, tier 2: the facts a cadre corrects at the door become
register amendments (who, when, which case), the case is scored again with them, and batch scoring of
the register, the household page and the case all give the household the same answer afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from serving.batch import scored_round
from serving.scoring import score_registered
from store.amendments import household_amendments
from store.cases import flag_history
from store.register import read_register, registered_household
from survey.validate import conform

from .conftest import COUNTY, ROUND
from .test_procedure_pages import _case, _fresh, _page, _step


def _members(engine: Engine, household: str) -> pd.DataFrame:
    registered = registered_household(engine, COUNTY, household, ROUND)
    assert registered is not None and registered.members is not None
    return registered.members[registered.members["round"] == ROUND]


def test_a_visit_corrects_the_register_and_the_case_is_scored_again(
    as_user: Callable[[str], TestClient], store_engine: Engine, loaded: Any
) -> None:
    household = _fresh(store_engine, 20)
    member = str(_members(store_engine, household)["member_id"].iloc[-1])
    cadre = as_user("li.cadre")
    page = _page(cadre, household).text
    assert "入户核实：更正登记信息" in page and f'name="fix.{member}.health_status"' in page
    before = _case(store_engine, household)

    done = _step(
        cadre,
        household,
        "visit_at_risk",
        "核实收入，成员患大病",
        **{
            "fix.income_wages": "0",
            "fix.medical_insurance": "0",
            f"fix.{member}.health_status": "serious_illness",
        },
    )
    assert done.status_code == 303, done.text

    stored = household_amendments(store_engine, COUNTY, household)
    case = _case(store_engine, household)
    assert set(stored["field"]) <= {"income_wages", "medical_insurance", "health_status"}
    assert "health_status" in set(stored["field"])
    assert set(stored["amended_by"]) == {"li.cadre"} and set(stored["role"]) == {"cadre"}
    assert set(stored["flag_id"]) == {int(case["id"])} and set(stored["round"]) == {ROUND}

    # the register reads the corrected facts, everywhere
    survey = read_register(store_engine, COUNTY)
    row = survey.households.set_index(["household_id", "round"]).loc[(household, ROUND)]
    assert row["income_wages"] == 0.0 and row["medical_insurance"] == 0.0
    members = survey.members.set_index(["household_id", "member_id", "round"])
    assert members.loc[(household, member, ROUND), "health_status"] == "serious_illness"
    as_ingested = read_register(store_engine, COUNTY, amended=False).members.set_index(
        ["household_id", "member_id", "round"]
    )
    assert as_ingested.loc[(household, member, ROUND), "health_status"] != "serious_illness"

    # one answer: the case's new scores = the service's score from the register = batch scoring's
    registered = registered_household(store_engine, COUNTY, household, ROUND)
    assert registered is not None
    service = score_registered(loaded, registered)
    batch = scored_round(loaded.predictor, conform(survey), ROUND)
    position = list(batch.features.index.get_level_values("household_id")).index(household)
    assert case["poverty_risk"] == pytest.approx(service.poverty_risk)
    assert case["poverty_risk"] == pytest.approx(float(batch.scores["poverty_risk"].iloc[position]))
    assert case["relapse_risk"] == pytest.approx(float(batch.scores["relapse_risk"].iloc[position]))
    assert case["poverty_risk"] != pytest.approx(before["poverty_risk"])

    # the case history says what was corrected and what the scores became
    history = flag_history(store_engine, int(case["id"]))
    assert history["to_status"].iloc[-1] == "verified"
    text = _page(cadre, household).text
    assert "更正登记信息：" in text and "大病" in text and "按更正后的情况重新评估：致贫风险" in text
    assert re.search(r"致贫风险 [0-9.]+ → [0-9.]+", text)


def test_a_member_who_left_is_no_longer_in_the_round(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = _fresh(store_engine, 21)
    members = _members(store_engine, household)
    leaving = str(members["member_id"].iloc[-1])
    cadre = as_user("li.cadre")
    done = _step(cadre, household, "visit_at_risk", "", **{f"fix.{leaving}.left_household": "1"})
    assert done.status_code == 303, done.text
    assert leaving not in set(_members(store_engine, household)["member_id"])
    assert "已不在本户生活" in _page(cadre, household).text


def test_bad_corrections_are_named_and_nothing_is_written(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = _fresh(store_engine, 22)
    member = str(_members(store_engine, household)["member_id"].iloc[0])
    cadre = as_user("li.cadre")
    refused = _step(
        cadre,
        household,
        "visit_at_risk",
        "",
        **{
            "fix.income_wages": "三千",
            f"fix.{member}.migrant_work_months": "13",
            f"fix.{member}.health_status": "x",
        },
    )
    assert refused.status_code == 400
    for problem in ("工资性收入（元/年）应为", "外出务工月数应为 0 到 12", "健康状况的取值无效"):
        assert problem in refused.text
    # what she typed is on the page again, the section open: nothing to retype on a phone
    assert 'name="fix.income_wages" maxlength="16" autocomplete="off" value="三千"' in refused.text
    assert (
        f'name="fix.{member}.migrant_work_months" maxlength="16" autocomplete="off" value="13"'
        in refused.text
    )
    assert '<details class="visit-fix" open>' in refused.text
    assert _case(store_engine, household)["status"] == "flagged"
    assert household_amendments(store_engine, COUNTY, household).empty

    # corrections belong to a visit: another step with them is refused whole
    assert _step(cadre, household, "visit_at_risk").status_code == 303
    other = _step(cadre, household, "village_review", "", **{"fix.income_wages": "100"})
    assert other.status_code == 400 and "只有入户核实这一步可以更正登记信息" in other.text
    assert _case(store_engine, household)["status"] == "verified"
    assert household_amendments(store_engine, COUNTY, household).empty


def test_unchanged_values_are_not_amendments(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = _fresh(store_engine, 23)
    registered = registered_household(store_engine, COUNTY, household, ROUND)
    assert registered is not None
    wages = registered.households["income_wages"].iloc[-1]
    cadre = as_user("li.cadre")
    done = _step(cadre, household, "visit_at_risk", "", **{"fix.income_wages": f"{wages}"})
    assert done.status_code == 303
    assert household_amendments(store_engine, COUNTY, household).empty
