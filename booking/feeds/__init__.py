"""Calendar feeds: /feeds/<token>.ics for each therapist and for the front desk."""

from booking.feeds.views import feeds

__all__ = ["feeds"]
