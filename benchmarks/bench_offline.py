"""The workbench without a signal (issue 15's budgets: the sync of 200 queued visits <= 5 s on the service;
the offline copy of a 250-household village <= 5 MB on the phone).

A county (default 25,000 households in 100 villages, 3 rounds) is ingested into a SQLite register, round 2
scored with models trained on a small county and its flags written to the flag store. In process through
the ASGI app (Starlette's test client, as bench_workbench.py):
- `offline_village_copy`: a cadre of the village whose household count is nearest 250 asks for what her
  phone keeps (the manifest's pages and assets, and the village's bundle of household pages); the bytes
  are what the phone's cache stores (bodies, uncompressed), with the time the bundle took;
- `offline_sync_200_visits`: a cadre of enough villages to hold 200 open cases sends 200 visits queued
  offline (a note each; every second one corrects the wage income, so it is scored again on arrival) as
  the phone sends them (chunks of 100), then the same 200 again (every one a duplicate).

Run: .venv/bin/python benchmarks/bench_offline.py [--households N] [--villages V]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import uuid
from pathlib import Path

from _common import emit, peak_rss_mb, seconds
from bench_workbench import PASSWORD, county_in_store, loaded_models, log_in

CHUNK = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=25_000)
    parser.add_argument("--villages", type=int, default=100)
    arguments = parser.parse_args()

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from features.policy import load_policy
    from store.accounts import add_user
    from store.cases import list_flags
    from workbench.app import WorkbenchSettings, build_workbench

    models = loaded_models(load_policy())
    with tempfile.TemporaryDirectory(prefix="povrisk-bench-") as folder:
        engine, county, _, _ = county_in_store(Path(folder), arguments.households, arguments.villages, models)
        latest = county.households[county.households["round"] == 2]
        sizes = latest["village_id"].value_counts()
        village = str((sizes - 250).abs().idxmin())
        cases = list_flags(engine, county="bench", statuses=("flagged",))
        busiest = cases["village_id"].value_counts()
        enough = busiest.index[: int((busiest.cumsum() < 200).sum()) + 1].astype(str).tolist()
        add_user(engine, "bench.cadre", "cadre", PASSWORD, county_id="bench", villages=[village])
        add_user(engine, "bench.visits", "cadre", PASSWORD, county_id="bench", villages=enough)
        app = Starlette(
            routes=[Mount("/app", app=build_workbench(WorkbenchSettings(engine, lambda: models)))]
        )
        with TestClient(app, follow_redirects=False) as client:
            log_in(client, "bench.cadre")
            manifest = client.get("/app/offline/manifest").json()
            kept_bytes = sum(len(client.get(path).content) for path in manifest["pages"] + manifest["assets"])
            bundle_s, answer = seconds(lambda: client.get(manifest["bundles"][0]))
            bundle = answer.json()
            sent_bytes = int(answer.headers.get("content-length", len(answer.content)))
            pages = bundle["pages"]
            page_bytes = sum(len(html.encode()) for html in pages.values())
            emit(
                "offline_village_copy",
                village_households=int(sizes[village]),
                pages=len(pages),
                cache_mb=round((kept_bytes + page_bytes) / 1e6, 3),
                household_pages_mb=round(page_bytes / 1e6, 3),
                largest_page_kb=round(max(len(html.encode()) for html in pages.values()) / 1e3, 1),
                bundle_seconds=round(bundle_s, 3),
                bundle_sent_mb=round(sent_bytes / 1e6, 3),
                bundle_encoding=answer.headers.get("content-encoding", "identity"),
                budget_mb=5,
                peak_rss_mb=peak_rss_mb(),
            )

            client.cookies.clear()
            log_in(client, "bench.visits")
            page = client.get("/app/").text
            token = re.search(r'data-csrf="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            grant = client.post("/app/offline/grant", headers={"x-csrf-token": token}).json()["grant"]
            mine = cases[cases["village_id"].isin(enough)].head(200)
            visits = [
                {
                    "key": str(uuid.uuid4()),
                    "grant": grant,
                    "user": "bench.visits",
                    "kind": "step",
                    "made_at": "2026-12-06T09:00:00Z",
                    "seen_at": "2026-12-06T08:00:00Z",
                    "fields": {
                        "case": str(case["id"]),
                        "version": str(case["version"]),
                        "status": "flagged",
                        "step": "visit_at_risk",
                        "note": f"入户核实 {case['household_id']}",
                        **({"fix.income_wages": "1200"} if number % 2 == 0 else {}),
                    },
                }
                for number, case in enumerate(mine.to_dict("records"))
            ]

            def sync_all() -> list[str]:
                outcomes = []
                for start in range(0, len(visits), CHUNK):
                    answer = client.post("/app/sync", json={"submissions": visits[start : start + CHUNK]})
                    outcomes += [result["outcome"] for result in answer.json()["results"]]
                return outcomes

            sync_s, outcomes = seconds(sync_all)
            again_s, again = seconds(sync_all)
        emit(
            "offline_sync_200_visits",
            visits=len(visits),
            rescored=len(visits[::2]),
            applied=outcomes.count("applied"),
            other_outcomes=sorted({o for o in outcomes if o != "applied"}),
            seconds=round(sync_s, 3),
            duplicates_again=again.count("duplicate"),
            again_seconds=round(again_s, 3),
            budget_seconds=5,
            peak_rss_mb=peak_rss_mb(),
        )


if __name__ == "__main__":
    main()
