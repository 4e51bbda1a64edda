"""fuzz, tournament and sstar: selectors that look beyond the fixed test matrix.

Candidates run for real through the Runner over the local (bubblewrap) sandbox; judges are
ScriptedModels that read the prompt they are given.
"""

from __future__ import annotations

import random
import re

import pytest

from assay.agent.models import ScriptedModel
from assay.errors import UserError
from assay.sandbox.base import make_sandbox
from assay.sandbox.runner import Runner
from assay.selectors import fuzz_inputs as fi
from assay.selectors.base import SelectContext
from assay.selectors.fuzz import Fuzz
from assay.selectors.judge import parse_verdict
from assay.selectors.sstar import SStar, parse_inputs
from assay.selectors.tournament import Tournament
from assay.types import Candidate, Task
from assay.types import TestCase as Case  # not "Test*": pytest would try to collect it


@pytest.fixture(scope="module")
def runner():
    sandbox = make_sandbox("local")
    yield Runner(sandbox, test_timeout_s=2.0)
    sandbox.close()


def _task(sig: str, entry: str, doc: str, **meta) -> Task:
    return Task(id=f"t-{entry}", statement=f"{sig}\n    \"\"\"{doc}\"\"\"\n", entry_point=entry,
                metadata=meta)


def _cands(task: Task, bodies: dict[str, str]) -> list[Candidate]:
    head = task.statement.split('"""')[0]  # "def f(...):\n    "
    return [Candidate(id=cid, task_id=task.id, content=head.rstrip() + "\n" + body) for cid, body in bodies.items()]


def _tests(*asserts: str) -> list[Case]:
    return [Case(id=f"g{i}", source=a, origin="generated", trusted=False) for i, a in enumerate(asserts)]


def _ctx(runner, model=None, seed=0, **options) -> SelectContext:
    return SelectContext(model=model, runner=runner, rng=random.Random(seed), options=options)


# --- fuzz (no model) -----------------------------------------------------------------------------

ABS_SIG = "from typing import List\n\ndef absolute_sum(nums: List[int]) -> int:"
ABS_BODIES = {
    "wrong": "    return sum(nums)\n",  # right for non-negative numbers only
    "ok1": "    return sum(abs(x) for x in nums)\n",
    "ok2": "    total = 0\n    for x in nums:\n        total += x if x >= 0 else -x\n    return total\n",
}


def _abs_setup(runner):
    task = _task(ABS_SIG, "absolute_sum", "Sum of the absolute values of nums.")
    cands = _cands(task, ABS_BODIES)
    ev = runner.evaluate(task, cands, _tests("assert absolute_sum([1, 2, 3]) == 6",
                                             "assert absolute_sum([4]) == 4"))
    return task, cands, ev


def test_fuzz_separates_candidates_that_agree_on_the_given_inputs(runner):
    task, cands, ev = _abs_setup(runner)
    assert len({tuple(s) for s in ev.signatures.values()}) == 1  # one behaviour cluster so far
    sel = Fuzz().select(task, cands, ev, _ctx(runner))
    assert sel.chosen in ("ok1", "ok2")
    assert set(sel.tied) == {"ok1", "ok2"} and sel.ranking[-1] == "wrong"
    assert "absolute_sum([-1]): winner 1 vs -1" in sel.rationale  # shrunk to the minimal input
    found = [j for j in ev.judgements if j["selector"] == "fuzz"]
    assert found and found[0]["distinguishing"][0]["input"] == "[-1]"
    assert sel.cost.calls == 0


def test_fuzz_is_deterministic_for_a_seed(runner):
    runs = []
    for _ in range(2):
        task, cands, ev = _abs_setup(runner)
        sel = Fuzz().select(task, cands, ev, _ctx(runner, seed=7))
        runs.append((sel.chosen, sel.ranking, sel.rationale))
    assert runs[0] == runs[1]


def test_fuzz_prefers_returning_over_raising_and_shrinks_to_the_empty_list(runner):
    task = _task("from typing import List\n\ndef smallest(nums: List[int]) -> int:", "smallest",
                 "The smallest number in nums, or 0 when nums is empty.")
    cands = _cands(task, {"raises": "    return min(nums)\n",
                          "ok": "    if not nums:\n        return 0\n    return min(nums)\n"})
    ev = runner.evaluate(task, cands, _tests("assert smallest([3, 1, 2]) == 1", "assert smallest([5]) == 5"))
    sel = Fuzz().select(task, cands, ev, _ctx(runner))
    assert sel.chosen == "ok" and sel.tied == ["ok"]
    assert "smallest([]): winner 0 vs !ValueError" in sel.rationale


def test_fuzz_runs_model_written_input_generators_in_the_sandbox(runner):
    gen = ("def gen_input(rng):\n"
           "    return ([rng.randint(-9, -1) for _ in range(rng.randint(1, 3))],)\n")
    task, cands, ev = _abs_setup(runner)
    task = task.model_copy(update={"metadata": {"input_generators": [gen]}})
    opts = {"fuzz": {"hypothesis_inputs": 0, "mutated_inputs": 0}}
    sel = Fuzz().select(task, cands, ev, _ctx(runner, **opts))
    assert re.search(r"\(\d+ generator\)", sel.rationale)
    assert sel.chosen in ("ok1", "ok2") and "absolute_sum([-1])" in sel.rationale
    # without any source of new inputs fuzz cannot tell them apart
    task0, cands0, ev0 = _abs_setup(runner)
    sel0 = Fuzz().select(task0, cands0, ev0, _ctx(runner, **opts))
    assert set(sel0.tied) == {"wrong", "ok1", "ok2"}


def test_fuzz_settles_by_agreement_then_tests(runner):
    task = _task("def double(x: int) -> int:", "double", "Twice x.")
    cands = _cands(task, {"a": "    return x + x\n", "b": "    return x * 3\n", "c": "    return 3 * x\n"})
    tests = _tests("assert double(2) == 4", "assert double(0) == 0")
    ev = runner.evaluate(task, cands, tests)
    sel = Fuzz().select(task, cands, ev, _ctx(runner))
    assert sel.chosen in ("b", "c") and "settled by agreement" in sel.rationale  # the majority
    sel = Fuzz(tests_first=True).select(task, cands, ev, _ctx(runner))
    assert sel.chosen == "a" and "settled by tests" in sel.rationale  # the minority passes more tests
    # equal weight: agreement cannot decide, the tests do
    two = [c for c in cands if c.id != "c"]
    ev = runner.evaluate(task, two, tests)
    sel = Fuzz().select(task, two, ev, _ctx(runner))
    assert sel.chosen == "a" and "settled by tests" in sel.rationale


def test_hypothesis_inputs_follow_type_hints_and_seed():
    src = "from typing import Dict, List, Optional, Tuple\n" \
          "def f(xs: List[float], name: str, pair: Tuple[int, bool], m: Optional[Dict[str, int]]) -> int: ..."
    params = fi.find_params([src], "f")
    a = fi.hypothesis_inputs(params, [], 25, seed=1)
    assert len(a) >= 15 and a == fi.hypothesis_inputs(params, [], 25, seed=1)
    assert a != fi.hypothesis_inputs(params, [], 25, seed=2)
    for s in a:
        xs, name, pair, m = fi.literal_args(s)
        assert isinstance(xs, list) and all(isinstance(v, float) for v in xs)
        assert isinstance(name, str) and isinstance(pair[0], int) and isinstance(pair[1], bool)
        assert m is None or all(isinstance(k, str) and isinstance(v, int) for k, v in m.items())
    # no hints: shapes come from the existing inputs
    untyped = fi.find_params(["def g(s, k):\n    return s\n"], "g")
    for s in fi.hypothesis_inputs(untyped, [("ab", 3)], 10, seed=0):
        v = fi.literal_args(s)
        assert isinstance(v[0], str) and isinstance(v[1], int)


def test_shrink_steps_are_smaller():
    steps = fi.shrink_steps("[3, -7, 2], 'abc'")
    assert "[], 'abc'" in steps and "[3, -7, 2], ''" in steps
    here = fi.size(fi.literal_args("[3, -7, 2], 'abc'"))
    assert all(fi.size(fi.literal_args(s)) < here for s in steps)
    assert fi.shrink_steps("0") == [] and fi.shrink_steps("foo(1)") == []


# --- judges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,verdict", [
    ("A", "A"), (" b\n", "B"), ("Verdict: B", "B"), ("**Verdict:** **A**", "A"),
    ("Program A mishandles []. Program B is better.\n\nVerdict: B", "B"),
    ("The answer is Program B.", "B"), ("Final answer: (A)", "A"), (r"\boxed{B}", "B"),
    ("<verdict>A</verdict>", "A"), ("After analysis...\n\n**B**", "B"), ("answer: a", "A"),
    ("Verdict - Program B", "B"), ("Program A is correct.", "A"),
    ("Both are equally correct.", None), ("Verdict: tie", None), ("", None),
    ("Program A fails but Program B works", None), ("The answer is a good one", None),
    ("A is tempting, but verdict: B", "B"), ("B is correct.", "B"), ("A is the better one", "A"),
    ("A is better but B is correct", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def _program_of(prompt: str, label: str) -> str:
    return prompt.split(f"## Program {label}", 1)[1].split("```python", 1)[1].split("```", 1)[0]


def _marker_judge(marker: str):
    """Prefers the program containing `marker`, answering in messy free text."""
    def answer(messages):
        prompt = messages[-1]["content"]
        if marker in _program_of(prompt, "A"):
            return "Program A handles the edge cases.\n\n**Verdict:** Program A"
        if marker in _program_of(prompt, "B"):
            return "Looking closely, the second one is right. Final answer: (B)"
        return "Both look plausible; I cannot decide."
    return answer


def _four_behaviours(runner):
    task = _task("def f(x: int) -> int:", "f", "Return x plus one.")
    bodies = {"m1": "    return x * 2\n", "m2": "    return 2 * x\n", "m3": "    return x + x\n",
              "n1": "    return x - 1\n", "p1": "    return x\n",
              "star": "    # MARKER\n    return x + 1\n"}
    cands = _cands(task, bodies)
    ev = runner.evaluate(task, cands, _tests("assert f(5) == 6", "assert f(0) == 1"), inputs=["5", "0"])
    return task, cands, ev


def test_tournament_follows_the_judge_and_swaps_order(runner):
    task, cands, ev = _four_behaviours(runner)
    model = ScriptedModel(_marker_judge("# MARKER"))
    sel = Tournament().select(task, cands, ev, _ctx(runner, model=model))
    assert sel.chosen == "star" and sel.ranking[0] == "star"  # the smallest cluster, judged best
    units = 4  # clusters: {m1,m2,m3}, {n1}, {p1}, {star}
    assert len(model.calls) == 2 * (units - 1) and sel.cost.calls == len(model.calls)
    shown = [(_program_of(c[-1]["content"], "A"), _program_of(c[-1]["content"], "B")) for c in model.calls]
    for i in range(0, len(shown), 2):  # each match: the same pair, once in each order
        assert shown[i] == shown[i + 1][::-1] and shown[i][0] != shown[i][1]
    assert "`f(5)` -> `" in model.calls[0][-1]["content"]  # outputs on shared inputs are shown
    verdicts = [j for j in ev.judgements if j["selector"] == "tournament"]
    assert len(verdicts) == len(model.calls) and all(j["verdict"] in ("A", "B", None) for j in verdicts)


def test_tournament_ties_go_to_the_larger_cluster(runner):
    task, cands, ev = _four_behaviours(runner)
    model = ScriptedModel(lambda messages: "Verdict: A")  # always the first shown: 1-1 in every match
    sel = Tournament().select(task, cands, ev, _ctx(runner, model=model))
    assert sel.tied == ["m1", "m2", "m3"] and "(size)" in sel.rationale


def test_judged_selectors_need_a_model(runner):
    task, cands, ev = _four_behaviours(runner)
    for sel in (Tournament(), SStar()):
        with pytest.raises(UserError, match="needs a judge model"):
            sel.select(task, cands, ev, _ctx(runner))


def test_parse_inputs_keeps_valid_argument_lists():
    text = "Try these:\n```inputs\n[-2, 5]\n1. [], 0\n- f([7], 1)\nnot valid((\n# comment\n[-2, 5]\n```"
    assert parse_inputs(text, 10) == ["[-2, 5]", "[], 0", "[7], 1"]
    assert parse_inputs("[1]\n[2]\n[3]", 2) == ["[1]", "[2]"]


def test_sstar_runs_proposed_inputs_and_judges_real_outputs(runner):
    task = _task("from typing import List\n\ndef absolute_sum(nums: List[int]) -> int:", "absolute_sum",
                 "Sum of the absolute values of nums.")
    # two behaviours: "wrong" is the bigger cluster, and the given inputs do not separate them
    cands = _cands(task, {"w1": "    return sum(nums)\n", "w2": "    return sum(x for x in nums)\n",
                          "ok": "    # abs\n    return sum(abs(x) for x in nums)\n"})
    ev = runner.evaluate(task, cands, _tests("assert absolute_sum([1, 2]) == 3"))
    ev.signatures["ok"] = ev.signatures["ok"] + ["distinct"]  # pretend the clusters differ elsewhere
    for cid in ("w1", "w2"):
        ev.signatures[cid] = ev.signatures[cid] + ["other"]
    ev.inputs.append("[0]")
    prompts = []

    def model_fn(messages):
        prompt = messages[-1]["content"]
        prompts.append(prompt)
        if "```inputs" in prompt:
            return "Negative numbers separate them:\n```inputs\n[-2, 5]\nnot valid((\n```"
        a_is_ok = "# abs" in _program_of(prompt, "A")
        real = "A: `7` | B: `3`" if a_is_ok else "A: `3` | B: `7`"
        assert f"`absolute_sum([-2, 5])` -> {real}" in prompt  # the real outputs, really run
        assert "not valid" not in prompt
        return "|-2| + |5| = 7. Verdict: " + ("A" if a_is_ok else "B")

    model = ScriptedModel(model_fn)
    sel = SStar().select(task, cands, ev, _ctx(runner, model=model))
    assert sel.chosen == "ok" and len(model.calls) == 2
    j = [j for j in ev.judgements if j["selector"] == "sstar"]
    assert j[0]["proposed"] == ["[-2, 5]"] and j[0]["winner"] == "ok"
    assert "absolute_sum([-2, 5])" in sel.rationale


def test_sstar_without_a_distinguishing_input_keeps_the_larger_cluster(runner):
    task, cands, ev = _four_behaviours(runner)
    # clusters differ only on the shared inputs; the model proposes nothing usable and says "A"
    model = ScriptedModel(lambda m: "no idea" if "```inputs" in m[-1]["content"] else "Verdict: A")
    sel = SStar(max_clusters=2).select(task, cands, ev, _ctx(runner, model=model))
    # the shared inputs still separate them, so the judge decides on those: A = the better seed
    assert sel.chosen in ("m1", "m2", "m3") and len(model.calls) == 2


def test_shrinking_reaches_a_minimal_disagreeing_input(runner):
    from assay.selectors.fuzz import _shrink

    task, cands, _ = _abs_setup(runner)
    by = {c.id: c for c in cands}
    ctx = _ctx(runner)
    start = "[5, -7, 3, -12]"
    assert _shrink(task, ctx, by["ok1"], by["wrong"], [start], rounds=0) == (start, "27", "-11")
    assert _shrink(task, ctx, by["ok1"], by["wrong"], [start], rounds=20) == ("[-1]", "1", "-1")
    # inputs on which both agree are never taken
    assert _shrink(task, ctx, by["ok1"], by["ok2"], [start], rounds=20)[0] == start


def test_tournament_stops_cleanly_when_the_budget_is_spent(runner):
    from assay.types import Budget

    task, cands, ev = _four_behaviours(runner)
    budget = Budget(calls=2)
    model = ScriptedModel(_marker_judge("# MARKER"), budget=budget)
    ctx = _ctx(runner, model=model)
    ctx.budget = budget
    sel = Tournament().select(task, cands, ev, ctx)
    assert len(model.calls) == 2 and "stopped early" in sel.rationale
    assert sel.chosen is not None and len(sel.ranking) == len(cands)


def test_fuzz_skips_hangers_and_still_finds_inputs(runner):
    # no shared inputs at all, and the first candidate hangs on every input
    task = _task("def smallest(nums: list[int]) -> int:", "smallest",
                 "The smallest number in nums, or 0 when nums is empty.")
    cands = _cands(task, {"hang": "    while True:\n        pass\n", "raises": "    return min(nums)\n",
                          "ok": "    return min(nums) if nums else 0\n"})
    ev = runner.evaluate(task, cands, [])
    assert ev.inputs == []
    sel = Fuzz(screen=4).select(task, cands, ev, _ctx(runner))
    assert sel.chosen == "ok" and sel.ranking[-1] == "hang"
    assert "smallest([]): winner 0 vs !ValueError" in sel.rationale


def test_fuzz_cap_keeps_unrun_members_with_their_cluster(runner):
    task, cands, ev = _abs_setup(runner)
    extra = _cands(task, {"ok3": "    return sum(map(abs, nums))\n",
                          "ok4": "    return sum([abs(v) for v in nums])\n"})
    cands = cands + extra
    ev = runner.evaluate(task, cands, _tests("assert absolute_sum([1, 2, 3]) == 6"))
    sel = Fuzz(max_programs=3).select(task, cands, ev, _ctx(runner))  # ok3, ok4 are not run
    assert "on 3 programs" in sel.rationale
    assert set(sel.tied) == {"ok1", "ok2", "ok3", "ok4"} and sel.ranking[-1] == "wrong"
