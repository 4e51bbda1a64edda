"""Kernel search: parallel samples, then serial rounds whose feedback is the compiler error,
the mismatch, or the timing (+ a short profiler summary on GPU). The final pick is the
fastest candidate that passed everything (on CPU, untimed: the first correct one)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from assay.kernels.evaluate import KernelEvaluator, Verdict
from assay.kernels.problem import Problem
from assay.types import Budget, BudgetExceeded

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
  nor run nn modules; you may keep nn layers in __init__ only to hold weights.
- Do not reference Model, use try/except, streams, threads, timers, caches across calls, data_ptr
  keys in Python, tensor subclasses, or assign attributes on torch modules."""


def initial_messages(problem: Problem, backend: str) -> list[dict[str, str]]:
    user = (f"Here is a PyTorch reference architecture:\n\n```python\n{problem.source}\n```\n\n"
            f"Write `ModelNew`, a faster drop-in replacement that computes the same outputs with custom kernels. "
            f"{_BACKEND_RULES.get(backend, '')}\n\n{RULES_TEXT}\n\n"
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


@dataclass
class Attempt:
    cid: str
    round: int
    trajectory: int
    text: str
    source: str | None
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.cid, "round": self.round, "trajectory": self.trajectory, "source": self.source,
                "verdict": self.verdict.to_dict()}


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
    if timed:
        return min(timed, key=lambda a: (a.verdict.new_ms, a.round, a.trajectory))
    return min(good, key=lambda a: (a.round, a.trajectory))


def _parse_failure(cid: str, text: str) -> Verdict:
    return Verdict(cid, "gate", "no ```python block defining class ModelNew in the reply", gate_rules=["no-modelnew"])


def search(problem: Problem, model: Any, evaluator: KernelEvaluator, config: SearchConfig,
           budget: Budget | None = None, on_round: Callable[[int, list[Attempt]], None] | None = None
           ) -> SearchResult:
    result = SearchResult(problem.id)
    base = initial_messages(problem, config.backend)
    convo: dict[int, list[dict[str, str]]] = {}  # trajectory -> its last exchange
    for rnd in range(max(1, config.rounds)):
        try:
            if budget is not None:
                budget.check()
            if rnd == 0:
                texts = [c.text for c in model.complete(base, n=config.samples, temperature=config.temperature)]
                requests = list(enumerate(texts))
            else:
                requests = []
                for traj, msgs in sorted(convo.items()):
                    if budget is not None:
                        budget.check()
                    requests.append((traj, model.complete(msgs, n=1, temperature=config.temperature)[0].text))
        except BudgetExceeded as e:
            result.stopped = str(e)
            break
        items, fresh = [], []
        for traj, text in requests:
            cid = f"r{rnd}-t{traj}"
            src = extract_code(text)
            fresh.append((cid, traj, text, src))
            if src is not None:
                items.append((cid, src))
        verdicts = {v.candidate_id: v for v in evaluator.evaluate_many(problem, items)}
        round_attempts = []
        for cid, traj, text, src in fresh:
            v = verdicts.get(cid) or _parse_failure(cid, text)
            a = Attempt(cid, rnd, traj, text, src, v)
            round_attempts.append(a)
            note = ("Make it faster if you can, keeping it correct." if v.correct
                    else "Fix the problem and reply with the complete corrected module.")
            convo[traj] = base + [{"role": "assistant", "content": text},
                                  {"role": "user", "content": f"{v.feedback()}\n\n{note}"}]
        result.attempts.extend(round_attempts)
        if on_round is not None:
            on_round(rnd, round_attempts)
    result.best = pick_best(result.attempts)
    return result
