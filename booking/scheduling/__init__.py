"""The one writer: booking, moving, cancelling and attendance of appointments, weekly series of
visits, staff changes to therapists' hours and time off, and the waitlist (`waitlist`,
`waitlist_offers`). Nothing else writes an appointment.

`from booking import scheduling` gives the booking functions of `appointments`, and
`nearest_free_slots`: what a patient is offered when the time they wanted is not free.
"""

from booking.scheduling.appointments import (
    ATTENDANCE,
    AppointmentNotChangeable,
    ClearanceRequired,
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
    free_slots,
    offered_service,
    record_attendance,
    require_evaluation,
    reschedule_appointment,
    therapists_offering,
)
from booking.scheduling.booking_eligibility import (
    find_patient,
    has_evaluation_before,
    online_booking_refusal,
)
from booking.scheduling.nearest_slots import nearest_free_slots
from booking.scheduling.series import (
    BookedSeries,
    PlannedVisit,
    SeriesLengthRefused,
    SeriesNotOffered,
    SeriesPlan,
    SeriesUnavailable,
    book_series,
    cancel_following,
    plan_series,
    preview_series,
    series_visits,
    weekday_numbers,
)

__all__ = [
    "ATTENDANCE",
    "AppointmentNotChangeable",
    "BookedSeries",
    "PlannedVisit",
    "SeriesLengthRefused",
    "SeriesNotOffered",
    "SeriesPlan",
    "SeriesUnavailable",
    "book_series",
    "cancel_following",
    "plan_series",
    "preview_series",
    "series_visits",
    "weekday_numbers",
    "ClearanceRequired",
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
    "offered_service",
    "online_booking_refusal",
    "record_attendance",
    "require_evaluation",
    "reschedule_appointment",
    "therapists_offering",
]
