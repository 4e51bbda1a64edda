"""Function-task strategies and code extraction, driven by ScriptedModel and a real Runner."""

from __future__ import annotations

import random

import pytest

from assay.agent.codeparse import extract_program
from assay.agent.models import ScriptedModel
from assay.agent.strategies import STRATEGIES, get_strategy, plansearch, self_debug
from assay.errors import UserError
from assay.store import RunStore, read_jsonl
from assay.types import Budget, Candidate, Evidence, Origin, Task
from assay.types import TestCase as Case  # not "Test*": pytest would try to collect it

PROMPT = '''from typing import List


def add(a: int, b: int) -> int:
    """Add two numbers.
    >>> add(1, 2)
    3
    """
'''
GOOD = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
BAD = "```python\ndef add(a: int, b: int) -> int:\n    return a - b\n```"


def make_task(public=True) -> Task:
    tests = [Case(id="public_0", source="assert add(1, 2) == 3", origin="public", trusted=True),
             Case(id="public_1", source="assert add(2, 2) == 4", origin="public", trusted=True)]
    return Task(id="T/0", statement=PROMPT, entry_point="add", public_tests=tests if public else [])


@pytest.fixture(scope="module")
def runner():
    from assay.sandbox.base import make_sandbox
    from assay.sandbox.runner import Runner

    return Runner(make_sandbox("local", unsafe_no_sandbox=True), test_timeout_s=2.0)


# ----------------------------------------------------------------------- code extraction

def test_extract_full_function_adds_prompt_imports():
    text = "Sure:\n```python\ndef f(xs: List[int]) -> int:\n    return sum(xs)\n```\nDone."
    p = extract_program(text, "from typing import List\n\ndef f(xs: List[int]) -> int:\n    '''s'''\n", "f")
    assert p.ok
    assert p.program.index("from typing import List") < p.program.index("def f")
    ns: dict = {}
    exec(p.program, ns)
    assert ns["f"]([1, 2]) == 3


def test_extract_body_only_continues_the_prompt():
    p = extract_program("    return a + b\n", PROMPT, "add")
    assert p.ok and p.program.startswith("from typing import List")
    ns: dict = {}
    exec(p.program, ns)
    assert ns["add"](2, 3) == 5


def test_extract_keeps_prompt_helpers_and_prefers_last_valid_block():
    prompt = "def helper(x):\n    return x * 2\n\n\ndef g(x):\n    '''doc'''\n"
    text = ("First try:\n```python\ndef g(x):\n    return helper(x) +\n```\n"
            "Fixed:\n```python\ndef g(x):\n    return helper(x) + 1\n```\n```text\nnot code\n```")
    p = extract_program(text, prompt, "g")
    assert p.ok
    ns: dict = {}
    exec(p.program, ns)
    assert ns["g"](3) == 7


def test_extract_strips_example_usage():
    text = "```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\nassert add(1, 1) == 3\n```"
    p = extract_program(text, PROMPT, "add")
    assert p.ok and "print(" not in p.program and "assert" not in p.program


@pytest.mark.parametrize("text, reason", [
    ("I cannot solve this.", "no ```python code block"),
    ("```python\ndef add(a, b)\n    return a + b\n```", "SyntaxError"),
    ("```python\ndef plus(a, b):\n    return a + b\n```", "does not define `add`"),
    ("", "empty"),
])
def test_extract_failures_are_reasons_not_exceptions(text, reason):
    p = extract_program(text, PROMPT, "add")
    assert not p.ok and reason in p.error


# ----------------------------------------------------------------------- repeated

def test_repeated_one_call_for_n_and_invalid_candidates_kept(tmp_path):
    store = RunStore(tmp_path, "r")
    budget = Budget()
    model = ScriptedModel([GOOD, "no code here", BAD], budget=budget)
    cands = STRATEGIES["repeated"](make_task(), model, 3, store=store)
    assert [c.id for c in cands] == ["rep0", "rep1", "rep2"]
    assert [c.valid for c in cands] == [True, False, True]
    assert "no ```python code block" in cands[1].error
    assert cands[0].origin.strategy == "repeated" and cands[0].origin.model == "scripted"
    assert budget.spent.calls == 1 and len(model.calls) == 1
    recs = list(read_jsonl(store.trajectory_path("T/0", "repeated")))
    assert len(recs) == 1 and recs[0]["responses"][1] == "no code here"


def test_unknown_strategy_is_a_user_error():
    with pytest.raises(UserError, match="plansearch"):
        get_strategy("beam")


# ----------------------------------------------------------------------- self-debug feedback

def _cand(cid="c", valid=True, error=None):
    return Candidate(id=cid, task_id="T/0", content="def add(a, b):\n    return a - b\n",
                     valid=valid, error=error, origin=Origin(strategy="x"))


def test_feedback_lists_failed_tests_with_actual_and_expected():
    task = make_task()
    ev = Evidence(task_id="T/0", candidate_ids=["c"], tests=task.public_tests,
                  outcomes={"c": {"public_0": "fail", "public_1": "pass"}},
                  messages={"c": {"public_0": "add(1, 2) returned -1, expected 3"}})
    msg = self_debug.feedback(task, _cand(), ev)
    assert "assert add(1, 2) == 3" in msg and "add(1, 2) returned -1, expected 3" in msg
    assert "1 of the 2" in msg and "add(2, 2)" not in msg


def test_feedback_none_when_all_public_tests_pass_and_reasons_otherwise():
    task = make_task()
    ok = Evidence(task_id="T/0", outcomes={"c": {"public_0": "pass", "public_1": "pass"}})
    assert self_debug.feedback(task, _cand(), ok) is None
    load = Evidence(task_id="T/0", outcomes={"c": {"public_0": "error", "public_1": "error"}},
                    load_errors={"c": "NameError: name 'x' is not defined"})
    assert "NameError: name 'x' is not defined" in self_debug.feedback(task, _cand(), load)
    bad = _cand(valid=False, error="the code does not define `add`")
    assert "does not define `add`" in self_debug.feedback(task, bad, None)


# ----------------------------------------------------------------------- self-debug end to end

def test_self_debug_repairs_failing_sample_and_stops_when_public_tests_pass(runner):
    model = ScriptedModel([BAD, GOOD, GOOD])  # two samples, then one repair of the bad one
    cands = self_debug.generate(make_task(), model, 2, runner=runner, rounds=3, workers=1)
    assert [c.id for c in cands] == ["dbg0", "dbg0r1", "dbg1"]
    fixed = cands[1]
    assert fixed.valid and fixed.origin.round == 1 and fixed.origin.parent == "dbg0"
    assert fixed.origin.strategy == "self_debug"
    assert model.remaining == 0 and len(model.calls) == 2
    repair_prompt = model.calls[1]
    assert repair_prompt[-2]["role"] == "assistant" and "a - b" in repair_prompt[-2]["content"]
    assert "add(1, 2) returned -1, expected 3" in repair_prompt[-1]["content"]


def test_self_debug_runs_at_most_r_rounds_and_repairs_parse_failures(runner):
    model = ScriptedModel(["no code at all", BAD, BAD])
    cands = self_debug.generate(make_task(), model, 1, runner=runner, rounds=2, workers=1)
    assert [(c.id, c.valid, c.origin.round) for c in cands] == [
        ("dbg0", False, 0), ("dbg0r1", True, 1), ("dbg0r2", True, 2)]
    assert "has no ```python code block" in model.calls[1][-1]["content"]
    assert model.calls[1][-2]["content"] == "no code at all"
    assert model.remaining == 0


def test_self_debug_without_public_tests_is_repeated_sampling(runner):
    model = ScriptedModel([BAD])
    cands = self_debug.generate(make_task(public=False), model, 1, runner=runner, rounds=3)
    assert [c.id for c in cands] == ["dbg0"]


def test_self_debug_stops_cleanly_when_budget_is_spent(runner):
    model = ScriptedModel([BAD, BAD, GOOD, GOOD], budget=Budget(calls=2))
    cands = self_debug.generate(make_task(), model, 2, runner=runner, rounds=3, workers=1)
    # call 1: both samples; call 2: first repair of dbg0; then every call is refused
    assert [c.id for c in cands] == ["dbg0", "dbg0r1", "dbg1"]


def test_repeated_with_rounds_uses_self_debug(runner):
    model = ScriptedModel([BAD, GOOD])
    cands = STRATEGIES["repeated"](make_task(), model, 1, runner=runner, rounds=1)
    assert [c.id for c in cands] == ["rep0", "rep0r1"]
    assert cands[1].origin.strategy == "repeated"


# ----------------------------------------------------------------------- plansearch

def test_plansearch_observations_then_plans_then_code(tmp_path):
    seen_plans: list[str] = []

    def answer(messages):
        prompt = messages[-1]["content"]
        if "observations about this problem" in prompt:
            return "Observations:\n- addition is commutative\n2. integers never overflow\n* plain text"
        if "step-by-step plan" in prompt:
            used = [o for o in ("commutative", "overflow", "plain text") if o in prompt]
            plan = "PLAN[" + ",".join(used) + "]"
            seen_plans.append(plan)
            return plan
        assert "Implement it by following this plan" in prompt
        plan = prompt.split("following this plan:")[1].split("Keep the name")[0].strip()
        return f"```python\ndef add(a, b):\n    # {plan}\n    return a + b\n```"

    store = RunStore(tmp_path, "p")
    model = ScriptedModel(answer)
    cands = plansearch.generate(make_task(), model, 4, rng=random.Random(1), store=store, workers=1)
    assert [c.id for c in cands] == ["plan0", "plan1", "plan2", "plan3"]
    assert all(c.valid and c.origin.strategy == "plansearch" for c in cands)
    assert all(c.origin.plan and c.origin.plan in c.content for c in cands)
    # 3 observations -> 6 combinations of size 1-2; 4 distinct ones sampled
    assert len({c.origin.plan for c in cands}) == 4
    assert len(model.calls) == 1 + 2 * 4
    recs = list(read_jsonl(store.trajectory_path("T/0", "plansearch-2")))
    assert [("plan" in r["messages"][-1]["content"]) for r in recs] == [True, True]
    assert "step-by-step plan" in recs[0]["messages"][-1]["content"]
    assert "Implement it by following this plan" in recs[1]["messages"][-1]["content"]


def test_plansearch_helpers():
    assert plansearch.parse_observations("intro\n- a\n- a\n1) b\n  * c \nnot a bullet") == ["a", "b", "c"]
    combos = plansearch.combinations(["a", "b"], 5, random.Random(0))
    assert len(combos) == 5 and set(combos) == {("a",), ("b",), ("a", "b")}
    assert plansearch.combinations([], 2, random.Random(0)) == [(), ()]
    assert plansearch.observations_wanted(4) == 3 and plansearch.observations_wanted(20) == 6


def test_plansearch_without_observations_still_plans():
    model = ScriptedModel(["nothing useful", "just do it", GOOD])
    cands = plansearch.generate(make_task(), model, 1)
    assert len(cands) == 1 and cands[0].valid and cands[0].origin.plan == "just do it"
    assert "Use the following observation" not in model.calls[1][-1]["content"]


def test_recorded_strategy_run_replays_to_the_same_candidates(tmp_path, runner):
    from assay.agent.models import CallRecorder, ReplayModel

    def answer(messages):
        prompt = messages[-1]["content"]
        if "observations about this problem" in prompt:
            return "- one\n- two"
        if "step-by-step plan" in prompt:
            return "plan using " + ("one" if "- one" in prompt else "") + ("two" if "- two" in prompt else "")
        if "Implement it" in prompt and "onetwo" in prompt:
            return GOOD
        return BAD if "Implement it" in prompt else GOOD  # repairs fix it

    store = RunStore(tmp_path, "live")
    live = ScriptedModel(answer, recorder=CallRecorder(store))
    first = plansearch.generate(make_task(), live, 3, runner=runner, rounds=1, rng=random.Random(3))
    replay = ReplayModel(store.dir)
    again = plansearch.generate(make_task(), replay, 3, runner=runner, rounds=1, rng=random.Random(3))
    assert [(c.id, c.content, c.origin.plan) for c in again] == \
        [(c.id, c.content, c.origin.plan) for c in first]
    assert any(c.origin.round == 1 for c in first)  # the repair calls were replayed too


def test_self_debug_runs_each_round_as_one_batch(runner):
    class Counting:
        def __init__(self):
            self.batches = []

        def evaluate(self, task, candidates, tests, inputs=None):
            self.batches.append([c.id for c in candidates])
            return runner.evaluate(task, candidates, tests, inputs)

    counting = Counting()
    model = ScriptedModel([BAD, BAD, GOOD, GOOD, GOOD])
    cands = self_debug.generate(make_task(), model, 3, runner=counting, rounds=3, workers=2)
    assert counting.batches == [["dbg0", "dbg1", "dbg2"], ["dbg0r1", "dbg1r1"]]
    assert [c.id for c in cands] == ["dbg0", "dbg0r1", "dbg1", "dbg1r1", "dbg2"]
    assert all(c.valid for c in cands)


def test_solve_prompt_for_code_and_prose_statements():
    from assay.agent.strategies._common import solve_messages

    code = solve_messages(make_task())[-1]["content"]
    assert code.startswith("Complete the following Python function") and "```python\nfrom typing" in code
    prose = Task(id="p", statement="Given a list of ints, return the largest.", entry_point="biggest")
    text = solve_messages(prose)[-1]["content"]
    assert "writing a function `biggest`" in text and "```python\nGiven" not in text


def test_plansearch_derived_observation_feeds_the_plan():
    def answer(messages):
        prompt = messages[-1]["content"]
        if "observations about this problem" in prompt:
            return "- only observation"
        if "derive ONE new" in prompt:
            assert "- only observation" in prompt
            return "- derived insight"
        if "step-by-step plan" in prompt:
            assert "- only observation" in prompt and "- derived insight" in prompt
            return "the plan"
        return GOOD

    model = ScriptedModel(answer)
    cands = plansearch.generate(make_task(), model, 1, derive=True)
    assert len(model.calls) == 4 and cands[0].valid and cands[0].origin.plan == "the plan"


def test_repeated_through_litellm_mock_response_carries_cost(tmp_path):
    from assay.agent.models import CallRecorder, LiteLLMModel

    store = RunStore(tmp_path, "l")
    budget = Budget()
    model = LiteLLMModel("openai/gpt-4o-mini", recorder=CallRecorder(store), budget=budget,
                         mock_response=GOOD)
    cands = STRATEGIES["repeated"](make_task(), model, 2, budget=budget)
    assert [c.valid for c in cands] == [True, True]
    assert cands[0].origin.model == "openai/gpt-4o-mini"
    total = cands[0].cost + cands[1].cost
    assert total.calls == 1 and total.usd == pytest.approx(budget.spent.usd) and total.usd > 0
    assert len(list(read_jsonl(store.trajectory_path("T/0", "repeated")))) == 1


def test_self_debug_learns_only_from_trusted_tests(runner):
    task = make_task()
    wrong = Case(id="gen_0", source="assert add(1, 1) == 5", origin="generated", trusted=False)
    task = task.model_copy(update={"public_tests": task.public_tests + [wrong]})
    model = ScriptedModel([GOOD])
    cands = self_debug.generate(task, model, 1, runner=runner, rounds=2)
    assert [c.id for c in cands] == ["dbg0"]  # passes every trusted test: no repair asked
    assert len(model.calls) == 1


def test_self_debug_checks_the_run_budget_before_each_repair(runner):
    from assay.types import Cost

    budget = Budget(calls=1)

    def answer(messages):  # spending that this model does not charge itself (another stage)
        budget.charge(Cost(calls=1))
        return BAD

    model = ScriptedModel(answer)
    cands = self_debug.generate(make_task(), model, 1, runner=runner, rounds=2, budget=budget)
    assert [c.id for c in cands] == ["dbg0"] and len(model.calls) == 1
