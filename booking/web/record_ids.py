"""Ids in URLs are the database's ids: whole numbers that fit its 64-bit integers.

`<int:...>` in every route means this converter, so a longer number is simply no such page
(404) rather than a database error when it is looked up.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

LARGEST_RECORD_ID = 2**63 - 1


class RecordIdConverter(IntegerConverter):
    # Twenty digits and more never match, whatever the method; up to nineteen are checked
    # against the largest id.
    regex = r"\d{1,19}"

    def __init__(self, url_map, fixed_digits=0, min=None, max=LARGEST_RECORD_ID, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app) -> None:
    """Before any blueprint adds its routes: they bind the converter when added."""
    app.url_map.converters["int"] = RecordIdConverter
