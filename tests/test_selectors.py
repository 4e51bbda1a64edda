"""Core selectors on hand-made Evidence where the right answer is known."""

import random

import pytest

from assay.errors import UserError
from assay.selectors.base import SelectContext
from assay.selectors.filters import Dedup, PublicFilter, normal_form
from assay.selectors.cluster import Cluster
from assay.selectors.pipeline import SELECTORS, needs_model, parse_pipeline, require_model, run_pipeline
from assay.selectors.vote import CodeT, Vote
from assay.types import Candidate, Evidence, Task, TestCase

TASK = Task(id="t", statement="def f(x): ...", entry_point="f")


def cands(*contents):
    return [Candidate(id=f"c{i}", task_id="t", content=s) for i, s in enumerate(contents)]


def evidence(outcomes, trusted=(), signatures=None, load_errors=None, inputs=None):
    tids = sorted({t for row in outcomes.values() for t in row})
    tests = [TestCase(id=t, source="assert True", trusted=t in trusted,
                      origin="public" if t in trusted else "generated") for t in tids]
    sigs = signatures or {}
    n_inputs = len(next(iter(sigs.values()))) if sigs else 0
    return Evidence(task_id="t", candidate_ids=list(outcomes), tests=tests, outcomes=outcomes,
                    signatures=sigs, inputs=inputs or [f"{i}" for i in range(n_inputs)],
                    load_errors=load_errors or {})


def ctx():
    return SelectContext(rng=random.Random(0))


P, F = "pass", "fail"


def test_public_keeps_candidates_passing_all_trusted_tests():
    cs = cands("a", "b", "c")
    ev = evidence({"c0": {"p0": P, "p1": F, "g0": P}, "c1": {"p0": P, "p1": P, "g0": F},
                   "c2": {"p0": P, "p1": P, "g0": P}}, trusted={"p0", "p1"})
    sel = PublicFilter().select(TASK, cs, ev, ctx())
    assert sel.ranking == ["c1", "c2"] and sel.tied == ["c1", "c2"]
    assert sel.chosen in ("c1", "c2") and not sel.abstained


def test_public_keeps_best_when_nobody_passes_all_and_all_when_nobody_passes_any():
    cs = cands("a", "b", "c")
    ev = evidence({"c0": {"p0": P, "p1": F}, "c1": {"p0": F, "p1": F}, "c2": {"p0": P, "p1": F}},
                  trusted={"p0", "p1"})
    assert PublicFilter().select(TASK, cs, ev, ctx()).ranking == ["c0", "c2"]
    ev2 = evidence({c.id: {"p0": F} for c in cs}, trusted={"p0"})
    assert PublicFilter().select(TASK, cs, ev2, ctx()).ranking == ["c0", "c1", "c2"]


def test_public_without_trusted_tests_drops_only_load_failures():
    cs = cands("a", "b")
    ev = evidence({"c0": {"g0": P}, "c1": {"g0": F}}, load_errors={"c1": "SyntaxError"})
    assert PublicFilter().select(TASK, cs, ev, ctx()).ranking == ["c0"]


def test_normal_form_ignores_comments_docstrings_and_variable_names():
    a = 'def f(xs):\n    """Doc."""\n    total = 0  # sum\n    for x in xs:\n        total += x\n    return total\n'
    b = "def f(values):\n    acc = 0\n    for v in values:\n        acc += v\n    return acc\n"
    c = "def f(values):\n    acc = 1\n    for v in values:\n        acc += v\n    return acc\n"
    assert normal_form(a) == normal_form(b)
    assert normal_form(a) != normal_form(c)
    assert normal_form("def f(:") != normal_form("def g(:")


def test_dedup_merges_and_counts_multiplicity():
    same = "def f(x):\n    return x + 1\n"
    cs = cands(same, "def f(y):\n    return y + 1  # renamed\n", same, "def f(x):\n    return x * 2\n",
               "def f(x):\n    return x * 2 + 0\n")
    c = ctx()
    sel = Dedup().select(TASK, cs, evidence({x.id: {} for x in cs}), c)
    assert sel.ranking == ["c0", "c3", "c4"]
    assert c.options["multiplicity"] == {"c0": 3.0, "c3": 1.0, "c4": 1.0}
    assert sel.rationale == "dedup: 5 candidates -> 3 distinct programs"
    one = Dedup().select(TASK, cs[:1], evidence({"c0": {}}), ctx())
    assert one.rationale == "dedup: 1 candidate -> 1 distinct program"
    # c3 and c4 behave alike: two distinct programs outvote one program sampled three times...
    sigs = {"c0": ["2"], "c1": ["2"], "c2": ["2"], "c3": ["2x"], "c4": ["2x"]}
    ev = evidence({x.id: {} for x in cs}, signatures=sigs)
    final, trace = run_pipeline("dedup|cluster", TASK, cs, ev, ctx())
    assert [name for name, _ in trace] == ["dedup", "cluster"]
    assert final.tied == ["c3", "c4"]
    # ...unless multiplicity is asked to count as votes; plain cluster counts every sample
    votes = SelectContext(rng=random.Random(0), options={"multiplicity_votes": True})
    final, _ = run_pipeline("dedup|cluster", TASK, cs, ev, votes)
    assert final.tied == ["c0"] and final.scores["c0"] == 3.0
    assert Cluster().select(TASK, cs, ev, ctx()).tied == ["c0", "c1", "c2"]


def test_vote_picks_most_tests_passed_and_reports_ties():
    cs = cands("a", "b", "c")
    ev = evidence({"c0": {"g0": P, "g1": P, "g2": F}, "c1": {"g0": P, "g1": F, "g2": F},
                   "c2": {"g0": F, "g1": P, "g2": P}})
    sel = Vote().select(TASK, cs, ev, ctx())
    assert sel.tied == ["c0", "c2"] and sel.ranking == ["c0", "c2", "c1"]
    assert sel.scores == {"c0": 2.0, "c2": 2.0, "c1": 1.0}


def test_vote_ignores_trusted_tests():
    cs = cands("a", "b")
    ev = evidence({"c0": {"p0": P, "g0": F}, "c1": {"p0": F, "g0": P}}, trusted={"p0"})
    assert Vote().select(TASK, cs, ev, ctx()).tied == ["c1"]


def test_codet_prefers_large_consensus_over_a_lone_high_scorer():
    # c0 alone passes 3 tests (score 1*3); c1..c3 agree on the same 2 tests (score 3*2 = 6).
    cs = cands("a", "b", "c", "d", "e")
    ev = evidence({"c0": {"g0": P, "g1": P, "g2": P}, "c1": {"g0": P, "g1": F, "g2": P},
                   "c2": {"g0": P, "g1": F, "g2": P}, "c3": {"g0": P, "g1": F, "g2": P},
                   "c4": {"g0": F, "g1": F, "g2": F}})
    sel = CodeT().select(TASK, cs, ev, ctx())
    assert sel.tied == ["c1", "c2", "c3"]
    assert sel.scores["c0"] == 3.0 and sel.scores["c1"] == 6.0 and sel.scores["c4"] == 0.0
    assert sel.ranking[:3] == ["c1", "c2", "c3"] and sel.ranking[3] == "c0"


def test_codet_tie_between_sets():
    cs = cands("a", "b", "c", "d")
    ev = evidence({"c0": {"g0": P, "g1": F}, "c1": {"g0": P, "g1": F},
                   "c2": {"g0": F, "g1": P}, "c3": {"g0": F, "g1": P}})
    assert sorted(CodeT().select(TASK, cs, ev, ctx()).tied) == ["c0", "c1", "c2", "c3"]


def test_cluster_picks_largest_behaviour_and_ranks_crashers_last():
    cs = cands("a", "b", "c", "d", "e", "f")
    sigs = {"c0": ["1", "2"], "c1": ["1", "3"], "c2": ["1", "2"],
            "c3": ["!ZeroDivisionError", "!timeout"], "c4": ["!ZeroDivisionError", "!timeout"],
            "c5": ["!ZeroDivisionError", "!timeout"]}
    ev = evidence({c.id: {} for c in cs}, signatures=sigs)
    sel = Cluster().select(TASK, cs, ev, ctx())
    assert sel.tied == ["c0", "c2"] and sel.chosen in ("c0", "c2")
    assert sel.ranking == ["c0", "c2", "c1", "c3", "c4", "c5"]


def test_cluster_ties_are_shared_and_load_failures_excluded():
    cs = cands("a", "b", "c")
    ev = evidence({c.id: {} for c in cs}, signatures={"c0": ["1"], "c1": ["2"], "c2": ["3"]},
                  load_errors={"c2": "SyntaxError"})
    sel = Cluster().select(TASK, cs, ev, ctx())
    assert sel.tied == ["c0", "c1"] and "c2" not in sel.ranking


def test_selectors_abstain_without_candidates():
    for name in ("public", "dedup", "vote", "codet", "cluster"):
        sel = SELECTORS[name]().select(TASK, [], evidence({}), ctx())
        assert sel.abstained and sel.chosen is None, name
    final, trace = run_pipeline("public|vote", TASK, [], evidence({}), ctx())
    assert final.abstained and len(trace) == 1


def test_pipeline_passes_survivors_left_to_right():
    cs = cands("a", "b", "c")
    ev = evidence({"c0": {"p0": F, "g0": P, "g1": P}, "c1": {"p0": P, "g0": P, "g1": F},
                   "c2": {"p0": P, "g0": F, "g1": F}}, trusted={"p0"})
    # vote alone would pick c0, which fails the trusted example
    assert Vote().select(TASK, cs, ev, ctx()).tied == ["c0"]
    final, _ = run_pipeline("public|vote", TASK, cs, ev, ctx())
    assert final.tied == ["c1"] and final.chosen == "c1"
    assert "public:" in final.rationale and "vote:" in final.rationale


def test_parse_pipeline_errors_name_known_selectors():
    assert [s.name for s in parse_pipeline("public|dedup|cluster")] == ["public", "dedup", "cluster"]
    with pytest.raises(UserError, match="unknown selector 'nope'.*known selectors: .*cluster"):
        parse_pipeline("public|nope")
    with pytest.raises(UserError, match="empty"):
        parse_pipeline("public||vote")
    assert not needs_model("public|dedup|codet")


def test_judge_needing_selector_refused_without_model(monkeypatch):
    class Judge:
        name = "judgey"
        needs_model = True

    monkeypatch.setitem(SELECTORS, "judgey", Judge)
    assert needs_model("public|judgey")
    with pytest.raises(UserError, match="'judgey' needs a model.*--model"):
        require_model("public|judgey", has_model=False)
    require_model("public|judgey", has_model=True)


def test_consensus_combines_cluster_weight_and_tests_passed():
    from assay.selectors.cluster import Consensus

    # {c0, c1} behave alike and pass 1 test: 2 x (1 + 1) = 4; c2 alone passes 3: 1 x 4 = 4 (tie);
    # c3 passes nothing: 1 x 1; {c4, c5} only raise: ranked last despite their weight.
    cs = cands("a", "b", "c", "d", "e", "f")
    out = {"c0": {"g0": P, "g1": F, "g2": F}, "c1": {"g0": P, "g1": F, "g2": F},
           "c2": {"g0": P, "g1": P, "g2": P}, "c3": {"g0": F, "g1": F, "g2": F},
           "c4": {"g0": F, "g1": F, "g2": F}, "c5": {"g0": F, "g1": F, "g2": F}}
    sigs = {"c0": ["1"], "c1": ["1"], "c2": ["2"], "c3": ["3"], "c4": ["!KeyError"], "c5": ["!KeyError"]}
    sel = Consensus().select(TASK, cs, evidence(out, signatures=sigs), ctx())
    assert sel.tied == ["c0", "c1", "c2"]
    assert sel.scores["c0"] == 4.0 and sel.scores["c2"] == 4.0 and sel.scores["c3"] == 1.0
    assert sel.ranking[-2:] == ["c4", "c5"] and sel.scores["c4"] < sel.scores["c3"]
    assert sel.rationale.startswith("consensus: 4 behaviours; best has weight 2 and passes 1/3")
    same = {c.id: ["1"] for c in cs[:2]}
    one = Consensus().select(TASK, cs[:2], evidence({c: out[c] for c in same}, signatures=same), ctx())
    assert one.rationale.startswith("consensus: 1 behaviour; best has weight 2")
    # without tests it is plain clustering
    no_tests = evidence({c.id: {} for c in cs}, signatures=sigs)
    assert Consensus().select(TASK, cs, no_tests, ctx()).tied == ["c0", "c1"]
