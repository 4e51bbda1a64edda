"""Generation strategies for function tasks. Each is
`generate(task, model, n, *, runner=None, rounds=..., budget=None, rng=None, store=None,
workers=4) -> list[Candidate]`; parameters a strategy does not need are accepted and ignored
so that callers can treat them alike."""

from __future__ import annotations

from typing import Any, Callable

from assay.agent.strategies import plansearch, repeated, self_debug

STRATEGIES: dict[str, Callable[..., Any]] = {
    "repeated": repeated.generate,
    "self_debug": self_debug.generate,
    "plansearch": plansearch.generate,
}


def get_strategy(name: str) -> Callable[..., Any]:
    from assay.errors import UserError

    try:
        return STRATEGIES[name]
    except KeyError:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.") from None
