"""`cluster`: group candidates by behaviour (their outputs on the shared inputs) and pick the
largest group (AlphaCode clustering / MBR-exec). Tied groups share the credit."""

from __future__ import annotations

from collections import defaultdict

from assay.selectors._common import abstain, loadable, ranked_selection, untrusted_tests, weight
from assay.words import counted
from assay.selectors.base import SelectContext
from assay.types import Candidate, Evidence, Selection, Task


def behaviour(evidence: Evidence, cid: str) -> tuple[str, ...]:
    return tuple(evidence.signatures.get(cid, []))


def all_failed(sig: tuple[str, ...]) -> bool:
    """True when every output is an exception or a timeout (an empty signature is not)."""
    return bool(sig) and all(o.startswith("!") for o in sig)


class Cluster:
    """Score = total weight of the candidate's behaviour cluster.

    Clusters that only raise or time out on every input rank below any cluster that returns
    something, whatever their size."""

    name = "cluster"
    needs_model = False

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("cluster: no candidates")
        sig = {c.id: behaviour(evidence, c.id) for c in pool}
        mass: dict[tuple[str, ...], float] = defaultdict(float)
        for c in pool:
            mass[sig[c.id]] += weight(ctx, c.id)
        total = sum(mass.values())
        # failing-only clusters get mass - total (< 0): below every working one, still by size
        score = {s: m - total if all_failed(s) else m for s, m in mass.items()}
        scores = {cid: score[s] for cid, s in sig.items()}
        best = max(score, key=lambda s: score[s])
        return ranked_selection(
            self.name, pool, scores, ctx,
            f"cluster: {counted(len(mass), 'behaviour')} on {counted(len(evidence.inputs), 'input')}; largest has "
            f"weight {mass[best]:g}", groups=sig)


class Consensus:
    """Behaviour clusters scored by dual agreement: (cluster weight) x (1 + generated tests its
    members pass on average).

    CodeT's score over behaviour clusters instead of pass-sets: programs that agree on every
    shared input vote together, and tests they satisfy add evidence. The +1 keeps the cluster
    vote alive when no test passes or a task has no tests (plain `cluster` then). Clusters
    that only raise or time out rank last."""

    name = "consensus"
    needs_model = False

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("consensus: no candidates")
        tests = untrusted_tests(evidence)
        sig = {c.id: behaviour(evidence, c.id) for c in pool}
        mass: dict[tuple[str, ...], float] = defaultdict(float)
        passed: dict[tuple[str, ...], float] = defaultdict(float)
        for c in pool:
            w = weight(ctx, c.id)
            row = evidence.outcomes.get(c.id, {})
            mass[sig[c.id]] += w
            passed[sig[c.id]] += w * sum(row.get(t) == "pass" for t in tests)
        score = {}
        for s, m in mass.items():
            score[s] = m * (1.0 + passed[s] / m)
        floor = min(score.values()) - max(score.values()) - 1.0
        score = {s: v + floor if all_failed(s) else v for s, v in score.items()}
        best = max(score, key=lambda s: score[s])
        return ranked_selection(
            self.name, pool, {cid: score[s] for cid, s in sig.items()}, ctx,
            f"consensus: {counted(len(mass), 'behaviour')}; best has weight {mass[best]:g} and passes "
            f"{passed[best] / mass[best]:.3g}/{len(tests)} generated tests", groups=sig)
