"""A county's round exported from the register to a Parquet folder that a province's part reads by village
block: the alternative to reading the register's database per part (`store.register.
read_register_villages`), measured against it in `benchmarks/bench_province_read.py`.

`export_round` writes what `read_register_villages` would give for the whole county's round: the rows of
every household living in the round, in that round and in every round before (households and members,
as ingested), the amendments of those rows, and the round's village table. `read_exported_villages` gives
back, for any villages of the round, the `Survey` that `read_register_villages` gives for them by default
(the scoring read: no later rounds, no verification findings), frame for frame (columns, dtypes, order).

    FOLDER/export.json                               county, round, versions read, blocks, dtypes
    FOLDER/households/round=R/block-0000.parquet     rows of the block's households in round R
    FOLDER/members/round=R/block-0000.parquet
    FOLDER/amendments/block-0000.parquet             corrections of the block's households (values JSON)
    FOLDER/villages.parquet                          the exported round's village table

Why this layout:
- A block is the exported round's villages in order, cut into about `households_per_block` households,
  as `store.parts.plan_parts` cuts a part: a part of the same size reads one file per table and round.
- A household belongs to the block of the village it lives in in the exported round, and every row of it
  carries that village (`CURRENT_VILLAGE`): its earlier rows, wherever it lived then, travel with it, so a
  part never has to look in other blocks for a household's history.
- Rows are stored as ingested and the amendments beside them, laid over on reading by the register's
  own `apply_amendments`: a correction that adds a field adds it only to the parts it touches, as the
  database read does.
- Columns holding Python objects (a survey's own columns) are stored as JSON text, as the register stores
  them, since Parquet wants one type a column; every column's dtype is restored from the manifest.

The folder is written beside its place and renamed into it: a reader sees the old export or the new one,
never a mixture. It is a snapshot: `export_is_current` tells whether the register still holds the
versions and amendments it was made from.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from store.amendments import apply_amendments, read_amendments
from store.register import RegisterError, read_register, village_sizes
from store.register_tables import INGEST_KEY, amendments, ingests
from survey.io import Survey, _swap_into_place  # the folder swap survey folders use

MANIFEST = "export.json"
FORMAT_VERSION = 1
HOUSEHOLDS_PER_BLOCK = 20_000
"""As many households as a part of `serving.province`, so that a part reads one block."""
CURRENT_VILLAGE = "_povrisk_current_village"
"""The column every exported row carries: its household's village in the exported round."""
ROW_TABLES = ("households", "members")
AMENDMENT_FIELDS = ("id", "round", "household_id", "member_id", "field", "value")
Layout = list[list[str]]


class ExportError(ValueError):
    """An export folder that is missing, of another county or round, or of an unknown format."""


@dataclass(frozen=True)
class Manifest:
    """What `export.json` says of an export (the JSON keys are the field names)."""

    county_id: str
    round: int
    versions: dict[int, int]
    """round -> ingest id read, in the register's order (the order the database read concatenates in)."""
    amendments_through: int | None
    """The newest amendment of those versions when exported (None: none)."""
    blocks: list[list[str]]
    """Each block's villages, in order; block `i` is file `block-{i:04d}`."""
    layouts: dict[str, dict[int, Layout]]
    """table -> round -> [[column, dtype], ...] of the rows as ingested."""
    villages: Layout | None


# ---------------------------------------------------------------------------------------------- export


def export_round(
    engine: Engine,
    county_id: str,
    round_: int,
    folder: Path,
    *,
    households_per_block: int = HOUSEHOLDS_PER_BLOCK,
) -> Manifest:
    """Export the county's round (see the module doc) into `folder`, replacing any export there whole.
    Reads one round of the register at a time. `RegisterError` when the register lacks the round."""
    if households_per_block < 1:
        raise ValueError(f"households_per_block must be at least 1, got {households_per_block}")
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.writing-", dir=target.parent))
    try:
        manifest = _write_export(engine, county_id, round_, staging, households_per_block)
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write_export(
    engine: Engine, county_id: str, round_: int, folder: Path, households_per_block: int
) -> Manifest:
    versions = _current_version_ids(engine, county_id, round_)
    blocks = _blocks(village_sizes(engine, county_id, round_), households_per_block)
    block_of = {village: number for number, villages in enumerate(blocks) for village in villages}
    exported = read_register(engine, county_id, [round_], amended=False)
    living = exported.households.set_index("household_id")["village_id"].astype(str)
    layouts: dict[str, dict[int, Layout]] = {name: {} for name in ROW_TABLES}
    for earlier in versions:
        survey = exported if earlier == round_ else read_register(engine, county_id, [earlier], amended=False)
        for name in ROW_TABLES:
            rows = getattr(survey, name)
            if rows is not None:
                layouts[name][earlier] = _layout_of(rows)
                _write_blocks(rows, living, block_of, len(blocks), folder / name / f"round={earlier}")
    newest = _write_amendments(engine, list(versions.values()), living, block_of, len(blocks), folder)
    villages = exported.villages
    if villages is not None:
        _encoded(villages).to_parquet(folder / "villages.parquet", index=False)
    manifest = Manifest(
        county_id=county_id,
        round=round_,
        versions=versions,
        amendments_through=newest,
        blocks=blocks,
        layouts=layouts,
        villages=None if villages is None else _layout_of(villages),
    )
    (folder / MANIFEST).write_text(_manifest_json(manifest), encoding="utf-8")
    return manifest


def _current_version_ids(engine: Engine, county_id: str, round_: int) -> dict[int, int]:
    """The county's current versions of the rounds up to `round_` (round -> ingest id), in the order the
    register's own read finds them (`_current_versions`: the same query)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ingests.c.round, ingests.c.id).where(
                ingests.c.county_id == county_id, ingests.c.current.is_(True)
            )
        ).all()
    versions = {int(round_of): int(ingest_id) for round_of, ingest_id in rows if int(round_of) <= round_}
    if round_ not in versions:
        raise RegisterError(f"the register holds no round {round_} of county {county_id}")
    return versions


def _blocks(sizes: Mapping[str, int], households_per_block: int) -> list[list[str]]:
    """The villages in order, cut into blocks of at least one village and about `households_per_block`
    households: the rule of `store.parts.plan_parts`, so that parts and blocks coincide."""
    blocks: list[list[str]] = []
    block: list[str] = []
    total = 0
    for village, size in sizes.items():
        if block and total + size > households_per_block:
            blocks.append(block)
            block, total = [], 0
        block.append(village)
        total += size
    if block:
        blocks.append(block)
    return blocks


def _write_blocks(
    rows: pd.DataFrame, living: pd.Series, block_of: Mapping[str, int], blocks: int, folder: Path
) -> None:
    """The rows of households living in the exported round, one file per block (empty files included:
    a reader never has to ask whether a block had rows)."""
    current = rows["household_id"].astype(str).map(living)
    kept = current.notna().to_numpy()
    stored = _encoded(rows[kept]).assign(**{CURRENT_VILLAGE: current[kept].astype("str")})
    block = stored[CURRENT_VILLAGE].map(block_of).to_numpy()
    folder.mkdir(parents=True)
    for number in range(blocks):
        stored[block == number].to_parquet(folder / _block_file(number), index=False)


def _write_amendments(
    engine: Engine,
    ingest_ids: list[int],
    living: pd.Series,
    block_of: Mapping[str, int],
    blocks: int,
    folder: Path,
) -> int | None:
    """The amendments of the exported versions' rows, by block, values as the JSON the register holds;
    the newest amendment's id (None: none)."""
    with engine.connect() as connection:
        found = read_amendments(connection, ingest_ids)
    current = found["household_id"].astype(str).map(living)
    kept = found[current.notna().to_numpy()]
    stored = pd.DataFrame(
        {
            "id": kept["id"].astype("int64").to_numpy(),
            "round": kept["round"].astype("int64").to_numpy(),
            "household_id": kept["household_id"].astype(str).to_numpy(),
            "member_id": kept["member_id"].to_numpy(dtype=object),
            "field": kept["field"].astype(str).to_numpy(),
            "value": [_json(value) for value in kept["value"]],
            CURRENT_VILLAGE: pd.array(current[current.notna()].to_numpy(), dtype="str"),
        }
    )
    block = stored[CURRENT_VILLAGE].map(block_of).to_numpy()
    (folder / "amendments").mkdir()
    for number in range(blocks):
        stored[block == number].to_parquet(folder / "amendments" / _block_file(number), index=False)
    return None if found.empty else int(found["id"].max())


def _block_file(number: int) -> str:
    return f"block-{number:04d}.parquet"


def _layout_of(frame: pd.DataFrame) -> Layout:
    return [[str(column), str(dtype)] for column, dtype in frame.dtypes.items()]


def _encoded(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its object columns as JSON text (Parquet wants one type a column; the register's
    object columns hold a survey's own values, of any JSON type)."""
    objects = [str(column) for column, dtype in frame.dtypes.items() if pd.api.types.is_object_dtype(dtype)]
    if not objects:
        return frame
    return frame.assign(
        **{
            column: pd.Series([_json(value) for value in frame[column]], index=frame.index, dtype=object)
            for column in objects
        }
    )


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value.item() if isinstance(value, np.generic) else value, ensure_ascii=False)


def _manifest_json(manifest: Manifest) -> str:
    return json.dumps(
        {
            "format": FORMAT_VERSION,
            "county_id": manifest.county_id,
            "round": manifest.round,
            "versions": [[round_, ingest_id] for round_, ingest_id in manifest.versions.items()],
            "amendments_through": manifest.amendments_through,
            "blocks": manifest.blocks,
            "layouts": {
                name: [[round_, layout] for round_, layout in by_round.items()]
                for name, by_round in manifest.layouts.items()
            },
            "villages": manifest.villages,
        },
        ensure_ascii=False,
        indent=1,
    )


# ------------------------------------------------------------------------------------------------ read


def read_manifest(folder: Path) -> Manifest:
    """What the export in `folder` holds; `ExportError` when it is not an export this code can read."""
    path = Path(folder) / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ExportError(f"no export in {folder} (no {MANIFEST})") from error
    if raw.get("format") != FORMAT_VERSION:
        raise ExportError(f"{path}: format {raw.get('format')!r}, this code reads {FORMAT_VERSION}")
    return Manifest(
        county_id=str(raw["county_id"]),
        round=int(raw["round"]),
        versions={int(round_): int(ingest_id) for round_, ingest_id in raw["versions"]},
        amendments_through=raw["amendments_through"],
        blocks=raw["blocks"],
        layouts={
            name: {int(round_): layout for round_, layout in by_round}
            for name, by_round in raw["layouts"].items()
        },
        villages=raw["villages"],
    )


def read_exported_villages(folder: Path, county_id: str, round_: int, villages: Sequence[str]) -> Survey:
    """The `Survey` `read_register_villages(engine, county_id, round_, villages)` gives, read from the
    export of that round in `folder` (only the blocks holding `villages`). `ExportError` when `folder`
    holds no export of that county's round."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if (manifest.county_id, manifest.round) != (county_id, round_):
        raise ExportError(
            f"{folder} holds round {manifest.round} of county {manifest.county_id}, "
            f"not round {round_} of county {county_id}"
        )
    wanted = [str(village) for village in villages]
    numbers = [number for number, block in enumerate(manifest.blocks) if not set(block).isdisjoint(wanted)]
    households = _rows(folder, manifest, "households", numbers, wanted)
    if households.empty:
        return Survey(households=households)
    members = _rows(folder, manifest, "members", numbers, wanted)
    corrections = _amendments(folder, numbers, wanted)
    households, amended_members = apply_amendments(
        households, None if members.empty else members, corrections
    )
    households = households.sort_values(["round", "household_id"], kind="stable").reset_index(drop=True)
    if amended_members is not None:
        amended_members = amended_members.sort_values(
            ["round", "household_id", "member_id"], kind="stable"
        ).reset_index(drop=True)
    return Survey(
        households=households,
        members=None if amended_members is None or amended_members.empty else amended_members,
        villages=_villages(folder, manifest, households),
    )


def _rows(folder: Path, manifest: Manifest, name: str, blocks: list[int], wanted: list[str]) -> pd.DataFrame:
    """A table's rows of the wanted villages' households in every exported round, as the register's
    database read gives them: rounds of one layout restored together, then all of them earliest first."""
    layouts = manifest.layouts.get(name, {})
    same_layout: dict[str, list[int]] = {}
    for round_ in manifest.versions:
        if round_ in layouts:
            same_layout.setdefault(json.dumps(layouts[round_]), []).append(round_)
    frames = []
    for rounds in same_layout.values():
        stored = [_read_block_rows(folder / name / f"round={r}", blocks, wanted) for r in rounds]
        found = [frame for frame in stored if not frame.empty]
        if found:
            together = pd.concat(found, ignore_index=True) if len(found) > 1 else found[0]
            frames.append(_restored(together, layouts[rounds[0]]))
    if not frames:
        return pd.DataFrame()
    together = pd.concat(frames, ignore_index=True)
    return together.sort_values("round", kind="stable").reset_index(drop=True)


def _read_block_rows(folder: Path, blocks: list[int], wanted: list[str]) -> pd.DataFrame:
    frames = [
        pd.read_parquet(folder / _block_file(number), filters=[(CURRENT_VILLAGE, "in", wanted)])
        for number in blocks
    ]
    found = [frame for frame in frames if not frame.empty]
    if not found:
        return pd.DataFrame()
    return pd.concat(found, ignore_index=True) if len(found) > 1 else found[0]


def _restored(stored: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The stored rows in the layout's columns, order and dtypes (what the register's read makes of
    the same rows)."""
    return pd.DataFrame(
        {column: _as_ingested(stored[column], dtype) for column, dtype in layout},
        index=pd.RangeIndex(len(stored)),
    )


def _as_ingested(column: pd.Series, dtype: str) -> pd.Series:
    """A stored column back in its ingested dtype. Object columns are decoded from JSON; categories are
    made again from the values read, as the register's read makes them; the rest is as stored."""
    values = column.reset_index(drop=True)
    if dtype == "object":
        return pd.Series(
            [json.loads(text) if isinstance(text, str) else None for text in values], dtype=object
        )
    if dtype == "category" or str(values.dtype) != dtype:
        plain = values.astype(object).where(values.notna(), None)
        return plain.astype(pd.api.types.pandas_dtype(dtype))
    return values


def _amendments(folder: Path, blocks: list[int], wanted: list[str]) -> pd.DataFrame:
    """The corrections of the wanted villages' households, earliest first, values decoded (the frame
    `read_amendments` gives, in the columns `apply_amendments` reads)."""
    stored = _read_block_rows(folder / "amendments", blocks, wanted)
    if stored.empty:
        return pd.DataFrame(columns=list(AMENDMENT_FIELDS))
    ordered = stored.sort_values("id", kind="stable").reset_index(drop=True)
    return ordered.assign(
        member_id=ordered["member_id"].astype(object).where(ordered["member_id"].notna(), None),
        value=pd.Series(
            [json.loads(text) if isinstance(text, str) else None for text in ordered["value"]], dtype=object
        ),
    ).drop(columns=CURRENT_VILLAGE)


def _villages(folder: Path, manifest: Manifest, households: pd.DataFrame) -> pd.DataFrame | None:
    """The round's village rows of every village the households lived in (a mover's earlier ones too),
    as the database read gives them."""
    if manifest.villages is None:
        return None
    places = _restored(pd.read_parquet(folder / "villages.parquet"), manifest.villages)
    lived_in = set(households["village_id"].astype(str))
    return places[places["village_id"].astype(str).isin(lived_in)].reset_index(drop=True)


# ------------------------------------------------------------------------------------------- freshness


def export_is_current(engine: Engine, folder: Path) -> bool:
    """Whether the register still holds the versions the export in `folder` was made from, with no
    amendment of them since: a replaced round or a visit's correction makes an export stale."""
    manifest = read_manifest(folder)
    try:
        versions = _current_version_ids(engine, manifest.county_id, manifest.round)
    except RegisterError:
        return False
    with engine.connect() as connection:
        newest = _newest_amendment(connection, list(versions.values()))
    return versions == manifest.versions and newest == manifest.amendments_through


def _newest_amendment(connection: Connection, ingest_ids: list[int]) -> int | None:
    newest = connection.execute(
        select(func.max(amendments.c.id)).where(amendments.c[INGEST_KEY].in_(ingest_ids))
    ).scalar_one_or_none()
    return None if newest is None else int(newest)
