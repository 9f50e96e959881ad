"""How a value the clinic wrote reads inside a message: as in its TOML file, short, one line.

Every message about a bad value (the clinic file's, the back office's) shows it this way.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import date, datetime, time
from typing import Any


def shown(value: Any) -> str:
    """value as it would read in the file, short, and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        quoted = json.dumps(text, ensure_ascii=False)
        return "".join(f"\\u{ord(char):04x}" if is_control(char) else char for char in quoted)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    return type(value).__name__


def is_control(char: str) -> bool:
    """Whether char would break a message or a mail header line, or hide in it."""
    # Cc: C0/C1 controls, tab, newline, DEL. Zl/Zp: Unicode line and paragraph separators.
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}
