"""`assay solve`: search for a program that solves one function problem."""

from __future__ import annotations

from pathlib import Path

import typer


def solve(
    problem: Path = typer.Option(..., "--problem", help="Markdown or .py file with the problem statement."),
    entry_point: str = typer.Option(None, "--entry-point", help="Function to write (default: first def in the file)."),
    model: str = typer.Option(None, "--model",
                              help="litellm model name, or replay:<recording.jsonl> (env ASSAY_MODEL)."),
    api_base: str = typer.Option(None, "--api-base", help="OpenAI-compatible server URL."),
    strategy: str = typer.Option("self_debug", "--strategy", help="repeated | self_debug | plansearch."),
    samples: int = typer.Option(4, "--samples", "-n", min=1, help="Independent samples (parallel)."),
    rounds: int = typer.Option(2, "--rounds", min=0, help="Self-debug feedback rounds per sample."),
    selector: str = typer.Option(None, "--selector", help="Selection pipeline, e.g. 'public|dedup|codet'."),
    sandbox: str = typer.Option(None, "--sandbox", help="local (bubblewrap) or docker."),
    unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox", help="Run model code without isolation."),
    run_id: str = typer.Option(None, "--run-id", help="Run id (default: derived from the inputs; same id resumes)."),
    runs_dir: str = typer.Option(None, "--runs-dir", help="Run store root (default ./runs)."),
    max_usd: float = typer.Option(None, "--max-usd", min=0, help="Stop generating after spending this much."),
    seed: int = typer.Option(None, "--seed", help="Seed for sampling order and tie-breaking (default 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; the results are still written."),
) -> None:
    """Solve one function problem: sample, test in a sandbox, select, print the chosen program."""
    from rich.syntax import Syntax

    from assay.commands.common import (console, make_budget, make_model, make_runner, open_store,
                                       run_id_for, settings_from)
    from assay.problem import load_problem
    from assay.search import SearchConfig, run_search

    settings = settings_from(model=model, api_base=api_base, sandbox=sandbox,
                             unsafe_no_sandbox=unsafe_no_sandbox or None, runs_dir=runs_dir,
                             max_usd=max_usd, seed=seed, quiet=quiet or None)
    out = console(settings.quiet)
    task = load_problem(problem, entry_point)
    cfg = SearchConfig(strategy=strategy, samples=samples, rounds=rounds,
                       selector=selector or SearchConfig.selector, seed=settings.seed)
    from assay.selectors.pipeline import parse_pipeline

    parse_pipeline(cfg.selector)
    from assay.selectors.pipeline import require_model

    require_model(cfg.selector, bool(settings.model))  # bad spec: fail before spending anything
    from assay.agent.strategies import get_strategy

    get_strategy(cfg.strategy)
    rid = run_id or run_id_for("solve", task.statement, task.entry_point, settings.model, cfg.__dict__)
    store = open_store(settings, rid, {"model": settings.model, **cfg.__dict__})
    budget = make_budget(settings)
    llm = make_model(settings, store, budget, required=True, what="assay solve")
    runner = make_runner(settings, rid, budget)
    try:
        with out.status(f"searching ({cfg.strategy}, {cfg.samples} samples) ..."):
            outcome = run_search(task, cfg, model=llm, runner=runner, store=store, budget=budget)
    finally:
        runner.sandbox.close()
    sel = outcome.selection
    valid = sum(1 for c in outcome.candidates if c.valid)
    print_ = out.print
    print_(f"[bold]{task.id}[/bold]: {len(outcome.candidates)} candidates ({valid} valid), "
           f"{len(outcome.tests)} tests ({sum(t.trusted for t in outcome.tests)} trusted)")
    if outcome.stopped_early:
        print_(f"[yellow]generation stopped early: {outcome.stopped_early}[/yellow]")
    if sel.chosen is None:
        print_(f"[red]no program chosen (abstained)[/red]: {sel.rationale}")
        print_(f"run directory: {store.dir}")
        raise typer.Exit(1)
    chosen = next(c for c in outcome.candidates if c.id == sel.chosen)
    print_(Syntax(chosen.content, "python"))
    print_(f"[bold]chosen[/bold] {sel.chosen} ({len(sel.tied) or 1} tied): {sel.rationale}")
    cost = budget.summary()
    usd = "unknown" if cost["usd"] is None else f"${cost['usd']:.4f}"
    print_(f"cost: {cost['calls']} model calls, {cost['tokens_in']}+{cost['tokens_out']} tokens, {usd}; "
           f"{cost['sandbox_runs']} sandbox runs")
    print_(f"run directory: {store.dir} (result.py holds the program)")


def register(app: typer.Typer) -> None:
    app.command("solve")(solve)
