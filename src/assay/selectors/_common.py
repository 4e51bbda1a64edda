"""Helpers shared by the core selectors: multiplicity weights, loadable candidates, tie-aware results."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from assay.selectors.base import SelectContext
from assay.types import Candidate, Evidence, Selection

MULTIPLICITY = "multiplicity"  # ctx.options key: cid -> how many sampled programs it stands for
# ctx.options key: if true, rankers count a deduplicated candidate once per sample it stands
# for. Off by default: on the CodeGen-16B dev pool, votes by distinct programs chose better
# (benches/results/select_quality.md) - repeated samples of one program are not independent.
MULTIPLICITY_VOTES = "multiplicity_votes"


def weight(ctx: SelectContext, cid: str) -> float:
    """A candidate's vote: 1, or (with MULTIPLICITY_VOTES) the samples `dedup` merged into it."""
    if not ctx.options.get(MULTIPLICITY_VOTES):
        return 1.0
    return float(ctx.options.get(MULTIPLICITY, {}).get(cid, 1))


def loadable(candidates: list[Candidate], evidence: Evidence) -> list[Candidate]:
    """Candidates that imported; all of them when none did (nothing better to go on)."""
    ok = [c for c in candidates if c.id not in evidence.load_errors]
    return ok or list(candidates)


def untrusted_tests(evidence: Evidence) -> list[str]:
    return [t.id for t in evidence.tests if not t.trusted]


def abstain(reason: str) -> Selection:
    return Selection(chosen=None, abstained=True, rationale=reason)


def ranked_selection(name: str, candidates: list[Candidate], scores: Mapping[str, float],
                     ctx: SelectContext, rationale: str,
                     groups: Mapping[str, Hashable] | None = None) -> Selection:
    """Order all candidates by score (stable: input order breaks ties); the top-score ones are tied.

    With `groups` (cid -> group key), candidates of one group stay next to each other."""
    if not candidates:
        return abstain(f"{name}: no candidates")
    order = {c.id: i for i, c in enumerate(candidates)}
    first_in_group: dict[Hashable, int] = {}
    if groups is not None:
        for c in candidates:
            first_in_group.setdefault(groups[c.id], order[c.id])

    def key(cid: str) -> tuple:
        g = first_in_group[groups[cid]] if groups is not None else order[cid]
        return (-scores[cid], g, order[cid])

    ranking = sorted((c.id for c in candidates), key=key)
    top = scores[ranking[0]]
    tied = [cid for cid in ranking if scores[cid] == top]
    return Selection(chosen=ctx.rng.choice(tied), ranking=ranking, tied=tied,
                     scores={cid: float(scores[cid]) for cid in ranking}, rationale=rationale)
