"""`assay demo` (what `make demo` runs): the function search on a handful of HumanEval problems.

With no ASSAY_MODEL it replays the hand-written recording in examples/demo/, so it needs no
API key; with ASSAY_MODEL set (and that provider's key) it uses that model instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

DEMO_IDS = ["HumanEval/0", "HumanEval/4", "HumanEval/12", "HumanEval/13", "HumanEval/29"]


def recording_path() -> Path:
    return Path(__file__).resolve().parents[3] / "examples" / "demo" / "recording.jsonl"


def demo(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; the results are still written."),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox",
                                           help="Run model code without isolation: only on a machine you trust."),
    sandbox: str = typer.Option(None, "--sandbox", help="local (bubblewrap) or docker (default local)."),
) -> None:
    """Search on 5 HumanEval problems: 3 samples each, 1 self-debug round, default selection."""
    from assay.commands.bench import run_humaneval
    from assay.commands.common import console
    from assay.errors import UserError

    out = console(quiet)
    model = os.environ.get("ASSAY_MODEL")
    if model:
        source = f"litellm model {model} (from ASSAY_MODEL)"
        out.print(f"Using the model {model} from ASSAY_MODEL.")
    else:
        rec = recording_path()
        if not rec.is_file():
            raise UserError(f"the demo recording {rec} is missing; run from a checkout of assay or set ASSAY_MODEL.")
        model = f"replay:{rec}"
        source = "ReplayModel over examples/demo/recording.jsonl (hand-written model responses)"
        out.print("No ASSAY_MODEL set: replaying hand-written model responses from examples/demo/recording.jsonl.")
    run_humaneval(model_name=model, model_source=source, strategy="self_debug", samples=3, rounds=1,
                  selector=None, ids=DEMO_IDS, limit=None, workers=1, sandbox=sandbox,
                  unsafe_no_sandbox=unsafe_no_sandbox, out_dir=Path("runs") / "demo-results", run_id=None,
                  runs_dir=None, max_usd=None, seed=None, quiet=quiet, test_count=10)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
