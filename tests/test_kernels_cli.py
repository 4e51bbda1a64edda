"""`assay kernel eval` and `assay bench kernelbench` as a user runs them (subprocesses)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
K = ROOT / "tests" / "kernels"
RELU = str(K / "problems" / "level1" / "1_ReLU.py")


def run(args, *, pre: str = "", timeout: int = 300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    code = f"import sys\n{pre}\nfrom assay.cli import main\nmain(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_help_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, assay.cli; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    r = run(["kernel", "--help"])
    assert r.returncode == 0 and "eval" in r.stdout


def test_gate_rejection_names_the_rule_and_exits_1(tmp_path):
    r = run(["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "cheat_side_stream.py"),
             "--cache-dir", str(tmp_path)])
    assert r.returncode == 1, r.stderr
    assert "GATE" in r.stdout and "[stream-thread]" in r.stdout


def test_without_torch_one_sentence_and_exit_2(tmp_path):
    r = run(["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "legit_triton_relu.py"),
             "--cache-dir", str(tmp_path)], pre="sys.modules['torch'] = None")
    assert r.returncode == 2
    assert "pip install 'assay[kernels]'" in r.stderr and "Traceback" not in r.stderr


def test_bad_problem_path_is_a_user_error(tmp_path):
    r = run(["kernel", "eval", "--problem", str(tmp_path / "x.py"), "--candidate", RELU])
    assert r.returncode == 2 and "does not exist" in r.stderr


needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("triton") is None,
                                 reason="needs torch and triton: pip install -e '.[kernels]'")


@needs_torch
def test_eval_correct_candidate_exits_0(tmp_path):
    out = tmp_path / "v.json"
    r = run(["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "legit_triton_relu.py"),
             "--shrink", "256", "--cache-dir", str(tmp_path), "--json", str(out)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CORRECT" in r.stdout
    assert json.loads(out.read_text())["correct"] is True


@needs_torch
def test_bench_kernelbench_with_given_candidates_writes_fast_p(tmp_path):
    cands = tmp_path / "cands"
    cands.mkdir()
    shutil.copy(K / "candidates" / "legit_triton_relu.py", cands / "1_ReLU.py")  # 2_Scale_Add has none
    res = tmp_path / "results"
    r = run(["bench", "kernelbench", "--problems-dir", str(K / "problems"), "--level", "1", "--candidates",
             str(cands), "--device", "cpu", "--shrink", "256", "--out", str(res), "--cache-dir", str(tmp_path / "c"),
             "--unsafe-no-sandbox"])
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((res / "kernelbench_level1_candidates.json").read_text())
    assert data["summary"]["n"] == 2 and data["summary"]["correct"] == 1
    assert data["summary"]["fast_p"]["0"] == 0.5
    assert [p["status"] for p in data["problems"]] == ["correct", "missing"]
    md = (res / "kernelbench_level1_candidates.md").read_text()
    assert "fast_0" in md and "Command:" in md and "Machine:" in md
