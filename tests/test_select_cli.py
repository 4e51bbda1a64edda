"""`assay select` end to end on the tiny committed pool (real sandbox, real runner)."""

import json
import shutil
from pathlib import Path

import pytest

from assay.cli import main

TINY = Path(__file__).resolve().parents[1] / "examples" / "pools" / "tiny.jsonl"


def _sandbox_args() -> list[str]:
    # the tiny pool is our own hand-written code; without bubblewrap run it unisolated
    return ["--sandbox", "local"] if shutil.which("bwrap") else ["--unsafe-no-sandbox"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("runner-cache")  # shared: each program runs once per module


def run_select(tmp_path, cache, *extra) -> dict:
    out = tmp_path / "out.json"
    main(["select", "--pool", str(TINY), "--json", str(out), "--timeout", "0.5", "--quiet",
          "--cache-dir", str(cache), *_sandbox_args(), *extra])
    return json.loads(out.read_text())


def test_select_vote_exact_numbers(tmp_path, cache):
    r = run_select(tmp_path, cache, "--selector", "vote")
    assert r["selector"] == "vote" and r["tasks"] == 2
    assert r["oracle"] == 1.0
    assert r["baseline_pass1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    # add: c0 and c2 tie on 2 tests (both right); neg: c2 (returns x) fits the wrong test best
    assert r["selected_pass1"] == pytest.approx(0.5)
    assert r["abstained"] == 0 and r["cost_usd"] == 0.0
    assert [(t["task_id"], t["correct"]) for t in r["per_task"]] == [("tiny/add", 1.0), ("tiny/neg", 0.0)]
    assert r["per_task"][0]["chosen"] in ("c0", "c2") and r["per_task"][1]["chosen"] == "c2"


def test_select_public_cluster_uses_prompt_examples_and_shares_ties(tmp_path, cache):
    r = run_select(tmp_path, cache, "--selector", "public|cluster")
    # add: the >>> example keeps c0, c2 (same behaviour) -> 1; neg: clusters {-x} and {x} tie -> 1/2
    assert [t["correct"] for t in r["per_task"]] == [1.0, 0.5]
    assert r["selected_pass1"] == pytest.approx(0.75)
    r2 = run_select(tmp_path, cache, "--selector", "public|cluster", "--no-prompt-examples")
    # without the example, add's clusters {a+b} (c0, c2) and {a-b} (c1): the pair wins anyway
    assert r2["per_task"][0]["correct"] == 1.0


def test_default_selector_is_used_and_recorded(tmp_path, cache):
    from assay.selectors.pipeline import DEFAULT_PIPELINE

    r = run_select(tmp_path, cache)
    assert r["selector"] == DEFAULT_PIPELINE == "public|consensus"
    # add: the example keeps c0, c2 (one behaviour) -> 1; neg: {x} passes both generated tests
    # (one of them wrong), {-x} one: consensus 1 x 3 beats 1 x 2 -> 0
    assert [t["correct"] for t in r["per_task"]] == [1.0, 0.0]
    assert r["selected_pass1"] == 0.5 and r["oracle"] == 1.0


def test_malformed_pool_exits_2_naming_line_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    rows = TINY.read_text().splitlines()
    broken = json.loads(rows[1])
    del broken["entry_point"]
    bad.write_text(rows[0] + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["select", "--pool", str(bad), "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "'entry_point'" in err and "Traceback" not in err


def test_unknown_selector_exits_2_listing_known_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["select", "--pool", str(TINY), "--selector", "public|bogus", "--quiet"])
    assert e.value.code == 2
    assert "known selectors:" in capsys.readouterr().err


def test_select_keeps_its_execution_results_by_default(tmp_path, monkeypatch):
    """Without --cache-dir, results go to <runs_dir>/_exec_cache, so a rerun (e.g. after an
    interruption) executes nothing again."""
    monkeypatch.setenv("ASSAY_RUNS_DIR", str(tmp_path / "runs"))

    def once(name):
        out = tmp_path / name
        main(["select", "--pool", str(TINY), "--json", str(out), "--timeout", "0.5", "--quiet",
              *_sandbox_args()])
        return json.loads(out.read_text())

    first, second = once("a.json"), once("b.json")
    assert first["sandbox"]["runs"] > 0
    assert second["sandbox"]["runs"] == 0
    assert (tmp_path / "runs" / "_exec_cache").is_dir()
    assert second["selected_pass1"] == first["selected_pass1"]


def test_fixed_timeout_gives_a_slow_correct_candidate_the_full_timeout(tmp_path):
    """Three fast wrong candidates and one correct one that burns 0.8 s of CPU per call: by
    default its test's limit follows the fast ones (0.5 s floor) and it times out; with
    --fixed-timeout it gets the full 2 s and wins the vote. Scoring always uses the full limit."""
    slow = ("import time\n\ndef ident(n):\n    t = time.process_time()\n"
            "    while time.process_time() - t < 0.8:\n        pass\n    return n\n")
    task = {"task_id": "slow/ident", "prompt": "def ident(n):\n    \"\"\"Return n.\"\"\"\n",
            "entry_point": "ident",
            "candidates": ["def ident(n):\n    return n + 1\n", "def ident(n):\n    return n + 2\n",
                           "def ident(n):\n    return -n\n", slow],
            "generated_tests": ["assert ident(4) == 4"], "public_tests": [],
            "hidden_test": "def check(candidate):\n    assert candidate(3) == 3\n"}
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps(task) + "\n")

    def run(*extra):
        out = tmp_path / "out.json"
        main(["select", "--pool", str(pool), "--json", str(out), "--timeout", "2", "--quiet",
              "--selector", "vote", "--cache-dir", str(tmp_path / "cache"), *_sandbox_args(), *extra])
        return json.loads(out.read_text())

    r = run()
    assert r["oracle"] == 1.0
    assert r["selected_pass1"] == pytest.approx(0.25)  # all four pass nothing: a 4-way tie
    assert run("--fixed-timeout")["selected_pass1"] == 1.0
