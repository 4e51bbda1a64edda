"""`assay kernel eval` and `assay bench kernelbench` as a user runs them (subprocesses)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
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
    r = run(["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "cheat_torch_compute.py"),
             "--cache-dir", str(tmp_path)])
    assert r.returncode == 1 and "[torch-compute]" in r.stdout and "--allow-op conv2d" in r.stdout, r.stdout


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
def test_eval_names_the_secret_seed_of_its_inputs_and_draws_them_again_from_it(tmp_path):
    args = ["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "wrong_triton_relu.py"),
            "--shrink", "256", "--cache-dir", str(tmp_path)]
    first = run(args)
    assert first.returncode == 1 and "MISMATCH" in first.stdout, first.stdout + first.stderr
    seed = re.search(r"test inputs drawn from seed (\d+) \(assay kernel eval --input-seed \1 draws the same\)",
                     first.stdout)
    assert seed, first.stdout
    again = run([*args, "--input-seed", seed.group(1)])
    assert again.stdout == first.stdout  # the same inputs: the same mismatch, element for element


@needs_torch
def test_bench_kernelbench_with_given_candidates_writes_fast_p(tmp_path):
    cands = tmp_path / "cands"
    cands.mkdir()
    shutil.copy(K / "candidates" / "legit_triton_relu.py", cands / "1_ReLU.py")  # 2_Scale_Add has none
    res = tmp_path / "results"
    args = ["bench", "kernelbench", "--problems-dir", str(K / "problems"), "--level", "1", "--candidates",
            str(cands), "--device", "cpu", "--shrink", "256", "--out", str(res), "--cache-dir", str(tmp_path / "c"),
            "--runs-dir", str(tmp_path / "runs"), "--unsafe-no-sandbox"]
    r = run(args)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((res / "kernelbench_level1_candidates.json").read_text())
    assert data["summary"]["n"] == 2 and data["summary"]["correct"] == 1
    assert data["summary"]["fast_p"]["0"] == 0.5
    assert [p["status"] for p in data["problems"]] == ["correct", "missing"]
    assert data["problems"][1]["message"] == f"no 2_Scale_Add.py in {cands}"
    assert data["complete"] and data["problems_done"] == data["problems_total"] == 2
    assert "level1/1_ReLU: correct\n" in r.stdout and "level1/2_Scale_Add: missing (no 2_Scale_Add.py in" in r.stdout
    assert "fast_0 0.50, fast_1 0.00, fast_1.5 0.00" in r.stdout
    assert "over 2 problems (1 correct); geomean" in " ".join(r.stdout.split())  # none flagged
    md = (res / "kernelbench_level1_candidates.md").read_text()
    assert "fast_0" in md and "Command:" in md and "Under way" not in md
    assert re.search(r"\nMachine: \d+ CPUs \(.+\), .+; \d{4}-\d\d-\d\dT", md), md
    assert "\n| 2 | 1 | 0 | 0.50 | 0.00 | 0.00 | 0.00 | - |\n" in md  # none flagged; no geomean without a timed kernel
    # the same command again reads the verdict back from the run store instead of re-evaluating
    [saved] = (tmp_path / "runs").glob("kernelbench-level1-*/level1__1_ReLU/40_verdict.json")
    before = saved.stat().st_mtime_ns
    r = run(args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert saved.stat().st_mtime_ns == before
    assert json.loads((res / "kernelbench_level1_candidates.json").read_text())["summary"] == data["summary"]
    r = run([*args[:7], str(tmp_path / "nowhere"), *args[8:]])
    assert r.returncode == 2 and "is not a directory" in r.stderr


@needs_torch
def test_bench_kernelbench_shows_what_needs_review(tmp_path):
    # a problem whose output is zero whatever the input: the kernel writing zeros is correct, and
    # the results say why that means little
    cands = tmp_path / "cands"
    cands.mkdir()
    shutil.copy(K / "candidates" / "cheat_constant_output.py", cands / "3_Max_Subtract_ReLU.py")
    res = tmp_path / "results"
    r = run(["bench", "kernelbench", "--problems-dir", str(K / "problems"), "--level", "2", "--ids", "3",
             "--candidates", str(cands), "--device", "cpu", "--out", str(res), "--cache-dir", str(tmp_path / "c"),
             "--runs-dir", str(tmp_path / "runs"), "--unsafe-no-sandbox"])
    assert r.returncode == 0, r.stdout + r.stderr
    [row] = json.loads((res / "kernelbench_level2_candidates.json").read_text())["problems"]
    assert row["correct"] and any("returns a constant would pass" in n for n in row["review"]), row
    assert "level2/3_Max_Subtract_ReLU: correct\n  review: the reference gave the same output" in r.stdout
    assert "over 1 problem (1 correct, 1 of them flagged for review); geomean" in " ".join(r.stdout.split())
    md = (res / "kernelbench_level2_candidates.md").read_text()
    assert "| problem | status | speedup | review |" in md
    assert "| n | correct | flagged for review |" in md and "\n| 1 | 1 | 1 | 1.00 |" in md, md
    assert "| level2/3_Max_Subtract_ReLU | correct | - | the reference gave the same output" in md


@needs_torch
def test_kernel_search_keeps_its_rounds_and_resumes_without_the_model(tmp_path):
    from assay.agent.models import write_recording

    cand = K / "candidates"
    rec = write_recording(tmp_path / "rec.jsonl", [
        {"prompt_contains": "PyTorch reference architecture", "trajectory": "round0",
         "responses": [f"```python\n{(cand / 'wrong_triton_relu.py').read_text()}```"]},
        {"prompt_contains": "not correct (mismatch)", "trajectory": "t0",
         "responses": [f"```python\n{(cand / 'legit_triton_relu.py').read_text()}```"]},
    ])
    args = ["kernel", "--problem", RELU, "--device", "cpu", "--shrink", "256", "--samples", "1", "--rounds", "2",
            "--runs-dir", str(tmp_path / "runs"), "--run-id", "relu", "--cache-dir", str(tmp_path / "c")]
    r = run([*args, "--model", f"replay:{rec}"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MISMATCH r0-t0" in r.stdout and "CORRECT r1-t0" in r.stdout
    task = tmp_path / "runs" / "relu" / "level1__1_ReLU"
    assert (task / "result.py").read_text() == (cand / "legit_triton_relu.py").read_text()
    assert json.loads((task / "50_selection.json").read_text())["chosen"] == "r1-t0"
    assert sorted(p.name for p in (task / "trajectories").iterdir()) == ["round0.jsonl", "t0.jsonl"]
    # resumed with a recording that answers no prompt: any model call would end in exit 2
    useless = write_recording(tmp_path / "useless.jsonl", [{"prompt_contains": "no prompt says this",
                                                            "responses": ["nothing"]}])
    r = run([*args, "--model", f"replay:{useless}"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CORRECT r1-t0" in r.stdout and "best r1-t0" in r.stdout


def _gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


@needs_torch
def test_a_cuda_device_without_a_gpu_is_a_user_error_not_a_candidates_fault(tmp_path):
    if _gpu_visible():
        pytest.skip("a GPU is visible here")
    r = run(["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "legit_triton_relu.py"),
             "--device", "cuda:0", "--cache-dir", str(tmp_path)])
    assert r.returncode == 2 and "names a GPU that torch cannot use here" in r.stderr
    assert "Traceback" not in r.stderr and "RUNTIME" not in r.stdout
    # past the CLI (an evaluator used directly), the worker says it is the machine, not the kernel
    from assay.kernels.evaluate import EvalConfig, KernelEvaluator
    from assay.kernels.problem import load_problem

    ev = KernelEvaluator(EvalConfig(device="cuda:0", cache_dir=str(tmp_path / "c")))
    v = ev.evaluate(load_problem(RELU, shrink=256), (K / "candidates" / "legit_triton_relu.py").read_text())
    assert v.status == "error" and "CUDA is not available" in v.message


def _versions(triton: str, numpy: str) -> str:
    """Code that makes importlib.metadata report these versions (run before assay's CLI)."""
    return ("import importlib.metadata as md\n_real = md.version\n"
            f"md.version = lambda n: {{'triton': {triton!r}, 'numpy': {numpy!r}}}.get(n) or _real(n)\n")


def test_triton_interpreter_that_cannot_loop_under_this_numpy(monkeypatch):
    import importlib.metadata as md

    from assay.errors import UserError
    from assay.kernels.evaluate import require_triton_interpreter

    def with_versions(triton, numpy):
        monkeypatch.setattr(md, "version", lambda n: {"triton": triton, "numpy": numpy}[n])
        require_triton_interpreter()

    with pytest.raises(UserError, match=r"Triton 3\.6\.0's CPU interpreter .* numpy 2\.4\.6"):
        with_versions("3.6.0", "2.4.6")
    for ok in (("3.6.0", "2.3.5"), ("3.7.0", "2.4.6"), ("3.9.0", "2.5.2")):
        with_versions(*ok)  # no error


@needs_torch
def test_eval_of_a_triton_kernel_on_cpu_with_a_broken_interpreter_exits_2(tmp_path):
    args = ["kernel", "eval", "--problem", RELU, "--cache-dir", str(tmp_path), "--candidate"]
    r = run([*args, str(K / "candidates" / "legit_triton_relu.py")], pre=_versions("3.6.0", "2.4.6"))
    assert r.returncode == 2 and "install 'numpy<2.4' or triton>=3.7" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # a C++ kernel does not go through Triton's interpreter: judged as usual
    r = run([*args, str(K / "candidates" / "legit_cpp_relu.py")], pre=_versions("3.6.0", "2.4.6"))
    assert r.returncode == 0, r.stdout + r.stderr


@needs_torch
def test_a_sandbox_where_torch_cannot_use_the_gpu_is_one_sentence_not_a_verdict_per_candidate(tmp_path):
    if _gpu_visible():
        pytest.skip("a GPU is visible here")
    # past the machine check (faked), the sandbox check runs torch on cuda:0 inside the sandbox
    pre = "import assay.kernels.evaluate as E\nE.require_cuda = lambda device: None\n"
    r = run(["kernel", "eval", "--problem", RELU, "--candidate", str(K / "candidates" / "legit_triton_relu.py"),
             "--device", "cuda:0", "--cache-dir", str(tmp_path)], pre=pre)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "torch cannot use cuda:0 where candidates run (local sandbox:" in r.stderr
    assert "Traceback" not in r.stderr and "ERROR" not in r.stdout and "RUNTIME" not in r.stdout


@needs_torch
def test_bench_kernelbench_allow_op_lets_the_op_through_the_gate(tmp_path):
    # KernelBench's published level-2 kernels keep convs in torch; --allow-op is how to compare
    cands = tmp_path / "cands"
    cands.mkdir()
    shutil.copy(K / "candidates" / "cheat_torch_compute.py", cands / "1_ReLU.py")  # F.relu does the work
    args = ["bench", "kernelbench", "--problems-dir", str(K / "problems"), "--level", "1", "--ids", "1",
            "--candidates", str(cands), "--device", "cpu", "--shrink", "256", "--cache-dir", str(tmp_path / "c"),
            "--runs-dir", str(tmp_path / "runs"), "--unsafe-no-sandbox"]
    statuses = []
    for extra in ([], ["--allow-op", "relu"]):
        res = tmp_path / f"results{len(extra)}"
        r = run([*args, "--out", str(res), *extra])
        assert r.returncode == 0, r.stdout + r.stderr
        data = json.loads((res / "kernelbench_level1_candidates.json").read_text())
        statuses.append(data["problems"][0]["status"])
    assert statuses == ["gate", "correct"]
