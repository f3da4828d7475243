"""The workbench without a signal, tier 2 (the routes through Starlette's test client; the browser test
is in test_offline_browser.py): what a cadre's phone keeps, the grant that sends for her, and the sync
that applies each queued submission once, in her area as it is at send time, and answers a case that
moved on with both versions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from starlette.testclient import TestClient

from store.accounts import access_entries, set_disabled
from store.cases import flag_history, list_flags, upsert_flags
from store.offline import receipts
from workbench.offline_pages import CSRF_HEADER

from .conftest import CADRE_VILLAGES, COUNTY, csrf_of, household_in
from .test_procedure_pages import STEP_FORM, _fresh


def _grant(client: TestClient) -> str:
    page = client.get("/app/")
    answer = client.post("/app/offline/grant", headers={CSRF_HEADER: csrf_of(page.text)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["grant"])


def _case_form(client: TestClient, household: str) -> dict[str, str]:
    page = client.get(f"/app/households/{COUNTY}/{household}")
    match = STEP_FORM.search(page.text)
    assert match, page.text
    flag_id, version, status = match.groups()
    return {"case": flag_id, "version": version, "status": status, "rendered_at": "2026-01-01T00:00:00+00:00"}


def _submission(grant: str, kind: str, fields: dict[str, str], user: str = "li.cadre") -> dict[str, Any]:
    return {
        "key": str(uuid.uuid4()),
        "grant": grant,
        "user": user,
        "kind": kind,
        "made_at": "2026-12-06T09:30:00Z",
        "seen_at": fields.get("rendered_at"),
        "fields": fields,
    }


def _sync(client: TestClient, *submissions: dict[str, Any]) -> list[dict[str, Any]]:
    answer = client.post("/app/sync", json={"submissions": list(submissions)})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def _receipts(engine: Engine, key: str) -> int:
    with engine.connect() as connection:
        return len(connection.execute(receipts.select().where(receipts.c.key == key)).all())


def test_the_service_worker_is_served_for_the_whole_app(client: TestClient) -> None:
    worker = client.get("/app/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/app/"
    for name in ("queue-store.js", "offline.js"):
        assert client.get(f"/app/static/{name}").status_code == 200
    texts = client.get("/app/offline/texts.en.json").json()
    assert texts["offline"] == "Offline" and texts["steps"]["visit_at_risk"] and texts["events"]["accident"]
    assert client.get("/app/offline/texts.xx.json").status_code == 404


def test_every_page_carries_only_the_sites_own_script(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    page = client.get(f"/app/households/{COUNTY}/{household_in(store_engine, CADRE_VILLAGES)}").text
    scripts = page.count("<script")
    assert scripts == page.count('<script src="/app/static/') == 2
    assert 'data-user="li.cadre"' in page and 'data-queue="step"' in page


def test_a_cadres_phone_keeps_her_villages_and_nothing_else(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    manifest = client.get("/app/offline/manifest").json()
    assert manifest["villages"] == list(CADRE_VILLAGES)
    assert manifest["bundles"] == [f"/app/offline/villages/{village}" for village in CADRE_VILLAGES]
    answer = client.get(manifest["bundles"][0], headers={"accept-encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"  # a weak signal carries a tenth of the bytes
    bundle = answer.json()
    households = {path.rsplit("/", 1)[1] for path in bundle["pages"]}
    flags = list_flags(store_engine, county=COUNTY, round=2)
    assert households and all(path.startswith(f"/app/households/{COUNTY}/") for path in bundle["pages"])
    in_village = set(flags.loc[flags["village_id"] == CADRE_VILLAGES[0], "household_id"].astype(str))
    assert in_village <= households
    assert not households & set(flags.loc[~flags["village_id"].isin(CADRE_VILLAGES), "household_id"])
    one = next(iter(bundle["pages"].values()))
    assert "<h1>" in one and 'data-user="li.cadre"' in one
    copied = access_entries(store_engine, limit=5_000)
    assert (copied["action"] == "offline_copy").sum() >= len(households)
    other = flags.loc[~flags["village_id"].isin(CADRE_VILLAGES), "village_id"].iloc[0]
    assert client.get(f"/app/offline/villages/{other}").status_code == 403
    assert as_user("zhao.monitor").get("/app/offline/manifest").status_code == 403


def test_a_queued_step_is_applied_once_however_often_it_is_sent(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    grant = _grant(client)
    household = _fresh(store_engine, 0)
    fields = {**_case_form(client, household), "step": "visit_at_risk", "note": "recorded without a signal"}
    submission = _submission(grant, "step", fields)
    client.cookies.clear()  # the session ended meanwhile: the grant alone sends it
    assert [r["outcome"] for r in _sync(client, submission)] == ["applied"]
    assert [r["outcome"] for r in _sync(client, submission)] == ["duplicate"]
    history = flag_history(store_engine, int(fields["case"]))
    assert (history["note"] == "recorded without a signal").sum() == 1
    assert _receipts(store_engine, submission["key"]) == 1
    page = as_user("li.cadre").get(f"/app/households/{COUNTY}/{household}").text
    assert "recorded offline at" in page or "离线记录于" in page


def test_a_form_sent_twice_with_its_key_is_applied_once(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    household = _fresh(store_engine, 1)
    page = client.get(f"/app/households/{COUNTY}/{household}")
    fields = {**_case_form(client, household), "csrf_token": csrf_of(page.text)}
    data = {**fields, "step": "visit_at_risk", "note": "sent twice", "submission_key": str(uuid.uuid4())}
    first = client.post(f"/app/cases/{fields['case']}/steps", data=data)
    again = client.post(f"/app/cases/{fields['case']}/steps", data=data)
    assert first.status_code == again.status_code == 303
    assert (flag_history(store_engine, int(fields["case"]))["note"] == "sent twice").sum() == 1


def test_a_step_on_a_case_that_moved_on_comes_back_with_both_versions(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    cadre = as_user("li.cadre")
    grant = _grant(cadre)
    household = _fresh(store_engine, 2)
    seen = _case_form(cadre, household)
    township = as_user("wang.township")
    page = township.get(f"/app/households/{COUNTY}/{household}")
    moved = township.post(
        f"/app/cases/{seen['case']}/steps",
        data={**seen, "csrf_token": csrf_of(page.text), "step": "visit_at_risk", "note": "township visited"},
    )
    assert moved.status_code == 303
    mine = _submission(grant, "step", {**seen, "step": "visit_at_risk", "note": "cadre's visit"})
    (answer,) = _sync(township, mine)
    assert answer["outcome"] == "conflict"
    conflict = answer["conflict"]
    assert any("township visited" in line for line in conflict["theirs"])
    assert "cadre's visit" in conflict["mine"] and conflict["can_apply"] is False
    kept = _submission(
        grant,
        "note",
        {**seen, "step": "visit_at_risk", "note": "cadre's visit", "fix.medical_expenses": "900"},
    )
    assert [r["outcome"] for r in _sync(township, kept)] == ["applied"]
    history = flag_history(store_engine, int(seen["case"]))
    assert {"township visited", "cadre's visit"} <= set(history["note"].dropna())
    text = as_user("li.cadre").get(f"/app/households/{COUNTY}/{household}").text
    assert "township visited" in text and "cadre&#39;s visit" in text


def test_the_area_and_the_account_are_checked_when_the_phone_sends(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    grant = _grant(client)
    outside = list_flags(store_engine, county=COUNTY, round=2)
    outside = outside[~outside["village_id"].isin(CADRE_VILLAGES)].iloc[0]
    foreign = _submission(
        grant, "step", {"case": str(outside["id"]), "step": "visit_at_risk", "note": "not mine"}
    )
    assert [r["outcome"] for r in _sync(client, foreign)] == ["forbidden"]
    wrong_user = _submission(
        grant, "step", {"case": str(outside["id"]), "step": "visit_at_risk"}, user="wang.township"
    )
    assert [r["outcome"] for r in _sync(client, wrong_user)] == ["unauthorised"]
    broken = {**_submission(grant, "step", {"step": "visit_at_risk"}), "key": "x"}
    (refused,) = _sync(client, broken)
    assert refused["outcome"] == "refused" and "key" in refused["message"]
    assert client.post("/app/sync", content=b"not json").status_code == 400
    assert client.post("/app/offline/grant", headers={CSRF_HEADER: "wrong"}).status_code == 403
    set_disabled(store_engine, "li.cadre")
    try:
        household = _fresh(store_engine, 3)
        late = _submission(
            grant,
            "step",
            {
                "case": str(list_flags(store_engine, county=COUNTY, household=household)["id"].iloc[0]),
                "step": "visit",
            },
        )
        assert [r["outcome"] for r in _sync(client, late)] == ["unauthorised"]
    finally:
        set_disabled(store_engine, "li.cadre", False)


def test_a_queued_declaration_opens_a_case_once_and_a_revoked_grant_sends_nothing(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    client = as_user("li.cadre")
    grant = _grant(client)
    household = _fresh(store_engine, 4)
    fields = {"household": household, "event": "accident", "amount": "3000", "note": "fell from a roof"}
    declared = _submission(grant, "declaration", fields)
    assert [r["outcome"] for r in _sync(client, declared, declared)] == ["applied", "duplicate"]
    history = flag_history(store_engine)
    assert (history["note"] == "fell from a roof").sum() == 1
    bad = _submission(grant, "declaration", {**fields, "event": "lottery", "note": ""})
    (refused,) = _sync(client, bad)
    assert refused["outcome"] == "refused" and refused["message"]
    client.post("/app/offline/grant/revoke", json={"grant": grant})
    again = _submission(grant, "declaration", {**fields, "note": "after revoking"})
    assert [r["outcome"] for r in _sync(client, again)] == ["unauthorised"]


def test_a_step_that_still_fits_is_taken_on_the_new_version_when_she_chooses_hers(
    as_user: Callable[[str], TestClient], store_engine: Engine
) -> None:
    """Batch scoring refreshed the case while her visit waited on the phone (its version moved on, its
    status did not): her visit comes back as a conflict that she may still take, and taking it on the
    version she was shown lands."""
    cadre = as_user("li.cadre")
    grant = _grant(cadre)
    household = _fresh(store_engine, 5)
    seen = _case_form(cadre, household)
    stored = list_flags(store_engine, county=COUNTY, household=household)
    rescored = stored.rename(columns={"reasons": "reasons_json"}).assign(
        poverty_risk=stored["poverty_risk"] * 0.9, county_id=COUNTY
    )
    upsert_flags(store_engine, rescored)
    (answer,) = _sync(cadre, _submission(grant, "step", {**seen, "step": "visit_at_risk", "note": "mine"}))
    assert answer["outcome"] == "conflict" and answer["conflict"]["can_apply"] is True
    conflict = answer["conflict"]
    assert conflict["version"] > int(seen["version"]) and conflict["status"] == "flagged"
    mine = {**seen, "version": str(conflict["version"]), "status": conflict["status"]}
    taken = _submission(grant, "step", {**mine, "step": "visit_at_risk", "note": "mine"})
    assert [r["outcome"] for r in _sync(cadre, taken)] == ["applied"]
    history = flag_history(store_engine, int(seen["case"]))
    assert (history["note"] == "mine").sum() == 1 and history["to_status"].iloc[-1] == "verified"
