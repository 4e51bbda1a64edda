"""Peer-relative CPU limits: a test's limit follows the programs that finished it."""

import pytest

from assay.sandbox.runner import Runner
from assay.types import Candidate, Task
from assay.types import TestCase as TC

TASK = Task(id="ident", statement="def ident(n): ...", entry_point="ident")
TESTS = [TC(id="t1", source="assert ident(1) == 1"), TC(id="t2", source="assert ident(2) == 2")]
FAST = ["def ident(n):\n    return n\n", "def ident(n):\n    return n + 0\n",
        "def ident(n):\n    return int(n)\n", "def ident(n):\n    return 0 + n\n"]


def burner(seconds: float, variant: int = 0) -> str:
    """Correct, but burns `seconds` of CPU on every call (variants differ in their AST)."""
    return ("import time\n\ndef ident(n):\n"
            f"    t = time.process_time() + {variant}\n"
            f"    while time.process_time() + {variant} - t < {seconds}:\n        pass\n    return n\n")


def cands(srcs):
    return [Candidate(id=f"c{i}", task_id=TASK.id, content=s) for i, s in enumerate(srcs)]


@pytest.fixture(scope="module")
def sandbox(local_sandbox):
    return local_sandbox


def test_an_outlier_among_fast_peers_is_cut_at_the_floor(sandbox):
    cs = cands(FAST + [burner(0.6)])
    r = Runner(sandbox, test_timeout_s=3.0, peer_floor_s=0.1)
    ev = r.evaluate(TASK, cs, TESTS)
    assert all(ev.outcomes[c.id] == {"t1": "pass", "t2": "pass"} for c in cs[:4])
    assert ev.outcomes["c4"] == {"t1": "timeout", "t2": "timeout"}
    assert "slowest of the 4 programs that finished it" in ev.messages["c4"]["t1"]
    assert ev.signatures["c4"] == ["!timeout", "!timeout"]
    slow = [s for s in r.stats if s["timeouts"]]
    assert len(slow) == 1 and slow[0]["cpu"] < 0.5  # the floor and one reduced item, not 2 x 0.6 s

    fixed = Runner(sandbox, test_timeout_s=3.0, peer_factor=None).evaluate(TASK, cs, TESTS)
    assert fixed.outcomes["c4"] == {"t1": "pass", "t2": "pass"}


def test_a_test_that_is_slow_for_everyone_gets_the_full_timeout(sandbox):
    cs = cands([burner(0.3, v) for v in range(3)])
    ev = Runner(sandbox, test_timeout_s=3.0, peer_floor_s=0.1).evaluate(TASK, cs, TESTS)
    assert all(row == {"t1": "pass", "t2": "pass"} for row in ev.outcomes.values())


def test_without_a_quorum_of_fast_finishers_the_slow_ones_keep_the_timeout(sandbox):
    cs = cands(FAST[:1] + [burner(0.3, v) for v in range(3)])  # 1 of 4 finished within the floor
    ev = Runner(sandbox, test_timeout_s=3.0, peer_floor_s=0.1).evaluate(TASK, cs, TESTS)
    assert all(row == {"t1": "pass", "t2": "pass"} for row in ev.outcomes.values())


def test_a_single_candidate_is_never_cut(sandbox):
    ev = Runner(sandbox, test_timeout_s=3.0, peer_floor_s=0.1).evaluate(TASK, cands([burner(0.3)]), TESTS)
    assert ev.outcomes["c0"] == {"t1": "pass", "t2": "pass"}


def test_fewer_than_three_fast_finishers_set_no_limit(sandbox):
    """Two fast programs are a quorum of three, but too few to say what a test needs."""
    ev = Runner(sandbox, test_timeout_s=3.0, peer_floor_s=0.1).evaluate(TASK, cands(FAST[:2] + [burner(0.3)]), TESTS)
    assert ev.outcomes["c2"] == {"t1": "pass", "t2": "pass"}


def test_cached_results_read_under_the_limits_of_each_evaluate(sandbox, tmp_path):
    r = Runner(sandbox, test_timeout_s=3.0, peer_floor_s=0.1, cache_dir=tmp_path)
    slow = burner(0.4)
    with_peers = cands(FAST + [slow])
    assert r.evaluate(TASK, with_peers, TESTS).outcomes["c4"]["t1"] == "timeout"
    # alone it is owed the full timeout: the cached timeout under 0.1 s is rerun, and passes
    runs = r.sandbox_runs
    alone = r.evaluate(TASK, cands([slow]), TESTS)
    assert alone.outcomes["c0"] == {"t1": "pass", "t2": "pass"} and r.sandbox_runs > runs
    # with its peers again, the cached pass (0.4 s of CPU) reads as over its 0.1 s limit
    runs = r.sandbox_runs
    again = r.evaluate(TASK, with_peers, TESTS)
    assert again.outcomes["c4"] == {"t1": "timeout", "t2": "timeout"} and r.sandbox_runs == runs
    assert "over its limit of 0.1s" in again.messages["c4"]["t1"]
