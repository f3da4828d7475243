"""The workbench's page data and chart, on hand-built frames (workbench.views, workbench.chart)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd

from features.policy import ProcedureDeadlines
from workbench.chart import ChartText, risk_chart
from workbench.views import worklist

NOW = datetime(2026, 12, 20, 3, 0, tzinfo=UTC)  # 11:00 in Beijing


def _flags(**columns: list) -> pd.DataFrame:
    base = {
        "id": [1, 2, 3],
        "county_id": ["C1", "C1", "C1"],
        "household_id": ["H1", "H2", "H3"],
        "village_id": ["V1", "V1", "V2"],
        "round": [2, 2, 2],
        "category": ["marginal", "poor", "sudden_hardship"],
        "risk_tier": ["low", "high", None],
        "status": ["flagged", "flagged", "assisted"],
        "poverty_risk": [0.1, 0.9, 0.5],
        "relapse_risk": [0.3, 0.2, 0.4],
        "created_at": [NOW - timedelta(days=17), NOW - timedelta(days=3), NOW - timedelta(days=30)],
    }
    return pd.DataFrame({**base, **columns})


def test_overdue_cases_come_first_then_the_highest_risk() -> None:
    work = worklist(_flags(), "cadre", NOW, ProcedureDeadlines(), "zh")
    assert [item.household_id for item in work.items] == ["H1", "H2", "H3"]
    assert work.items[0].days_over == 2 and work.items[0].deadline == "逾期 2 天"
    assert work.items[1].deadline == "剩 12 天"
    assert work.items[2].deadline == ""  # being assisted: identified, no identification deadline
    assert work.items[0].next_step == "待入户核实" and work.items[0].actionable
    assert (work.open_count, work.overdue_count, work.actionable_count) == (3, 1, 3)
    assert work.items[2].tier == "无（数据不足）" and work.items[2].category == "突发严重困难"


def test_deadlines_are_counted_in_the_policys_days() -> None:
    # due 15 days after 23:30 Beijing time; at 00:30 the next day it is a day overdue in Beijing, while
    # in UTC both times fall on the same day
    flagged = datetime(2026, 12, 5, 15, 30, tzinfo=UTC)
    frame = _flags(created_at=[flagged] * 3, status=["flagged"] * 3)
    now = datetime(2026, 12, 20, 16, 30, tzinfo=UTC)
    beijing = worklist(frame, "cadre", now, ProcedureDeadlines(), "en")
    utc = worklist(frame, "cadre", now, ProcedureDeadlines(timezone="UTC"), "en")
    assert beijing.items[0].deadline == "1 day(s) overdue"
    assert utc.items[0].deadline == "0 day(s) left"


def test_a_case_waiting_for_another_role_says_for_whom() -> None:
    frame = _flags(status=["township_reviewed", "flagged", "assisted"])
    work = worklist(frame, "cadre", NOW, ProcedureDeadlines(), "zh")
    waiting = next(item for item in work.items if item.household_id == "H1")
    assert not waiting.actionable and waiting.next_step == "乡镇已审核，待县级审批 · 等待县级监测处理"
    assert work.items[0].household_id == "H1"  # overdue still first
    assert work.actionable_count == 2


def test_an_empty_worklist() -> None:
    work = worklist(_flags().iloc[0:0], "cadre", NOW, ProcedureDeadlines(), "en")
    assert work.items == [] and work.open_count == 0 and work.pages == 1


def test_the_chart_leaves_a_gap_where_a_value_is_unknown() -> None:
    text = ChartText("risks", "poverty", "relapse", "income", "round {round}")
    svg = risk_chart([0, 1, 2], [0.2, 0.5, 0.9], [0.1, None, 0.3], [1.5, 0.8, None], text)
    assert svg.startswith("<svg") and "<script" not in svg and "style=" not in svg
    lines = re.findall(r'<polyline points="([^"]+)"', svg)
    assert [len(points.split()) for points in lines] == [3, 1, 1, 2]
    assert "round 2" in svg and "<title>risks</title>" in svg


def test_the_api_page_lists_the_services_own_endpoints_first_in_plain_text() -> None:
    from workbench.landing import api_endpoints

    document = {
        "paths": {
            "/livez": {"get": {"tags": ["Infrastructure"], "description": "Health <code>200</code> check."}},
            "/score": {
                "post": {
                    "tags": ["Service APIs"],
                    "description": "Risk of being poor.",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "properties": {"request": {"$ref": "#/components/schemas/ScoreRequest"}}
                                }
                            }
                        }
                    },
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/x/ScoreResponse"}}}}
                    },
                }
            },
        }
    }
    first, second = api_endpoints(document)
    assert (first["path"], first["request"], first["response"]) == ("/score", "ScoreRequest", "ScoreResponse")
    assert second["text"] == "Health 200 check." and second["infrastructure"]


def test_a_history_row_names_the_step_its_user_and_role_and_no_code() -> None:
    from zoneinfo import ZoneInfo

    from workbench.case_views import step_text

    zone = ZoneInfo("Asia/Shanghai")
    created = {
        "from_status": None,
        "to_status": "flagged",
        "by": "batch-scoring",
        "note": "scored",
        "role": None,
        "details": None,
        "at": NOW,
    }
    visit = {
        "from_status": "flagged",
        "to_status": "verified",
        "by": "li",
        "note": float("nan"),
        "role": "cadre",
        "details": '{"step": "visit_at_risk"}',
        "at": NOW,
    }
    objection = {
        "from_status": "notice_running",
        "to_status": "notice_running",
        "by": "li",
        "note": "有车",
        "role": "cadre",
        "details": '{"kind": "objection"}',
        "at": NOW,
    }
    assert step_text(created, "zh", zone) == "2026-12-20 11:00 模型（批量评分）：模型预警发现"
    assert step_text(visit, "zh", zone) == "2026-12-20 11:00 li（村干部）：入户核实：存在风险"
    assert (
        step_text(objection, "en", zone) == "2026-12-20 11:00 li (village cadre): Record an objection (有车)"
    )
