"""The Flask app class of the service: Flask, with the check of each view and hook for a
coroutine made once instead of at every call.

Flask runs every view and every before/after/teardown hook through `ensure_sync`, which asks
`inspect` whether the function is a coroutine function: nine times in a request here, a few
percent of a short request's work. Flask's documentation names `ensure_sync` as the method to
override to change how async views run; this one keeps Flask's answer for each function.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

# The views and hooks are registered once, at start-up; a bound keeps anything made per call
# (none is, today) from growing the store.
_MOST_KEPT = 1_000


class ClinicApp(Flask):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._synchronous: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable) -> Callable:
        try:
            return self._synchronous[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable: asked each time
            return super().ensure_sync(func)
        if len(self._synchronous) >= _MOST_KEPT:
            self._synchronous.clear()
        synchronous = self._synchronous[func] = super().ensure_sync(func)
        return synchronous
