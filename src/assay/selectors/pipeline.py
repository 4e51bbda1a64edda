"""Selector registry and pipelines such as ``"public|dedup|cluster"``.

Stages run left to right. Each stage receives the candidates the previous one kept, in order:
its Selection's ``ranking`` (filters keep survivors; rankers keep everyone, best first, with
behaviour groups contiguous). The last stage's Selection is the answer (``chosen``; ``tied`` is
its top group, used for fractional credit). A stage that abstains ends the pipeline.

Adding a selector: one line in ``SELECTORS`` mapping its name to a zero-argument factory.
"""

from __future__ import annotations

from collections.abc import Callable

from assay.errors import UserError
from assay.selectors.base import SelectContext, Selector
from assay.selectors.cluster import Cluster, Consensus
from assay.selectors.filters import Dedup, PublicFilter
from assay.selectors.fuzz import Fuzz
from assay.selectors.sstar import SStar
from assay.selectors.tournament import Tournament
from assay.selectors.vote import CodeT, Vote
from assay.types import Candidate, Cost, Evidence, Selection, Task

SELECTORS: dict[str, Callable[[], Selector]] = {
    "public": PublicFilter,
    "dedup": Dedup,
    "vote": Vote,
    "codet": CodeT,
    "cluster": Cluster,
    "consensus": Consensus,
    "fuzz": Fuzz,
    "tournament": Tournament,
    "sstar": SStar,
}

# The best model-free pipeline measured in benches/results/select_quality.md.
DEFAULT_PIPELINE = "public|consensus"


def parse_pipeline(spec: str) -> list[Selector]:
    """``"public|dedup|cluster"`` -> selector instances; unknown names raise UserError."""
    names = [n.strip() for n in (spec or "").split("|")]
    if not spec or not all(names):
        raise UserError(f"selector pipeline {spec!r} is empty or has an empty stage; write names "
                        f"joined by '|', e.g. {DEFAULT_PIPELINE!r}.")
    unknown = [n for n in names if n not in SELECTORS]
    if unknown:
        raise UserError(f"unknown selector {unknown[0]!r} in {spec!r}; known selectors: "
                        f"{', '.join(sorted(SELECTORS))}.")
    return [SELECTORS[n]() for n in names]


def needs_model(spec: str | list[Selector]) -> bool:
    """Whether any stage of the pipeline calls a model (a judge)."""
    stages = parse_pipeline(spec) if isinstance(spec, str) else spec
    return any(getattr(s, "needs_model", False) for s in stages)


def require_model(spec: str, has_model: bool) -> None:
    """Refuse, in one sentence, a judge-needing pipeline without a model."""
    if has_model:
        return
    judges = [s.name for s in parse_pipeline(spec) if getattr(s, "needs_model", False)]
    if judges:
        raise UserError(f"selector {judges[0]!r} needs a model to judge with; pass --model NAME "
                        f"or drop it from the pipeline.")


def run_pipeline(stages: list[Selector] | str, task: Task, candidates: list[Candidate],
                 evidence: Evidence, ctx: SelectContext) -> tuple[Selection, list[tuple[str, Selection]]]:
    """Run the stages left to right; returns the final Selection and each stage's own.

    The final Selection's cost is the sum of the stages' costs; its rationale joins theirs."""
    if isinstance(stages, str):
        stages = parse_pipeline(stages)
    ctx.options.pop("multiplicity", None)  # per task
    trace: list[tuple[str, Selection]] = []
    current = list(candidates)
    by_id = {c.id: c for c in candidates}
    sel = Selection(chosen=None, abstained=True, rationale="no stages")
    for stage in stages:
        sel = stage.select(task, current, evidence, ctx)
        trace.append((stage.name, sel))
        if sel.abstained or sel.chosen is None:
            sel = sel.model_copy(update={"abstained": True, "chosen": None})
            break
        current = [by_id[cid] for cid in sel.ranking if cid in by_id] or current
    cost = Cost()
    for _, s in trace:
        cost = cost + s.cost
    return (sel.model_copy(update={"cost": cost, "rationale": " | ".join(s.rationale for _, s in trace)}),
            trace)
