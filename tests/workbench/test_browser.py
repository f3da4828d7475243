"""The workbench in a real browser, tier 3: Debian's Chromium driven by Playwright against a real
`bentoml serve` of the service (the workbench mounted at /app), its store a SQLite file holding the
county in the register, round 2's flags and one account per role.

Screenshots of the main pages at phone (360x740) and desktop size go to `screenshots/` (README)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from serving.launch import running_service
from store.cases import list_flags
from store.database import make_engine
from tests.browser import DESKTOP, PHONE, SCREENSHOTS, chromium_path

from .conftest import CADRE_VILLAGES, COUNTY, PASSWORD, fill_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(
    registry: str,
    api_keys: dict[str, Any],
    county: Any,
    loaded: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("browser")
    database = f"sqlite:///{folder / 'povrisk.db'}"
    engine = make_engine(database)
    fill_store(engine, county, loaded)
    flags = list_flags(engine, county=COUNTY, round=2)
    engine.dispose()
    environment = {
        "POVRISK_API_KEYS_FILE": str(api_keys["path"]),
        "POVRISK_DB_URL": database,
        "POVRISK_MODEL_CACHE": str(folder / "cache"),
        "POVRISK_LOG_SALT": "test-salt",
        "BENTOML_HOME": str(folder / "bentoml-home"),
    }
    with running_service(tracking_uri=registry, log=folder / "serve.log", environment=environment) as url:
        yield {"url": url, "flags": flags, "database": database}


@pytest.fixture(scope="module")
def store_url(served: dict[str, Any]) -> str:
    return str(served["database"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


class Visit:
    """A browser context that remembers every request it made."""

    def __init__(self, browser: Any, base_url: str, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, base_url=base_url, locale="zh-CN")
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()

    def log_in(self, user: str) -> None:
        self.page.goto("/app/")
        assert self.page.url.endswith("/app/login")
        self.page.fill("#username", user)
        self.page.fill("#password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/app/$"))

    def shoot(self, name: str, full_page: bool = True) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()


def _households(flags: Any, inside: bool) -> list[str]:
    mine = flags["village_id"].isin(CADRE_VILLAGES)
    return flags.loc[mine if inside else ~mine, "household_id"].astype(str).tolist()


def test_a_cadre_on_a_phone_sees_her_villages_and_opens_a_household(
    browser: Any, served: dict[str, Any]
) -> None:
    visit = Visit(browser, served["url"], PHONE)
    try:
        visit.page.goto("/")
        assert "povrisk" in visit.page.title() and visit.page.get_by_text("进入工作台").count() == 1
        visit.shoot("phone-landing")
        visit.log_in("li.cadre")
        listed = visit.page.locator(".work .hh").all_inner_texts()
        assert sorted(listed) == sorted(_households(served["flags"], inside=True))
        assert visit.page.locator("h1").inner_text() == "待办"
        visit.shoot("phone-worklist", full_page=False)
        visit.page.locator(".work a").first.click()
        visit.page.wait_for_url(re.compile(r".*/app/households/C1/.+"))
        assert visit.page.get_by_text("致贫风险（现在）").count() == 1
        assert visit.page.locator("svg.chart").count() == 1
        width = visit.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
        visit.shoot("phone-household")
        visit.page.get_by_text("假设分析").click()
        visit.page.check("input[name=insurance]")
        visit.page.fill("#medical", "0")
        visit.page.click("form.card button[type=submit]")
        visit.page.wait_for_url(re.compile(r".*/whatif\?.*insurance=1.*"))
        assert visit.page.get_by_text("如果这样").count() == 1
        visit.shoot("phone-whatif")
        outsider = _households(served["flags"], inside=False)[0]
        refused = visit.page.goto(f"/app/households/{COUNTY}/{outsider}")
        assert refused is not None and refused.status == 403
        forged = visit.context.request.post(f"{served['url']}/app/logout", form={"csrf_token": "forged"})
        assert forged.status == 403
        assert all(url.startswith(served["url"]) for url in visit.requests), [
            url for url in visit.requests if not url.startswith(served["url"])
        ]
    finally:
        visit.close()


def test_the_pages_at_desktop_size_make_no_request_off_the_service(
    browser: Any, served: dict[str, Any]
) -> None:
    visit = Visit(browser, served["url"], DESKTOP)
    try:
        visit.page.goto("/docs")
        assert visit.page.get_by_text("POST /score", exact=True).count() == 1
        visit.shoot("desktop-api-docs")
        visit.log_in("zhao.monitor")
        visit.shoot("desktop-worklist", full_page=False)
        visit.page.goto("/app/dashboard")
        assert visit.page.locator("h1").inner_text() == "监测总览"
        visit.shoot("desktop-dashboard")
        household = _households(served["flags"], inside=False)[0]
        visit.page.goto(f"/app/households/{COUNTY}/{household}")
        visit.page.get_by_text("English").click()
        visit.page.wait_for_load_state()
        assert visit.page.get_by_text("Risk of being poor now").count() == 1
        visit.shoot("desktop-household-en")
        assert all(url.startswith(served["url"]) for url in visit.requests)
    finally:
        visit.close()


def test_a_case_moves_through_the_procedure_in_the_browser(
    browser: Any, served: dict[str, Any], store_url: str
) -> None:
    """A cadre on her phone records the visit, the village review and starts the notice; the notice's
    days pass (its end moved into the past in the store); the township reviews and the county approves
    at their desks; the case history names each of them."""
    household = _households(served["flags"], inside=True)[-1]
    cadre = Visit(browser, served["url"], PHONE)
    try:
        cadre.log_in("li.cadre")
        cadre.page.goto(f"/app/households/{COUNTY}/{household}")
        cadre.page.fill("textarea[name=note]", "入户核实：户主住院，家中无劳动力")
        cadre.page.get_by_text("入户核实：更正登记信息").click()  # the visit's findings, on the same form
        cadre.page.fill("input[name='fix.income_wages']", "0")
        cadre.page.locator("select[name$='.health_status']").first.select_option("serious_illness")
        cadre.page.locator("details.visit-fix").scroll_into_view_if_needed()
        cadre.shoot("phone-visit", full_page=False)
        cadre.page.click("button[value=visit_at_risk]")
        cadre.page.wait_for_url(re.compile(r".*done=visit_at_risk"))
        assert cadre.page.get_by_text("已记录：入户核实：存在风险").count() == 1
        history = cadre.page.locator("#cases").inner_text()
        assert "更正登记信息：" in history and "大病" in history and "按更正后的情况重新评估" in history
        cadre.page.click("button[value=village_review]")
        cadre.page.wait_for_url(re.compile(r".*done=village_review"))
        cadre.page.click("button[value=start_notice]")
        cadre.page.wait_for_url(re.compile(r".*done=start_notice"))
        assert cadre.page.get_by_text("公示期：").count() == 1
        cadre.shoot("phone-case-notice")
        village = str(served["flags"].set_index("household_id").loc[household, "village_id"])
        cadre.page.goto(f"/app/villages/{village}/notice")
        cadre.page.emulate_media(media="print")
        assert cadre.page.locator("header.bar").is_hidden()  # the print layout drops the page's header
        cadre.page.pdf(path=str(SCREENSHOTS / "notice-a4.pdf"), format="A4")
        cadre.page.set_viewport_size(DESKTOP)
        cadre.shoot("print-notice")
    finally:
        cadre.close()
    _notice_has_run(store_url, household)
    monitored_before = _dashboard_count(browser, served["url"], "纳入监测")
    for user, step in (("wang.township", "township_review"), ("zhao.monitor", "county_approve")):
        desk = Visit(browser, served["url"], DESKTOP)
        try:
            desk.log_in(user)
            desk.page.goto(f"/app/households/{COUNTY}/{household}")
            desk.page.click(f"button[value={step}]")
            desk.page.wait_for_url(re.compile(rf".*done={step}"))
            if step == "county_approve":
                history = desk.page.locator("#cases").inner_text()
                for who in ("li.cadre（村干部）", "wang.township（乡镇）", "zhao.monitor（县级监测）"):
                    assert who in history
                assert "已纳入监测，待登记帮扶" in history
                desk.shoot("desktop-case-history")
        finally:
            desk.close()
    assert _dashboard_count(browser, served["url"], "纳入监测") == monitored_before + 1


def _dashboard_count(browser: Any, url: str, name: str) -> int:
    """A count at the top of the county dashboard, as the monitor sees it."""
    desk = Visit(browser, url, DESKTOP)
    try:
        desk.log_in("zhao.monitor")
        desk.page.goto("/app/dashboard")
        chip = desk.page.locator("ul.counts li", has_text=name).inner_text()
        return int(chip.split()[0])
    finally:
        desk.close()


def _notice_has_run(store_url: str, household: str) -> None:
    """Time, controlled: the case's public notice ends a second ago."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from store.cases import Flag

    engine = make_engine(store_url)
    with engine.begin() as connection:
        connection.execute(
            update(Flag)
            .where(Flag.county_id == COUNTY, Flag.household_id == household)
            .values(notice_ends=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
