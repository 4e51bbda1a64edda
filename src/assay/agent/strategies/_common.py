"""Pieces shared by the function-task strategies: prompts, candidates, parallel trajectories."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

from assay.agent.codeparse import extract_program
from assay.agent.models import Completion, Message, bind
from assay.agent.render import problem_block, render
from assay.types import Candidate, Cost, Origin, Task

T = TypeVar("T")
R = TypeVar("R")


def system_message() -> Message:
    return {"role": "system", "content": render("system.j2")}


def solve_messages(task: Task) -> list[Message]:
    problem = problem_block(task.statement)
    return [system_message(), {"role": "user", "content": render(
        "solve.j2", problem=problem, is_code=problem.startswith("```"),
        entry_point=task.entry_point or "")}]


def view(model: Any, task: Task, trajectory: str, store: Any = None) -> Any:
    """The model bound to this task and trajectory; records into `store` if the model has
    no recorder of its own."""
    recorder = None
    if store is not None:
        from assay.agent.models import CallRecorder

        recorder = CallRecorder(store)
    return bind(model, task_id=task.id, trajectory=trajectory, recorder=recorder)


def make_candidate(task: Task, completion: Completion, *, cid: str, strategy: str, model: Any,
                   trajectory: str, round: int = 0, parent: str | None = None,
                   plan: str | None = None, extra_cost: Cost | None = None) -> Candidate:
    """A candidate from a model answer; an answer without a usable program is kept as an
    invalid candidate with the reason."""
    parsed = extract_program(completion.text, task.statement, task.entry_point)
    cost = completion.cost + extra_cost if extra_cost is not None else completion.cost
    return Candidate(
        id=cid, task_id=task.id, content=parsed.program if parsed.ok else completion.text,
        origin=Origin(strategy=strategy, model=getattr(model, "name", ""), trajectory=trajectory,
                      round=round, parent=parent, plan=plan),
        cost=cost, valid=parsed.ok, error=parsed.error,
    )


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """fn over items on up to `workers` threads (model calls wait on the network); order kept."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))
