"""Patient pages: booking without an account, and the private manage links."""

from booking.public.views import public

__all__ = ["public"]
