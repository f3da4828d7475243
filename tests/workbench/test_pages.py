"""The workbench's pages, tier 2: the Starlette app mounted at /app as the service mounts it, on a real
SQLite store (register, flags, accounts) and the trained models; a test client plays the browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, update
from starlette.testclient import TestClient

from serving.scoring import score_registered
from store.accounts import access_entries
from store.cases import Flag, list_flags
from store.register import registered_household
from workbench.security import CSRF_FIELD, LANGUAGE_COOKIE, SESSION_COOKIE

from .conftest import CADRE_VILLAGES, COUNTY, PASSWORD, Clock, csrf_of, household_in, log_in


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/app/", f"/app/households/{COUNTY}/H000001"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/app/login"


def test_login_page_is_chinese_first_with_a_csrf_token_and_safe_headers(client: TestClient) -> None:
    page = client.get("/app/login")
    assert page.status_code == 200
    assert "登录工作台" in page.text and 'name="username"' in page.text and 'name="password"' in page.text
    assert csrf_of(page.text)
    policy = page.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    )
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert page.text.count("<script") == page.text.count('<script src="/app/static/') == 2  # the site's own
    assert "http://" not in page.text and "https://" not in page.text


def test_login_sets_a_strict_http_only_cookie(client: TestClient) -> None:
    response = log_in(client, "li.cadre")
    assert response.status_code == 303 and response.headers["location"] == "/app/"
    cookie = next(
        value for value in response.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/app" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS it is Secure (next test)


def test_behind_tls_the_cookie_is_secure(client: TestClient) -> None:
    form = client.get("/app/login")
    response = client.post(
        "/app/login",
        data={"username": "li.cadre", "password": PASSWORD, CSRF_FIELD: csrf_of(form.text)},
        headers={"x-forwarded-proto": "https"},
    )
    cookie = next(
        value for value in response.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE)
    )
    assert "Secure" in cookie


def test_a_login_form_without_its_token_is_refused(client: TestClient) -> None:
    client.get("/app/login")
    response = client.post("/app/login", data={"username": "li.cadre", "password": PASSWORD})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_a_wrong_password_says_so_and_five_lock_the_account(client: TestClient, store_engine: Engine) -> None:
    response = log_in(client, "wang.township", "not the password")
    assert response.status_code == 401 and "用户名或密码错误" in response.text
    for _ in range(4):
        response = log_in(client, "wang.township", "not the password")
    assert response.status_code == 401 and "账户已锁定" in response.text
    assert log_in(client, "wang.township").status_code == 401  # locked even with the right one
    failed = access_entries(store_engine)
    assert {"login_wrong", "login_locked"} <= set(failed.loc[failed["user_id"] == "wang.township", "action"])
    from store.accounts import reset_password

    reset_password(store_engine, "wang.township", PASSWORD)


def test_the_cadre_worklist_holds_her_villages_only_overdue_first(
    as_user: Callable[[str], TestClient], store_engine: Engine, clock: Clock
) -> None:
    open_flags = list_flags(store_engine, county=COUNTY, villages=CADRE_VILLAGES)
    late = str(open_flags.sort_values("poverty_risk")["household_id"].iloc[0])  # the lowest risk
    with store_engine.begin() as connection:
        connection.execute(
            update(Flag)
            .where(Flag.household_id == late, Flag.county_id == COUNTY)
            .values(created_at=clock.now - timedelta(days=20))
        )
    page = as_user("li.cadre").get("/app/")
    assert page.status_code == 200
    listed = re.findall(r'<span class="hh">([^<]+)</span>', page.text)
    assert sorted(listed) == sorted(open_flags["household_id"])
    assert listed[0] == late and "逾期 5 天" in page.text
    assert "V0003" not in page.text
    assert "待办" in page.text and "待入户核实" in page.text
    assert not re.search(r"\b(flagged|poor|marginal|sudden_hardship|not_monitored)\b", page.text)


def test_the_household_page_shows_the_registers_answer_and_records_the_view(
    as_user: Callable[[str], TestClient], store_engine: Engine, loaded: Any
) -> None:
    household = household_in(store_engine, CADRE_VILLAGES)
    page = as_user("li.cadre").get(f"/app/households/{COUNTY}/{household}")
    assert page.status_code == 200, page.text
    expected = score_registered(loaded, registered_household(store_engine, COUNTY, household), "zh")
    assert f"{expected.poverty_risk:.2f}" in page.text and f"{expected.relapse_risk:.2f}" in page.text
    assert expected.category_rule in page.text and expected.main_cause.label in page.text
    for reason in expected.reasons:
        assert reason.sentence in page.text
        assert f"（风险{reason.effect_pp:+.1f}个百分点）" in page.text  # its effect, never log-odds
        assert f"{reason.contribution}" not in page.text
    for measure in expected.measures:
        assert measure.name in page.text
    assert "<svg" in page.text and "第 0 轮" in page.text  # the chart over the rounds
    assert "模型预警发现" in page.text  # its case, found by the model
    views = access_entries(store_engine, county_id=COUNTY, household_id=household)
    assert views.iloc[0][["user_id", "action", "allowed"]].tolist() == ["li.cadre", "view_household", True]


def test_another_villages_household_is_403_and_the_attempt_recorded(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = household_in(store_engine, CADRE_VILLAGES, outside=True)
    page = as_user("li.cadre").get(f"/app/households/{COUNTY}/{household}")
    assert page.status_code == 403 and "无权查看" in page.text
    assert "本次访问已记录" in page.text
    refused = access_entries(store_engine, county_id=COUNTY, household_id=household)
    assert refused.iloc[0][["user_id", "allowed"]].tolist() == ["li.cadre", False]


def test_the_monitor_sees_every_village_and_the_township_its_own(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    household = household_in(store_engine, CADRE_VILLAGES, outside=True)
    client = as_user("zhao.monitor")
    assert client.get(f"/app/households/{COUNTY}/{household}").status_code == 200
    assert client.get(f"/app/households/C2/{household}").status_code == 403  # another county


def test_an_analyst_sees_no_household(as_user: Callable[[str], TestClient], store_engine: Engine) -> None:
    client = as_user("an.analyst")
    assert "分析员" in client.get("/app/").text
    household = household_in(store_engine, CADRE_VILLAGES)
    assert client.get(f"/app/households/{COUNTY}/{household}").status_code == 403


def test_search_opens_a_household_of_her_villages_only(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    mine = household_in(store_engine, CADRE_VILLAGES)
    found = client.get("/app/", params={"q": mine})
    assert found.status_code == 303 and found.headers["location"] == f"/app/households/{COUNTY}/{mine}"
    other = household_in(store_engine, CADRE_VILLAGES, outside=True)
    assert client.get("/app/", params={"q": other}).status_code == 404


def test_logout_needs_its_token_and_ends_the_session(as_user: Callable[[str], TestClient]) -> None:
    client = as_user("li.cadre")
    page = client.get("/app/")
    assert client.post("/app/logout", data={}).status_code == 403
    response = client.post("/app/logout", data={CSRF_FIELD: csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/app/login?m=bye"
    assert client.get("/app/").status_code == 303


def test_a_session_ends_when_idle(as_user: Callable[[str], TestClient], clock: Clock) -> None:
    client = as_user("li.cadre")
    clock.now += timedelta(hours=3)
    response = client.get("/app/")
    assert response.status_code == 303 and response.headers["location"] == "/app/login?m=expired"


def test_english_by_a_switch(as_user: Callable[[str], TestClient], store_engine: Engine) -> None:
    client = as_user("li.cadre")
    switched = client.get("/app/language", params={"to": "en", "next": "/app/"})
    assert switched.status_code == 303 and switched.headers["location"] == "/app/"
    assert client.cookies.get(LANGUAGE_COOKIE) == "en"
    page = client.get("/app/")
    assert "Worklist" in page.text and "awaiting a visit" in page.text and "待办" not in page.text
    household = household_in(store_engine, CADRE_VILLAGES)
    assert "Risk of being poor now" in client.get(f"/app/households/{COUNTY}/{household}").text


def test_the_language_switch_never_redirects_off_the_site(client: TestClient) -> None:
    for target in ("https://example.org/", "//example.org/", "/\\example.org"):
        response = client.get("/app/language", params={"to": "en", "next": target})
        assert response.headers["location"] == "/app/"


def test_an_unknown_page_is_a_404_in_words(as_user: Callable[[str], TestClient]) -> None:
    response = as_user("li.cadre").get("/app/no-such-page")
    assert response.status_code == 404 and "找不到页面" in response.text


def test_a_county_worklist_comes_in_pages(as_user: Callable[[str], TestClient], store_engine: Engine) -> None:
    open_cases = list_flags(store_engine, county=COUNTY, statuses=("flagged", "verified", "assisted"))
    assert len(open_cases) > 100, "the test county should fill more than one page"
    client = as_user("zhao.monitor")
    first = re.findall(r'<span class="hh">([^<]+)</span>', client.get("/app/").text)
    second = re.findall(r'<span class="hh">([^<]+)</span>', client.get("/app/", params={"page": 2}).text)
    assert len(first) == 100 and not set(first) & set(second)
    assert len(first) + len(second) == min(len(open_cases), 200)


def test_what_if_shows_both_risks_before_and_after_a_change(
    as_user: Callable[[str], TestClient], store_engine: Engine, loaded: Any
) -> None:
    from serving.schemas import MemberChange, WhatIfChanges
    from serving.scoring import what_if_registered

    household = household_in(store_engine, CADRE_VILLAGES)
    client = as_user("li.cadre")
    path = f"/app/households/{COUNTY}/{household}/whatif"
    form = client.get(path)
    assert form.status_code == 200 and "参加城乡居民基本医疗保险" in form.text and "户主" in form.text
    registered = registered_household(store_engine, COUNTY, household)
    member = str(registered.members[registered.members["round"] == 2]["member_id"].iloc[0])
    page = client.get(path, params={"insurance": "1", "member": member, "months": "10", "medical": "500"})
    assert page.status_code == 200, page.text
    expected = what_if_registered(
        loaded,
        registered,
        WhatIfChanges(
            household={"medical_insurance": True, "medical_expenses": 500.0},
            members=[MemberChange(member_id=member, changes={"migrant_work_months": 10.0})],
        ),
        "zh",
    )
    on_page = score_registered(loaded, registered, "zh")
    assert expected.before.poverty_risk == on_page.poverty_risk  # "now" is the household page's answer
    for value in (expected.before.poverty_risk, expected.after.poverty_risk, expected.after.relapse_risk):
        assert f"{value:.2f}" in page.text
    for reason in expected.after.reasons:
        assert reason.sentence in page.text
    assert (
        access_entries(store_engine, county_id=COUNTY, household_id=household).iloc[0]["action"] == "what_if"
    )


def test_a_what_if_without_a_change_or_with_a_bad_number_says_so(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    path = f"/app/households/{COUNTY}/{household_in(store_engine, CADRE_VILLAGES)}/whatif"
    unchanged = client.get(path, params={"insurance": "0"})
    assert unchanged.status_code == 400 and "请至少改变一项情况" in unchanged.text
    bad = client.get(path, params={"medical": "-3", "member": "no-such-member"})
    assert (
        bad.status_code == 400
        and "全年医疗支出（元）应为 0 到" in bad.text
        and "外出务工月数应为" in bad.text
    )
    outside = household_in(store_engine, CADRE_VILLAGES, outside=True)
    assert (
        client.get(f"/app/households/{COUNTY}/{outside}/whatif", params={"insurance": "1"}).status_code == 403
    )
