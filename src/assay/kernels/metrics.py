"""fast_p exactly as KernelBench defines it, and the geometric-mean speedup."""

from __future__ import annotations

import math
from typing import Iterable, Mapping


def fast_p(results: Iterable[Mapping], p: float) -> float:
    """Fraction of ALL problems whose kernel is correct and whose speedup is strictly above p.

    Each result needs `correct` (bool) and `speedup` (float or None). fast_0 is the plain
    correctness rate. Problems with no candidate count as failures (they stay in the
    denominator), as in KernelBench."""
    rows = list(results)
    if not rows:
        return 0.0
    hits = sum(1 for r in rows if r.get("correct") and r.get("speedup") is not None and r["speedup"] > p)
    if p <= 0:
        hits = sum(1 for r in rows if r.get("correct") and (r.get("speedup") is None or r["speedup"] > p))
    return hits / len(rows)


def geomean_speedup(results: Iterable[Mapping]) -> float | None:
    """Geometric mean of the speedups of the correct results (None when there are none)."""
    sp = [r["speedup"] for r in results if r.get("correct") and r.get("speedup")]
    if not sp:
        return None
    return math.exp(sum(math.log(s) for s in sp) / len(sp))


def fast_p_table(results: Iterable[Mapping], ps: Iterable[float] = (0.0, 1.0, 1.5, 2.0)) -> dict:
    """fast_p counts a correct kernel whose verdict carries review notes (a speedup over 10x, a
    time that says it caches by input values, ...) as KernelBench would; `flagged` says how many
    of the correct ones did, for a reader to look at before trusting the numbers."""
    rows = list(results)
    return {
        "n": len(rows),
        "correct": sum(1 for r in rows if r.get("correct")),
        "flagged": sum(1 for r in rows if r.get("correct") and r.get("review")),
        "fast_p": {f"{p:g}": fast_p(rows, p) for p in ps},
        "geomean_speedup_correct": geomean_speedup(rows),
    }
