"""A NUL character anywhere in a page's path, query or form is refused before any view runs.

No clinic data contains one, and PostgreSQL cannot store or even compare text holding one
(it raises rather than answering), so letting it through turns a typo or a probe into a 500.
The JSON API is left to its own validation, which refuses control characters field by field.
"""

from __future__ import annotations

from flask import abort, request

_NUL = "\x00"
_PLAIN_FORM = "application/x-www-form-urlencoded"


def refuse_nul_characters():
    if _NUL in request.path:
        abort(404)
    if request.blueprint == "api":
        return
    values = list(request.args.items(multi=True))
    # Multipart forms (calendar uploads) are read by their views under their own size limit.
    if request.mimetype == _PLAIN_FORM:
        values += request.form.items(multi=True)
    for name, value in values:
        if _NUL in name or _NUL in value:
            field = name.replace(_NUL, "")
            abort(400, description=f"{field}: must not contain a NUL character; nothing was saved.")
