"""`sstar`: S* (Li et al. 2025) distinguishing inputs, judged on real outputs.

For two behaviour clusters the model proposes inputs that should separate them (argument-list
sources, validated with `ast`); both representatives run on them for real (runner.outputs),
together with any shared inputs on which they already differ; the judge then sees the real
outputs and says which program is right. Clusters meet in a knockout, best-seeded first.
When no input separates a pair, the larger cluster goes through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from assay.agent.render import render
from assay.selectors import fuzz_inputs as fi
from assay.selectors._common import abstain, loadable, ranked_selection, weight
from assay.words import counted
from assay.selectors.base import SelectContext
from assay.selectors.judge import (ask, clip, knockout, parse_verdict, problem, ranked_groups,
                                   require_model, total_cost)
from assay.types import BudgetExceeded, Candidate, Cost, Evidence, Selection, Task

_BLOCK = re.compile(r"```[ \t]*(?:inputs?|python|py|text)?[ \t]*\n(.*?)```", re.S | re.I)


@dataclass
class SStarOptions:
    max_clusters: int = 6
    max_inputs: int = 5  # proposed per pair
    k: int = 1  # judgements per pair (alternating A/B order when > 1)
    shown_rows: int = 8  # distinguishing inputs shown to the judge


def parse_inputs(text: str, limit: int) -> list[str]:
    """Argument-list sources from a model answer: the lines of its ```inputs block (or of the
    whole text when it has none) that parse as call arguments; bullets, numbering and a
    repeated `f(...)` wrapper are tolerated."""
    blocks = _BLOCK.findall(text)
    lines = [ln for b in blocks for ln in b.splitlines()] if blocks else text.splitlines()
    found: list[str] = []
    for ln in lines:
        s = re.sub(r"^\s*(?:[-*]|\d+[.)])\s+", "", ln).strip().rstrip(",;")
        s = s.strip("`").strip()
        m = re.fullmatch(r"[A-Za-z_]\w*\((.*)\)", s)  # "f([1, 2])" -> "[1, 2]"
        if m and fi.is_call_args(m.group(1)):
            s = m.group(1)
        if s and not s.startswith("#") and fi.is_call_args(s) and s not in found:
            found.append(s)
        if len(found) >= limit:
            break
    return found


class SStar:
    name = "sstar"
    needs_model = True

    def __init__(self, **options: Any) -> None:
        self.opts = SStarOptions(**options)

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        require_model(ctx, self.name)
        opts = SStarOptions(**{**self.opts.__dict__, **ctx.options.get("sstar", {})})
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("sstar: no candidates")
        by_id = {c.id: c for c in pool}
        groups = ranked_groups(evidence, [c.id for c in pool], ctx)
        entrants = groups[: opts.max_clusters]
        mass = {id(g): sum(weight(ctx, c) for c in g) for g in entrants}
        costs: list[Cost] = []
        log: list[str] = []
        stopped: list[str] = []

        def play(x: list[str], y: list[str]) -> list[str]:
            wx = wy = 0
            note = "size"
            if not stopped and ctx.runner is not None and task.kind == "function":
                try:
                    wx, wy, note = self._match(task, by_id[x[0]], by_id[y[0]], evidence, ctx, opts, costs)
                except BudgetExceeded as e:
                    stopped.append(str(e))
            win = x if (wx, mass[id(x)]) >= (wy, mass[id(y)]) else y
            log.append(f"{win[0]} beat {(y if win is x else x)[0]} ({note if wx != wy else 'size'})")
            return win

        _, ranking = knockout(entrants, play)
        ranked = list(ranking) + groups[len(entrants):]
        score = {cid: float(len(ranked) - i) for i, g in enumerate(ranked) for cid in g}
        group_of = {cid: i for i, g in enumerate(ranked) for cid in g}
        tail = f"; stopped early ({stopped[0]}), rest settled by size" if stopped else ""
        if ctx.runner is None:
            tail += "; no runner, settled by size"
        rationale = (f"sstar: {counted(len(entrants), 'cluster')}: " + "; ".join(log) + tail) if log \
            else "sstar: one cluster, nothing to distinguish"
        sel = ranked_selection(self.name, [by_id[c] for g in ranked for c in g], score, ctx, rationale,
                               groups=group_of)
        return sel.model_copy(update={"cost": total_cost(costs)})

    def _match(self, task: Task, x: Candidate, y: Candidate, evidence: Evidence, ctx: SelectContext,
               opts: SStarOptions, costs: list[Cost]) -> tuple[int, int, str]:
        """(wins of x, wins of y, how): propose inputs, run both, judge the real outputs."""
        ep = task.entry_point or ""
        prompt = render("sstar_inputs.j2", problem=problem(task), entry_point=ep,
                        program_a=clip(x.content), program_b=clip(y.content), max_inputs=opts.max_inputs)
        proposed = parse_inputs(ask(ctx, prompt, costs, task_id=task.id, selector=self.name),
                                opts.max_inputs)
        outs = ctx.runner.outputs(task, [x, y], proposed) if proposed else {x.id: [], y.id: []}
        rows = [(s, a, b) for s, a, b in zip(proposed, outs[x.id], outs[y.id]) if a != b]
        sx, sy = evidence.signatures.get(x.id, []), evidence.signatures.get(y.id, [])
        rows += [(s, a, b) for s, a, b in zip(evidence.inputs, sx, sy) if a != b]
        rows = rows[: opts.shown_rows]
        entry = {"selector": self.name, "a": x.id, "b": y.id, "proposed": proposed,
                 "distinguishing": [list(r) for r in rows]}
        if not rows:
            evidence.judgements.append({**entry, "verdict": None, "winner": None})
            return 0, 0, "no distinguishing input"
        wins = {x.id: 0, y.id: 0}
        for j in range(opts.k):
            a, b = (x, y) if j % 2 == 0 else (y, x)
            shown = [(s, o1, o2) if a is x else (s, o2, o1) for s, o1, o2 in rows]
            prompt = render("sstar_judge.j2", problem=problem(task), entry_point=ep,
                            program_a=clip(a.content), program_b=clip(b.content), rows=shown)
            text = ask(ctx, prompt, costs, task_id=task.id, selector=self.name)
            verdict = parse_verdict(text)
            winner = {"A": a.id, "B": b.id}.get(verdict or "")
            if winner:
                wins[winner] += 1
            evidence.judgements.append({**entry, "shown_as_a": a.id, "verdict": verdict,
                                        "winner": winner, "response": text[:1000]})
        how = f"judged on {len(rows)} distinguishing inputs, e.g. {ep}({rows[0][0]})"
        return wins[x.id], wins[y.id], how
