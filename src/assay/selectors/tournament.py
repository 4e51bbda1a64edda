"""`tournament`: a knockout tournament of pairwise model judgements.

Units are behaviour clusters (one representative each; behaviourally identical programs need
no judging) or, with option units="candidates", the candidates themselves. Each match asks
the judge K times (default 2), swapping which program is shown as "A", with the problem,
both programs and their outputs on a few shared inputs (inputs where they differ first).
More wins goes through; a tie (including unparseable answers) goes to the larger cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.selectors._common import abstain, loadable, ranked_selection, weight
from assay.selectors.base import SelectContext
from assay.selectors.judge import compare, knockout, ranked_groups, require_model, total_cost
from assay.types import Candidate, Cost, Evidence, Selection, Task


@dataclass
class TournamentOptions:
    k: int = 2  # judgements per match, alternating the A/B order
    max_units: int = 8  # the best-seeded clusters (or candidates) that enter
    shown_inputs: int = 5  # shared inputs whose outputs the judge sees
    units: str = "clusters"  # or "candidates"


class Tournament:
    name = "tournament"
    needs_model = True

    def __init__(self, **options: Any) -> None:
        self.opts = TournamentOptions(**options)

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        require_model(ctx, self.name)
        opts = TournamentOptions(**{**self.opts.__dict__, **ctx.options.get("tournament", {})})
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("tournament: no candidates")
        by_id = {c.id: c for c in pool}
        groups = ranked_groups(evidence, [c.id for c in pool], ctx)
        units = groups if opts.units == "clusters" else [[cid] for g in groups for cid in g]
        entrants = units[: opts.max_units]
        mass = {id(u): sum(weight(ctx, c) for c in u) for u in entrants}
        costs: list[Cost] = []
        log: list[str] = []
        stopped: list[str] = []

        def play(x: list[str], y: list[str]) -> list[str]:
            a, b = x[0], y[0]
            wx = wy = 0
            if not stopped:
                wx, wy, out = compare(
                    ctx, "judge_pair.j2", a, b, opts.k, costs, evidence, self.name, task,
                    programs={a: by_id[a].content, b: by_id[b].content},
                    outputs=shown_outputs(evidence, a, b, opts.shown_inputs))
                if out:
                    stopped.append("budget spent")
            win = x if (wx, mass[id(x)]) >= (wy, mass[id(y)]) else y
            how = "size" if wx == wy else f"{max(wx, wy)}-{min(wx, wy)}"
            log.append(f"{win[0]} beat {(y if win is x else x)[0]} ({how})")
            return win

        _, ranking = knockout(entrants, play)
        ranked = [u for u in ranking] + units[len(entrants):]
        score = {cid: float(len(ranked) - i) for i, u in enumerate(ranked) for cid in u}
        group_of = {cid: i for i, u in enumerate(ranked) for cid in u}
        note = f"; stopped early ({stopped[0]}), rest settled by size" if stopped else ""
        rationale = (f"tournament: {len(entrants)} {opts.units} in a knockout, k={opts.k}: "
                     + "; ".join(log) + note) if log else f"tournament: one {opts.units[:-1]}, no match"
        sel = ranked_selection(self.name, [by_id[c] for u in ranked for c in u], score, ctx, rationale,
                               groups=group_of)
        return sel.model_copy(update={"cost": total_cost(costs)})


def shown_outputs(evidence: Evidence, a: str, b: str, n: int) -> dict[str, list[tuple[str, str]]]:
    """Outputs of a and b on up to n shared inputs, those where they differ first."""
    sa, sb = evidence.signatures.get(a, []), evidence.signatures.get(b, [])
    idx = [i for i in range(min(len(sa), len(sb), len(evidence.inputs)))]
    idx.sort(key=lambda i: sa[i] == sb[i])  # stable: differing inputs first, in order
    idx = idx[:n]
    return {a: [(evidence.inputs[i], sa[i]) for i in idx], b: [(evidence.inputs[i], sb[i]) for i in idx]}
