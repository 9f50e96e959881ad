"""weekly series of visits: the series, each visit's series, a service's series limit

Revision ID: 4f6a1c2e8b75
Revises: 4f6a8c2e1b57
Create Date: 2026-12-02 03:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4f6a1c2e8b75'
down_revision = '4f6a8c2e1b57'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('appointment_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('weekdays', sa.JSON(), nullable=False),
    sa.Column('visit_count', sa.Integer(), nullable=False),
    sa.Column('booked_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('visit_count >= 2', name='series_at_least_two_visits'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column with its reference in place; a batch copy of the table would
        # lose its CHECK constraints.
        op.execute(
            'ALTER TABLE appointments ADD COLUMN series_id INTEGER '
            'REFERENCES appointment_series (id)'
        )
        op.execute(
            "ALTER TABLE services ADD COLUMN max_series_visits INTEGER DEFAULT '0' NOT NULL "
            'CONSTRAINT service_series_not_negative CHECK (max_series_visits >= 0)'
        )
    else:
        op.add_column('appointments', sa.Column('series_id', sa.Integer(), nullable=True))
        op.create_foreign_key(None, 'appointments', 'appointment_series', ['series_id'], ['id'])
        op.add_column('services', sa.Column('max_series_visits', sa.Integer(),
                                            server_default='0', nullable=False))
        op.create_check_constraint('service_series_not_negative', 'services',
                                   'max_series_visits >= 0')
    op.create_index('ix_appointments_series', 'appointments', ['series_id'], unique=False)


def downgrade():
    op.drop_index('ix_appointments_series', table_name='appointments')
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_constraint('service_series_not_negative', type_='check')
        batch_op.drop_column('max_series_visits')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_column('series_id')
    op.drop_table('appointment_series')
