"""Ingest of one round of a county into the household register (issue 12): the second round of a
simulated county of 155,000 households (and their members) read from its folder, validated, compared
with the round before it (read back from the register) and written in one transaction,
into SQLite and into PostgreSQL (when it answers at POVRISK_TEST_PG_URL, default 127.0.0.1:5432/test).
Each backend runs in a child process of its own, so that its peak memory is its own. JSON lines:
seconds (read, validate + write), household rows per second, peak RSS of the child; targets 30 s on
PostgreSQL, 60 s on SQLite, 2 GB.

Run: .venv/bin/python benchmarks/bench_ingest.py [--households N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pandas as pd
from _common import emit, peak_rss_mb, seconds
from sqlalchemy import create_engine, make_url, text

from survey.io import Survey

PG_URL = os.environ.get("POVRISK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def ingest_once(folder: Path, url: str, backend: str) -> None:
    """The child: ingest the folder's first round as county "bench" (untimed), then time reading the
    second round's folder and ingesting it (its summary reads the first round back from the register)."""
    from store.database import create_schema, make_engine
    from store.register import ingest_survey
    from survey.io import read_survey

    engine = make_engine(url)
    create_schema(engine)
    ingest_survey(engine, read_survey(folder / "round-0"), "bench", source="round 0", by="bench")
    read_s, survey = seconds(lambda: read_survey(folder / "round-1"))
    ingest_s, _ = seconds(lambda: ingest_survey(engine, survey, "bench", source=str(folder), by="bench"))
    emit(
        f"ingest_{backend}",
        households=len(survey.households),
        members=0 if survey.members is None else len(survey.members),
        read_s=read_s,
        ingest_s=ingest_s,
        households_per_s=len(survey.households) / ingest_s,
        peak_rss_mb=peak_rss_mb(),
    )


def _one_round(survey: Survey, round_: int) -> Survey:
    def rows(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame[frame["round"] == round_]

    households = rows(survey.households)
    assert households is not None
    return Survey(households, rows(survey.members), survey.villages, verification=rows(survey.verification))


def _child(folder: Path, url: str, backend: str) -> None:
    command = [sys.executable, __file__, "--child", str(folder), "--url", url, "--backend", backend]
    subprocess.run(command, check=True)


def _postgres_schema_url() -> tuple[str, str] | None:
    schema = f"povrisk_bench_{uuid.uuid4().hex[:8]}"
    try:
        with create_engine(PG_URL).begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # the server is optional for the benchmark: say it was skipped
        emit("ingest_postgresql", skipped=type(error).__name__)
        return None
    scoped = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=155_000)
    parser.add_argument("--child", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--backend")
    arguments = parser.parse_args()
    if arguments.child:
        ingest_once(arguments.child, arguments.url, arguments.backend)
        return

    from survey.io import write_survey
    from survey.simulate import CountySettings, simulate_county

    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir) / "rounds"
        settings = CountySettings(households=arguments.households, rounds=2, seed=0, monte_carlo_draws=0)
        county = simulate_county(settings)
        for round_ in (0, 1):
            write_survey(_one_round(county, round_), folder / f"round-{round_}")
        _child(folder, f"sqlite:///{Path(workdir) / 'register.db'}", "sqlite")
        postgres = _postgres_schema_url()
        if postgres is not None:
            schema, url = postgres
            try:
                _child(folder, url, "postgresql")
            finally:
                with create_engine(PG_URL).begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
