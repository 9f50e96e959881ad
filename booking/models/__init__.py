"""The clinic's tables, one module per area; everything is importable from `booking.models`.

Instants are stored in UTC and always come back timezone-aware. Hours and time off are
wall-clock values in the clinic's zone, turned into instants only when used.
"""

from booking.models.appointments import (
    LONGEST_BUSY_SPAN,
    LONGEST_VISIT,
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    IdempotencyKey,
    Patient,
    new_calendar_uid,
    patient_identity,
)
from booking.models.audit import AuditEntry
from booking.models.clinic import (
    DISCIPLINES,
    Clinic,
    Service,
    ServiceKind,
    Therapist,
    TimeOff,
    WorkingHours,
    therapist_services,
)
from booking.models.clinical import CallListItem, CallListKind, CheckInAnswer, Clearance
from booking.models.dispatcher_heartbeat import (
    DispatcherHeartbeat,
    dispatcher_state,
    last_dispatcher_run,
    record_dispatcher_run,
)
from booking.models.external_calendars import ExternalBusyTime, ExternalCalendar
from booking.models.health_forms import ClinicForm, SignedForm
from booking.models.instants import UTCDateTime, utc_now
from booking.models.notifications import (
    Notification,
    NotificationKind,
    NotificationStatus,
    new_message_id,
)
from booking.models.sign_in_failures import SignInFailure
from booking.models.staff import (
    StaffApiToken,
    StaffRole,
    StaffUser,
    api_token_digest,
    hash_password,
)
from booking.models.waitlist import (
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
    WaitlistStatus,
)

__all__ = [
    "DISCIPLINES",
    "LONGEST_BUSY_SPAN",
    "LONGEST_VISIT",
    "Appointment",
    "AppointmentSeries",
    "AppointmentStatus",
    "AuditEntry",
    "CallListItem",
    "CallListKind",
    "CheckInAnswer",
    "Clearance",
    "Clinic",
    "ClinicForm",
    "DispatcherHeartbeat",
    "ExternalBusyTime",
    "ExternalCalendar",
    "IdempotencyKey",
    "Notification",
    "OfferStatus",
    "NotificationKind",
    "NotificationStatus",
    "Patient",
    "Service",
    "SignedForm",
    "ServiceKind",
    "SignInFailure",
    "StaffApiToken",
    "StaffRole",
    "StaffUser",
    "Therapist",
    "TimeOff",
    "UTCDateTime",
    "WaitlistEntry",
    "WaitlistOffer",
    "WaitlistStatus",
    "WorkingHours",
    "dispatcher_state",
    "api_token_digest",
    "hash_password",
    "last_dispatcher_run",
    "new_calendar_uid",
    "new_message_id",
    "patient_identity",
    "record_dispatcher_run",
    "therapist_services",
    "utc_now",
]
