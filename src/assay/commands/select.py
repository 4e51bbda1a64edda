"""`assay select`: run a selector pipeline over a fixed candidate pool and score it.

Selection and scoring are separate: selectors get Evidence from the public and generated tests
only; the pool's hidden test runs afterwards, in its own runner call, to score the choices.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import typer

from assay.errors import UserError

DEFAULT_TIMEOUT_S = 1.0  # per generated/public test: HumanEval-sized functions need far less
HIDDEN_TIMEOUT_S = 3.0  # the hidden check runs several asserts; HumanEval's own harness allows 3 s


@dataclass
class PoolEval:
    """One pool task as a selector sees it: no hidden test anywhere in here."""

    task: Any  # Task
    candidates: list  # list[Candidate]
    evidence: Any  # Evidence


def build_inputs(pool: list, prompt_examples: bool = True) -> list[tuple]:
    """(task, candidates, tests) per pool task; trusted public tests first, then generated."""
    out = []
    for pt in pool:
        task = pt.task(prompt_examples)
        out.append((task, pt.candidate_list(), list(task.public_tests) + pt.generated()))
    return out


def _chunks(items: list, workers: int) -> list[list]:
    """Tasks per runner call: enough that workers rarely idle at a call's end, few enough that
    the progress bar moves."""
    size = max(1, 8 * workers)
    return [items[i:i + size] for i in range(0, len(items), size)]


def evaluate_pool(pool: list, runner, *, prompt_examples: bool = True,
                  progress: Callable[[int], None] | None = None) -> list[PoolEval]:
    """Evidence for every task (runs the public + generated tests), a few tasks per runner call."""
    jobs = build_inputs(pool, prompt_examples)
    evals: list[PoolEval] = []
    for chunk in _chunks(jobs, runner.workers):
        evs = runner.evaluate_many([(t, c, tests, None) for t, c, tests in chunk])
        evals += [PoolEval(t, c, ev) for (t, c, _), ev in zip(chunk, evs)]
        if progress:
            progress(len(chunk))
    return evals


def hidden_correct(pool: list, runner, progress: Callable[[int], None] | None = None) -> list[dict[str, bool]]:
    """For scoring only: which candidates pass each task's hidden `check(candidate)`."""
    out: list[dict[str, bool]] = []
    for chunk in _chunks(pool, runner.workers):
        jobs = []
        for pt in chunk:
            task = pt.task()
            jobs.append((task, pt.candidate_list(), [pt.hidden_check()], []))
        for ev in runner.evaluate_many(jobs):
            out.append({cid: row.get("hidden") == "pass" for cid, row in ev.outcomes.items()})
        if progress:
            progress(len(chunk))
    return out


def select_all(evals: list[PoolEval], spec: str, *, seed: int = 0, model=None, runner=None,
               budget=None) -> list[tuple]:
    """Run the pipeline on every task; returns (Selection, trace) per task."""
    from assay.selectors.base import SelectContext
    from assay.selectors.pipeline import parse_pipeline, run_pipeline
    from assay.types import Budget

    stages = parse_pipeline(spec)
    budget = budget or Budget()
    out = []
    for e in evals:
        ctx = SelectContext(model=model, budget=budget, runner=runner,
                            rng=random.Random(f"{seed}:{e.task.id}"))
        out.append(run_pipeline(stages, e.task, e.candidates, e.evidence, ctx))
    return out


def summarize(spec: str, evals: list[PoolEval], selections: list[tuple],
              correct: list[dict[str, bool]]) -> dict[str, Any]:
    from assay.metrics import baseline_pass1, oracle, selected_correct, selected_pass1
    from assay.types import Cost

    credits = [selected_correct(sel, corr) for (sel, _), corr in zip(selections, correct)]
    cost = Cost()
    for sel, _ in selections:
        cost = cost + sel.cost
    return {
        "selector": spec,
        "tasks": len(evals),
        "oracle": oracle(correct),
        "baseline_pass1": baseline_pass1(correct),
        "selected_pass1": selected_pass1(credits),
        "abstained": sum(sel.abstained for sel, _ in selections),
        "cost_usd": cost.usd,
        "per_task": [{"task_id": e.task.id, "chosen": sel.chosen, "tied": len(sel.tied),
                      "correct": credit}
                     for e, (sel, _), credit in zip(evals, selections, credits)],
    }


def register(app: typer.Typer) -> None:
    @app.command("select")
    def select_cmd(
        pool: Path = typer.Option(..., "--pool", help="Candidate pool file (JSONL, one task per line)."),
        selector: str = typer.Option(None, "--selector",
                                     help="Pipeline of selectors, e.g. 'public|dedup|cluster' "
                                          "(default: the best model-free one measured)."),
        model: str = typer.Option(None, "--model", help="Model for judge-based selectors."),
        json_out: Path = typer.Option(None, "--json", help="Write the result JSON here."),
        workers: int = typer.Option(None, "--workers", min=1, help="Parallel sandbox processes."),
        seed: int = typer.Option(None, "--seed", help="Seed for tie-breaking and sampling."),
        sandbox: str = typer.Option(None, "--sandbox", help="Sandbox backend: local or docker."),
        unsafe_no_sandbox: bool = typer.Option(False, "--unsafe-no-sandbox",
                                               help="Run candidates without isolation (trusted code only)."),
        timeout: float = typer.Option(DEFAULT_TIMEOUT_S, "--timeout",
                                      help="Seconds of CPU per test (the hidden check gets at least 3)."),
        fixed_timeout: bool = typer.Option(False, "--fixed-timeout",
                                           help="Give every test the full --timeout, instead of a tighter "
                                                "limit set from how fast the other candidates finish it."),
        examples: bool = typer.Option(True, "--prompt-examples/--no-prompt-examples",
                                      help="Use the prompt's worked examples as trusted tests when "
                                           "a task has no public tests."),
        limit: int = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
        cache_dir: Path = typer.Option(None, "--cache-dir", help="Execution result cache (default: <runs_dir>/_exec_cache)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or table."),
    ) -> None:
        """Choose one candidate per task of a fixed pool and score the choices with the hidden tests."""
        from assay.config import load_settings
        from assay.pool import load_pool
        from assay.sandbox.base import make_sandbox
        from assay.sandbox.runner import PEER_FACTOR, Runner
        from assay.selectors.pipeline import DEFAULT_PIPELINE, parse_pipeline, require_model
        from assay.types import Budget

        if timeout <= 0:
            raise UserError(f"--timeout must be positive, not {timeout:g}; pass e.g. --timeout 1.")
        settings = load_settings({"workers": workers, "seed": seed, "sandbox": sandbox,
                                  "quiet": quiet or None, "model": model,
                                  "peer_limits": False if fixed_timeout else None})
        spec = selector or DEFAULT_PIPELINE
        parse_pipeline(spec)
        require_model(spec, settings.model is not None)
        tasks = load_pool(pool, limit=limit)
        budget = Budget(usd=settings.max_usd, calls=settings.max_calls)
        judge = None
        if settings.model is not None:
            from assay.agent.models import make_model

            judge = make_model(settings.model, api_base=settings.api_base, budget=budget)
        # results are cached by content hash, so an interrupted run loses nothing it computed
        cache_dir = cache_dir or Path(settings.runs_dir) / "_exec_cache"
        box = make_sandbox(settings.sandbox, unsafe_no_sandbox=unsafe_no_sandbox or settings.unsafe_no_sandbox,
                           image=settings.image)
        try:
            runner = Runner(box, test_timeout_s=timeout, memory_mb=settings.memory_mb,
                            workers=settings.workers, cache_dir=cache_dir, budget=budget,
                            peer_factor=PEER_FACTOR if settings.peer_limits else None)
            scorer = runner.without_peer_limits(max(timeout, HIDDEN_TIMEOUT_S))
            result = _run(tasks, spec, runner, scorer, judge, budget, settings.seed, examples,
                          show=not settings.quiet)
        finally:
            box.close()
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        if not settings.quiet:
            _print(result)


def _run(tasks, spec, runner, scorer, judge, budget, seed, examples, show) -> dict[str, Any]:
    import sys

    from rich.progress import Progress

    from assay.metrics import cost_per_stage

    with Progress(disable=not (show and sys.stderr.isatty()), transient=True) as bar:
        t_ev = bar.add_task("running tests", total=len(tasks))
        evals = evaluate_pool(tasks, runner, prompt_examples=examples,
                              progress=lambda n: bar.advance(t_ev, n))
        selections = select_all(evals, spec, seed=seed, model=judge, runner=runner, budget=budget)
        t_sc = bar.add_task("scoring with hidden tests", total=len(tasks))
        correct = hidden_correct(tasks, scorer, progress=lambda n: bar.advance(t_sc, n))
    result = summarize(spec, evals, selections, correct)
    result["cost_per_stage"] = cost_per_stage((name, s.cost) for _, trace in selections for name, s in trace)
    result["sandbox"] = {"runs": budget.sandbox_runs, "seconds": round(budget.sandbox_s, 1)}
    return result


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"assay select: {result['selector']} on {result['tasks']} tasks")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("selected pass@1", f"{result['selected_pass1']:.3f}")
    table.add_row("random pass@1 (baseline)", f"{result['baseline_pass1']:.3f}")
    table.add_row("oracle (any candidate correct)", f"{result['oracle']:.3f}")
    table.add_row("abstained", str(result["abstained"]))
    usd = result["cost_usd"]
    table.add_row("model cost (USD)", "unknown" if usd is None else f"{usd:.4f}")
    Console().print(table)
