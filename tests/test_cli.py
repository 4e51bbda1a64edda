"""The `assay` command line as a user runs it (subprocesses, real sandbox, replayed model)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSAY = [sys.executable, "-m", "assay.cli"]

PROBLEM = """# Sum of absolute values

Write `add_abs(a, b)` returning |a| + |b|.

```python
def add_abs(a: int, b: int) -> int:
    \"\"\"
    >>> add_abs(1, 2)
    3
    \"\"\"
```
"""


def run(args, cwd, env_extra=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(env_extra or {})
    return subprocess.run(ASSAY + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_help_does_not_import_litellm():
    code = "import sys, assay.cli; print('litellm' in sys.modules, 'docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    r = run(["--help"], ROOT)
    assert r.returncode == 0
    for cmd in ("solve", "select", "bench", "sandbox", "runs", "demo"):
        assert cmd in r.stdout


def test_every_option_of_every_command_says_what_it_does():
    import typer

    from assay.cli import app

    def commands(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, f"{path} {name}")

    silent = [f"{path} {p.opts[0]}" for path, cmd in commands(typer.main.get_command(app), "assay")
              for p in cmd.params if p.param_type_name == "option" and p.name != "help" and not p.help]
    assert silent == []


def test_numbers_out_of_range_are_refused_before_any_work(tmp_path):
    # each would otherwise run: 0 samples abstain, -1 rounds or a negative budget pass silently,
    # a negative --shrink builds tensors of size -1, 3 --trials quietly become 5
    prob, cand = "tests/kernels/problems/level1/1_ReLU.py", "tests/kernels/candidates/legit_triton_relu.py"
    kernel_eval = ["kernel", "eval", "--problem", prob, "--candidate", cand, "--device", "cpu"]
    cases = [
        (["solve", "--problem", "p.md", "--samples", "0"], "'--samples'"),
        (["solve", "--problem", "p.md", "--rounds", "-1"], "'--rounds'"),
        (["solve", "--problem", "p.md", "--max-usd", "-1"], "'--max-usd'"),
        (["bench", "humaneval", "--workers", "0"], "'--workers'"),
        (["select", "--pool", "p.jsonl", "--limit", "0"], "'--limit'"),
        (["select", "--pool", "p.jsonl", "--timeout", "0"], "--timeout must be positive, not 0"),
        (["kernel", "--problem", prob, "--model", "m", "--rounds", "0"], "'--rounds'"),
        (["bench", "kernelbench", "--level", "0"], "'--level'"),
        ([*kernel_eval, "--shrink", "-1"], "'--shrink'"),
        ([*kernel_eval, "--tolerance", "-1"], "'--tolerance'"),
        ([*kernel_eval, "--trials", "3"], "'--trials'"),
        (["solve", "--problem", "p.md", "--samples", "many"], "'--samples'"),
        (["solve", "--problem", "p.md", "--bogus"], "No such option: --bogus"),
        (["solve"], "Missing option '--problem'"),
    ]
    for args, said in cases:
        r = run(args, ROOT, {"ASSAY_RUNS_DIR": str(tmp_path / "runs")}, timeout=60)
        assert r.returncode == 2 and said in r.stderr, (args, r.returncode, r.stdout, r.stderr)
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_says_what_was_kept_and_exits_130(tmp_path):
    import signal
    import time

    from procs import procs_naming

    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    # Ctrl-C as a terminal delivers it: a shell's background job (CI started with `&`) inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt
    p = subprocess.Popen(ASSAY + ["sandbox", "run", "--timeout", "60", "--", "sleep", "30.25"], cwd=tmp_path,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    def sleeping():  # the sandboxed command itself, not assay's command line that names it
        return [pid for pid, line in procs_naming("30.25").items() if line.startswith(b"sleep\x00")]

    deadline = time.monotonic() + 60
    while not sleeping() and time.monotonic() < deadline:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert err.endswith("assay: interrupted; finished stages are kept in the run directory.\n"), err
    assert sleeping() == []


def _recording(path: Path, samples: list[str], tests: str) -> Path:
    rows = [
        {"task_id": "problem", "trajectory": "self_debug", "prompt_contains": "Complete the following",
         "responses": samples},
        {"task_id": "problem", "trajectory": "testgen", "responses": [tests]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_solve_with_a_replayed_model_prints_the_chosen_program(tmp_path):
    (tmp_path / "problem.md").write_text(PROBLEM)
    rec = _recording(tmp_path / "rec.jsonl", [
        "```python\ndef add_abs(a, b):\n    return a + b\n```",
        "```python\ndef add_abs(a, b):\n    return abs(a) + abs(b)\n```",
        "```python\ndef add_abs(a, b):\n    return abs(a) + abs(b)  # same behaviour\n```",
    ], "```python\nassert add_abs(-1, -1) == 2\nassert add_abs(3, -4) == 7\n```")
    r = run(["solve", "--problem", "problem.md", "--model", f"replay:{rec}", "--samples", "3", "--rounds", "0",
             "--selector", "public|dedup|codet"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "abs(a) + abs(b)" in r.stdout and "chosen" in r.stdout
    assert "(1 trusted)" in r.stdout  # the >>> example inside the Markdown code block
    results = list((tmp_path / "runs").glob("solve-*/problem/result.py"))
    assert len(results) == 1 and "abs(a)" in results[0].read_text()
    # the same command again resumes from the run store (the recording is used up, so a
    # second generation would fail)
    r2 = run(["solve", "--problem", "problem.md", "--model", f"replay:{rec}", "--samples", "3", "--rounds", "0",
              "--selector", "public|dedup|codet"], tmp_path)
    assert r2.returncode == 0, r2.stderr


def test_user_errors_are_one_sentence_and_exit_2(tmp_path):
    (tmp_path / "problem.md").write_text(PROBLEM)
    cases = [
        (["solve", "--problem", "problem.md"], "needs a model"),
        (["solve", "--problem", "missing.md", "--model", "x/y"], "does not exist"),
        (["solve", "--problem", "problem.md", "--model", "x/y", "--selector", "public|nope"], "unknown selector 'nope'"),
        (["solve", "--problem", "problem.md", "--model", "x/y", "--strategy", "magic"], "unknown strategy"),
        (["solve", "--problem", "problem.md", "--selector", "tournament"], "needs a model"),
        (["runs", "show", "nothing-here"], "no run"),
    ]
    for args, words in cases:
        r = run(args, tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_demo_runs_offline_and_picks_correct_programs(tmp_path):
    r = run(["demo", "--quiet"], tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    result = json.loads(next((tmp_path / "runs" / "demo-results").glob("*.json")).read_text())
    assert result["model_source"].startswith("ReplayModel")
    s = result["summary"]
    assert s["tasks"] == 5
    # Hand-written samples: 2/3, 2/3, 1/3, 2/3, 3/3 correct in round 0 (HumanEval/29's substring
    # variant passes HumanEval's own hidden test), so zero-shot pass@1 is 10/15.
    assert abs(s["zero_shot_pass1"] - 10 / 15) < 1e-9
    assert s["selected_pass1"] == 1.0


def test_problem_file_examples_and_entry_point(tmp_path):
    from assay.errors import UserError
    from assay.problem import load_problem

    p = tmp_path / "p.md"
    p.write_text(PROBLEM + "\n```python\nassert add_abs(-2, 0) == 2\n```\n")
    task = load_problem(p)
    assert task.entry_point == "add_abs"
    assert sorted(t.source for t in task.public_tests) == sorted(
        ["assert add_abs(1, 2) == 3", "assert add_abs(-2, 0) == 2"])
    assert all(t.trusted and t.origin == "public" for t in task.public_tests)
    (tmp_path / "none.md").write_text("Write something clever.\n")
    import pytest

    with pytest.raises(UserError, match="no function signature"):
        load_problem(tmp_path / "none.md")


def test_runs_list_and_show_after_a_solve(tmp_path):
    (tmp_path / "problem.md").write_text(PROBLEM)
    rec = _recording(tmp_path / "rec.jsonl", ["```python\ndef add_abs(a, b):\n    return abs(a) + abs(b)\n```"],
                     "```python\nassert add_abs(-1, -1) == 2\n```")
    r = run(["solve", "--problem", "problem.md", "--model", f"replay:{rec}", "--samples", "1", "--rounds", "0",
             "--run-id", "mine"], tmp_path)
    assert r.returncode == 0, r.stderr
    listed = run(["runs", "list"], tmp_path, env_extra={"COLUMNS": "200"})
    assert listed.returncode == 0 and "mine" in listed.stdout
    assert "_exec_cache" not in listed.stdout  # the execution cache is not a run
    shown = run(["runs", "show", "mine", "problem"], tmp_path, env_extra={"COLUMNS": "200"})
    assert shown.returncode == 0 and "abs(a) + abs(b)" in shown.stdout and "chosen" in shown.stdout
