"""usage_samples: measured use per team (held and busy GPU-seconds); nodes.agent_errors

Revision ID: 0007
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_samples",
        sa.Column("bucket_start", sa.Float(), primary_key=True),
        sa.Column("team", sa.String(255), primary_key=True),
        sa.Column("held_gpu_seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("busy_gpu_seconds", sa.Float(), nullable=False, server_default="0"),
    )
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.add_column(sa.Column("agent_errors", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.drop_column("agent_errors")
    op.drop_table("usage_samples")
