"""clinic reference revision, raised with every change to the clinic's reference data

Revision ID: a7c4e2f91b05
Revises: c4a7e2f9d816
Create Date: 2026-12-02 03:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c4e2f91b05'
down_revision = 'c4a7e2f9d816'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('reference_revision', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('reference_revision')
