"""gpus_cap: the size an elastic job was resized to by its user

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.add_column(sa.Column("gpus_cap", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.drop_column("gpus_cap")
