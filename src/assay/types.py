"""Plain, serialisable data passed between pipeline stages.

Every stage reads and writes these (as JSON through `store.py`); nothing here talks to a
model, a sandbox or the disk.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

TaskKind = Literal["function", "repo", "kernel"]
TestOrigin = Literal["public", "generated", "repo", "fuzz"]
# Outcome of one (candidate, test) pair.
Outcome = Literal["pass", "fail", "error", "timeout"]


class Cost(BaseModel):
    """Tokens and money. `usd is None` means the price is unknown (custom/local model)."""

    tokens_in: int = 0
    tokens_out: int = 0
    usd: float | None = 0.0
    calls: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        usd = None if self.usd is None or other.usd is None else self.usd + other.usd
        return Cost(
            tokens_in=self.tokens_in + other.tokens_in,
            tokens_out=self.tokens_out + other.tokens_out,
            usd=usd,
            calls=self.calls + other.calls,
        )


class RepoRef(BaseModel):
    path: str
    base_commit: str | None = None


class TestCase(BaseModel):
    __test__ = False  # not a pytest test class

    id: str
    source: str  # code; for function tasks usually one `assert` statement
    origin: TestOrigin = "generated"
    trusted: bool = False


class Task(BaseModel):
    id: str
    kind: TaskKind = "function"
    statement: str  # problem text; for HumanEval the prompt (signature + docstring)
    entry_point: str | None = None
    repo: RepoRef | None = None
    public_tests: list[TestCase] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Origin(BaseModel):
    strategy: str = ""
    model: str = ""
    trajectory: str = ""
    round: int = 0
    parent: str | None = None  # candidate this one was refined from
    plan: str | None = None  # natural-language plan (plansearch)


class Candidate(BaseModel):
    id: str
    task_id: str
    content: str  # whole program, unified diff, or ModelNew source
    origin: Origin = Field(default_factory=Origin)
    cost: Cost = Field(default_factory=Cost)
    valid: bool = True  # False: the model output could not be parsed into a candidate
    error: str | None = None  # why it is invalid


class ExecResult(BaseModel):
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float = 0.0
    timed_out: bool = False
    killed_reason: str | None = None  # "timeout" | "memory" | "pids" | "output"


class Evidence(BaseModel):
    """Everything a selector may look at for one task.

    outcomes[cid][tid] is the result of test `tid` on candidate `cid`.
    signatures[cid][i] is candidate `cid`'s output (a repr, or "!ExcName", or "!timeout")
    on shared input `inputs[i]` (argument tuples as Python source): its behaviour signature.
    """

    task_id: str
    candidate_ids: list[str] = Field(default_factory=list)
    tests: list[TestCase] = Field(default_factory=list)
    outcomes: dict[str, dict[str, Outcome]] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list)
    signatures: dict[str, list[str]] = Field(default_factory=dict)
    load_errors: dict[str, str] = Field(default_factory=dict)  # candidate failed to import
    # short failure detail per (candidate, test), e.g. "f(2) returned 3, expected 4", only
    # for tests that did not pass; feeds self-debug rounds and judges.
    messages: dict[str, dict[str, str]] = Field(default_factory=dict)
    judgements: list[dict[str, Any]] = Field(default_factory=list)

    def passed(self, cid: str, trusted: bool | None = None) -> list[str]:
        """Ids of tests candidate `cid` passes (optionally only trusted / untrusted ones)."""
        row = self.outcomes.get(cid, {})
        keep = {t.id for t in self.tests if trusted is None or t.trusted == trusted}
        return [tid for tid, o in row.items() if o == "pass" and tid in keep]


class Selection(BaseModel):
    chosen: str | None  # None = abstain
    ranking: list[str] = Field(default_factory=list)
    tied: list[str] = Field(default_factory=list)  # candidates sharing the top score
    scores: dict[str, float] = Field(default_factory=dict)
    rationale: str = ""
    cost: Cost = Field(default_factory=Cost)
    abstained: bool = False


class BudgetExceeded(RuntimeError):
    """A budget limit was hit; stages catch it and stop cleanly with what they have."""


class Budget:
    """Limits on USD, tokens, model calls and wall time, charged by every call and run.

    Not a pydantic model: it is shared mutable state (thread-safe), not stage output.
    A limit of None means unlimited.
    """

    def __init__(
        self,
        usd: float | None = None,
        tokens: int | None = None,
        calls: int | None = None,
        wall_s: float | None = None,
    ) -> None:
        self.limits = {"usd": usd, "tokens": tokens, "calls": calls, "wall_s": wall_s}
        self.spent = Cost()
        self.sandbox_runs = 0
        self.sandbox_s = 0.0
        self.unknown_price = False
        self._start = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def check(self) -> None:
        """Raise BudgetExceeded if any limit is already spent."""
        lim = self.limits
        s = self.spent
        if lim["usd"] is not None and s.usd is not None and s.usd >= lim["usd"]:
            raise BudgetExceeded(f"USD budget of {lim['usd']} spent")
        if lim["tokens"] is not None and s.tokens_in + s.tokens_out >= lim["tokens"]:
            raise BudgetExceeded(f"token budget of {lim['tokens']} spent")
        if lim["calls"] is not None and s.calls >= lim["calls"]:
            raise BudgetExceeded(f"model-call budget of {lim['calls']} spent")
        if lim["wall_s"] is not None and self.elapsed() >= lim["wall_s"]:
            raise BudgetExceeded(f"wall-time budget of {lim['wall_s']} s spent")

    def charge(self, cost: Cost) -> None:
        with self._lock:
            if cost.usd is None:
                self.unknown_price = True
                cost = cost.model_copy(update={"usd": 0.0})
            self.spent = self.spent + cost

    def charge_sandbox(self, duration_s: float) -> None:
        with self._lock:
            self.sandbox_runs += 1
            self.sandbox_s += duration_s

    def summary(self) -> dict[str, Any]:
        return {
            "usd": None if self.unknown_price and not self.spent.usd else self.spent.usd,
            "usd_partial": self.unknown_price,
            "tokens_in": self.spent.tokens_in,
            "tokens_out": self.spent.tokens_out,
            "calls": self.spent.calls,
            "sandbox_runs": self.sandbox_runs,
            "sandbox_s": round(self.sandbox_s, 3),
            "wall_s": round(self.elapsed(), 3),
        }
