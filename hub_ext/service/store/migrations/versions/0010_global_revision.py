"""Global change stamps: workloads.revision becomes a global, monotonic stamp (indexed), and the pool has one

The scheduling loop then reads only rows with a revision above the last it saw
(service/snapshot.py, KeptSnapshot) and reads the pool again only when its stamp moved.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamps = op.create_table(
        "stamps",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # Start above every per-row revision of before (a counter each): stamps only ever grow.
    top = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(revision), 0) FROM workloads")).scalar() or 0
    op.bulk_insert(stamps, [{"name": "workloads", "value": int(top)}, {"name": "pool", "value": 0}])
    op.create_index("ix_workloads_revision", "workloads", ["revision"])


def downgrade() -> None:
    op.drop_index("ix_workloads_revision", table_name="workloads")
    op.drop_table("stamps")
