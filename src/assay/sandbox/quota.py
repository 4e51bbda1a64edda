"""Size-bounded workspace directories.

RLIMIT_FSIZE caps each file a candidate writes, not how many it writes; a workspace that is
its own tmpfs (`size=`) bounds the total, so a candidate hits ENOSPC long before the host disk
fills. Mounting needs root; otherwise a plain temp dir is used and a warning is logged once.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
_warned = threading.Event()


def _mount_tmpfs(path: Path, size_mb: int) -> str | None:
    """Mount a `size_mb` tmpfs on `path`; the reason when it could not."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700,nosuid,nodev",
                            "tmpfs", str(path)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if p.returncode == 0 else (p.stderr.strip() or f"mount exited {p.returncode}")


def bound_dir(path: Path, size_mb: int) -> bool:
    """Mount a `size_mb` tmpfs on the empty dir `path`; False (warned once) when it cannot."""
    why = _mount_tmpfs(path, size_mb)
    if why is not None and not _warned.is_set():
        _warned.set()
        log.warning("workspace size is not bounded (%s): a sandboxed command may fill the disk "
                    "under %s", why, path.parent)
    return why is None


def unbound_dir(path: Path) -> None:
    """Unmount what bound_dir mounted (the dir itself stays, empty)."""
    _umount(path)


def _umount(path: Path) -> None:
    # lazy: a process the sandbox failed to reap must not keep the mount (and its pages) alive
    p = subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise OSError(f"cannot unmount workspace tmpfs {path}: {p.stderr.strip()}")


@contextmanager
def bounded_workspace(size_mb: int, prefix: str = "assay-ws-", dir: str | None = None) -> Iterator[Path]:
    """A fresh empty directory holding at most `size_mb` MiB (when root), removed on exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    mounted = False
    try:
        mounted = bound_dir(path, size_mb)
        yield path
    finally:
        try:
            if mounted:
                _umount(path)  # drops everything written inside at once
        finally:
            shutil.rmtree(path, ignore_errors=True)
