"""The one writer: booking, moving, cancelling and attendance of appointments, and staff changes
to therapists' hours and time off. Nothing else writes an appointment.

`from booking import scheduling` gives the booking functions of `appointments`.
"""

from booking.scheduling.appointments import (
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
    offered_service,
    record_attendance,
    reschedule_appointment,
    therapists_offering,
)

__all__ = [
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
    "offered_service",
    "record_attendance",
    "reschedule_appointment",
    "therapists_offering",
]
