"""workloads.attained_gpu_s: GPU-seconds held so far (least attained service in the live pool)

Existing workloads start at 0: a workload running at the upgrade counts from the start of
its current run (see service/attained.py), nothing before it.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.add_column(sa.Column("attained_gpu_s", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.drop_column("attained_gpu_s")
