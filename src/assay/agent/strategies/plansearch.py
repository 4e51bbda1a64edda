"""PlanSearch: search over natural-language plans instead of over code.

1. Ask for observations about the problem.
2. Build combinations of them (subsets of size 1 and 2), sampled with `rng` up to N.
3. Optionally (`derive=True`) derive one new observation from each combination.
4. Ask for a plan from each combination, then for code that follows the plan.
N is the number of final programs; each keeps its plan in `origin.plan`.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
from typing import Any

from assay.agent.models import split_cost, within_budget
from assay.agent.render import problem_block, render
from assay.agent.strategies._common import make_candidate, parallel_map, system_message, view
from assay.types import Budget, BudgetExceeded, Candidate, Cost, Task

log = logging.getLogger("assay.strategies.plansearch")

NAME = "plansearch"
MAX_OBSERVATIONS = 10
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\(\d+\))\s+(.*\S)\s*$")


def observations_wanted(n: int) -> int:
    """Fewest observations (3..8) whose subsets of size 1-2 give at least n combinations."""
    k = 3
    while k < 8 and k + k * (k - 1) // 2 < n:
        k += 1
    return k


def parse_observations(text: str, limit: int = MAX_OBSERVATIONS) -> list[str]:
    """Bulleted or numbered lines, deduplicated, in order."""
    out: list[str] = []
    for line in text.splitlines():
        m = _BULLET.match(line)
        if m:
            obs = m.group(1).strip()
            if obs and obs not in out:
                out.append(obs)
    return out[:limit]


def combinations(observations: list[str], n: int, rng: random.Random) -> list[tuple[str, ...]]:
    """n combinations (size 1 and 2), sampled without repetition until all are used, then
    reused in a fresh random order; [()] * n without observations."""
    pool = [c for size in (1, 2) for c in itertools.combinations(observations, size)]
    if not pool:
        return [()] * n
    out: list[tuple[str, ...]] = []
    while len(out) < n:
        out.extend(rng.sample(pool, min(len(pool), n - len(out))))
    return out


def _ask(m: Any, content: str, temperature: float | None = None):
    return m.complete([system_message(), {"role": "user", "content": content}], n=1,
                      temperature=temperature)[0]


def generate(task: Task, model: Any, n: int, *, runner: Any = None, rounds: int = 0,
             budget: Budget | None = None, rng: random.Random | None = None, store: Any = None,
             workers: int = 4, derive: bool = False) -> list[Candidate]:
    """n programs, each from its own plan; with `rounds` > 0 each is then self-debugged."""
    if n <= 0:
        return []
    rng = rng or random.Random(0)
    problem = problem_block(task.statement)
    entry = task.entry_point or ""
    obs_answer = within_budget(budget, lambda: _ask(view(model, task, f"{NAME}-observations", store),
                                                    render("plansearch_observations.j2", problem=problem,
                                                           k=observations_wanted(n))),
                               f"{task.id}: plansearch")
    if obs_answer is None:
        return []
    observations = parse_observations(obs_answer.text)
    if not observations:
        log.info("%s: no observations parsed; planning without them", task.id)
    combos = combinations(observations, n, rng)
    shares = split_cost(obs_answer.cost, n)

    def one(i: int) -> Candidate | None:
        trajectory = f"{NAME}-{i}"
        m = view(model, task, trajectory, store)
        observations = list(combos[i])
        extra = Cost()
        try:
            if derive and observations:
                derived = _ask(m, render("plansearch_derive.j2", problem=problem,
                                         observations=observations))
                extra = derived.cost
                observations += parse_observations(derived.text, limit=1) or [derived.text.strip()]
            plan = _ask(m, render("plansearch_plan.j2", problem=problem, observations=observations))
            code = _ask(m, render("plansearch_code.j2", problem=problem, plan=plan.text.strip(),
                                  entry_point=entry))
        except BudgetExceeded as e:
            log.info("%s: plan %d stopped: %s", task.id, i, e)
            return None
        return make_candidate(task, code, cid=f"plan{i}", strategy=NAME, model=model,
                              trajectory=trajectory, plan=plan.text.strip(),
                              extra_cost=plan.cost + shares[i] + extra)

    cands = [c for c in parallel_map(one, range(n), workers) if c is not None]
    if rounds > 0:
        from assay.agent.strategies.self_debug import refine_all

        cands = refine_all(task, model, cands, runner=runner, rounds=rounds, strategy=NAME,
                           store=store, workers=workers, budget=budget)
    return cands


