"""A NUL character anywhere in a page's path, query or form is refused before any view runs.

No clinic data contains one, and PostgreSQL cannot store or even compare text holding one
(it raises rather than answering), so letting it through turns a typo or a probe into a 500.
The JSON API (the patients' and the staff's) is left to its own validation, which refuses
control characters field by field.
"""

from __future__ import annotations

from flask import abort, current_app, request

_NUL = "\x00"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def refuse_nul_characters():
    if _NUL in request.path:
        abort(404)
    if "api" in request.blueprints:  # the patients' API and the staff's, nested in it
        return
    values = list(request.args.items(multi=True))
    # Any form, however encoded. A multipart body over the usual size is a calendar upload,
    # read by its own view under its own size limit (and checked there).
    if request.mimetype in _FORMS and (request.content_length or 0) <= current_app.config[
        "MAX_CONTENT_LENGTH"
    ]:
        values += request.form.items(multi=True)
    for name, value in values:
        if _NUL in name or _NUL in value:
            field = name.replace(_NUL, "")
            abort(400, description=f"{field}: must not contain a NUL character; nothing was saved.")
