"""`assay sandbox` command(s)."""

import typer


def register(app: typer.Typer) -> None:
    pass  # filled in by its owner
