"""What a refused clinic file is told: one line per problem, "FILE: key.path: what is wrong".

pydantic finds the problems (schema.py); here each becomes the key path the clinic sees in its
file ("therapists[2].hours.mon[1]") and a sentence. TOML syntax errors lead with their line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from pydantic import ValidationError

from booking.clinic.clinic_file.schema import MODELS_BY_PLACE, PROBLEM, did_you_mean
from booking.rules.shown_values import shown

_TOML_POSITION = re.compile(r"(.*) \((?:at line (\d+), column (\d+)|at end of document)\)", re.S)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Problem:
    where: str  # a key path such as "therapists[2].hours.mon[1]", or "line 4, column 7"
    what: str


class ClinicFileError(Exception):
    """A clinic file that cannot be loaded, with every problem found in it, one per line."""

    def __init__(self, filename: str, problems: list[Problem]):
        self.filename = filename
        self.problems = tuple(problems)
        lines = [
            f"{filename}: {problem.where}: {problem.what}"
            if problem.where
            else f"{filename}: {problem.what}"
            for problem in problems
        ]
        super().__init__("\n".join(lines))


def key_path(loc: tuple[str | int, ...]) -> str:
    """("therapists", 2, "hours", "mon", 1) -> "therapists[2].hours.mon[1]"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else shown(part)
            path = f"{path}.{key}" if path else key
    return path


def problems_in(error: ValidationError) -> list[Problem]:
    return [Problem(key_path(tuple(each["loc"])), _what(each)) for each in error.errors()]


def _what(error: dict) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == PROBLEM:
        return error["msg"]
    if kind == "missing":
        if loc == ("clinic",):
            return "required table is missing; start the file with [clinic]"
        return "required key is missing"
    if kind == "extra_forbidden":
        place = tuple(part for part in loc[:-1] if isinstance(part, str))
        known = tuple(MODELS_BY_PLACE[place].model_fields)
        key = str(loc[-1])
        return "unknown key" + (did_you_mean(key, known) or f"; known keys: {', '.join(known)}")
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        if len(loc) == 1:
            return f"must be a table, [{loc[0]}] (got {shown(error['input'])})"
        return f"must be a table (got {shown(error['input'])})"
    return error["msg"]


def syntax_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib's message ends with "(at line L, column C)"; lead with the place instead."""
    message = str(exc)
    match = _TOML_POSITION.fullmatch(message)
    if not match:
        return Problem("", f"is not valid TOML: {message}")
    reason, line, column = match.groups()
    where = f"line {line}, column {column}" if line else "end of file"
    return Problem(where, f"{reason[:1].lower()}{reason[1:]} (not valid TOML)")
