"""Reading a clinic file: TOML text to a checked ClinicSpec, or every problem in it at once."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from booking.clinic.clinic_file.problems import (
    ClinicFileError,
    Problem,
    problems_in,
    syntax_problem,
)
from booking.clinic.clinic_file.schema import FORM_SLUGS, SERVICE_SLUGS, ClinicSpec


def read_clinic_file(path: str | Path) -> ClinicSpec:
    """The clinic file at path, read and checked. Raises ClinicFileError."""
    filename = str(path)
    try:
        # utf-8-sig: a file saved by Notepad starts with a byte-order mark; it means nothing.
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClinicFileError(
            filename, [Problem("", f"is not UTF-8 text (byte {exc.start} cannot be read)")]
        ) from None
    except OSError as exc:
        raise ClinicFileError(filename, [Problem("", f"cannot be read: {exc.strerror}")]) from None
    return parse_clinic_file(text, filename)


def parse_clinic_file(text: str, filename: str) -> ClinicSpec:
    """The clinic described by text, checked whole. Raises ClinicFileError listing every problem.

    filename only serves the messages.
    """
    try:
        document = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ClinicFileError(filename, [syntax_problem(exc)]) from None
    except RecursionError:
        # tomllib reads nested arrays and inline tables recursively: a hostile file nests
        # thousands deep. No clinic file nests more than three.
        raise ClinicFileError(
            filename, [Problem("", "nests arrays or tables too deeply to be a clinic file")]
        ) from None
    try:
        return ClinicSpec.model_validate(
            document,
            context={
                SERVICE_SLUGS: _slugs_of(document, "services"),
                FORM_SLUGS: _slugs_of(document, "forms"),
            },
        )
    except ValidationError as error:
        raise ClinicFileError(filename, problems_in(error)) from None


def _slugs_of(document: dict, key: str) -> list:
    """The slugs the file's services (or forms) give themselves, checked or not: a therapist
    offering one is not told it does not exist when the service's own table has a mistake
    elsewhere."""
    tables = document.get(key)
    if not isinstance(tables, list):
        return []
    return [table.get("slug") for table in tables if isinstance(table, dict)]
