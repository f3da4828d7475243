"""The household register: every survey round of every county, in the store's one database.

- `register_ingests`: one version of one round of one county (content hash, source, who and when; a
  round replaced with `povrisk ingest --replace` keeps its old version, marked replaced, with what
  changed);
- `register_households`, `register_members`, `register_verification`, `register_villages`: the rows of
  each version, canonical columns typed, a survey's other columns in `extra` (JSON);
- `register_village_rounds`: per village of a version, the counts a household scored alone reads as its
  village's context (`survey.village_context`).

The column lists are frozen here as they were at this revision (`store.register_tables` derives them
from `survey.schema`; a later change of the schema needs a revision of its own, which the migration
tests demand).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = (
    "register_village_rounds",
    "register_verification",
    "register_members",
    "register_villages",
    "register_households",
)


def upgrade() -> None:
    op.create_table(
        "register_ingests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("county_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ingested_by", sa.String(length=200), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(length=200), nullable=True),
        sa.Column("changes", sa.Text(), nullable=True),
        sa.Column("layout", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("county_id", "round", "version", name="uq_register_ingests_version"),
    )
    op.create_index("ix_register_ingests_county_round", "register_ingests", ["county_id", "round"])
    op.create_table(
        "register_households",
        sa.Column("ingest_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=True),
        sa.Column("survey_year", sa.Integer(), nullable=True),
        sa.Column("income_wages", sa.Double(), nullable=True),
        sa.Column("income_agriculture_net", sa.Double(), nullable=True),
        sa.Column("income_business", sa.Double(), nullable=True),
        sa.Column("income_transfers", sa.Double(), nullable=True),
        sa.Column("income_property", sa.Double(), nullable=True),
        sa.Column("production_costs", sa.Double(), nullable=True),
        sa.Column("medical_expenses", sa.Double(), nullable=True),
        sa.Column("schooling_expenses", sa.Double(), nullable=True),
        sa.Column("debt", sa.Double(), nullable=True),
        sa.Column("arable_land_mu", sa.Double(), nullable=True),
        sa.Column("livestock_units", sa.Double(), nullable=True),
        sa.Column("housing_area_m2", sa.Double(), nullable=True),
        sa.Column("housing_structure", sa.Text(), nullable=True),
        sa.Column("dangerous_house", sa.Double(), nullable=True),
        sa.Column("safe_drinking_water", sa.Double(), nullable=True),
        sa.Column("electricity", sa.Double(), nullable=True),
        sa.Column("cooking_fuel", sa.Text(), nullable=True),
        sa.Column("rooms", sa.Double(), nullable=True),
        sa.Column("bedrooms", sa.Double(), nullable=True),
        sa.Column("toilet", sa.Double(), nullable=True),
        sa.Column("tenure", sa.Text(), nullable=True),
        sa.Column("rent_paid", sa.Double(), nullable=True),
        sa.Column("wall_state", sa.Text(), nullable=True),
        sa.Column("roof_state", sa.Text(), nullable=True),
        sa.Column("floor_state", sa.Text(), nullable=True),
        sa.Column("floor_material", sa.Text(), nullable=True),
        sa.Column("ceiling", sa.Double(), nullable=True),
        sa.Column("distance_road_km", sa.Double(), nullable=True),
        sa.Column("distance_market_km", sa.Double(), nullable=True),
        sa.Column("distance_clinic_km", sa.Double(), nullable=True),
        sa.Column("durable_assets", sa.Double(), nullable=True),
        sa.Column("mobile_phones", sa.Double(), nullable=True),
        sa.Column("medical_insurance", sa.Double(), nullable=True),
        sa.Column("pension_insurance", sa.Double(), nullable=True),
        sa.Column("shock_serious_illness", sa.Double(), nullable=True),
        sa.Column("shock_disability", sa.Double(), nullable=True),
        sa.Column("shock_disaster", sa.Double(), nullable=True),
        sa.Column("shock_accident", sa.Double(), nullable=True),
        sa.Column("shock_job_loss", sa.Double(), nullable=True),
        sa.Column("shock_industry_failure", sa.Double(), nullable=True),
        sa.Column("shock_schooling_cost", sa.Double(), nullable=True),
        sa.Column("poverty_status", sa.Text(), nullable=True),
        sa.Column("receiving_assistance", sa.Double(), nullable=True),
        sa.Column("assistance_ends", sa.Double(), nullable=True),
        sa.Column("household_size", sa.Double(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["ingest_id"], ["register_ingests.id"]),
        sa.PrimaryKeyConstraint("ingest_id", "household_id"),
    )
    op.create_table(
        "register_members",
        sa.Column("ingest_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("relation_to_head", sa.Text(), nullable=True),
        sa.Column("sex", sa.Text(), nullable=True),
        sa.Column("age", sa.Double(), nullable=True),
        sa.Column("education_years", sa.Double(), nullable=True),
        sa.Column("school_years_behind", sa.Double(), nullable=True),
        sa.Column("in_school", sa.Double(), nullable=True),
        sa.Column("health_status", sa.Text(), nullable=True),
        sa.Column("disability", sa.Double(), nullable=True),
        sa.Column("labour_capacity", sa.Text(), nullable=True),
        sa.Column("migrant_work_months", sa.Double(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["ingest_id"], ["register_ingests.id"]),
        sa.PrimaryKeyConstraint("ingest_id", "household_id", "member_id"),
    )
    op.create_table(
        "register_verification",
        sa.Column("ingest_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("poor", sa.Double(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["ingest_id"], ["register_ingests.id"]),
        sa.PrimaryKeyConstraint("ingest_id", "household_id"),
    )
    op.create_table(
        "register_villages",
        sa.Column("ingest_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("township_id", sa.String(length=64), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["ingest_id"], ["register_ingests.id"]),
        sa.PrimaryKeyConstraint("ingest_id", "village_id"),
    )
    op.create_table(
        "register_village_rounds",
        sa.Column("ingest_id", sa.Integer(), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("answering_shocks", sa.Integer(), nullable=False),
        sa.Column("with_shocks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ingest_id"], ["register_ingests.id"]),
        sa.PrimaryKeyConstraint("ingest_id", "village_id"),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
    op.drop_index("ix_register_ingests_county_round", table_name="register_ingests")
    op.drop_table("register_ingests")
