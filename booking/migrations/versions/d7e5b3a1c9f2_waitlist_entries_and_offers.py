"""the waitlist: entries, offers, and offer mail in the outbox

Revision ID: d7e5b3a1c9f2
Revises: d5e7f9a1b3c6
Create Date: 2026-12-02 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7e5b3a1c9f2'
down_revision = 'd5e7f9a1b3c6'
branch_labels = None
depends_on = None

# The kinds before this migration (forms_reminder came with the health forms).
_KINDS = "'confirmation', 'reminder', 'aftercare', 'cancellation', 'reschedule', 'forms_reminder'"


def upgrade():
    op.create_table(
        'waitlist_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('manage_token', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=False),
        sa.Column('therapist_id', sa.Integer(), nullable=True),
        sa.Column('available_from', sa.Date(), nullable=False),
        sa.Column('until', sa.Date(), nullable=False),
        sa.Column('weekday_mask', sa.Integer(), nullable=False),
        sa.Column('part_of_day_mask', sa.Integer(), nullable=False),
        sa.Column('patient_identity', sa.String(length=520), nullable=False),
        sa.Column('patient_name', sa.String(length=200), nullable=False),
        sa.Column('patient_email', sa.String(length=254), nullable=False),
        sa.Column('patient_phone', sa.String(length=40), nullable=False),
        sa.Column('patient_date_of_birth', sa.Date(), nullable=True),
        sa.Column('patient_guardian_name', sa.String(length=200), nullable=False),
        sa.Column('patient_language', sa.String(length=16), nullable=False),
        sa.Column('added_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'booked', 'left', 'removed', 'ended')",
            name='waitlist_entry_status',
        ),
        sa.CheckConstraint('until >= available_from', name='waitlist_entry_dates'),
        sa.ForeignKeyConstraint(['service_id'], ['services.id']),
        sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('manage_token'),
    )
    with op.batch_alter_table('waitlist_entries', schema=None) as batch_op:
        batch_op.create_index(
            'ix_waitlist_entries_waiting', ['status', 'service_id', 'created_at'], unique=False
        )
        batch_op.create_index('ix_waitlist_entries_patient', ['patient_identity'], unique=False)

    op.create_table(
        'waitlist_offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('therapist_id', sa.Integer(), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('claim_by', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('appointment_id', sa.Integer(), nullable=True),
        sa.Column('offered_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'expired', 'claimed', 'taken')", name='waitlist_offer_status'
        ),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id']),
        sa.ForeignKeyConstraint(['entry_id'], ['waitlist_entries.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token'),
    )
    with op.batch_alter_table('waitlist_offers', schema=None) as batch_op:
        batch_op.create_index('ix_waitlist_offers_entry', ['entry_id'], unique=False)
        batch_op.create_index('ix_waitlist_offers_time', ['therapist_id', 'start_at'], unique=False)
        batch_op.create_index(
            'ix_waitlist_offers_status_expiry', ['status', 'expires_at'], unique=False
        )

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlist_offer_id', sa.Integer(), nullable=True))
        batch_op.alter_column('appointment_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            'fk_notifications_waitlist_offer_id_waitlist_offers', 'waitlist_offers',
            ['waitlist_offer_id'], ['id'], ondelete='CASCADE',
        )
        batch_op.create_index('ix_notifications_waitlist_offer', ['waitlist_offer_id'], unique=False)
        batch_op.drop_constraint('notification_kind', type_='check')
        batch_op.create_check_constraint(
            'notification_kind', f"kind IN ({_KINDS},\n 'waitlist_offer')"
        )
        batch_op.create_check_constraint(
            'notification_subject', '(appointment_id IS NULL) <> (waitlist_offer_id IS NULL)'
        )


def downgrade():
    op.execute("DELETE FROM notifications WHERE waitlist_offer_id IS NOT NULL")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('notification_subject', type_='check')
        batch_op.drop_constraint('notification_kind', type_='check')
        batch_op.create_check_constraint('notification_kind', f"kind IN ({_KINDS})")
        batch_op.drop_index('ix_notifications_waitlist_offer')
        batch_op.drop_constraint(
            'fk_notifications_waitlist_offer_id_waitlist_offers', type_='foreignkey'
        )
        batch_op.alter_column('appointment_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('waitlist_offer_id')
    op.drop_table('waitlist_offers')
    op.drop_table('waitlist_entries')
