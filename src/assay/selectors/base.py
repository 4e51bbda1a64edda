"""The Selector protocol.

A selector narrows or ranks candidates using only execution evidence (and, for judge-based
selectors, a model). Selectors compose left to right in a pipeline: each stage receives the
candidates the previous stage kept. The last stage's Selection is the answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from assay.types import Budget, Candidate, Evidence, Selection, Task

if TYPE_CHECKING:
    from assay.agent.models import Model
    from assay.sandbox.runner import Runner


@dataclass
class SelectContext:
    """What a selector may use besides the evidence."""

    model: "Model | None" = None
    budget: Budget = field(default_factory=Budget)
    runner: "Runner | None" = None  # to execute new inputs (fuzz, sstar)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    options: dict[str, Any] = field(default_factory=dict)


class Selector(Protocol):
    name: str
    needs_model: bool

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        ...
