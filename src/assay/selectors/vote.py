"""Test-based rankers: `vote` (most generated tests passed) and `codet` (CodeT dual agreement).

Both count only untrusted (generated / fuzz) tests; trusted ones are the `public` filter's job.
Candidate weights come from `dedup` multiplicity when it ran earlier in the pipeline.
"""

from __future__ import annotations

from collections import defaultdict

from assay.selectors._common import abstain, loadable, ranked_selection, untrusted_tests, weight
from assay.words import counted
from assay.selectors.base import SelectContext
from assay.types import Candidate, Evidence, Selection, Task


class Vote:
    """Score = number of generated tests passed; the top scorers tie."""

    name = "vote"
    needs_model = False

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("vote: no candidates")
        tests = set(untrusted_tests(evidence))
        scores = {c.id: float(sum(evidence.outcomes.get(c.id, {}).get(t) == "pass" for t in tests))
                  for c in pool}
        top = max(scores.values())
        return ranked_selection(self.name, pool, scores, ctx,
                                f"vote: best passes {top:g}/{len(tests)} generated tests")


class CodeT:
    """CodeT (Chen et al. 2022): consensus sets = candidates passing exactly the same tests;
    set score = (weight of its candidates) x (number of tests it passes)."""

    name = "codet"
    needs_model = False

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("codet: no candidates")
        tests = untrusted_tests(evidence)
        key: dict[str, frozenset[str]] = {}
        mass: dict[frozenset[str], float] = defaultdict(float)
        for c in pool:
            row = evidence.outcomes.get(c.id, {})
            k = frozenset(t for t in tests if row.get(t) == "pass")
            key[c.id] = k
            mass[k] += weight(ctx, c.id)
        set_score = {k: m * len(k) for k, m in mass.items()}
        scores = {cid: set_score[k] for cid, k in key.items()}
        best = max(set_score, key=lambda k: set_score[k])
        return ranked_selection(
            self.name, pool, scores, ctx,
            f"codet: {counted(len(mass), 'consensus set')}; best has weight {mass[best]:g} and passes "
            f"{len(best)}/{len(tests)} generated tests", groups=key)
