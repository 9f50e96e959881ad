"""failed back-office sign-ins, counted for the login limit

Revision ID: c4a7e2f9d816
Revises: 4f6a1c2e8b75
Create Date: 2026-12-02 03:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4a7e2f9d816'
down_revision = '4f6a1c2e8b75'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sign_in_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_sign_in_failures_client_at', 'sign_in_failures', ['client', 'at'],
                    unique=False)
    op.create_index('ix_sign_in_failures_at', 'sign_in_failures', ['at'], unique=False)


def downgrade():
    op.drop_index('ix_sign_in_failures_at', table_name='sign_in_failures')
    op.drop_index('ix_sign_in_failures_client_at', table_name='sign_in_failures')
    op.drop_table('sign_in_failures')
