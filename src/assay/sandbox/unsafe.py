"""No isolation at all: a plain subprocess with rlimits. Only behind --unsafe-no-sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

from assay.sandbox.base import Limits
from assay.sandbox.process import rlimit_preexec, run_process
from assay.types import ExecResult


class UnsafeSandbox:
    name = "unsafe"

    def run(self, cmd: list[str], workspace: Path, limits: Limits, stdin: bytes | None = None) -> ExecResult:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workspace), "LANG": "C.UTF-8"}
        env.update(limits.env)
        return run_process(
            cmd,
            cwd=str(workspace),
            env=env,
            wall_s=limits.wall_s,
            output_bytes=limits.output_bytes,
            stdin=stdin,
            preexec_fn=rlimit_preexec(
                limits.cpu_s if limits.cpu_s is not None else limits.wall_s + 1,
                limits.memory_mb, None, limits.fsize_mb,
            ),
        )

    def python(self) -> str:
        return sys.executable

    def close(self) -> None:
        pass
