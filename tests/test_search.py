"""The whole function pipeline (generate -> tests -> verify -> select) with a ScriptedModel,
run inside the real local sandbox, plus resume from the run store."""

import json

import pytest

from assay.agent.models import CallRecorder, ScriptedModel
from assay.sandbox.base import make_sandbox
from assay.sandbox.runner import Runner
from assay.search import SearchConfig, run_search
from assay.store import RunStore
from assay.types import Budget, Task

PROMPT = '''def add_abs(a: int, b: int) -> int:
    """Return |a| + |b|.
    >>> add_abs(1, 2)
    3
    """
'''

RIGHT = "```python\ndef add_abs(a, b):\n    return abs(a) + abs(b)\n```"
RIGHT_TOO = "```python\ndef add_abs(a, b):\n    return (a if a > 0 else -a) + (b if b > 0 else -b)\n```"
WRONG_PASSES_EXAMPLE = "```python\ndef add_abs(a, b):\n    return a + b\n```"
WRONG_FAILS_EXAMPLE = "```python\ndef add_abs(a, b):\n    return a - b\n```"
NOT_CODE = "I am not sure how to do this."
TESTS = "```python\nassert add_abs(-1, 2) == 3\nassert add_abs(0, -5) == 5\nassert add_abs(2, 2) == 4\n```"


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    sandbox = make_sandbox("local")
    r = Runner(sandbox, test_timeout_s=2.0, workers=2, cache_dir=tmp_path_factory.mktemp("cache"))
    yield r
    sandbox.close()


def test_pipeline_repairs_and_selects_the_right_program(tmp_path, runner):
    task = Task(id="demo/add_abs", statement=PROMPT, entry_point="add_abs")
    # 5 samples in one call; repairs run in parallel threads, so answers depend on the prompt:
    # the sample failing the docstring example (dbg3) is repaired to RIGHT_TOO, the unparsable one
    # (dbg4) to RIGHT; then the model-written tests.
    first = iter([WRONG_PASSES_EXAMPLE, RIGHT, WRONG_PASSES_EXAMPLE, WRONG_FAILS_EXAMPLE, NOT_CODE])

    def answer(messages):
        last = messages[-1]["content"]
        if "test cases" in last:
            return TESTS
        if len(messages) > 2:
            return RIGHT if "could not be used" in last else RIGHT_TOO
        return next(first)

    store = RunStore(tmp_path, "r1")
    budget = Budget()
    model = ScriptedModel(answer, recorder=CallRecorder(store), budget=budget)
    cfg = SearchConfig(strategy="self_debug", samples=5, rounds=1, selector="public|dedup|cluster")
    out = run_search(task, cfg, model=model, runner=runner, store=store, budget=budget)

    ids = [c.id for c in out.candidates]
    assert ids == ["dbg0", "dbg1", "dbg2", "dbg3", "dbg3r1", "dbg4", "dbg4r1"]
    invalid = [c for c in out.candidates if not c.valid]
    assert [c.id for c in invalid] == ["dbg4"] and invalid[0].error  # parse failure recorded, no crash
    # the repair prompt fed back the failing example with expected vs actual
    repair = next(m[-1]["content"] for m in model.calls if len(m) > 2 and "could not be used" not in m[-1]["content"])
    assert "add_abs(1, 2)" in repair and "-1" in repair
    # Two behaviours pass the example: a+b (dbg0, dbg2) and |a|+|b| (dbg1, dbg3r1, dbg4r1).
    assert out.selection.chosen in {"dbg1", "dbg3r1", "dbg4r1"}
    assert any(t.trusted for t in out.tests) and any(not t.trusted for t in out.tests)
    assert budget.spent.calls == 4  # samples, two repairs, tests
    tdir = store.task_dir(task.id)
    assert (tdir / "result.py").read_text().strip().startswith("def add_abs")
    traj = (tdir / "trajectories" / "self_debug.jsonl").read_text().splitlines()
    assert len(traj) == 1 and len(json.loads(traj[0])["responses"]) == 5

    # Re-running the same search resumes: no model call is made at all.
    again = run_search(task, cfg, model=ScriptedModel([]), runner=runner, store=store, budget=Budget())
    assert again.selection.chosen == out.selection.chosen
    assert [c.id for c in again.candidates] == ids


def test_budget_stops_generation_cleanly(tmp_path, runner):
    task = Task(id="demo/add_abs", statement=PROMPT, entry_point="add_abs")
    budget = Budget(calls=0)
    out = run_search(task, SearchConfig(strategy="repeated", samples=3, rounds=0, selector="public|dedup|cluster"),
                     model=ScriptedModel([RIGHT] * 3), runner=runner, store=RunStore(tmp_path, "r2"), budget=budget)
    assert out.candidates == []
    assert out.selection.chosen is None and out.selection.abstained
