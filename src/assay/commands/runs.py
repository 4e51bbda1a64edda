"""`assay runs`: list and inspect run directories."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from assay.errors import UserError

runs_app = typer.Typer(help="List and inspect runs in the run store.", no_args_is_help=True)


def _runs_dir(runs_dir: str | None) -> Path:
    from assay.config import load_settings

    return Path(runs_dir or load_settings().runs_dir)


@runs_app.command("list")
def list_runs(runs_dir: str = typer.Option(None, "--runs-dir", help="Run store root (default: ./runs).")) -> None:
    """One line per run: id, tasks, tasks with a selection."""
    from rich.console import Console
    from rich.table import Table

    root = _runs_dir(runs_dir)
    if not root.is_dir():
        raise UserError(f"no run store at {root}; run `assay solve` or `assay bench` first, or pass --runs-dir.")
    table = Table("run", "tasks", "selected", "abstained", "created")
    for run in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        tasks = [d for d in run.iterdir() if d.is_dir()]
        sels = [json.loads((d / "50_selection.json").read_text()) for d in tasks if (d / "50_selection.json").exists()]
        info = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
        table.add_row(run.name, str(len(tasks)), str(sum(1 for s in sels if s.get("chosen"))),
                      str(sum(1 for s in sels if not s.get("chosen"))), str(info.get("created", "")))
    Console().print(table)


@runs_app.command("show")
def show_run(
    run_id: str = typer.Argument(..., help="Run id (a directory under the run store)."),
    task_id: str = typer.Argument(None, help="Task id; omit to list the run's tasks."),
    runs_dir: str = typer.Option(None, "--runs-dir", help="Run store root (default ./runs)."),
) -> None:
    """Show a run's tasks, or one task's selection and chosen program."""
    from rich.console import Console
    from rich.syntax import Syntax

    from assay.store import safe_name

    console = Console()
    run = _runs_dir(runs_dir) / safe_name(run_id)
    if not run.is_dir():
        raise UserError(f"no run named {run_id!r} under {run.parent}; `assay runs list` shows them.")
    if task_id is None:
        for d in sorted(p for p in run.iterdir() if p.is_dir()):
            sel = d / "50_selection.json"
            chosen = json.loads(sel.read_text()).get("chosen") if sel.exists() else "(not selected yet)"
            console.print(f"{d.name}: chosen {chosen}")
        return
    d = run / safe_name(task_id)
    if not d.is_dir():
        raise UserError(f"run {run_id!r} has no task {task_id!r}; `assay runs show {run_id}` lists them.")
    sel = json.loads((d / "50_selection.json").read_text()) if (d / "50_selection.json").exists() else None
    if sel is None:
        console.print("no selection yet (the run stopped before selecting; re-run the same command to resume)")
        return
    console.print(f"[bold]chosen:[/bold] {sel.get('chosen')}  [bold]tied:[/bold] {len(sel.get('tied', []))}")
    console.print(f"[bold]why:[/bold] {sel.get('rationale')}")
    for name in ("result.py", "result.patch"):
        if (d / name).exists():
            console.print(Syntax((d / name).read_text(), "python" if name.endswith(".py") else "diff"))


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
