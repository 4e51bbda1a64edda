"""Self-debugging (S* stage 1): each sample is repaired over up to R rounds using feedback
from the task's PUBLIC (trusted) tests only, stopping as soon as it passes all of them.
Every round's program is kept as a candidate (origin.round, origin.parent)."""

from __future__ import annotations

import logging
import random
from typing import Any

from assay.agent.render import render
from assay.agent.strategies import repeated
from assay.agent.models import within_budget
from assay.agent.strategies._common import make_candidate, parallel_map, solve_messages, view
from assay.types import Budget, Candidate, Evidence, Task, TestCase

log = logging.getLogger("assay.strategies.self_debug")

NAME = "self_debug"
MAX_SHOWN = 5  # failed tests shown per feedback message
_SAID = {"fail": "failed", "error": "raised an error", "timeout": "timed out"}


def trusted_tests(task: Task) -> list[TestCase]:
    """The only tests self-debug may learn from: the task's trusted public tests."""
    return [t for t in task.public_tests if t.trusted]


def failures(task: Task, cid: str, evidence: Evidence) -> list[dict[str, str]]:
    """The public tests candidate `cid` did not pass, with outcome and message."""
    row = evidence.outcomes.get(cid, {})
    msgs = evidence.messages.get(cid, {})
    out = []
    for t in trusted_tests(task):
        outcome = row.get(t.id)
        if outcome != "pass":
            out.append({"id": t.id, "source": t.source, "outcome": _SAID.get(outcome or "", "not run"),
                        "message": msgs.get(t.id, "")})
    return out


def feedback(task: Task, candidate: Candidate, evidence: Evidence | None) -> str | None:
    """The user message asking to fix `candidate`, or None when it passes every public test."""
    common = dict(entry_point=task.entry_point or "", parse_error=None, load_error=None,
                  failures=[], total=len(trusted_tests(task)), shown=MAX_SHOWN)
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


def _repair(task: Task, model: Any, current: Candidate, message: str, *, root: Candidate,
            round: int, strategy: str, store: Any, budget: Budget | None) -> Candidate | None:
    """Ask for a fixed program; None when the budget is spent."""
    trajectory = root.origin.trajectory or strategy
    messages = solve_messages(task) + [
        {"role": "assistant", "content": _previous_answer(current)},
        {"role": "user", "content": message},
    ]
    completions = within_budget(budget, lambda: view(model, task, trajectory, store).complete(messages, n=1),
                                f"{task.id}: self-debug of {root.id}")
    if completions is None:
        return None
    completion = completions[0]
    return make_candidate(task, completion, cid=f"{root.id}r{round}", strategy=strategy, model=model,
                          trajectory=trajectory, round=root.origin.round + round,
                          parent=current.id, plan=root.origin.plan)


def refine_all(task: Task, model: Any, candidates: list[Candidate], *, runner: Any, rounds: int,
               strategy: str, store: Any = None, workers: int = 4,
               budget: Budget | None = None) -> list[Candidate]:
    """`candidates`, each followed by up to `rounds` repairs from public-test feedback (a
    lineage stops when its program passes every public test, or when the budget is spent).
    Each round runs all current programs in one runner batch, then asks for repairs in
    parallel."""
    if rounds <= 0 or not candidates:
        return list(candidates)
    if runner is None:
        raise ValueError(f"{strategy} with rounds > 0 needs a runner to execute public tests")
    tests = trusted_tests(task)
    if not tests:
        log.info("%s has no public tests; self-debug has no feedback to give", task.id)
        return list(candidates)
    lineage: dict[str, list[Candidate]] = {c.id: [c] for c in candidates}
    active = [(c, c) for c in candidates]  # (root, latest program)
    for r in range(1, rounds + 1):
        runnable = [cur for _, cur in active if cur.valid]
        evidence = runner.evaluate(task, runnable, tests) if runnable else None
        todo = [(root, cur, msg) for root, cur in active
                if (msg := feedback(task, cur, evidence)) is not None]
        if not todo:
            break

        def repair(job: tuple[Candidate, Candidate, str], r: int = r) -> Candidate | None:
            root, current, message = job
            return _repair(task, model, current, message, root=root, round=r, strategy=strategy,
                           store=store, budget=budget)

        fixed = parallel_map(repair, todo, workers)
        active = []
        for (root, _, _), new in zip(todo, fixed):
            if new is not None:
                lineage[root.id].append(new)
                active.append((root, new))
    return [c for root in candidates for c in lineage[root.id]]


def generate(task: Task, model: Any, n: int, *, runner: Any = None, rounds: int = 3,
             budget: Budget | None = None, rng: random.Random | None = None, store: Any = None,
             workers: int = 4) -> list[Candidate]:
    """`n` independent samples, each followed by up to `rounds` public-test repairs."""
    first = repeated.sample(task, model, n, strategy=NAME, prefix="dbg", budget=budget, store=store)
    return refine_all(task, model, first, runner=runner, rounds=rounds, strategy=NAME, store=store,
                      workers=workers, budget=budget)
