"""Exports of the case list (workbench.exports): XLSX and CSV with a byte-order mark, in the reader's
language, scoped to the account's area."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
from openpyxl import load_workbook
from sqlalchemy import Engine
from starlette.testclient import TestClient

from features.policy import ProcedureDeadlines
from monitoring.causes import load_cause_settings
from store.accounts import access_entries
from store.cases import list_flags
from workbench.exports import cases_table, csv_bytes, xlsx_bytes

from .conftest import CADRE_VILLAGES, COUNTY

NOW = datetime(2026, 12, 20, 3, 0, tzinfo=UTC)


def _flags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": ["H1", "H2"],
            "village_id": ["V1", "V2"],
            "round": [2, 2],
            "category": ["poor", "insufficient_data"],
            "risk_tier": ["high", None],
            "status": ["flagged", "monitored"],
            "channel": ["model", "declaration"],
            "main_cause": ["illness", None],
            "poverty_risk": [0.81234, 0.2],
            "relapse_risk": [0.1, float("nan")],
            "created_at": [NOW - timedelta(days=17), NOW - timedelta(days=40)],
        }
    )


def test_the_case_table_is_in_words_in_the_readers_language() -> None:
    table = cases_table(_flags(), {"V1": "T01"}, load_cause_settings(), NOW, ProcedureDeadlines(), "zh")
    assert list(table.columns)[:4] == ["户编号", "村", "乡镇", "调查轮次"]
    first, second = table.to_dict("records")
    assert (first["监测类别"], first["风险等级"], first["状态"], first["主要致贫原因"]) == (
        "贫困",
        "高",
        "待入户核实",
        "因病",
    )
    assert first["逾期天数"] == 2 and first["乡镇"] == "T01"
    assert second["风险等级"] == "无（数据不足）" and second["发现渠道"] == "农户自主申报"
    assert pd.isna(second["逾期天数"]) and second["认定期限"] == ""  # monitored: identified
    english = cases_table(_flags(), {}, load_cause_settings(), NOW, ProcedureDeadlines(), "en")
    assert "household" in english.columns and english.iloc[0]["status"] == "awaiting a visit"


def test_xlsx_and_csv_hold_the_same_table() -> None:
    table = cases_table(_flags(), {}, load_cause_settings(), NOW, ProcedureDeadlines(), "zh")
    sheet = load_workbook(io.BytesIO(xlsx_bytes(table, "监测案件")), read_only=True)["监测案件"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(table.columns) and rows[1][0] == "H1" and rows[2][-1] is None
    data = csv_bytes(table)
    assert data.startswith(b"\xef\xbb\xbf")
    again = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(again.columns) == list(table.columns) and again.iloc[0]["户编号"] == "H1"


def test_an_export_holds_the_accounts_area_only_and_is_recorded(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    cadre = as_user("li.cadre")
    response = cadre.get("/app/exports/cases.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(
        load_workbook(io.BytesIO(response.content), read_only=True).active.iter_rows(values_only=True)
    )
    households = {row[0] for row in rows[1:]}
    mine = list_flags(store_engine, county=COUNTY, villages=CADRE_VILLAGES)
    assert households == set(mine.loc[~mine["status"].isin(["rejected", "risk_eliminated"]), "household_id"])
    assert {row[1] for row in rows[1:]} <= set(CADRE_VILLAGES)
    csv_response = cadre.get("/app/exports/cases.csv")
    assert (
        csv_response.content.startswith(b"\xef\xbb\xbf")
        and "text/csv" in csv_response.headers["content-type"]
    )
    log = access_entries(store_engine)
    assert {"export_cases"} <= set(log.loc[log["user_id"] == "li.cadre", "action"])
    assert as_user("an.analyst").get("/app/exports/cases.xlsx").status_code == 403


def test_the_dashboard_tables_export_as_sheets_and_as_csv_in_the_readers_area(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    monitor = as_user("zhao.monitor")
    page = monitor.get("/app/dashboard")
    assert "/app/exports/dashboard.xlsx" in page.text and "dashboard.csv?table=villages" in page.text
    workbook = load_workbook(io.BytesIO(monitor.get("/app/exports/dashboard.xlsx").content), read_only=True)
    assert workbook.sheetnames[:2] == ["各村", "各乡镇"] and "在办案件所处步骤" in workbook.sheetnames
    villages = list(workbook["各村"].iter_rows(values_only=True))
    assert villages[0][:3] == ("乡镇/村", "在办案件", "逾期")
    open_cases = list_flags(store_engine, county=COUNTY)
    open_cases = open_cases[~open_cases["status"].isin(["rejected", "risk_eliminated"])]
    assert sum(row[1] for row in villages[1:]) == len(open_cases)
    mix = list(workbook["各村在办案件：发现渠道与监测类别"].iter_rows(values_only=True))
    channels = [
        index for index, name in enumerate(mix[0]) if name in ("模型预警", "农户自主申报", "部门信息推送")
    ]
    assert channels and sum(row[i] for row in mix[1:] for i in channels) == len(open_cases)
    assert sum(sum(row[1:]) for row in mix[1:]) == 2 * len(open_cases)  # once by channel, once by category

    cadre = as_user("li.cadre")
    response = cadre.get("/app/exports/dashboard.csv", params={"table": "villages", "lang": "en"})
    assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
    assert set(table.iloc[:, 0].astype(str)) <= set(CADRE_VILLAGES)  # her villages only
    assert cadre.get("/app/exports/dashboard.csv", params={"table": "secrets"}).status_code == 404
    assert as_user("an.analyst").get("/app/exports/dashboard.xlsx").status_code == 403
    log = access_entries(store_engine)
    assert "export_dashboard" in set(log.loc[log["user_id"] == "li.cadre", "action"])
