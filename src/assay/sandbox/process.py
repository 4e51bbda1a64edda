"""Spawn a process with rlimits, capped output and a wall-clock deadline; kill its whole tree.

Shared by the local (bubblewrap) and unsafe backends. The child starts a new session so the
process group can be killed at once; bubblewrap's own pid namespace makes sure that
grandchildren which call setsid() die with it too.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import time
from typing import Callable, Sequence

from assay.types import ExecResult

_CHUNK = 65536


def rlimit_preexec(cpu_s: float | None, memory_mb: int | None, nproc: int | None,
                   fsize_mb: int | None, extra: Callable[[], None] | None = None) -> Callable[[], None]:
    def preexec() -> None:
        if cpu_s is not None:
            c = int(cpu_s) + 1
            resource.setrlimit(resource.RLIMIT_CPU, (c, c))
        if memory_mb is not None:
            b = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (b, b))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if fsize_mb is not None:
            b = fsize_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (b, b))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if extra is not None:
            extra()

    return preexec


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_process(
    argv: Sequence[str],
    *,
    cwd: str | None,
    env: dict[str, str],
    wall_s: float,
    output_bytes: int,
    stdin: bytes | None = None,
    preexec_fn: Callable[[], None] | None = None,
    pass_fds: Sequence[int] = (),
    on_spawn: Callable[[subprocess.Popen], None] | None = None,
) -> ExecResult:
    """Run argv; return its ExecResult. Output past `output_bytes` per stream is dropped
    (and the process killed, reason "output", once both caps are far exceeded).
    `on_spawn(proc)` runs right after the spawn, before any I/O (the local backend uses it
    to put bubblewrap's sandbox into cgroups and set rlimits while bwrap waits for it)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=preexec_fn,
        pass_fds=tuple(pass_fds),
        close_fds=True,
    )
    if on_spawn is not None:
        try:
            on_spawn(proc)
        except BaseException:
            _kill_group(proc)
            proc.communicate()
            raise
    bufs = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = {fd: False for fd in bufs}
    dropped = 0
    killed_reason: str | None = None
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f.fileno(), selectors.EVENT_READ)
    # stdin is fed from the same loop that drains stdout/stderr: writing it all up front
    # deadlocks (past the deadline) when the child writes a pipe-full before reading stdin.
    stdin_fd = None
    pending = memoryview(stdin or b"")
    if stdin is not None:
        if pending:
            stdin_fd = proc.stdin.fileno()
            os.set_blocking(stdin_fd, False)
            sel.register(stdin_fd, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    deadline = start + wall_s
    open_fds = set(bufs)
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed_reason = "timeout"
            _kill_group(proc)
            break
        for key, _ in sel.select(timeout=min(remaining, 0.5)):
            fd = key.fd
            if fd == stdin_fd:
                try:
                    pending = pending[os.write(fd, pending[:_CHUNK]):]
                except BlockingIOError:
                    continue
                except OSError:  # the child closed its stdin (EPIPE): the rest is not wanted
                    pending = pending[:0]
                if not pending:
                    sel.unregister(fd)
                    proc.stdin.close()
                    stdin_fd = None
                continue
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(fd)
                open_fds.discard(fd)
                continue
            buf = bufs[fd]
            room = output_bytes - len(buf)
            if room > 0:
                buf += data[:room]
            if len(data) > room:
                truncated[fd] = True
                dropped += len(data) - max(room, 0)
                if dropped > 4 * output_bytes + _CHUNK:
                    killed_reason = "output"
                    _kill_group(proc)
    sel.close()
    if stdin_fd is not None:  # exited (or killed) without reading all of it
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        exit_code = proc.wait(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    except subprocess.TimeoutExpired:
        killed_reason = killed_reason or "timeout"
        _kill_group(proc)
        exit_code = proc.wait()
    # Anything left in the group (e.g. a daemonised grandchild holding no pipe) dies too.
    _kill_group(proc)
    for f in (proc.stdout, proc.stderr):
        f.close()
    keys = list(bufs)
    timed_out = killed_reason == "timeout"
    return ExecResult(
        exit_code=124 if timed_out else exit_code,
        stdout=bufs[keys[0]].decode("utf-8", "replace"),
        stderr=bufs[keys[1]].decode("utf-8", "replace"),
        stdout_truncated=truncated[keys[0]],
        stderr_truncated=truncated[keys[1]],
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        killed_reason=killed_reason,
    )
