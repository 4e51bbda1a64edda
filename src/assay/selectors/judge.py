"""Helpers shared by the model-judged selectors (tournament, sstar) and fuzz's last resort.

Robust parsing of "A"/"B"
verdicts, one pairwise judge call that records its verdict in Evidence.judgements, and
behaviour clusters (candidates with identical signatures on the shared inputs).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from assay.agent.render import problem_block, render
from assay.selectors._common import weight
from assay.selectors.cluster import all_failed, behaviour
from assay.types import BudgetExceeded, Cost, Evidence, Task

if TYPE_CHECKING:
    from assay.selectors.base import SelectContext

_MAX_PROGRAM_CHARS = 6000


def clip(text: str, limit: int = _MAX_PROGRAM_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\n# ... (truncated)\n"


# --- verdict parsing -------------------------------------------------------------------

_LABEL = r"(?:program|candidate|solution|option|code|implementation|function|answer)"
# An explicit statement: "verdict: A", "Answer - **B**", "winner is Program A", "\boxed{B}".
_EXPLICIT = re.compile(
    r"(?:verdict|answer|winner|choice|decision|final|better|correct(?:\s+one)?|prefer(?:red)?|choose|pick)"
    r"(?:\s+(?:is|would\s+be|program|candidate|solution|answer|one))*\s*[:=\-]?\s*"
    r"(?:\*\*|__|[`'\"(\[])*\s*(?:" + _LABEL + r"\s*)?(?:\*\*|__|[`'\"(\[])*\s*([AB])\b",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*([AB])\s*\}?\s*\}")
_TAGGED = re.compile(r"<(?:verdict|answer)>\s*(?:" + _LABEL + r"\s*)?([AB])\s*</(?:verdict|answer)>", re.I)
_NAMED = re.compile(r"\b" + _LABEL + r"\s*\(?([AB])\b\)?", re.IGNORECASE)
_SUBJECT = re.compile(r"\b([AB])\b\s+is\s+(?:the\s+)?(?:more\s+)?(?:correct|better|right)\b")
_TIE = re.compile(r"\b(?:tie|both|neither|equal(?:ly)?|cannot decide|can't decide|undecided)\b", re.I)


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or None (no verdict, a tie, or contradictory) from a judge's free text.

    Precedence: a tagged/boxed answer, then the last explicit "verdict/answer/winner: X"
    phrase, then a final line that is just the letter, then (only if one letter is ever
    named) "Program X" mentions.
    """
    if not text:
        return None
    for rx in (_TAGGED, _BOXED):
        hits = rx.findall(text)
        if hits:
            return hits[-1].upper()
    # a lowercase letter counts only at the end of its line ("answer: b"), not as an article
    hits = [m.group(1).upper() for m in _EXPLICIT.finditer(text)
            if m.group(1) in "AB" or re.match(r"[\s*_`'\")\].!]*(?:\n|$)", text[m.end():])]
    if hits:
        return hits[-1]
    lines = [ln.strip(" \t*_`'\".:()[]#>-") for ln in text.strip().splitlines() if ln.strip()]
    if lines and lines[-1] in ("A", "B"):
        return lines[-1]
    if lines and lines[-1].upper() in ("A", "B") and len(text.strip()) <= 3:
        return lines[-1].upper()
    named = {m.group(1).upper() for m in _NAMED.finditer(text)} | set(_SUBJECT.findall(text))
    if len(named) == 1 and not _TIE.search(text):
        return named.pop()
    return None


# --- clusters --------------------------------------------------------------------------


def group_by_signature(evidence: Evidence, candidate_ids: list[str]) -> list[list[str]]:
    """Candidates grouped by identical behaviour (cluster.behaviour), in first-seen order.

    A candidate that did not load is a group of its own.
    """
    groups: dict[Any, list[str]] = {}
    for cid in candidate_ids:
        key = ("!load", cid) if cid in evidence.load_errors else behaviour(evidence, cid)
        groups.setdefault(key, []).append(cid)
    return list(groups.values())


def untrusted_passes(evidence: Evidence, cid: str) -> int:
    return len(evidence.passed(cid, trusted=False))


def ranked_groups(evidence: Evidence, candidate_ids: list[str], ctx: "SelectContext") -> list[list[str]]:
    """Behaviour groups, best first: groups that return something before groups that only
    raise, then by total weight (dedup multiplicity), then by untrusted tests passed."""
    groups = group_by_signature(evidence, candidate_ids)

    def key(g: list[str]) -> tuple:
        failing = g[0] in evidence.load_errors or all_failed(behaviour(evidence, g[0]))
        return (failing, -sum(weight(ctx, c) for c in g), -max(untrusted_passes(evidence, c) for c in g))

    return sorted(groups, key=key)  # stable: first-seen order breaks ties


def knockout(seeds: list[Any], play) -> tuple[Any, list[Any]]:
    """Single-elimination bracket over `seeds` (best seed first): seed i meets seed n-1-i,
    an odd one out (the best seed) gets a bye. `play(x, y)` returns the winner.

    Returns (champion, ranking): losers of later rounds rank above losers of earlier ones.
    """
    alive = list(seeds)
    eliminated: list[list[Any]] = []
    while len(alive) > 1:
        nxt, out = [], []
        if len(alive) % 2:
            nxt.append(alive.pop(0))
        n = len(alive)
        for i in range(n // 2):
            x, y = alive[i], alive[n - 1 - i]
            w = play(x, y)
            nxt.append(w)
            out.append(y if w is x else x)
        order = {id(s): i for i, s in enumerate(seeds)}
        nxt.sort(key=lambda s: order[id(s)])
        eliminated.append(out)
        alive = nxt
    ranking = list(alive)
    for out in reversed(eliminated):
        ranking.extend(out)
    return (alive[0] if alive else None), ranking


# --- judging ---------------------------------------------------------------------------


def require_model(ctx: "SelectContext", selector: str) -> None:
    from assay.errors import UserError

    if ctx.model is None:
        raise UserError(
            f"the '{selector}' selector needs a judge model; pass --model (or set ASSAY_MODEL), "
            f"or drop '{selector}' from the selection pipeline."
        )


def ask(ctx: "SelectContext", prompt: str, cost: list[Cost], *, task_id: str, selector: str) -> str:
    """One judge call (temperature 0) through ctx.model, recorded under the trajectory
    "select-<selector>"; its cost is appended to `cost`. Raises BudgetExceeded when the
    budget is already spent."""
    from assay.agent.models import bind

    ctx.budget.check()
    model = bind(ctx.model, task_id=task_id, trajectory=f"select-{selector}")
    out = model.complete([{"role": "user", "content": prompt}], n=1, temperature=0.0)
    if not out:
        return ""
    cost.append(out[0].cost)
    return out[0].text or ""


def compare(ctx: "SelectContext", template: str, x: str, y: str, k: int, cost: list[Cost],
            evidence: Evidence, selector: str, task: Task, **values: Any) -> tuple[int, int, bool]:
    """K judgements of x against y, alternating which one is shown as "A".

    `values` must hold `programs`: {cid: program text} and may hold `outputs`:
    {cid: [(input, output), ...]}; the template sees a/b versions of both.
    Returns (wins of x, wins of y, budget_exhausted). Each verdict goes to evidence.judgements.
    """
    wins = {x: 0, y: 0}
    programs = values.pop("programs")
    outputs = values.pop("outputs", {})
    for j in range(k):
        a, b = (x, y) if j % 2 == 0 else (y, x)
        prompt = render(template, problem=problem(task), entry_point=task.entry_point or "",
                        program_a=clip(programs[a]), program_b=clip(programs[b]),
                        outputs_a=outputs.get(a, []), outputs_b=outputs.get(b, []), **values)
        try:
            text = ask(ctx, prompt, cost, task_id=task.id, selector=selector)
        except BudgetExceeded:
            return wins[x], wins[y], True
        verdict = parse_verdict(text)
        winner = {"A": a, "B": b}.get(verdict or "")
        if winner:
            wins[winner] += 1
        evidence.judgements.append({
            "selector": selector, "a": a, "b": b, "verdict": verdict, "winner": winner,
            "response": text[:1000],
        })
    return wins[x], wins[y], False


def total_cost(costs: list[Cost]) -> Cost:
    total = Cost()
    for c in costs:
        total = total + c
    return total


def problem(task: Task) -> str:
    return problem_block(clip(task.statement, 8000))
