"""health screening and consent forms: the clinic's forms, a service's forms, signed answers,
and the forms_reminder notification

Revision ID: d5e7f9a1b3c6
Revises: e5b1c9a7d3f2
Create Date: 2026-12-02 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5e7f9a1b3c6'
down_revision = 'e5b1c9a7d3f2'
branch_labels = None
depends_on = None

_KINDS = "'confirmation', 'reminder', 'aftercare', 'cancellation', 'reschedule'"
_WITHOUT = f"kind IN ({_KINDS})"
_WITH = f"kind IN ({_KINDS}, 'forms_reminder')"


def upgrade():
    op.create_table(
        'clinic_forms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('consent', sa.Text(), nullable=False),
        sa.Column('questions', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('slug'),
    )
    op.create_table(
        'signed_forms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('appointment_id', sa.Integer(), nullable=True),
        sa.Column('form_slug', sa.String(length=64), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('signed_by', sa.String(length=200), nullable=False),
        sa.Column('signer_is_guardian', sa.Boolean(), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reviewed_by', sa.String(length=120), nullable=False),
        sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('complete', 'needs_review')", name='signed_form_status'),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_signed_forms_patient_form', 'signed_forms', ['patient_id', 'form_slug'])
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forms', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('notification_kind', type_='check')
        batch_op.create_check_constraint('notification_kind', _WITH)


def downgrade():
    op.execute("DELETE FROM notifications WHERE kind = 'forms_reminder'")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('notification_kind', type_='check')
        batch_op.create_check_constraint('notification_kind', _WITHOUT)
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('forms')
    op.drop_index('ix_signed_forms_patient_form', table_name='signed_forms')
    op.drop_table('signed_forms')
    op.drop_table('clinic_forms')
