"""The Sandbox protocol and its limits.

A sandbox runs one command over one workspace directory with time, memory, process,
file-size and output limits, no network, a cleared environment, and nothing outside the
workspace writable. Backends: `local` (bubblewrap), `docker` (docker SDK), and `unsafe`
(plain subprocess with rlimits, only when the user passes --unsafe-no-sandbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from assay.errors import UserError
from assay.types import ExecResult


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0  # whole command, wall clock; the process tree is killed after it
    cpu_s: float | None = None  # RLIMIT_CPU; default: wall_s + 1
    memory_mb: int = 1024  # cgroup memory where possible, else address space
    pids: int = 64  # processes/threads inside the sandbox
    fsize_mb: int = 64  # largest file it may write
    workspace_mb: int = 512  # all it may write into a workspace assay creates (tmpfs size, when root)
    output_bytes: int = 1 << 20  # per stream; more is dropped and marked truncated
    env: dict[str, str] = field(default_factory=dict)  # the only variables the command sees

    def with_(self, **kw) -> "Limits":
        return replace(self, **kw)


class SandboxUnavailable(UserError):
    """The chosen backend cannot run here (no bwrap, no Docker engine, ...)."""


@runtime_checkable
class Sandbox(Protocol):
    name: str

    def run(
        self,
        cmd: list[str],
        workspace: Path,
        limits: Limits,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run `cmd` with `workspace` as its writable cwd; never raises for what the command does."""
        ...

    def python(self) -> str:
        """Path of a Python interpreter usable inside this sandbox."""
        ...

    def close(self) -> None: ...


def make_sandbox(name: str = "local", *, unsafe_no_sandbox: bool = False, image: str | None = None,
                 run_id: str | None = None) -> Sandbox:
    """The backend called `name`; `unsafe_no_sandbox` replaces it with a plain subprocess."""
    if unsafe_no_sandbox:
        from assay.sandbox.unsafe import UnsafeSandbox

        return UnsafeSandbox()
    if name == "local":
        from assay.sandbox.local import LocalSandbox

        return LocalSandbox()
    if name == "docker":
        from assay.sandbox.docker import DockerSandbox

        return DockerSandbox(image=image or "assay-sandbox:py311", run_id=run_id)
    raise UserError(f"unknown sandbox backend {name!r}; choose 'local' or 'docker'.")
