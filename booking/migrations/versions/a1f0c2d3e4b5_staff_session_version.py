"""staff session version: signing out, or a login switched off, ends every copy of its session

Revision ID: a1f0c2d3e4b5
Revises: 9e3a2b5c1d43
Create Date: 2026-12-02 04:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1f0c2d3e4b5'
down_revision = '9e3a2b5c1d43'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_users') as batch_op:
        batch_op.add_column(
            sa.Column('session_version', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('staff_users') as batch_op:
        batch_op.drop_column('session_version')
