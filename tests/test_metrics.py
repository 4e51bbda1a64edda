from math import comb

import pytest

from assay.metrics import (baseline_pass1, cost_per_stage, coverage_curve, mean_pass_at_k, oracle,
                           pass_at_k, selected_correct)
from assay.types import Cost, Selection


def test_pass_at_k_hand_computed():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # only 2 wrong: any 3 include a right one
    assert pass_at_k(5, 5, 1) == 1.0


def test_pass_at_k_matches_binomial_form_and_is_stable_for_large_n():
    for n, c, k in [(10, 3, 4), (100, 7, 10), (200, 1, 100)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    assert 0.0 < pass_at_k(100000, 3, 50) < 1.0


def test_pass_at_k_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 6)


def test_coverage_curve_and_mean():
    counts = [(4, 1), (4, 0)]
    assert mean_pass_at_k(counts, 1) == pytest.approx(0.125)
    curve = coverage_curve(counts)
    assert list(curve) == [1, 2, 4]
    assert curve[4] == pytest.approx(0.5) and curve[2] == pytest.approx(0.25)


def test_selected_credit_is_fractional_over_ties_and_zero_when_abstaining():
    correct = {"a": True, "b": False, "c": True}
    assert selected_correct(Selection(chosen="a", tied=["a", "b"]), correct) == 0.5
    assert selected_correct(Selection(chosen="c"), correct) == 1.0
    assert selected_correct(Selection(chosen=None, abstained=True), correct) == 0.0


def test_oracle_and_baseline():
    per_task = [{"a": True, "b": False}, {"a": False, "b": False, "c": False, "d": True}]
    assert oracle(per_task) == 1.0
    assert baseline_pass1(per_task) == pytest.approx((0.5 + 0.25) / 2)


def test_cost_per_stage_sums_and_keeps_unknown_prices():
    out = cost_per_stage([("gen", Cost(usd=0.5, calls=1)), ("judge", Cost(usd=None, calls=2)),
                          ("gen", Cost(usd=0.25, calls=1))])
    assert out["gen"]["usd"] == 0.75 and out["gen"]["calls"] == 2
    assert out["judge"]["usd"] is None
