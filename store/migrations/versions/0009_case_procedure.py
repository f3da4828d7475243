"""The flag store becomes a case file: the monitoring procedure's statuses (village review, public notice,
township review, county approval, monitored, the steps of risk elimination), each case's discovery
channel (model, declaration, department) and the end of its running public notice; every history row
keeps the role of who took the step and the step's details (JSON).

Cases written before were discovered by the model (`channel` = 'model'); their history rows have no role.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_STATUSES = ("flagged", "verified", "rejected", "assisted", "risk_eliminated")
NEW_STATUSES = (
    "flagged",
    "verified",
    "village_reviewed",
    "notice_running",
    "township_reviewed",
    "monitored",
    "assisted",
    "elimination_proposed",
    "elimination_verified",
    "elimination_reviewed",
    "elimination_notice",
    "risk_eliminated",
    "rejected",
)
# Where a case in a new status stands in the old workflow (downgrade only).
OLD_STATUS_OF = {
    "village_reviewed": "verified",
    "notice_running": "verified",
    "township_reviewed": "verified",
    "monitored": "verified",
    "elimination_proposed": "assisted",
    "elimination_verified": "assisted",
    "elimination_reviewed": "assisted",
    "elimination_notice": "assisted",
}


def _status_check(statuses: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def upgrade() -> None:
    with op.batch_alter_table("flags") as table:
        table.drop_constraint("ck_flags_status", type_="check")
        table.create_check_constraint("ck_flags_status", _status_check(NEW_STATUSES))
        table.add_column(sa.Column("channel", sa.String(length=16), nullable=False, server_default="model"))
        table.add_column(sa.Column("notice_ends", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("flag_history") as table:
        table.add_column(sa.Column("role", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("details", sa.Text(), nullable=True))


def downgrade() -> None:
    flags = sa.table("flags", sa.column("status", sa.String))
    for new, old in OLD_STATUS_OF.items():
        op.execute(flags.update().where(flags.c.status == new).values(status=old))
    with op.batch_alter_table("flag_history") as table:
        table.drop_column("details")
        table.drop_column("role")
    with op.batch_alter_table("flags") as table:
        table.drop_column("notice_ends")
        table.drop_column("channel")
        table.drop_constraint("ck_flags_status", type_="check")
        table.create_check_constraint("ck_flags_status", _status_check(OLD_STATUSES))
