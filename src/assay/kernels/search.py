"""Kernel search: parallel samples, then serial rounds whose feedback is the compiler error,
the mismatch, or the timing (+ a short profiler summary on GPU). The final pick is the
fastest candidate that passed everything (on CPU, untimed: the first correct one)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from assay.agent.models import bind
from assay.agent.strategies._common import parallel_map
from assay.kernels.evaluate import KernelEvaluator, Verdict
from assay.kernels.problem import Problem
from assay.store import RunStore, atomic_write_text
from assay.types import Budget, BudgetExceeded
from assay.words import counted

SYSTEM = (
    "You write custom GPU kernels that replace PyTorch operators to make a model faster. "
    "You answer with one complete Python module in a ```python block."
)

_BACKEND_RULES = {
    "triton": "Write the kernels in Triton: @triton.jit functions launched from forward with kernel[grid](...).",
    "cuda": "Write the kernels in CUDA C++: __global__ functions compiled with "
            "torch.utils.cpp_extension.load_inline(cuda_sources=...) and called from forward.",
}

RULES_TEXT = """Rules (a static check rejects code that breaks them, before building it):
- Define `class ModelNew(nn.Module)` with the same __init__ arguments and forward inputs/outputs as Model.
- Do the computation in your kernel(s). In forward you may allocate outputs and take views
  (torch.empty, .view, .contiguous, ...), but not call torch compute ops (matmul, conv, softmax, relu, ...)
  nor run nn modules; you may keep nn layers in __init__ only to hold weights. The same holds in C++/CUDA
  host code: no ATen compute (at::/torch:: ops, tensor methods such as x.mm(w)); the evaluation counts
  the ATen ops your forward dispatches and rejects any but allocation, views and copies. Tensor
  arithmetic with Python operators (x * s, x + b, x > 0) is glue only while it stays small: no more
  than the reference does beside its other ops; where the reference is all operators, put all of
  it in the kernel.
- Do not reference Model, use try/except, streams, threads, timers, caches across calls, data_ptr
  keys in Python, tensor subclasses, or assign attributes on torch modules.
- Do not reach into the interpreter or the process: no sys, gc, inspect, frames, private torch
  attributes (torch._C, ...), files or subprocesses."""


def initial_messages(problem: Problem, backend: str, allowed_ops: tuple[str, ...] = ()) -> list[dict[str, str]]:
    allowed = (f"\n- Exception: you may call these torch ops in forward, as functions or through their nn "
               f"modules: {', '.join(sorted(allowed_ops))}." if allowed_ops else "")
    user = (f"Here is a PyTorch reference architecture:\n\n```python\n{problem.source}\n```\n\n"
            f"Write `ModelNew`, a faster drop-in replacement that computes the same outputs with custom kernels. "
            f"{_BACKEND_RULES.get(backend, '')}\n\n{RULES_TEXT}{allowed}\n\n"
            "Reply with the complete new module in one ```python block.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(text: str) -> str | None:
    """The last fenced block that defines ModelNew; else the whole reply if it does."""
    blocks = [b for b in _FENCE.findall(text) if "class ModelNew" in b]
    if blocks:
        return blocks[-1].strip() + "\n"
    if "class ModelNew" in text:
        return text.strip() + "\n"
    return None


@dataclass
class SearchConfig:
    samples: int = 4
    rounds: int = 3
    backend: str = "triton"
    temperature: float | None = None
    workers: int = 4  # model calls in flight at once in the feedback rounds
    allowed_ops: tuple[str, ...] = ()  # torch ops the gate lets through here (--allow-op): the prompt says so


@dataclass
class Attempt:
    cid: str
    round: int
    trajectory: int
    text: str
    source: str | None
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.cid, "round": self.round, "trajectory": self.trajectory, "text": self.text,
                "source": self.source, "verdict": self.verdict.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Attempt":
        names = {f.name for f in fields(Verdict)}
        verdict = Verdict(**{k: v for k, v in d["verdict"].items() if k in names})
        return cls(d["id"], d["round"], d["trajectory"], d["text"], d["source"], verdict)


@dataclass
class SearchResult:
    problem_id: str
    attempts: list[Attempt] = field(default_factory=list)
    best: Attempt | None = None
    stopped: str | None = None  # why the search stopped early (budget)

    def to_dict(self) -> dict[str, Any]:
        b = self.best
        return {"problem_id": self.problem_id, "best": b.cid if b else None,
                "correct": bool(b and b.verdict.correct), "speedup": b.verdict.speedup if b else None,
                "best_verdict": b.verdict.to_dict() if b else None, "stopped": self.stopped,
                "attempts": [a.to_dict() for a in self.attempts]}


def pick_best(attempts: list[Attempt]) -> Attempt | None:
    good = [a for a in attempts if a.verdict.correct]
    if not good:
        return None
    timed = [a for a in good if a.verdict.new_ms is not None]
    if timed:  # the fastest, but one whose timing looks gamed only when nothing else is correct
        return min(timed, key=lambda a: (a.verdict.suspect, a.verdict.new_ms, a.round, a.trajectory))
    return min(good, key=lambda a: (a.round, a.trajectory))


def _parse_failure(cid: str, text: str) -> Verdict:
    return Verdict(cid, "gate", "no ```python block defining class ModelNew in the reply", gate_rules=["no-modelnew"])


class RoundFiles:
    """One problem's rounds in the run store: the model's replies as soon as they arrive (they
    cost money) and the evaluated attempts after, so re-running the same command reads both
    back instead of asking the model or the GPU again."""

    def __init__(self, store: RunStore, problem: Problem) -> None:
        self.store, self.task_id = store, problem.id
        if not store.has(problem.id, "10_problem.json"):
            store.save(problem.id, "10_problem.json", {"id": problem.id, "path": str(problem.path),
                                                        "digest": problem.digest, "source": problem.source})

    def replies(self, rnd: int) -> list[tuple[int, str]] | None:
        name = f"20_round{rnd}_replies.json"
        if not self.store.has(self.task_id, name):
            return None
        return [(r["trajectory"], r["text"]) for r in self.store.load(self.task_id, name)]

    def save_replies(self, rnd: int, replies: list[tuple[int, str]]) -> None:
        self.store.save(self.task_id, f"20_round{rnd}_replies.json",
                        [{"trajectory": t, "text": text} for t, text in replies])

    def attempts(self, rnd: int) -> list[Attempt] | None:
        name = f"40_round{rnd}_attempts.json"
        if not self.store.has(self.task_id, name):
            return None
        return [Attempt.from_dict(d) for d in self.store.load(self.task_id, name)]

    def save_attempts(self, rnd: int, attempts: list[Attempt]) -> None:
        self.store.save(self.task_id, f"40_round{rnd}_attempts.json", [a.to_dict() for a in attempts])

    def save_result(self, result: "SearchResult") -> None:
        b = result.best
        self.store.save(self.task_id, "50_selection.json", {
            "chosen": b.cid if b else None, "tied": [],
            "rationale": f"fastest correct kernel: {b.verdict.message}" if b else
                         f"no correct kernel in {counted(len(result.attempts), 'attempt')}",
            "speedup": b.verdict.speedup if b else None, "stopped": result.stopped})
        if b is not None and b.source:
            atomic_write_text(self.store.task_dir(self.task_id) / "result.py", b.source)


def _ask(problem: Problem, model: Any, base: list[dict[str, str]], convo: dict[int, list[dict[str, str]]],
         rnd: int, config: SearchConfig, budget: Budget | None) -> tuple[list[tuple[int, str]], str | None]:
    """This round's replies as (trajectory, text), and why asking stopped early (a budget), if it did.
    Round 0 is one call for all samples; later rounds one call per trajectory, in parallel."""
    def one(job: tuple[int, list[dict[str, str]], int]) -> tuple[int, list[str] | None, str | None]:
        traj, msgs, n = job
        try:
            if budget is not None:
                budget.check()
            m = bind(model, task_id=problem.id, trajectory="round0" if rnd == 0 else f"t{traj}")
            return traj, [c.text for c in m.complete(msgs, n=n, temperature=config.temperature)], None
        except BudgetExceeded as e:
            return traj, None, str(e)

    jobs = [(0, base, config.samples)] if rnd == 0 else [(t, msgs, 1) for t, msgs in sorted(convo.items())]
    answers = parallel_map(one, jobs, config.workers)
    if rnd == 0:
        _, texts, stopped = answers[0]
        return list(enumerate(texts or [])), stopped
    replies = [(traj, texts[0]) for traj, texts, _ in answers if texts]
    return replies, next((why for _, _, why in answers if why), None)


def _evaluate(problem: Problem, evaluator: KernelEvaluator, rnd: int, replies: list[tuple[int, str]]) -> list[Attempt]:
    fresh = [(f"r{rnd}-t{traj}", traj, text, extract_code(text)) for traj, text in replies]
    items = [(cid, src) for cid, _, _, src in fresh if src is not None]
    verdicts = {v.candidate_id: v for v in evaluator.evaluate_many(problem, items)} if items else {}
    return [Attempt(cid, rnd, traj, text, src, verdicts.get(cid) or _parse_failure(cid, text))
            for cid, traj, text, src in fresh]


def _unjudged(attempts: list[Attempt]) -> str | None:
    """The evaluation's error when it could judge none of the round's kernels, else None."""
    judged = [a for a in attempts if a.source is not None]
    if judged and all(a.verdict.status == "error" for a in judged):
        return judged[0].verdict.message
    return None


def search(problem: Problem, model: Any, evaluator: KernelEvaluator, config: SearchConfig,
           budget: Budget | None = None, on_round: Callable[[int, list[Attempt]], None] | None = None,
           store: RunStore | None = None) -> SearchResult:
    """Samples, then feedback rounds. With a `store`, every round is saved and a re-run resumes."""
    result = SearchResult(problem.id)
    base = initial_messages(problem, config.backend, config.allowed_ops)
    files = RoundFiles(store, problem) if store is not None else None
    convo: dict[int, list[dict[str, str]]] = {}  # trajectory -> its last exchange
    for rnd in range(max(1, config.rounds)):
        attempts = files.attempts(rnd) if files else None
        if attempts is None:
            replies = files.replies(rnd) if files else None
            if replies is None:
                replies, result.stopped = _ask(problem, model, base, convo, rnd, config, budget)
                if files and replies:
                    files.save_replies(rnd, replies)
            if not replies:
                break
            attempts = _evaluate(problem, evaluator, rnd, replies)
            if files and not _unjudged(attempts):  # else a re-run, on a mended machine, judges them again
                files.save_attempts(rnd, attempts)
        for a in attempts:
            note = ("Make it faster if you can, keeping it correct." if a.verdict.correct
                    else "Fix the problem and reply with the complete corrected module.")
            convo[a.trajectory] = base + [{"role": "assistant", "content": a.text},
                                          {"role": "user", "content": f"{a.verdict.feedback()}\n\n{note}"}]
        result.attempts.extend(attempts)
        if on_round is not None:
            on_round(rnd, attempts)
        if why := _unjudged(attempts):  # the machine or the problem is at fault: more rounds cannot help
            result.stopped = f"the evaluation could not judge any kernel: {why}"
        if result.stopped:
            break
    result.best = pick_best(result.attempts)
    if files:
        files.save_result(result)
    return result
