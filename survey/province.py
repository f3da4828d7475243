"""A simulated province: many counties, each a county as `survey.simulate` makes one (its own villages and
households), its income level and trend drawn around the seed county's, written as one Parquet dataset
partitioned by county and round (hive layout, what Dask and pyarrow read by partition):

    DIR/province.json                                   the settings and each county's level and trend
    DIR/households/county_id=C001/round=0/part-0.parquet
    DIR/members/county_id=C001/round=0/part-0.parquet   (likewise truth, verification)
    DIR/villages/county_id=C001/part-0.parquet

The partition keys are not repeated inside the files. Counties are simulated and written one at a time
(a province never sits in memory whole); the folder appears only once every county is written. A county
is read back as a canonical survey (`read_province_county`), e.g. to ingest it into the register.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from survey.io import Survey, SurveyReadError
from survey.simulate import CountySettings, World, load_world, simulate_county

MANIFEST = "province.json"
ROUND_TABLES = ("households", "members", "truth", "verification")
COUNTY_TABLES = ("villages",)
LEVEL_FIELDS = (
    "migrant_monthly_wage",
    "local_wage",
    "crop_net_per_mu",
    "livestock_net_per_unit",
    "business_median_net",
)
"""What a county's income level scales: the earnings of its work, crops, livestock and businesses."""
TREND_FIELDS = (
    "migrant_wage_growth",
    "local_wage_growth",
    "crop_growth",
    "livestock_growth",
    "business_growth",
)
"""What a county's trend shifts: the yearly growth of the same."""
PROVINCE_STREAM = 7_919


@dataclass(frozen=True)
class ProvinceSettings:
    """A province: `counties` counties of `county` each (its households, villages, rounds, noise), the
    seed county's seed, and how far counties' income levels (log scale, sd) and yearly growth (sd, added
    to the seed county's) spread around it."""

    counties: int
    county: CountySettings
    level_sd: float = 0.15
    trend_sd: float = 0.01

    def __post_init__(self) -> None:
        if not 1 <= self.counties <= 999:
            raise ValueError(f"ProvinceSettings.counties must be from 1 to 999, got {self.counties}")
        if self.level_sd < 0 or self.trend_sd < 0:
            raise ValueError("ProvinceSettings.level_sd and trend_sd must be >= 0")


@dataclass(frozen=True)
class ProvinceCounty:
    """One county of a province: its id, settings (its own seed) and income level and trend."""

    county_id: str
    settings: CountySettings
    level: float
    trend: float


def county_id(number: int) -> str:
    return f"C{number + 1:03d}"


def province_counties(settings: ProvinceSettings) -> list[ProvinceCounty]:
    """Every county's id, seed, level and trend, drawn from the province's seed (pure)."""
    rng = np.random.default_rng([settings.county.seed, PROVINCE_STREAM])
    levels = np.exp(rng.normal(0.0, settings.level_sd, settings.counties))
    trends = rng.normal(0.0, settings.trend_sd, settings.counties)
    return [
        ProvinceCounty(
            county_id=county_id(number),
            settings=replace(settings.county, seed=settings.county.seed * 1_000 + number),
            level=float(levels[number]),
            trend=float(trends[number]),
        )
        for number in range(settings.counties)
    ]


def county_world(county: ProvinceCounty, world: World) -> World:
    """The seed county's world with this county's income level and trend."""
    changes: dict[str, Any] = {name: float(getattr(world, name)) * county.level for name in LEVEL_FIELDS}
    changes.update({name: float(getattr(world, name)) + county.trend for name in TREND_FIELDS})
    return replace(world, **changes)


def simulate_province(
    settings: ProvinceSettings, world: World | None = None
) -> Iterator[tuple[ProvinceCounty, Survey]]:
    """The province's counties, simulated one at a time."""
    base = world or load_world()
    for county in province_counties(settings):
        yield county, simulate_county(county.settings, county_world(county, base))


def write_province(
    settings: ProvinceSettings,
    path: Path,
    world: World | None = None,
    progress: Callable[[ProvinceCounty, Survey], None] | None = None,
) -> list[ProvinceCounty]:
    """Simulate the province and write it into folder `path` (replacing one there only once complete)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"not a folder: {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.writing-", dir=target.parent))
    counties = []
    layouts: dict[str, dict[str, Any]] = {}
    try:
        for county, survey in simulate_province(settings, world):
            layouts = layouts or _layouts(survey)
            _write_county(staging, county.county_id, survey)
            counties.append(county)
            if progress is not None:
                progress(county, survey)
        manifest = {
            "kind": "province",
            "settings": {
                "counties": settings.counties,
                "level_sd": settings.level_sd,
                "trend_sd": settings.trend_sd,
                "county": asdict(settings.county),
            },
            "counties": [
                {"county_id": c.county_id, "seed": c.settings.seed, "level": c.level, "trend": c.trend}
                for c in counties
            ],
            "tables": layouts,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counties


def _layouts(survey: Survey) -> dict[str, dict[str, Any]]:
    """Each round table's columns in order and its round's dtype (the partition key leaves the files)."""
    return {
        name: {"columns": [str(column) for column in table.columns], "round_dtype": str(table["round"].dtype)}
        for name in ROUND_TABLES
        if (table := getattr(survey, name)) is not None
    }


def _write_county(folder: Path, county: str, survey: Survey) -> None:
    for name in ROUND_TABLES:
        table = getattr(survey, name)
        if table is None:
            continue
        for round_, rows in table.groupby("round", sort=True):
            part = folder / name / f"county_id={county}" / f"round={int(round_)}"
            part.mkdir(parents=True)
            rows.drop(columns="round").to_parquet(part / "part-0.parquet", index=False)
    for name in COUNTY_TABLES:
        table = getattr(survey, name)
        if table is not None:
            part = folder / name / f"county_id={county}"
            part.mkdir(parents=True)
            table.to_parquet(part / "part-0.parquet", index=False)


def is_province(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def province_county_ids(path: Path) -> list[str]:
    """The counties a province folder holds, in order."""
    return [str(county["county_id"]) for county in _manifest(Path(path))["counties"]]


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SurveyReadError(f"{folder / MANIFEST}: not a province's manifest ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("kind") != "province":
        raise SurveyReadError(f"{folder / MANIFEST}: not a province's manifest")
    return manifest


def read_province_county(path: Path, county: str) -> Survey:
    """One county of a province folder as a canonical survey; `SurveyReadError` naming the counties the
    folder holds when it has no such county."""
    folder = Path(path)
    manifest = _manifest(folder)
    known = [str(one["county_id"]) for one in manifest["counties"]]
    if county not in known:
        shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
        raise SurveyReadError(f"{folder}: the province has no county {county!r}; it holds {shown}")
    tables: dict[str, pd.DataFrame | None] = {}
    for name in ROUND_TABLES:
        parts = sorted(
            (folder / name / f"county_id={county}").glob("round=*/part-0.parquet"),
            key=lambda part: int(part.parent.name.split("=", 1)[1]),
        )
        layout = manifest["tables"].get(name)
        tables[name] = (
            pd.concat([_with_round(part, layout) for part in parts], ignore_index=True) if parts else None
        )
    for name in COUNTY_TABLES:
        part = folder / name / f"county_id={county}" / "part-0.parquet"
        tables[name] = pd.read_parquet(part) if part.is_file() else None
    households = tables.pop("households")
    if households is None:
        raise SurveyReadError(f"{folder}: county {county} has no households")
    return Survey(households=households, **tables)


def _with_round(part: Path, layout: dict[str, Any]) -> pd.DataFrame:
    """A round's file with its round (the partition key) put back where and as the survey had it."""
    frame = pd.read_parquet(part)
    frame["round"] = np.full(len(frame), int(part.parent.name.split("=", 1)[1]), dtype=layout["round_dtype"])
    return frame[layout["columns"]]
