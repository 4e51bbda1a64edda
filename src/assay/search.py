"""The one pipeline for a function task: generate -> tests -> verify -> select -> result.

Each stage writes its output to the run store and is read back instead of recomputed when the
same run is resumed. Everything is charged to one Budget; running out of it stops generation
cleanly and selection works with what was produced.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from assay.selectors.pipeline import DEFAULT_PIPELINE
from assay.store import RunStore
from assay.types import Budget, BudgetExceeded, Candidate, Evidence, Selection, Task, TestCase

log = logging.getLogger(__name__)


@dataclass
class SearchConfig:
    strategy: str = "self_debug"
    samples: int = 4
    rounds: int = 2
    selector: str = DEFAULT_PIPELINE  # the best model-free pipeline measured
    generated_tests: bool = True  # ask the model for assert tests
    test_count: int = 10  # how many generated asserts to keep
    seed: int = 0


@dataclass
class SearchOutcome:
    task: Task
    candidates: list[Candidate]
    tests: list[TestCase]
    evidence: Evidence
    selection: Selection
    stage_costs: dict[str, Any] = field(default_factory=dict)
    stopped_early: str | None = None  # reason generation stopped (budget)


def public_tests_for(task: Task) -> list[TestCase]:
    """Trusted tests: the task's own, else the examples in its docstring."""
    if task.public_tests:
        return list(task.public_tests)
    if task.entry_point:
        from assay.agent.testgen import public_tests_from_docstring

        return public_tests_from_docstring(task.statement, task.entry_point)
    return []


def _generate(task: Task, cfg: SearchConfig, model, runner, store: RunStore | None, budget: Budget,
              rng: random.Random) -> tuple[list[Candidate], str | None]:
    from assay.agent.strategies import STRATEGIES

    if store is not None:
        saved = store.load_candidates(task.id)
        if saved is not None:
            return [Candidate.model_validate(c) for c in saved], None
    strategy = STRATEGIES[cfg.strategy]
    stopped = None
    try:
        candidates = strategy(task, model, cfg.samples, runner=runner, rounds=cfg.rounds, budget=budget,
                              rng=rng, store=store)
    except BudgetExceeded as e:
        candidates, stopped = [], str(e)
    if store is not None:
        store.save_candidates(task.id, candidates)
        if stopped is None:
            store.mark_candidates_done(task.id)
    return candidates, stopped


def _tests(task: Task, cfg: SearchConfig, model, store: RunStore | None, budget: Budget) -> list[TestCase]:
    if store is not None and store.has(task.id, "30_tests.json"):
        return [TestCase.model_validate(t) for t in store.load(task.id, "30_tests.json")]
    tests = list(task.public_tests)
    if cfg.generated_tests and model is not None:
        from assay.agent.testgen import generate_tests

        try:
            tests += generate_tests(task, model, n=cfg.test_count, budget=budget)
        except BudgetExceeded as e:
            log.warning("no generated tests: %s", e)
    if store is not None:
        store.save(task.id, "30_tests.json", [t.model_dump(mode="json") for t in tests])
    return tests


def run_search(task: Task, cfg: SearchConfig, *, model, runner, store: RunStore | None = None,
               budget: Budget | None = None) -> SearchOutcome:
    from assay.selectors.base import SelectContext
    from assay.selectors.pipeline import run_pipeline

    budget = budget or Budget()
    rng = random.Random(f"{cfg.seed}:{task.id}")
    if not task.public_tests:  # strategies and filters see the docstring's examples as public tests
        task = task.model_copy(update={"public_tests": public_tests_for(task)})
    if store is not None:
        store.save(task.id, "10_task.json", task)

    spent0 = budget.spent
    candidates, stopped = _generate(task, cfg, model, runner, store, budget, rng)
    spent1 = budget.spent
    tests = _tests(task, cfg, model, store, budget)
    spent2 = budget.spent

    valid = [c for c in candidates if c.valid]
    if store is not None and store.has(task.id, "40_evidence.json"):
        evidence = Evidence.model_validate(store.load(task.id, "40_evidence.json"))
    else:
        evidence = runner.evaluate(task, valid, tests)
        if store is not None:
            store.save(task.id, "40_evidence.json", evidence)

    if store is not None and store.has(task.id, "50_selection.json"):
        selection = Selection.model_validate(store.load(task.id, "50_selection.json"))
    else:
        ctx = SelectContext(model=model, budget=budget, runner=runner, rng=rng)
        selection, _stages = run_pipeline(cfg.selector, task, valid, evidence, ctx)
        if store is not None:
            store.save(task.id, "50_selection.json", selection)
    spent3 = budget.spent

    if store is not None and selection.chosen is not None:
        chosen = next(c for c in candidates if c.id == selection.chosen)
        from assay.store import atomic_write_text

        atomic_write_text(store.task_dir(task.id) / "result.py", chosen.content)

    def delta(a, b) -> dict[str, Any]:
        usd = None if a.usd is None or b.usd is None else round(b.usd - a.usd, 6)
        return {"calls": b.calls - a.calls, "tokens_in": b.tokens_in - a.tokens_in,
                "tokens_out": b.tokens_out - a.tokens_out, "usd": usd}

    return SearchOutcome(
        task=task, candidates=candidates, tests=tests, evidence=evidence, selection=selection,
        stage_costs={"generate": delta(spent0, spent1), "tests": delta(spent1, spent2),
                     "select": delta(spent2, spent3)},
        stopped_early=stopped,
    )
