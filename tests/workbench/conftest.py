"""The workbench's fixtures: the serving tests' small county and models, a register holding the county
(`C1`) with round 2's flags in the flag store, and one account per role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from serving.batch import score_round
from store.accounts import add_user
from store.cases import list_flags, upsert_flags
from store.database import create_schema, make_engine
from store.register import ingest_survey, read_register
from survey.io import Survey
from survey.validate import conform
from tests.serving import conftest as serving
from workbench.app import WorkbenchSettings, build_workbench
from workbench.security import CSRF_FIELD

# the serving tests' fixtures: the small county, its trained models, the registry, the API keys
policy, county, trained, loaded = serving.policy, serving.county, serving.trained, serving.loaded
registry, api_keys = serving.registry, serving.api_keys
other_county, county_trained = serving.other_county, serving.county_trained

COUNTY = "C1"
ROUND = 2
PASSWORD = "a long enough password"
CADRE_VILLAGES = ("V0001", "V0002")
FLAGGED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACCOUNTS: dict[str, dict[str, Any]] = {
    "li.cadre": {"role": "cadre", "county_id": COUNTY, "villages": CADRE_VILLAGES},
    "wang.township": {"role": "township", "county_id": COUNTY, "townships": ("T01",)},
    "zhao.monitor": {"role": "monitor", "county_id": COUNTY},
    "an.analyst": {"role": "analyst"},
}


def fill_store(engine: Engine, county: Survey, loaded: Any) -> None:
    """The county in the register, round 2's flags (zh) in the flag store, and the accounts."""
    create_schema(engine)
    ingest_survey(engine, county, COUNTY, source="test", by="test")
    flags = score_round(loaded.predictor, conform(read_register(engine, COUNTY)), ROUND, lang="zh")
    upsert_flags(engine, flags.assign(county_id=COUNTY))
    for user_id, account in ACCOUNTS.items():
        add_user(engine, user_id, password=PASSWORD, now=FLAGGED_AT, **account)


@pytest.fixture(scope="module")
def store_engine(county: Survey, loaded: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('workbench') / 'povrisk.db'}")
    fill_store(engine, county, loaded)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def store_path(store_engine: Engine) -> Path:
    return Path(str(store_engine.url.database))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(store_engine: Engine, loaded: Any, clock: Clock) -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Mount("/app", app=build_workbench(WorkbenchSettings(store_engine, lambda: loaded, clock=clock)))
        ]
    )
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def log_in(client: TestClient, user: str, password: str = PASSWORD) -> Any:
    client.cookies.clear()  # another person on the same test browser
    form = client.get("/app/login")
    return client.post(
        "/app/login", data={"username": user, "password": password, CSRF_FIELD: csrf_of(form.text)}
    )


@pytest.fixture
def as_user(client: TestClient) -> Callable[[str], TestClient]:
    def logged_in(user: str) -> TestClient:
        response = log_in(client, user)
        assert response.status_code == 303, response.text
        return client

    return logged_in


def household_in(engine: Engine, villages: tuple[str, ...] | None, outside: bool = False) -> str:
    """A household flagged in round 2, inside (or outside) the villages given."""
    flags = list_flags(engine, county=COUNTY, round=2)
    inside = flags["village_id"].isin(villages or ())
    return str(flags.loc[~inside if outside else inside, "household_id"].iloc[0])
