"""The workbench without a signal in a real browser (Debian's Chromium, Playwright) against a real
`bentoml serve`: a cadre opens her worklist online, loses the signal, opens a household she had not
opened, records a visit and a declaration, reloads, gets the signal back; each reaches the server once; a
case a township moved on meanwhile comes back as a conflict she settles; her phone holds her villages
only; a session that ended with records queued still sends them under her name."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from store.cases import flag_history, list_flags
from store.database import make_engine
from store.offline import receipts

from .conftest import CADRE_VILLAGES, COUNTY
from .test_browser import Visit, browser, served, store_url  # noqa: F401  (the service and browser)

pytestmark = pytest.mark.integration

PAGES_KEPT = (
    "async () => (await (await caches.open('povrisk-pages-v1')).keys()).map(r => new URL(r.url).pathname)"
)
QUEUE = "async () => await self.povriskStore.all('queue')"
READY = "body[data-offline-ready='1']"


def _open_cases(database: str) -> pd.DataFrame:
    engine = make_engine(database)
    try:
        flags = list_flags(engine, county=COUNTY, round=2, statuses=("flagged",))
    finally:
        engine.dispose()
    return flags[flags["village_id"].isin(CADRE_VILLAGES)].sort_values("id")


def _history(database: str) -> pd.DataFrame:
    engine = make_engine(database)
    try:
        return flag_history(engine)
    finally:
        engine.dispose()


def _receipt_keys(database: str) -> list[str]:
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(select(receipts.c.key))]
    finally:
        engine.dispose()


def _queue_emptied(visit: Visit, seconds: float = 60) -> None:
    """Wait until the phone's queue is empty (every submission answered as applied or a duplicate)."""
    for _ in range(int(seconds * 4)):
        if not visit.page.evaluate(QUEUE):
            return
        visit.page.wait_for_timeout(250)
    raise AssertionError(f"the phone's queue still holds {visit.page.evaluate(QUEUE)}")


def _online_and_ready(visit: Visit) -> None:
    visit.page.wait_for_selector(READY, timeout=120_000)


def test_a_visit_and_a_declaration_recorded_offline_reach_the_server_once(
    browser: Any,  # noqa: F811
    served: dict[str, Any],  # noqa: F811
    store_url: str,  # noqa: F811
) -> None:
    cases = _open_cases(store_url)
    visited, declared, contested = (str(h) for h in cases["household_id"].iloc[:3])
    cadre = Visit(browser, served["url"], {"width": 360, "height": 740})
    try:
        cadre.log_in("li.cadre")
        _online_and_ready(cadre)
        kept = cadre.page.evaluate(PAGES_KEPT)
        households = {
            path.rsplit("/", 1)[1] for path in kept if path.startswith(f"/app/households/{COUNTY}/")
        }
        flags = served["flags"]
        theirs = set(flags.loc[~flags["village_id"].isin(CADRE_VILLAGES), "household_id"].astype(str))
        assert {visited, declared, contested} <= households and not households & theirs
        assert "/app/" in kept and "/app/offline/whatif" in kept

        cadre.context.set_offline(True)
        cadre.page.goto(f"/app/households/{COUNTY}/{visited}")  # never opened: the prefetch kept it
        cadre.page.wait_for_selector(READY)
        assert cadre.page.locator("h1").inner_text().endswith(visited)
        assert "离线" in cadre.page.locator("#sync-state").inner_text()
        cadre.page.fill("textarea[name=note]", "离线入户：户主务工中断")
        cadre.page.get_by_text("入户核实：更正登记信息").click()
        cadre.page.fill("input[name='fix.income_wages']", "1200")
        cadre.page.click("button[value=visit_at_risk]")
        cadre.page.wait_for_url(re.compile(r".*\?queued=.+"))
        cadre.page.wait_for_selector(READY)
        assert cadre.page.get_by_text("已保存在手机上，联网后发送。").count() == 1
        assert cadre.page.get_by_text("更正的情况将在发送后重新评估风险。", exact=False).count() == 1
        cadre.shoot("phone-offline-queued")

        cadre.page.goto(f"/app/declarations?household={declared}")
        assert cadre.page.input_value("#household") == declared
        cadre.page.select_option("#event", "accident")
        cadre.page.fill("#amount", "3000")
        cadre.page.fill("#note", "离线申报：意外受伤")
        cadre.page.click("form[data-queue=declaration] button[type=submit]")
        cadre.page.wait_for_url(re.compile(r".*\?queued=.+"))

        cadre.page.goto(f"/app/households/{COUNTY}/{contested}/whatif")
        assert cadre.page.get_by_text("离线时无法重新计算风险").count() == 1
        cadre.page.goto(f"/app/households/{COUNTY}/{contested}")
        cadre.page.fill("textarea[name=note]", "离线入户：家中无人")
        cadre.page.click("button[value=visit_at_risk]")
        cadre.page.wait_for_url(re.compile(r".*\?queued=.+"))

        cadre.page.reload()  # the queue survives a reload (and the page comes from the phone)
        cadre.page.wait_for_selector(READY)
        queued = cadre.page.evaluate(QUEUE)
        assert len(queued) == 3 and {item["state"] for item in queued} == {"waiting"}
        assert cadre.page.locator("#queue .queued").count() == 3
        assert "3 条待发送" in cadre.page.locator("#sync-state").inner_text()
        cadre.shoot("phone-offline-queue")

        township = Visit(browser, served["url"], {"width": 1280, "height": 900})
        try:  # meanwhile, at the township office, the contested case is moved on
            township.log_in("wang.township")
            township.page.goto(f"/app/households/{COUNTY}/{contested}")
            township.page.fill("textarea[name=note]", "乡镇已入户核实")
            township.page.click("button[value=visit_at_risk]")
            township.page.wait_for_url(re.compile(r".*done=visit_at_risk"))
        finally:
            township.close()

        cadre.context.set_offline(False)
        cadre.page.wait_for_selector("#queue .queued.conflict", timeout=60_000)
        assert cadre.page.get_by_text("2 条离线记录已发送。").count() == 1
        conflict = cadre.page.locator("#queue .queued.conflict").inner_text()
        assert "乡镇已入户核实" in conflict and "离线入户：家中无人" in conflict
        cadre.shoot("phone-offline-conflict")

        cadre.page.click("#logout button")  # a record still waits: warned, not lost
        assert "还有 1 条记录未发送" in cadre.page.locator("dialog.ask").inner_text()
        cadre.page.click("dialog.ask button.secondary")
        assert cadre.page.url.endswith(f"/{contested}") or "queued=" in cadre.page.url

        cadre.page.click("button[data-choice=theirs]")
        _queue_emptied(cadre)

        history = _history(store_url)
        for note in ("离线入户：户主务工中断", "离线申报：意外受伤", "离线入户：家中无人", "乡镇已入户核实"):
            assert (history["note"] == note).sum() == 1, note
        assert len(_receipt_keys(store_url)) == 4  # hers three, and the township's form (keyed by the script)
        cadre.page.goto(f"/app/households/{COUNTY}/{contested}")
        case_text = cadre.page.locator("#cases").inner_text()
        assert "乡镇已入户核实" in case_text and "离线记录的“入户核实：存在风险”未执行" in case_text
        cadre.page.goto(f"/app/households/{COUNTY}/{visited}")
        assert "离线记录于" in cadre.page.locator("#cases").inner_text()
        assert "按更正后的情况重新评估" in cadre.page.locator("#cases").inner_text()  # scored on arrival

        # the same visit sent again (a retry after a lost answer)
        replayed = next(item for item in queued if item["fields"].get("note") == "离线入户：户主务工中断")
        cadre.page.evaluate("async (item) => await self.povriskStore.put('queue', item)", replayed)
        cadre.page.reload()
        _queue_emptied(cadre)
        assert cadre.page.locator("#queue .error").count() == 0
        assert sorted(_receipt_keys(store_url)) == sorted(set(_receipt_keys(store_url)))
        assert (_history(store_url)["note"] == replayed["fields"]["note"]).sum() == 1
        assert all(url.startswith(served["url"]) for url in cadre.requests)
    finally:
        cadre.close()


def test_records_queued_when_the_session_ended_are_sent_under_their_author(
    browser: Any,  # noqa: F811
    served: dict[str, Any],  # noqa: F811
    store_url: str,  # noqa: F811
) -> None:
    household = str(_open_cases(store_url)["household_id"].iloc[-1])
    phone = Visit(browser, served["url"], {"width": 360, "height": 740})
    try:
        phone.log_in("li.cadre")
        _online_and_ready(phone)
        phone.context.set_offline(True)
        phone.page.goto(f"/app/households/{COUNTY}/{household}")
        phone.page.fill("textarea[name=note]", "会话结束前的离线记录")
        phone.page.click("button[value=visit_at_risk]")
        phone.page.wait_for_url(re.compile(r".*\?queued=.+"))
        phone.context.clear_cookies()  # her session ended while she was out of signal
        phone.context.set_offline(False)
        phone.page.goto("/app/")
        phone.page.wait_for_url(re.compile(r".*/app/login.*"))
        _queue_emptied(phone)
        sent = _history(store_url)
        row = sent[sent["note"] == "会话结束前的离线记录"]
        assert len(row) == 1 and row["by"].iloc[0] == "li.cadre"

        phone.log_in("wang.township")  # another person on the same phone: none of her pages stay
        phone.page.wait_for_selector(READY)
        assert not [path for path in phone.page.evaluate(PAGES_KEPT) if path.startswith("/app/households/")]
    finally:
        phone.close()
