"""Finding processes by what their command line names (a marker, a workspace path): how the
tests check that a sandbox left nothing behind."""

from __future__ import annotations

import os
from pathlib import Path


def procs_naming(text: str) -> dict[int, bytes]:
    """pid -> command line (NUL-separated) of every other process whose command line holds `text`."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found[int(entry.name)] = cmdline
    return found
