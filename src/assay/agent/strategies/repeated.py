"""Repeated sampling: N independent answers to the same prompt (one call with n= where the
provider allows it; the model falls back to parallel single calls)."""

from __future__ import annotations

import random
from typing import Any

from assay.agent.models import within_budget
from assay.agent.strategies._common import make_candidate, solve_messages, view
from assay.types import Budget, Candidate, Task

NAME = "repeated"


def sample(task: Task, model: Any, n: int, *, strategy: str = NAME, prefix: str = "rep",
           budget: Budget | None = None, store: Any = None,
           temperature: float | None = None) -> list[Candidate]:
    """`n` candidates `<prefix>0..n-1`, each in its own trajectory; [] if the budget is spent."""
    if n <= 0:
        return []
    m = view(model, task, strategy, store)
    completions = within_budget(budget, lambda: m.complete(solve_messages(task), n=n, temperature=temperature),
                                f"{task.id}: sampling")
    if completions is None:
        return []
    return [make_candidate(task, c, cid=f"{prefix}{i}", strategy=strategy, model=model,
                           trajectory=f"{strategy}-{i}") for i, c in enumerate(completions)]


def generate(task: Task, model: Any, n: int, *, runner: Any = None, rounds: int = 0,
             budget: Budget | None = None, rng: random.Random | None = None, store: Any = None,
             workers: int = 4) -> list[Candidate]:
    """`n` independent samples; with `rounds` > 0 (and a runner) each is then self-debugged."""
    cands = sample(task, model, n, budget=budget, store=store)
    if rounds > 0:
        from assay.agent.strategies.self_debug import refine_all

        cands = refine_all(task, model, cands, runner=runner, rounds=rounds, strategy=NAME,
                           store=store, workers=workers, budget=budget)
    return cands
