"""Metrics: unbiased pass@k, coverage curves, selection accuracy with fractional ties, cost."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from assay.types import Cost, Selection


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), in stable product form.

    n samples of which c are correct; the chance that at least one of k drawn without
    replacement is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """Mean pass@k over tasks given (n, c) per task."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values) if values else 0.0


def coverage_curve(counts: Sequence[tuple[int, int]], ks: Iterable[int] | None = None) -> dict[int, float]:
    """Coverage (mean pass@k) as a function of the number of samples k.

    Default ks: powers of two up to the smallest n, plus that n."""
    if not counts:
        return {}
    n_min = min(n for n, _ in counts)
    if ks is None:
        ks = sorted({2 ** i for i in range(n_min.bit_length()) if 2 ** i <= n_min} | {n_min})
    return {k: mean_pass_at_k(counts, k) for k in ks if 1 <= k <= n_min}


def selected_correct(selection: Selection, correct: Mapping[str, bool]) -> float:
    """Credit for one task: the fraction of the tied top group that is correct (0 if abstained)."""
    if selection.abstained or selection.chosen is None:
        return 0.0
    group = selection.tied or [selection.chosen]
    return sum(bool(correct.get(cid, False)) for cid in group) / len(group)


def selected_pass1(credits: Sequence[float]) -> float:
    return sum(credits) / len(credits) if credits else 0.0


def oracle(correct_per_task: Sequence[Mapping[str, bool]]) -> float:
    """Fraction of tasks where any candidate is correct (the best any selector can do)."""
    if not correct_per_task:
        return 0.0
    return sum(any(m.values()) for m in correct_per_task) / len(correct_per_task)


def baseline_pass1(correct_per_task: Sequence[Mapping[str, bool]]) -> float:
    """Mean fraction of candidates that are correct (random choice, = mean pass@1)."""
    vals = [sum(m.values()) / len(m) for m in correct_per_task if m]
    return sum(vals) / len(correct_per_task) if correct_per_task else 0.0


def cost_per_stage(stage_costs: Iterable[tuple[str, Cost]]) -> dict[str, dict]:
    """Sum costs by stage name; usd stays None once any part of a stage had an unknown price."""
    total: dict[str, Cost] = {}
    for stage, cost in stage_costs:
        total[stage] = total[stage] + cost if stage in total else cost
    return {s: c.model_dump() for s, c in total.items()}
