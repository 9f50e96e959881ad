"""The one writer: booking, moving, cancelling and attendance of appointments, and staff changes
to therapists' hours and time off. Nothing else writes an appointment.

`from booking import scheduling` gives the booking functions of `appointments`, and
`nearest_free_slots`: what a patient is offered when the time they wanted is not free.
"""

from booking.scheduling.appointments import (
    ARRIVAL_OPENS_BEFORE_START,
    ATTENDANCE,
    AppointmentNotChangeable,
    EvaluationRequired,
    PatientDetails,
    SchedulingError,
    SlotUnavailable,
    StaffOverride,
    UnknownService,
    UnknownTherapist,
    appointments_overlapping_count,
    book_appointment,
    bookable_service,
    cancel_appointment,
    find_patient,
    free_slots,
    has_evaluation_before,
    record_attendance,
    reschedule_appointment,
    therapists_offering,
    undo_attendance,
)
from booking.scheduling.nearest_slots import nearest_free_slots

__all__ = [
    "ARRIVAL_OPENS_BEFORE_START",
    "ATTENDANCE",
    "AppointmentNotChangeable",
    "EvaluationRequired",
    "PatientDetails",
    "SchedulingError",
    "SlotUnavailable",
    "StaffOverride",
    "UnknownService",
    "UnknownTherapist",
    "appointments_overlapping_count",
    "book_appointment",
    "bookable_service",
    "cancel_appointment",
    "find_patient",
    "free_slots",
    "has_evaluation_before",
    "nearest_free_slots",
    "record_attendance",
    "reschedule_appointment",
    "therapists_offering",
    "undo_attendance",
]
