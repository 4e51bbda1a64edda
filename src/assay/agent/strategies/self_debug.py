"""Self-debugging (S* stage 1): each sample is repaired over up to R rounds using feedback
from the task's PUBLIC (trusted) tests only, stopping as soon as it passes all of them.
Every round's program is kept as a candidate (origin.round, origin.parent)."""

from __future__ import annotations

import logging
import random
from typing import Any

from assay.agent.render import render
from assay.agent.strategies import repeated
from assay.agent.strategies._common import make_candidate, parallel_map, solve_messages, view
from assay.types import Budget, BudgetExceeded, Candidate, Evidence, Task

log = logging.getLogger("assay.strategies.self_debug")

NAME = "self_debug"
MAX_SHOWN = 5  # failed tests shown per feedback message


def failures(task: Task, cid: str, evidence: Evidence) -> list[dict[str, str]]:
    """The public tests candidate `cid` did not pass, with outcome and message."""
    row = evidence.outcomes.get(cid, {})
    msgs = evidence.messages.get(cid, {})
    out = []
    for t in task.public_tests:
        outcome = row.get(t.id)
        if outcome != "pass":
            out.append({"id": t.id, "source": t.source, "outcome": outcome or "not run",
                        "message": msgs.get(t.id, "")})
    return out


def feedback(task: Task, candidate: Candidate, evidence: Evidence | None) -> str | None:
    """The user message asking to fix `candidate`, or None when it passes every public test."""
    common = dict(entry_point=task.entry_point or "", parse_error=None, load_error=None,
                  failures=[], total=len(task.public_tests), shown=MAX_SHOWN)
    if not candidate.valid:
        return render("self_debug.j2", **{**common, "parse_error": candidate.error or "no program"})
    assert evidence is not None
    load_error = evidence.load_errors.get(candidate.id)
    if load_error:
        return render("self_debug.j2", **{**common, "load_error": load_error})
    failed = failures(task, candidate.id, evidence)
    if not failed:
        return None
    return render("self_debug.j2", **{**common, "failures": failed})


def _previous_answer(candidate: Candidate) -> str:
    if not candidate.valid:
        return candidate.content  # the raw answer that did not parse
    return f"```python\n{candidate.content.rstrip()}\n```"


def refine(task: Task, model: Any, start: Candidate, *, runner: Any, rounds: int,
           strategy: str = NAME, store: Any = None) -> list[Candidate]:
    """Up to `rounds` repairs of `start` from public-test feedback; returns the new candidates.
    Stops when a program passes all public tests, or cleanly when the budget is spent."""
    trajectory = f"{start.origin.trajectory or strategy}"
    m = view(model, task, trajectory, store)
    base = start.id
    out: list[Candidate] = []
    current = start
    for r in range(1, rounds + 1):
        evidence = None
        if current.valid:
            evidence = runner.evaluate(task, [current], task.public_tests)
        message = feedback(task, current, evidence)
        if message is None:
            break
        messages = solve_messages(task) + [
            {"role": "assistant", "content": _previous_answer(current)},
            {"role": "user", "content": message},
        ]
        try:
            completion = m.complete(messages, n=1)[0]
        except BudgetExceeded as e:
            log.info("%s: self-debug of %s stopped: %s", task.id, base, e)
            break
        current = make_candidate(task, completion, cid=f"{base}r{r}", strategy=strategy, model=model,
                                 trajectory=trajectory, round=start.origin.round + r,
                                 parent=current.id, plan=start.origin.plan)
        out.append(current)
    return out


def refine_all(task: Task, model: Any, candidates: list[Candidate], *, runner: Any, rounds: int,
               strategy: str, store: Any = None, workers: int = 4) -> list[Candidate]:
    """`candidates` followed, each, by its repairs (grouped per starting candidate)."""
    if rounds <= 0 or not candidates:
        return list(candidates)
    if runner is None:
        raise ValueError(f"{strategy} with rounds > 0 needs a runner to execute public tests")
    if not task.public_tests:
        log.info("%s has no public tests; self-debug has no feedback to give", task.id)
        return list(candidates)
    repairs = parallel_map(lambda c: refine(task, model, c, runner=runner, rounds=rounds,
                                            strategy=strategy, store=store), candidates, workers)
    out: list[Candidate] = []
    for c, more in zip(candidates, repairs):
        out.append(c)
        out.extend(more)
    return out


def generate(task: Task, model: Any, n: int, *, runner: Any = None, rounds: int = 3,
             budget: Budget | None = None, rng: random.Random | None = None, store: Any = None,
             workers: int = 4) -> list[Candidate]:
    """`n` independent samples, each followed by up to `rounds` public-test repairs."""
    first = repeated.sample(task, model, n, strategy=NAME, prefix="dbg", budget=budget, store=store)
    return refine_all(task, model, first, runner=runner, rounds=rounds, strategy=NAME, store=store,
                      workers=workers)
