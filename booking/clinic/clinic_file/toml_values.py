"""One value written as the clinic file writes it: for the export, and for the load report."""

from __future__ import annotations

from typing import Any

import tomli_w


def toml_value(value: Any) -> str:
    """value written as TOML; lists on one line. tomli_w does the string escaping."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")
