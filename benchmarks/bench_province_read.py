"""How a part of a province's round should read its households (issue 16: "the register can be read in
partitions ... an export of a round to a partitioned Parquet dataset, or a partitioned read from
PostgreSQL, whichever measures better").

One county (default 50,000 households, 200 villages, 3 rounds) is simulated and ingested into a SQLite
register and into a fresh schema of the test PostgreSQL server (POVRISK_TEST_PG_URL, default
127.0.0.1:5432/test; dropped after). Round 2 is cut into the parts `store.parts.plan_parts` makes
(default 20,000 households), and each part's households are read `--repeats` times by:
- `province_read_sqlite` / `province_read_postgresql`: `store.register.read_register_villages`;
- `province_read_parquet`: `store.province_export.read_exported_villages`, from the round's export,
  whose one-off cost is `province_export_sqlite` / `province_export_postgresql` (`export_round`).
Each runs in a child process of its own, so its peak memory is its own. Every part read from the
export is checked equal to the database read (`province_export_check`). JSON lines: seconds per part
(mean, min, max), households per second, this process's CPU seconds per part (less moved by other
work on the machine than the wall clock) and the PostgreSQL server's CPU seconds for it, the child's
resident memory before the reads and at its peak, the 1-minute load average at the end (the machine is
shared); the export's seconds, CPU seconds and size.

Run: .venv/bin/python benchmarks/bench_province_read.py [--households N] [--part-households P]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import emit

PG_URL = os.environ.get("POVRISK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COUNTY = "C001"
ROUND = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=50_000)
    parser.add_argument("--villages", type=int, default=200)
    parser.add_argument("--part-households", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="reads of every part, a source")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        CHILDREN[arguments.child](json.loads(arguments.plan.read_text()))
        return
    with tempfile.TemporaryDirectory(prefix="povrisk-bench-province-read-") as folder:
        root = Path(folder)
        plan: dict[str, Any] = {
            "sqlite": f"sqlite:///{root / 'register.db'}",
            "export": str(root / "export"),
            "part_households": arguments.part_households,
            "repeats": arguments.repeats,
        }
        with _postgres_schema() as postgres:
            plan["postgresql"] = postgres
            _county_in_registers(plan, arguments)
            plan["parts"] = _parts(plan["sqlite"], arguments.part_households)
            (root / "plan.json").write_text(json.dumps(plan))
            for child in CHILDREN:
                if child.endswith("postgresql") and postgres is None:
                    continue
                _run_child(child, root / "plan.json")


# ------------------------------------------------------------------------------------------------ set-up


@contextmanager
def _postgres_schema() -> Iterator[str | None]:
    """A URL of a fresh schema on the test PostgreSQL server (None when it does not answer), dropped
    with its tables after."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import OperationalError

    schema = f"povrisk_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        emit("province_read_postgresql", skipped=f"PostgreSQL not reachable at {PG_URL}: {error}")
        admin.dispose()
        yield None
        return
    try:
        yield (
            make_url(PG_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _county_in_registers(plan: dict[str, Any], arguments: Any) -> None:
    """The simulated county ingested into each register (timed: what a round costs to get there)."""
    from store.database import create_schema, make_engine
    from store.register import ingest_survey
    from survey.simulate import CountySettings, simulate_county

    started = time.perf_counter()
    county = simulate_county(
        CountySettings(
            households=arguments.households,
            villages=arguments.villages,
            rounds=3,
            seed=0,
            monte_carlo_draws=10,
        )
    )
    simulated = time.perf_counter() - started
    ingested: dict[str, float] = {}
    for backend in ("sqlite", "postgresql"):
        if plan[backend] is None:
            continue
        engine = make_engine(plan[backend])
        create_schema(engine)
        started = time.perf_counter()
        ingest_survey(engine, county, COUNTY, source="bench", by="bench")
        ingested[f"ingest_{backend}_seconds"] = time.perf_counter() - started
        engine.dispose()
    emit(
        "province_read_setup",
        households=arguments.households,
        rounds=3,
        household_rows=len(county.households),
        member_rows=0 if county.members is None else len(county.members),
        simulate_seconds=simulated,
        **ingested,
    )


def _parts(register: str, part_households: int) -> list[list[str]]:
    from store.database import make_engine
    from store.parts import plan_parts
    from store.register import village_sizes

    engine = make_engine(register)
    parts = plan_parts({COUNTY: village_sizes(engine, COUNTY, ROUND)}, part_households)
    engine.dispose()
    return [list(part.villages) for part in parts]


def _run_child(child: str, plan: Path) -> None:
    """One measurement in a process of its own; its JSON line is passed through."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", child, "--plan", str(plan)],
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"{child} failed ({result.returncode})")


# ------------------------------------------------------------------------------------------ the children


def _read_database(backend: str) -> Callable[[dict[str, Any]], None]:
    def child(plan: dict[str, Any]) -> None:
        from store.register import read_register_villages

        engine, server_clock = _engine_and_server_clock(plan[backend])
        _time_parts(
            f"province_read_{backend}",
            plan,
            lambda v: read_register_villages(engine, COUNTY, ROUND, v),
            server_clock,
        )
        engine.dispose()

    return child


def _engine_and_server_clock(url: str) -> tuple[Any, Callable[[], float] | None]:
    """An engine of `url` and, for a PostgreSQL server on this machine, a clock of the CPU seconds its
    backends serving this engine have used (read from /proc): on a cluster the database server is shared
    by every worker, so its share of a read counts. None for SQLite (its work is in this process)."""
    from sqlalchemy import create_engine, make_url, text

    from store.database import make_engine

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or parsed.host not in ("127.0.0.1", "localhost"):
        return make_engine(url), None
    application = f"povrisk-bench-{os.getpid()}"
    engine = make_engine(parsed.update_query_dict({"application_name": application}).render_as_string(False))
    admin = create_engine(PG_URL)

    def server_cpu_seconds() -> float:
        with admin.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": application}
            ).scalars()
            return sum(_process_cpu_seconds(int(pid)) for pid in pids)

    return engine, server_cpu_seconds


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process of this machine (0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _export(backend: str) -> Callable[[dict[str, Any]], None]:
    def child(plan: dict[str, Any]) -> None:
        from store.province_export import export_round

        engine, server_clock = _engine_and_server_clock(plan[backend])
        folder = Path(plan["export"]) if backend == "sqlite" else Path(plan["export"] + "-" + backend)
        server_started = 0.0 if server_clock is None else server_clock()
        started, cpu_started = time.perf_counter(), time.process_time()
        manifest = export_round(engine, COUNTY, ROUND, folder, households_per_block=plan["part_households"])
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        server = (
            {} if server_clock is None else {"export_server_cpu_seconds": server_clock() - server_started}
        )
        engine.dispose()
        emit(
            f"province_export_{backend}",
            export_seconds=seconds,
            export_cpu_seconds=cpu_seconds,
            **server,
            export_mb=sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20,
            blocks=len(manifest.blocks),
            villages=sum(len(villages) for villages in manifest.blocks),
            peak_rss_mb=_memory_mb("VmHWM"),
            load_average_1m=os.getloadavg()[0],
        )

    return child


def _read_parquet(plan: dict[str, Any]) -> None:
    from store.province_export import read_exported_villages

    folder = Path(plan["export"])
    _time_parts("province_read_parquet", plan, lambda v: read_exported_villages(folder, COUNTY, ROUND, v))


def _check_export(plan: dict[str, Any]) -> None:
    """Every part read from the export equals the database read of it (the figures compare like with like)."""
    import pandas as pd

    from store.database import make_engine
    from store.province_export import read_exported_villages
    from store.register import read_register_villages

    engine = make_engine(plan["sqlite"])
    for villages in plan["parts"]:
        expected = read_register_villages(engine, COUNTY, ROUND, villages)
        got = read_exported_villages(Path(plan["export"]), COUNTY, ROUND, villages)
        for name in ("households", "members", "villages"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(expected, name), check_exact=True)
    engine.dispose()
    emit("province_export_check", parts=len(plan["parts"]), equal_to_database_read=True)


def _time_parts(
    benchmark: str,
    plan: dict[str, Any],
    read: Callable[[list[str]], Any],
    server_clock: Callable[[], float] | None = None,
) -> None:
    """Every part read `repeats` times, in order: seconds per part and households per second (and the
    database server's CPU seconds per part, when `server_clock` tells them)."""
    timings: list[float] = []
    cpu_timings: list[float] = []
    server_timings: list[float] = []
    households = 0
    before_mb = _memory_mb("VmRSS")
    for _ in range(plan["repeats"]):
        for villages in plan["parts"]:
            server_started = 0.0 if server_clock is None else server_clock()
            started, cpu_started = time.perf_counter(), time.process_time()
            survey = read(villages)
            timings.append(time.perf_counter() - started)
            cpu_timings.append(time.process_time() - cpu_started)
            if server_clock is not None:
                server_timings.append(server_clock() - server_started)
            households += int((survey.households["round"] == ROUND).sum())
            del survey
    emit(
        benchmark,
        parts=len(plan["parts"]),
        repeats=plan["repeats"],
        households_per_part=households / len(timings),
        seconds_per_part=sum(timings) / len(timings),
        seconds_per_part_min=min(timings),
        seconds_per_part_max=max(timings),
        households_per_s=households / sum(timings),
        cpu_seconds_per_part=sum(cpu_timings) / len(cpu_timings),
        **(
            {"server_cpu_seconds_per_part": sum(server_timings) / len(server_timings)}
            if server_timings
            else {}
        ),
        rss_before_reads_mb=before_mb,
        peak_rss_mb=_memory_mb("VmHWM"),
        load_average_1m=os.getloadavg()[0],
    )


def _memory_mb(field: str) -> float:
    """This process's resident memory now (VmRSS) or at its peak since it started (VmHWM), MB: not
    `ru_maxrss`, which a child inherits from the process that started it (here one holding a county)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


CHILDREN: dict[str, Callable[[dict[str, Any]], None]] = {
    "read_sqlite": _read_database("sqlite"),
    "read_postgresql": _read_database("postgresql"),
    "export_sqlite": _export("sqlite"),
    "export_postgresql": _export("postgresql"),
    "read_parquet": _read_parquet,
    "check_export": _check_export,
}


if __name__ == "__main__":
    main()
