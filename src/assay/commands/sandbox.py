"""`assay sandbox ...`: run one command exactly the way candidates run (more subcommands can be
added to `sandbox_app` with @sandbox_app.command)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import List, Optional

import typer

from assay.errors import UserError

sandbox_app = typer.Typer(help="Run commands in the sandbox candidates run in.", no_args_is_help=True)


@sandbox_app.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
def run_command(
    cmd: List[str] = typer.Argument(..., help="The command and its arguments (put them after `--`)."),
    sandbox: str = typer.Option("local", "--sandbox", help="Backend: local (bubblewrap) or docker."),
    image: Optional[str] = typer.Option(None, "--image", help="Docker image (docker backend)."),
    timeout: float = typer.Option(10.0, "--timeout", help="Wall-clock limit in seconds."),
    memory: int = typer.Option(1024, "--memory", help="Memory limit in MB."),
    workspace: Optional[Path] = typer.Option(
        None, "--workspace", help="Writable working directory (default: a fresh temp dir, removed after)."),
    unsafe_no_sandbox: bool = typer.Option(
        False, "--unsafe-no-sandbox", help="Run without isolation (only rlimits): never for untrusted code."),
    stdin_file: Optional[str] = typer.Option(
        None, "--stdin", help="File to feed to the command's stdin ('-' = this process's stdin); default none."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No notes about truncation or kills."),
) -> None:
    """Run CMD under the same isolation and limits as candidates; exit with its exit code (124 on timeout)."""
    from rich.console import Console

    from assay.sandbox.base import Limits, make_sandbox
    from assay.sandbox.quota import bounded_workspace

    if timeout <= 0 or memory <= 0:
        raise UserError("--timeout and --memory must be positive; pass e.g. --timeout 10 --memory 1024.")
    if workspace is not None and not workspace.is_dir():
        raise UserError(f"--workspace {workspace} is not a directory; create it or omit --workspace.")
    stdin = None
    if stdin_file == "-":
        stdin = sys.stdin.buffer.read()
    elif stdin_file is not None:
        try:
            stdin = Path(stdin_file).read_bytes()
        except OSError as e:
            raise UserError(f"cannot read --stdin {stdin_file} ({e.strerror}); pass an existing file or '-'.") from None
    limits = Limits(wall_s=timeout, memory_mb=memory)
    box = make_sandbox(sandbox, unsafe_no_sandbox=unsafe_no_sandbox, image=image)
    try:
        with ExitStack() as stack:
            if workspace is None:
                workspace = stack.enter_context(bounded_workspace(limits.workspace_mb, prefix="assay-sandbox-run-"))
            res = box.run(list(cmd), workspace.resolve(), limits, stdin=stdin)
    finally:
        box.close()
    sys.stdout.write(res.stdout)
    sys.stdout.flush()
    sys.stderr.write(res.stderr)
    sys.stderr.flush()
    notes = Console(stderr=True, highlight=False, quiet=quiet)
    for name, cut in (("stdout", res.stdout_truncated), ("stderr", res.stderr_truncated)):
        if cut:
            notes.print(f"\\[assay] {name} truncated (more than {limits.output_bytes} bytes)", style="yellow")
    if res.timed_out:
        notes.print(f"\\[assay] killed after the {timeout:g} s timeout", style="yellow")
    elif res.killed_reason:
        notes.print(f"\\[assay] killed: {res.killed_reason} limit", style="yellow")
    code = res.exit_code
    raise typer.Exit(code=128 - code if code < 0 else code)  # Popen's -SIG as a shell would say it


@sandbox_app.command("build")
def build_command(
    name: str = typer.Option("assay-sandbox:py311", "--name", help="Image name:tag to build."),
    from_image: Optional[str] = typer.Option(
        None, "--from", help="Base image already on the engine (never pulled); default: debootstrap offline."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even if the image exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the final line."),
) -> None:
    """Build the Docker sandbox image (Debian bookworm, python3, git, non-root user `sandbox`)."""
    import time

    from rich.console import Console

    from assay.sandbox.docker import connect
    from assay.sandbox.image import build_image

    console = Console(stderr=True, highlight=False, quiet=quiet)
    client = connect()
    start = time.monotonic()
    with console.status(f"building {name}", spinner="dots") as status:
        def progress(msg: str) -> None:
            status.update(f"[{time.monotonic() - start:5.0f} s] {msg[:100]}")
            if not console.is_terminal:
                console.print(f"[{time.monotonic() - start:5.0f} s] {msg}")

        info = build_image(client, name, from_image=from_image, rebuild=rebuild, progress=progress)
    verb = "built" if info["built"] else "exists"
    Console(highlight=False).print(f"{name} {verb} ({info['id']}, {info['size_mb']:.0f} MB) "
                                   f"in {info['seconds']:.1f} s")


@sandbox_app.command("gc")
def gc_command(
    run_id: Optional[str] = typer.Option(None, "--run", help="Only containers of this run id."),
    include_live: bool = typer.Option(
        False, "--all", help="Also containers of assay processes still running on this host."),
) -> None:
    """Remove Docker sandbox containers left behind (label assay=sandbox) and say how many."""
    from rich.console import Console

    from assay.sandbox.docker import gc

    n = gc(run_id=run_id, include_live=include_live)
    Console(highlight=False).print(f"removed {n} sandbox container{'s' if n != 1 else ''}")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")

