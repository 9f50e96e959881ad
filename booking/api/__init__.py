"""JSON API v1 (CONTRACT section 3): services, therapists, availability and appointments for
patients; under /staff, the staff API for the clinic's own tools."""

from booking.api.staff import staff_api
from booking.api.views import api

api.register_blueprint(staff_api)

__all__ = ["api"]
