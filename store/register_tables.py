"""The household register's tables: every survey round of every county, in typed columns.

One row of `register_ingests` is one version of one round of one county (what `povrisk ingest` stored,
when, by whom, from which content hash). The rows of that version live in `register_households`,
`register_members`, `register_verification` and `register_villages`, each carrying its `ingest_id`, and
the village context of the version (`register_village_rounds`: counts per village, read by a household
scored alone).
A round replaced with `--replace` keeps its old version (its ingest row gets `replaced_at`), so nothing
is ever overwritten. The canonical columns of `survey.schema` are typed columns; a survey's other
columns are kept in `extra` (JSON), and `register_ingests.layout` records every table's columns and
dtypes in order, so that an export gives back the frames that were ingested.
"""

from __future__ import annotations

import typing

import pandera.pandas as pa
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine

from store.database import Base
from survey.schema import Households, Members, Verification, Villages

ID_LENGTH = 64
"""Identifiers (county, township, village, household, member) are at most this many characters."""
IDENTIFIERS = frozenset({"household_id", "member_id", "village_id", "township_id"})
EXTRA_COLUMN = "extra"
INGEST_KEY = "ingest_id"

ingests = Table(
    "register_ingests",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("county_id", String(ID_LENGTH), nullable=False),
    Column("round", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("ingested_by", String(200), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Column("households", Integer, nullable=False),
    Column("members", Integer, nullable=False),
    Column("current", Boolean, nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=True),
    Column("replaced_by", String(200), nullable=True),
    Column("changes", Text, nullable=True),
    Column("layout", Text, nullable=False),
    UniqueConstraint("county_id", "round", "version", name="uq_register_ingests_version"),
    Index("ix_register_ingests_county_round", "county_id", "round"),
)


def _sql_type(model: type[pa.DataFrameModel], name: str) -> TypeEngine[typing.Any]:
    if name in IDENTIFIERS:
        return String(ID_LENGTH)
    annotation = typing.get_type_hints(model)[name]
    series = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Union else annotation
    (dtype,) = typing.get_args(series)
    types: dict[type, TypeEngine[typing.Any]] = {int: Integer(), float: Double(), str: Text()}
    return types[dtype]


def canonical_columns(model: type[pa.DataFrameModel]) -> tuple[str, ...]:
    """The columns a pandera model of `survey.schema` declares, in declaration order."""
    return tuple(model.to_schema().columns)


def _data_table(
    name: str, model: type[pa.DataFrameModel], key: tuple[str, ...], without: tuple[str, ...] = ()
) -> Table:
    columns = [name_ for name_ in canonical_columns(model) if name_ not in without]
    return Table(
        name,
        Base.metadata,
        Column(INGEST_KEY, ForeignKey(ingests.c.id), primary_key=True),
        *(
            Column(column, _sql_type(model, column), primary_key=column in key, nullable=column not in key)
            for column in columns
        ),
        Column(EXTRA_COLUMN, Text, nullable=True),
    )


# The round of a row is its ingest's round; the rows of one version share one ingest.
households = _data_table("register_households", Households, ("household_id",), without=("round",))
members = _data_table("register_members", Members, ("household_id", "member_id"), without=("round",))
verification = _data_table("register_verification", Verification, ("household_id",), without=("round",))
villages = _data_table("register_villages", Villages, ("village_id",))

# Per village and round of a version: the counts of `survey.village_context` (refreshed on ingest), which
# a household scored alone reads as its village's context.
village_rounds = Table(
    "register_village_rounds",
    Base.metadata,
    Column(INGEST_KEY, ForeignKey(ingests.c.id), primary_key=True),
    Column("village_id", String(ID_LENGTH), primary_key=True),
    Column("households", Integer, nullable=False),
    Column("answering_shocks", Integer, nullable=False),
    Column("with_shocks", Integer, nullable=False),
)

DATA_TABLES: dict[str, Table] = {
    "households": households,
    "members": members,
    "verification": verification,
    "villages": villages,
}

# Facts a person corrected in the register (a visit's findings, `store.amendments`): one row per field of
# one household's (or one member's) row in one version of a round, with who, in which role, when, and
# the case whose visit found it. Append-only; the latest amendment of a field is the register's value.
amendments = Table(
    "register_amendments",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(INGEST_KEY, ForeignKey(ingests.c.id), nullable=False, index=True),
    Column("county_id", String(ID_LENGTH), nullable=False),
    Column("household_id", String(ID_LENGTH), nullable=False),
    Column("round", Integer, nullable=False),
    Column("member_id", String(ID_LENGTH), nullable=True),
    Column("field", String(64), nullable=False),
    Column("value", Text, nullable=True),
    Column("previous", Text, nullable=True),
    Column("flag_id", Integer, nullable=True),
    Column("amended_by", String(200), nullable=False),
    Column("role", String(16), nullable=True),
    Column("amended_at", DateTime(timezone=True), nullable=False),
    Index("ix_register_amendments_household", "county_id", "household_id"),
)
