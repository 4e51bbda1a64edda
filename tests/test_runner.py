import json
from pathlib import Path

import pytest

from assay.sandbox.base import make_sandbox
from assay.sandbox.runner import Runner
from assay.types import Budget, Candidate, Task
from assay.types import TestCase as TC

T = 0.3  # per-test timeout in these tests


class CountingSandbox:
    """Wraps a real sandbox; records every run and how many candidates its job held."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.jobs: list[int] = []

    def run(self, cmd, workspace, limits, stdin=None):
        job = json.loads((Path(workspace) / "job.json").read_text())
        self.jobs.append(len(job["candidates"]))
        return self.inner.run(cmd, workspace, limits, stdin)

    def python(self):
        return self.inner.python()

    def close(self):
        self.inner.close()


@pytest.fixture(scope="module")
def sandbox(local_sandbox):
    return local_sandbox


def cand(cid, src):
    return Candidate(id=cid, task_id="add", content=src)


TASK = Task(id="add", statement="def add(a, b): ...", entry_point="add")
TESTS = [
    TC(id="t1", source="assert add(1, 2) == 3"),
    TC(id="t2", source="assert add(2, 2) == 4"),
    TC(id="t3", source="assert add(0, 0) == 0, 'zero'"),
    TC(id="t4", source="def check(candidate):\n    assert candidate(1, 1) == 2\n"
                            "    assert candidate(5, 5) == 10\ncheck(candidate)\n"),
]
PROGS = {
    "ok": "def add(a, b):\n    return a + b\n",
    "ok_same": "def add(a, b):\n\n    # same program, other formatting\n    return a+b\n",
    "ok_equiv": "def add(a, b):\n    return sum([b, a])\n",
    "minus": "def add(a, b):\n    return a - b\n",
    "raises": "def add(a, b):\n    raise ValueError('nope')\n",
    "hangs": "def add(a, b):\n    while True:\n        pass\n",
    "syntax": "def add(a, b)\n    return a + b\n",
    "import_error": "import not_a_module_xyz\ndef add(a, b):\n    return a + b\n",
    "no_entry": "def plus(a, b):\n    return a + b\n",
    "main_guard": "if __name__ == '__main__':\n    def add(a, b):\n        return a + b\n",
    "load_hang": "while True:\n    pass\ndef add(a, b):\n    return a + b\n",
}


def test_matrix_exact(sandbox):
    budget = Budget()
    r = Runner(sandbox, test_timeout_s=T, workers=2, budget=budget)
    cands = [cand(k, v) for k, v in PROGS.items()]
    ev = r.evaluate(TASK, cands, TESTS)
    o = ev.outcomes
    allp = {"t1": "pass", "t2": "pass", "t3": "pass", "t4": "pass"}
    assert o["ok"] == o["ok_same"] == o["ok_equiv"] == allp
    assert o["minus"] == {"t1": "fail", "t2": "fail", "t3": "pass", "t4": "fail"}
    assert o["raises"] == {t: "error" for t in allp}
    assert o["hangs"] == {t: "timeout" for t in allp}
    for k in ("syntax", "import_error", "no_entry", "main_guard", "load_hang"):
        assert o[k] == {t: "error" for t in allp}, k
    assert set(ev.load_errors) == {"syntax", "import_error", "no_entry", "main_guard", "load_hang"}
    assert ev.load_errors["syntax"].startswith("SyntaxError")
    assert "ModuleNotFoundError" in ev.load_errors["import_error"]
    assert "not defined" in ev.load_errors["no_entry"]
    assert "timed out while loading" in ev.load_errors["load_hang"]
    # messages feed self-debug
    assert ev.messages["minus"]["t1"] == "add(1, 2) returned -1, expected 3"
    assert ev.messages["minus"]["t4"] == "assertion failed: assert candidate(1, 1) == 2"
    assert ev.messages["raises"]["t2"] == "add(2, 2) raised ValueError: nope"
    assert "timed out" in ev.messages["hangs"]["t1"]
    assert "ok" not in ev.messages
    # inputs come from the tests; signatures are the outputs on them
    assert ev.inputs == ["1, 2", "2, 2", "0, 0", "1, 1", "5, 5"]
    assert ev.signatures["ok"] == ["3", "4", "0", "2", "10"]
    assert ev.signatures["minus"] == ["-1", "0", "0", "0", "0"]
    assert ev.signatures["raises"] == ["!ValueError"] * 5
    assert ev.signatures["hangs"] == ["!timeout"] * 5
    assert ev.signatures["syntax"] == ["!LoadError"] * 5
    assert budget.sandbox_runs == r.sandbox_runs >= 1


def test_signatures_equal_for_equivalent_and_differ_otherwise(sandbox):
    r = Runner(sandbox, test_timeout_s=T)
    cands = [cand("a", PROGS["ok"]), cand("b", PROGS["ok_equiv"]), cand("c", PROGS["minus"]),
             cand("d", "def add(a, b):\n    return a + b if a != 7 else 0\n")]
    inputs = ["1, 2", "7, 1", "'x', 'y'", "[1], [2]"]
    out = r.outputs(TASK, cands, inputs)
    assert out["a"] == ["3", "8", "'xy'", "[1, 2]"]
    assert out["b"][:2] == ["3", "8"] and out["b"][2] == "!TypeError"  # sum() refuses str
    assert out["c"][0] == "-1"
    assert out["d"] == ["3", "0", "'xy'", "[1, 2]"]
    ev = r.evaluate(TASK, cands[:2] + [cand("a2", PROGS["ok_same"])], TESTS)
    assert ev.signatures["a"] == ev.signatures["b"] == ev.signatures["a2"]


def test_cache_hit_runs_nothing(sandbox, tmp_path):
    counting = CountingSandbox(sandbox)
    cands = [cand(k, PROGS[k]) for k in ("ok", "minus", "raises", "syntax")]
    r1 = Runner(counting, test_timeout_s=T, cache_dir=tmp_path)
    ev1 = r1.evaluate(TASK, cands, TESTS)
    assert counting.jobs
    n = len(counting.jobs)
    r2 = Runner(counting, test_timeout_s=T, cache_dir=tmp_path)  # fresh runner, same disk cache
    ev2 = r2.evaluate(TASK, cands, TESTS)
    assert len(counting.jobs) == n and r2.sandbox_runs == 0
    assert ev2 == ev1
    # one new test: only that runs, for the candidates that loaded (3 of 4)
    more = TESTS + [TC(id="t5", source="assert add(10, -10) == 0")]
    ev3 = r2.evaluate(TASK, cands, more)
    assert sum(counting.jobs[n:]) == 3
    assert ev3.outcomes["ok"]["t5"] == "pass" and ev3.outcomes["minus"]["t5"] == "fail"
    # another timeout is another configuration: not a cache hit
    Runner(counting, test_timeout_s=T * 2, cache_dir=tmp_path).evaluate(TASK, cands[:1], TESTS)
    assert sum(counting.jobs[n:]) == 4


def test_identical_candidates_and_tests_run_once(sandbox):
    counting = CountingSandbox(sandbox)
    r = Runner(counting, test_timeout_s=T, workers=2)
    cands = [cand(f"c{i}", PROGS["ok"] if i % 2 else PROGS["ok_same"]) for i in range(6)]
    tests = TESTS + [TC(id="dup", source="assert add(1,2)==3")]
    ev = r.evaluate(TASK, cands, tests)
    assert sum(counting.jobs) == 1
    assert all(ev.outcomes[c.id]["dup"] == "pass" for c in cands)


def test_swallowed_alarm_is_timeout_and_later_tests_run(sandbox):
    src = ("def add(a, b):\n"
           "    if a == 2:\n"
           "        while True:\n"
           "            try:\n"
           "                while True:\n"
           "                    pass\n"
           "            except:\n"
           "                pass\n"
           "    return a + b\n")
    r = Runner(sandbox, test_timeout_s=T)
    ev = r.evaluate(TASK, [cand("swallow", src)], TESTS)
    assert ev.outcomes["swallow"] == {"t1": "pass", "t2": "timeout", "t3": "pass", "t4": "pass"}
    assert ev.signatures["swallow"] == ["3", "!timeout", "0", "2", "10"]


def test_returning_after_swallowing_the_alarm_is_still_timeout(sandbox):
    src = ("import time\n"
           "def add(a, b):\n"
           "    try:\n"
           "        time.sleep(100)\n"
           "    except BaseException:\n"
           "        return a + b\n")
    ev = Runner(sandbox, test_timeout_s=T).evaluate(TASK, [cand("c", src)], TESTS[:1])
    assert ev.outcomes["c"] == {"t1": "timeout"}


def test_noisy_exiting_and_stdin_reading_candidates(sandbox):
    progs = {
        "prints_10mb": "import sys\nprint('x' * 10_000_000)\ndef add(a, b):\n"
                       "    sys.stdout.write('y' * 10_000_000)\n    print('z', file=sys.stderr)\n    return a + b\n",
        "os_exit": "import os\ndef add(a, b):\n    if a == 2:\n        os._exit(0)\n    return a + b\n",
        "exit_call": "def add(a, b):\n    if a == 2:\n        exit(1)\n    return a + b\n",
        "reads_stdin": "import sys\ndef add(a, b):\n    data = sys.stdin.read()\n    return a + b + len(data)\n",
        "input_at_import": "n = int(input())\ndef add(a, b):\n    return a + b\n",
        "asserts_at_top": "def add(a, b):\n    return a + b\nassert add(1, 1) == 2\n",
        "failing_top_assert": "def add(a, b):\n    return a + b\nassert add(1, 1) == 3\n",
    }
    r = Runner(sandbox, test_timeout_s=1.0)
    ev = r.evaluate(TASK, [cand(k, v) for k, v in progs.items()], TESTS)
    o = ev.outcomes
    assert o["prints_10mb"] == {t: "pass" for t in ("t1", "t2", "t3", "t4")}
    assert o["os_exit"] == {"t1": "pass", "t2": "error", "t3": "pass", "t4": "pass"}
    assert ev.signatures["os_exit"][1] == "!ProcessDied"
    assert o["exit_call"]["t2"] == "error" and ev.signatures["exit_call"][1] == "!SystemExit"
    assert o["reads_stdin"]["t1"] == "pass"
    assert "EOFError" in ev.load_errors["input_at_import"]
    assert o["asserts_at_top"]["t1"] == "pass"
    assert "AssertionError" in ev.load_errors["failing_top_assert"]


def test_hostile_and_weird_candidates(sandbox):
    progs = {
        "kills_builtins": "import builtins, signal\ndel builtins.repr\nbuiltins.len = None\n"
                          "signal.setitimer = None\nsignal.signal = None\n"
                          "def add(a, b):\n    return a + b\n",
        "bad_repr": "class X:\n    def __repr__(self):\n        raise RuntimeError('no')\n"
                    "def add(a, b):\n    return X()\n",
        "long_output": "def add(a, b):\n    return list(range(a * 1000))\n",
        "recursion": "def add(a, b):\n    return add(a, b)\n",
        "float": "def add(a, b):\n    return (a + b) / 1.0 + 0.1 - 0.1\n",
        "memory_hog": "def add(a, b):\n    x = bytearray(4 << 30)\n    return a + b\n",
    }
    r = Runner(sandbox, test_timeout_s=1.0, memory_mb=512)
    ev = r.evaluate(TASK, [cand(k, v) for k, v in progs.items()], TESTS)
    assert ev.outcomes["kills_builtins"] == {t: "pass" for t in ("t1", "t2", "t3", "t4")}
    assert ev.signatures["kills_builtins"] == ["3", "4", "0", "2", "10"]
    assert ev.signatures["bad_repr"] == ["!ReprError"] * 5
    long = ev.signatures["long_output"]
    assert len(long[0]) == 300 and long[0].startswith("[0, 1, 2")
    assert long[0] != long[1]  # cut reprs keep a hash of the whole
    assert ev.signatures["recursion"] == ["!RecursionError"] * 5
    assert ev.outcomes["float"]["t1"] == "pass" and ev.signatures["float"][0] == "3.0"
    assert ev.signatures["memory_hog"] == ["!MemoryError"] * 5


def test_hanging_candidate_is_cheap_but_fast_tests_still_pass(sandbox):
    # hangs on negative inputs only; the fast tests after several timeouts must still pass
    src = "def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n"
    tests = [TC(id=f"neg{i}", source=f"assert add(-{i}, 0) == -{i}") for i in range(1, 5)]
    tests += [TC(id=f"pos{i}", source=f"assert add({i}, 0) == {i}") for i in range(1, 5)]
    r = Runner(sandbox, test_timeout_s=0.5)
    ev = r.evaluate(TASK, [cand("c", src)], tests)
    assert [ev.outcomes["c"][t.id] for t in tests] == ["timeout"] * 4 + ["pass"] * 4
    # after the first timeout the rest get the reduced timeout: 4 hangs cost ~0.56 s of CPU, not 2 s
    assert "after 0.5s" in ev.messages["c"]["neg1"]
    assert all("after 0.02s" in ev.messages["c"][f"neg{i}"] for i in (2, 3, 4))


def test_invalid_candidate_and_task_errors(sandbox):
    r = Runner(sandbox, test_timeout_s=T)
    bad = Candidate(id="x", task_id="add", content="", valid=False, error="no code block in the reply")
    ev = r.evaluate(TASK, [bad], TESTS[:1])
    assert ev.outcomes["x"] == {"t1": "error"} and ev.load_errors["x"] == "no code block in the reply"
    assert r.sandbox_runs == 0
    from assay.errors import UserError
    with pytest.raises(UserError):
        r.evaluate(Task(id="n", statement=""), [cand("a", PROGS["ok"])], TESTS)


def test_tests_that_do_not_compile_are_errors(sandbox):
    tests = [TC(id="yield", source="assert add(1, 2) == (yield)"),
             TC(id="ret", source="return add(1, 2)"),
             TC(id="ok", source="assert add(1, 2) == 3")]
    ev = Runner(sandbox, test_timeout_s=T).evaluate(TASK, [cand("ok", PROGS["ok"])], tests)
    assert ev.outcomes["ok"] == {"yield": "error", "ret": "error", "ok": "pass"}
    assert "SyntaxError" in ev.messages["ok"]["yield"] and "SyntaxError" in ev.messages["ok"]["ret"]


def test_evaluate_many_batches_tasks_together_and_explicit_inputs(sandbox):
    counting = CountingSandbox(sandbox)
    r = Runner(counting, test_timeout_s=T, workers=1)
    mul = Task(id="mul", statement="", entry_point="mul")
    mul_progs = [cand("m1", "def mul(a, b):\n    return a * b\n"), cand("m2", "def mul(a, b):\n    return a + b\n")]
    mul_tests = [TC(id="m", source="assert mul(3, 3) == 9")]
    ev_add, ev_mul = r.evaluate_many([
        (TASK, [cand("ok", PROGS["ok"]), cand("minus", PROGS["minus"])], TESTS[:1], None),
        (mul, mul_progs, mul_tests, ["2, 2", "0, 5"]),
    ])
    assert counting.jobs == [4]  # one sandbox run for both tasks
    assert ev_add.outcomes == {"ok": {"t1": "pass"}, "minus": {"t1": "fail"}}
    assert ev_mul.outcomes == {"m1": {"m": "pass"}, "m2": {"m": "fail"}}
    assert ev_mul.inputs == ["2, 2", "0, 5"]
    assert ev_mul.signatures == {"m1": ["4", "0"], "m2": ["4", "5"]}


def test_message_of_a_non_equality_check(sandbox):
    tests = [TC(id="close", source="assert abs(add(1, 2) - 4) < 0.5")]
    ev = Runner(sandbox, test_timeout_s=T).evaluate(TASK, [cand("ok", PROGS["ok"])], tests)
    assert ev.outcomes["ok"] == {"close": "fail"}
    assert ev.messages["ok"]["close"] == "add(1, 2) returned 3; failed: assert abs(add(1, 2) - 4) < 0.5"


def test_a_module_one_candidate_leaves_in_the_workspace_is_not_what_a_later_one_imports(sandbox):
    planter = ("with open('assay_planted.py', 'w') as f:\n    f.write('def add(a, b):\\n    return 42\\n')\n"
               "def add(a, b):\n    return a + b\n")
    victim = ("import os\n"
              "def add(a, b):\n"
              "    if not os.path.exists('assay_planted.py'):\n        return 'not planted'\n"
              "    try:\n        import assay_planted\n    except ImportError:\n        return a + b\n"
              "    return assay_planted.add(a, b)\n")
    counting = CountingSandbox(sandbox)
    ev = Runner(counting, test_timeout_s=T, workers=1).evaluate(
        TASK, [cand("planter", planter), cand("victim", victim)], TESTS[:1])
    assert counting.jobs == [2]  # one batch: one workspace for both
    assert ev.signatures["victim"] == ["3"] and ev.outcomes["victim"] == {"t1": "pass"}


def test_candidate_deleting_exception_builtins_still_reports(sandbox):
    src = "import builtins\ndel builtins.SyntaxError, builtins.AssertionError\nraise ValueError('boom')\n"
    ev = Runner(sandbox, test_timeout_s=T).evaluate(TASK, [cand("x", src)], TESTS[:1])
    assert ev.load_errors["x"] == "ValueError: boom"


@pytest.mark.docker
def test_docker_backend_gives_the_same_matrix(docker_image):
    sb = make_sandbox("docker", image=docker_image)
    try:
        keys = ("ok", "minus", "raises", "hangs", "syntax")
        ev = Runner(sb, test_timeout_s=T).evaluate(TASK, [cand(k, PROGS[k]) for k in keys], TESTS)
    finally:
        sb.close()
    assert ev.outcomes["ok"] == {t: "pass" for t in ("t1", "t2", "t3", "t4")}
    assert ev.outcomes["minus"] == {"t1": "fail", "t2": "fail", "t3": "pass", "t4": "fail"}
    assert set(ev.outcomes["raises"].values()) == {"error"}
    assert set(ev.outcomes["hangs"].values()) == {"timeout"}
    assert ev.load_errors.keys() == {"syntax"}
    assert ev.signatures["ok"] == ["3", "4", "0", "2", "10"]
