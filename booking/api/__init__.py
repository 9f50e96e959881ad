"""JSON API v1 (CONTRACT section 3): services, therapists, availability and appointments."""

from booking.api.views import api

__all__ = ["api"]
