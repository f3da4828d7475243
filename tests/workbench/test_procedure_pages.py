"""The monitoring procedure through the workbench's forms, tier 2: each role takes its steps on a case,
out of order or out of scope is refused, the notice runs its days, objections and declarations are kept,
and the case history names every step's user and role."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from starlette.testclient import TestClient

from store.accounts import access_entries
from store.cases import flag_history, list_flags

from .conftest import CADRE_VILLAGES, COUNTY, Clock, csrf_of, household_in

STEP_FORM = re.compile(
    r'<form method="post" action="/app/cases/(\d+)/steps".*?name="version" value="(\d+)">'
    r'\s*<input type="hidden" name="status" value="([a-z_]+)">',
    re.S,
)


def _page(client: TestClient, household: str) -> Any:
    page = client.get(f"/app/households/{COUNTY}/{household}")
    assert page.status_code == 200, page.text
    return page


def _step(client: TestClient, household: str, step: str, note: str = "", **override: str) -> Any:
    """Take `step` through the case form on the household's page, as a person would."""
    page = _page(client, household)
    match = STEP_FORM.search(page.text)
    assert match, f"no step form on {household}'s page"
    flag_id, version, status = match.groups()
    data = {
        "csrf_token": csrf_of(page.text),
        "version": version,
        "status": status,
        "step": step,
        "note": note,
    }
    return client.post(f"/app/cases/{flag_id}/steps", data={**data, **override})


def _fresh(engine: Engine, index: int) -> str:
    """The index-th household of the cadre's villages with a case still awaiting its visit in the
    fixture's store (each test takes its own, since they share the store)."""
    flags = list_flags(engine, county=COUNTY, round=2).sort_values("id")
    mine = flags[flags["village_id"].isin(CADRE_VILLAGES)]
    return str(mine["household_id"].iloc[index])


def _case(engine: Engine, household: str) -> Any:
    return list_flags(engine, county=COUNTY, household=household).iloc[0]


def test_a_case_goes_from_discovery_to_monitoring_through_every_role(
    as_user: Callable[[str], TestClient], store_engine: Engine, clock: Clock
) -> None:
    household = _fresh(store_engine, 0)
    cadre = as_user("li.cadre")
    assert "入户核实：存在风险" in _page(cadre, household).text
    done = _step(cadre, household, "visit_at_risk", "房屋为危房，户主大病")
    assert done.status_code == 303 and done.headers["location"].endswith("?done=visit_at_risk")
    assert "已记录：入户核实：存在风险" in cadre.get(done.headers["location"]).text
    assert _step(cadre, household, "village_review").status_code == 303
    assert _step(cadre, household, "start_notice").status_code == 303
    notice = _page(cadre, household).text
    assert "公示期：" in notice and "登记公示异议" in notice

    township = as_user("wang.township")
    early = _step(township, household, "township_review")
    assert early.status_code == 409 and "公示期未满" in early.text
    clock.now += timedelta(days=6)
    township = as_user("wang.township")  # a new day, a new session
    assert _step(township, household, "township_review").status_code == 303

    cadre_again = as_user("li.cadre")
    page = _page(cadre_again, household)
    assert "等待县级监测处理" in page.text and not STEP_FORM.search(page.text)  # no button for her
    case = _case(store_engine, household)
    forged = {"csrf_token": csrf_of(page.text), "version": str(case["version"]), "step": "county_approve"}
    refused = cadre_again.post(f"/app/cases/{int(case['id'])}/steps", data=forged)
    assert refused.status_code == 409 and "“村干部”不能进行“县级审批：纳入监测”" in refused.text
    monitor = as_user("zhao.monitor")
    assert _step(monitor, household, "county_approve").status_code == 303

    case = _case(store_engine, household)
    assert case["status"] == "monitored"
    steps = flag_history(store_engine, int(case["id"]))
    assert list(zip(steps["to_status"], steps["by"], steps["role"], strict=True))[1:] == [
        ("verified", "li.cadre", "cadre"),
        ("village_reviewed", "li.cadre", "cadre"),
        ("notice_running", "li.cadre", "cadre"),
        ("township_reviewed", "wang.township", "township"),
        ("monitored", "zhao.monitor", "monitor"),
    ]
    history_text = _page(monitor, household).text
    assert "wang.township（乡镇）" in history_text and "房屋为危房，户主大病" in history_text


def test_a_step_out_of_order_says_why(as_user: Callable[[str], TestClient], store_engine: Engine) -> None:
    household = _fresh(store_engine, 1)
    cadre = as_user("li.cadre")
    response = _step(cadre, household, "start_notice")
    assert response.status_code == 409 and "不能进行“开始村内公示”" in response.text


def test_closing_a_case_needs_a_reason_and_a_township_may_reopen_it(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = _fresh(store_engine, 2)
    cadre = as_user("li.cadre")
    assert "需要填写理由" in _step(cadre, household, "visit_not_at_risk").text
    assert _step(cadre, household, "visit_not_at_risk", "家庭收入稳定，已有务工").status_code == 303
    assert _case(store_engine, household)["status"] == "rejected"
    township = as_user("wang.township")
    assert _step(township, household, "reopen", "群众反映新情况").status_code == 303
    assert _case(store_engine, household)["status"] == "flagged"


def test_a_stale_form_is_a_conflict_not_an_overwrite(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = _fresh(store_engine, 3)
    cadre = as_user("li.cadre")
    stale = _page(cadre, household)
    flag_id, version, status = STEP_FORM.search(stale.text).groups()
    assert _step(cadre, household, "visit_at_risk").status_code == 303  # someone else moved it on
    data = {
        "csrf_token": csrf_of(stale.text),
        "version": version,
        "status": status,
        "step": "visit_not_at_risk",
        "note": "不在家",
    }
    response = cadre.post(f"/app/cases/{flag_id}/steps", data=data)
    assert response.status_code == 409 and "已被他人更新" in response.text
    assert _case(store_engine, household)["status"] == "verified"


def test_forms_need_their_token_and_cases_stay_in_scope(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    cadre = as_user("li.cadre")
    mine = _fresh(store_engine, 4)
    page = _page(cadre, mine)
    flag_id = STEP_FORM.search(page.text).group(1)
    forged = cadre.post(f"/app/cases/{flag_id}/steps", data={"step": "visit_at_risk", "note": ""})
    assert forged.status_code == 403
    other = _case(store_engine, household_in(store_engine, CADRE_VILLAGES, outside=True))
    outside = cadre.post(
        f"/app/cases/{int(other['id'])}/steps",
        data={"csrf_token": csrf_of(page.text), "step": "visit_at_risk"},
    )
    assert outside.status_code == 403
    refused = access_entries(store_engine, county_id=COUNTY, household_id=str(other["household_id"]))
    assert not refused.iloc[0]["allowed"]
    assert _case(store_engine, str(other["household_id"]))["status"] == "flagged"


def test_a_declaration_is_scored_and_opens_a_case(
    as_user: Callable[[str], TestClient], store_engine: Engine, county: Any
) -> None:
    flagged = set(list_flags(store_engine, county=COUNTY)["household_id"])
    latest = county.households[county.households["round"] == 2]
    household = str(
        latest.loc[
            latest["village_id"].isin(CADRE_VILLAGES) & ~latest["household_id"].isin(flagged), "household_id"
        ].iloc[0]
    )
    cadre = as_user("li.cadre")
    form = cadre.get("/app/declarations", params={"household": household})
    assert form.status_code == 200 and "大病" in form.text
    data = {
        "csrf_token": csrf_of(form.text),
        "household": household,
        "event": "serious_illness",
        "amount": "30000",
        "note": "户主电话反映：突发脑梗住院",
    }
    response = cadre.post("/app/declarations", data=data)
    assert response.status_code == 303, response.text
    case = _case(store_engine, household)
    assert (case["channel"], case["status"]) == ("declaration", "flagged")
    page = _page(cadre, household).text
    assert "农户自主申报" in page and "户主电话反映：突发脑梗住院" in page
    again = cadre.post("/app/declarations", data={**data, "note": "再次反映"})
    assert again.status_code == 303
    assert len(list_flags(store_engine, county=COUNTY, household=household)) == 1  # never two open cases


def test_a_bad_declaration_names_every_problem(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    cadre = as_user("li.cadre")
    form = cadre.get("/app/declarations")
    outsider = household_in(store_engine, CADRE_VILLAGES, outside=True)
    data = {
        "csrf_token": csrf_of(form.text),
        "household": outsider,
        "event": "meteor",
        "amount": "-5",
        "note": "",
    }
    response = cadre.post("/app/declarations", data=data)
    assert response.status_code == 400
    for problem in ("请选择发生的情况", "金额应为", "请写明情况说明", f"没有户编号为 {outsider}"):
        assert problem in response.text
    assert len(list_flags(store_engine, county=COUNTY, household=outsider)) == 1  # its model case only


def test_an_objection_is_kept_on_the_case_during_the_notice(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = _fresh(store_engine, 5)
    cadre = as_user("li.cadre")
    for step in ("visit_at_risk", "village_review", "start_notice"):
        assert _step(cadre, household, step).status_code == 303
    page = _page(cadre, household)
    flag_id = re.search(r'action="/app/cases/(\d+)/objections"', page.text).group(1)
    response = cadre.post(
        f"/app/cases/{flag_id}/objections",
        data={"csrf_token": csrf_of(page.text), "note": "邻居反映其有轿车"},
    )
    assert response.status_code == 303
    last = flag_history(store_engine, int(flag_id)).iloc[-1]
    assert (last["from_status"], last["to_status"], last["note"]) == (
        "notice_running",
        "notice_running",
        "邻居反映其有轿车",
    )
    assert "登记公示异议（邻居反映其有轿车）" in _page(cadre, household).text


def _dashboard_numbers(client: TestClient) -> dict[str, int]:
    page = client.get("/app/dashboard")
    assert page.status_code == 200, page.text
    counts = re.findall(r"<li[^>]*><strong>(\d+)</strong> ([^<]+)</li>", page.text)
    return {name.strip(): int(value) for value, name in counts}


def test_the_dashboard_counts_follow_the_cases(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    monitor = as_user("zhao.monitor")
    before = _dashboard_numbers(monitor)
    open_cases = list_flags(store_engine, county=COUNTY)
    assert before["在办案件"] == int((~open_cases["status"].isin(["rejected", "risk_eliminated"])).sum())
    page = monitor.get("/app/dashboard").text
    assert "<svg" in page and "T01" in page and "第 1 轮到第 2 轮" in page and "模型预警" in page
    cadre = as_user("li.cadre")
    assert _step(cadre, _fresh(store_engine, 6), "visit_not_at_risk", "收入稳定").status_code == 303
    after = _dashboard_numbers(as_user("zhao.monitor"))
    assert after["在办案件"] == before["在办案件"] - 1
    cadre_view = _dashboard_numbers(as_user("li.cadre"))
    assert cadre_view["在办案件"] < after["在办案件"]  # her villages only


def test_the_village_sheets_list_what_the_meeting_and_the_notice_need_and_nothing_private(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    cadre = as_user("li.cadre")
    on_notice = _fresh(store_engine, 7)
    for step in ("visit_at_risk", "village_review", "start_notice"):
        assert (
            _step(
                cadre, on_notice, step, "户主患病，妻子名叫王芳" if step == "visit_at_risk" else ""
            ).status_code
            == 303
        )
    to_review = _fresh(store_engine, 8)
    assert _step(cadre, to_review, "visit_at_risk").status_code == 303
    village = str(_case(store_engine, on_notice)["village_id"])

    notice = cadre.get(f"/app/villages/{village}/notice")
    assert notice.status_code == 200
    assert "防返贫监测对象公示" in notice.text and on_notice in notice.text and "如有异议" in notice.text
    assert re.search(r"公示期为 \d{4}-\d{2}-\d{2} 至 \d{4}-\d{2}-\d{2}", notice.text)
    case = _case(store_engine, on_notice)
    for private in ("王芳", "户主患病", f"{case['poverty_risk']:.2f}", "li.cadre（"):
        assert private not in notice.text.split("<main>")[1]

    review = cadre.get(f"/app/villages/{_case(store_engine, to_review)['village_id']}/review")
    assert review.status_code == 200 and "民主评议材料" in review.text and to_review in review.text
    assert "拟纳入监测" in review.text

    other_village = household_in(store_engine, CADRE_VILLAGES, outside=True)
    outside = str(_case(store_engine, other_village)["village_id"])
    assert cadre.get(f"/app/villages/{outside}/notice").status_code == 403
    assert cadre.get(f"/app/villages/{outside}/review").status_code == 403


def test_a_department_push_opens_cases_for_matched_rows_and_lists_the_rest(
    as_user: Callable[[str], TestClient], store_engine: Engine, county: Any
) -> None:
    flagged = set(list_flags(store_engine, county=COUNTY)["household_id"])
    latest = county.households[county.households["round"] == 2]
    fresh = latest.loc[~latest["household_id"].isin(flagged), "household_id"].astype(str).tolist()
    joined = _fresh(store_engine, 9)  # has an open case already
    csv_text = "户编号,事项,金额,说明\n" + "\n".join(
        [
            f"{fresh[0]},大病,45000,医保结算单：住院费用",
            f"{fresh[1]},disaster,,洪灾受损",
            f"{joined},serious_illness,8000,",
            "H999999,大病,1000,",
            f"{fresh[2]},彩票中奖,100,",
            f"{fresh[3]},大病,-5,",
        ]
    )
    monitor = as_user("zhao.monitor")
    form = monitor.get("/app/pushes")
    assert form.status_code == 200 and "导入部门推送数据" in form.text
    response = monitor.post(
        "/app/pushes",
        data={"csrf_token": csrf_of(form.text), "department": "县医保局"},
        files={"file": ("医保推送.csv", csv_text.encode("utf-8-sig"), "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert "新开案件 2 件，记入已有案件 1 件；未能使用 3 行" in response.text
    for line, problem in ((5, "没有户编号 H999999"), (6, "事项“彩票中奖”无法识别"), (7, "金额“-5”应在 0 到")):
        assert f"第 {line} 行：" in response.text and problem in response.text
    opened = _case(store_engine, fresh[0])
    assert (opened["channel"], opened["status"]) == ("department", "flagged")
    created = flag_history(store_engine, int(opened["id"])).iloc[0]
    assert created["by"] == "zhao.monitor" and "县医保局" in created["details"]
    assert len(list_flags(store_engine, county=COUNTY, household=joined)) == 1
    cadre = as_user("li.cadre")
    assert cadre.get("/app/pushes").status_code == 403


def test_a_push_file_without_the_needed_columns_is_refused_whole(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    monitor = as_user("zhao.monitor")
    form = monitor.get("/app/pushes")
    before = len(list_flags(store_engine, county=COUNTY))
    response = monitor.post(
        "/app/pushes",
        data={"csrf_token": csrf_of(form.text), "department": "民政局"},
        files={"file": ("list.csv", "姓名,金额\n张三,100\n".encode(), "text/csv")},
    )
    assert response.status_code == 400 and "文件缺少列" in response.text and "户编号" in response.text
    assert len(list_flags(store_engine, county=COUNTY)) == before


def test_bulk_steps_apply_to_all_the_selected_cases_or_to_none(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    cadre = as_user("li.cadre")
    worklist = cadre.get("/app/")
    first, second, moved_on = (_case(store_engine, _fresh(store_engine, index)) for index in (10, 11, 0))
    token = csrf_of(worklist.text)
    refused = cadre.post(
        "/app/cases/bulk",
        data={"csrf_token": token, "case": [str(first["id"]), str(moved_on["id"])], "step": "visit_at_risk"},
    )
    assert refused.status_code == 409 and "全部未执行" in refused.text
    assert _case(store_engine, str(first["household_id"]))["status"] == "flagged"  # nothing applied
    done = cadre.post(
        "/app/cases/bulk",
        data={
            "csrf_token": token,
            "case": [str(first["id"]), str(second["id"])],
            "step": "visit_at_risk",
            "note": "集中入户",
        },
    )
    assert done.status_code == 200 and "已办理 2 件" in done.text
    for case in (first, second):
        assert _case(store_engine, str(case["household_id"]))["status"] == "verified"
    assert (
        cadre.post("/app/cases/bulk", data={"case": [str(first["id"])], "step": "village_review"}).status_code
        == 403
    )


def test_a_sheet_of_field_decisions_is_checked_whole_before_anything_is_applied(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    from workbench.exports import xlsx_bytes

    households = [_fresh(store_engine, index) for index in (12, 13)]
    cadre = as_user("li.cadre")
    form = cadre.get("/app/decisions")
    assert form.status_code == 200 and "导入入户核实结果" in form.text
    bad = pd.DataFrame(
        {
            "户编号": [*households, "H999999"],
            "步骤": ["入户核实：存在风险", "visit_not_at_risk", "入户核实：存在风险"],
            "说明": ["危房", "", ""],
        }
    )
    response = cadre.post(
        "/app/decisions",
        data={"csrf_token": csrf_of(form.text)},
        files={"file": ("decisions.xlsx", xlsx_bytes(bad, "sheet"), "application/octet-stream")},
    )
    assert response.status_code == 409
    assert "第 3 行：" in response.text and "需要填写理由" in response.text and "第 4 行：" in response.text
    assert [_case(store_engine, h)["status"] for h in households] == ["flagged", "flagged"]
    good = bad.iloc[:2].assign(说明=["危房", "已有稳定务工收入"])
    response = cadre.post(
        "/app/decisions",
        data={"csrf_token": csrf_of(form.text)},
        files={"file": ("decisions.xlsx", xlsx_bytes(good, "sheet"), "application/octet-stream")},
    )
    assert response.status_code == 200 and "已办理 2 件" in response.text
    assert [_case(store_engine, h)["status"] for h in households] == ["verified", "rejected"]
    step = flag_history(store_engine, int(_case(store_engine, households[0])["id"])).iloc[-1]
    assert (step["by"], step["role"], step["note"]) == ("li.cadre", "cadre", "危房")
