"""dry needling: therapists' clearances, check-in answers, the front desk's call lists

Revision ID: d7e1c3a5b9f2
Revises: a7c4e2f91b05
Create Date: 2026-12-02 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7e1c3a5b9f2'
down_revision = 'a7c4e2f91b05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requires_clearance', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('clearances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=120), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decision IN ('cleared', 'not_cleared')", name='clearance_decision'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('clearances', schema=None) as batch_op:
        batch_op.create_index('ix_clearances_patient_service', ['patient_id', 'service_id'], unique=False)
    op.create_table('check_in_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('soreness', sa.Integer(), nullable=False),
    sa.Column('trend', sa.String(length=8), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('soreness BETWEEN 0 AND 10', name='check_in_soreness'),
    sa.CheckConstraint("trend IN ('better', 'same', 'worse')", name='check_in_trend'),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('appointment_id')
    )
    op.create_table('call_list_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=120), nullable=False),
    sa.CheckConstraint("kind IN ('follow_up', 'call_back')", name='call_list_kind'),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('call_list_items', schema=None) as batch_op:
        batch_op.create_index('ix_call_list_items_open', ['kind', 'done_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_list_items_appointment_id'), ['appointment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('call_list_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_list_items_appointment_id'))
        batch_op.drop_index('ix_call_list_items_open')
    op.drop_table('call_list_items')
    op.drop_table('check_in_answers')
    with op.batch_alter_table('clearances', schema=None) as batch_op:
        batch_op.drop_index('ix_clearances_patient_service')
    op.drop_table('clearances')
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('requires_clearance')
