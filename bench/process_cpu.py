"""The CPU time this machine's processes have used, from /proc (Linux): what the benchmarks
weigh a server's parts by."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    parent: int
    command: bytes  # its arguments, NUL-separated
    seconds: float  # user and system time so far


def processes() -> list[ProcessCpu]:
    """Every process's CPU so far; empty where there is no /proc."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        # After the command's name: the state, the parent, ... user and system time in ticks.
        found.append(ProcessCpu(int(entry), int(fields[1]), command,
                                (int(fields[11]) + int(fields[12])) / _TICKS))
    return found


def workers_of(started_with: bytes) -> list[ProcessCpu]:
    """The processes whose command holds `started_with` and whose parent's holds it too: a
    gunicorn's workers, under their master."""
    matching = {each.pid: each for each in processes() if started_with in each.command}
    return [each for each in matching.values() if each.parent in matching]
