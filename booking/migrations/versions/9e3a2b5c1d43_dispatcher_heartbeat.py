"""dispatcher heartbeat, for the health check

Revision ID: 9e3a2b5c1d43
Revises: 8d2f1a4b0c32
Create Date: 2026-11-25 14:35:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9e3a2b5c1d43'
down_revision = '8d2f1a4b0c32'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dispatcher_heartbeat',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name='dispatcher_heartbeat_single_row'),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    op.drop_table('dispatcher_heartbeat')
