"""The GPU validation script's CPU dry run: gate + correctness flow over one problem's
fast/slow/wrong kernels and the generated cheats (not a GPU result)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from procs import procs_naming

pytest.importorskip("torch", reason="needs torch: pip install -e '.[kernels]'")
pytest.importorskip("triton", reason="needs triton (interpreter mode on CPU)")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(660)  # its own subprocess limit (600 s) bounds it; on a slow 2-core machine it took 237 s
def test_gpu_validate_cpu_dry_run(tmp_path):
    # the cheats whose runs it asserts on (the committed dry runs in benches/results run them all)
    r = subprocess.run([sys.executable, str(ROOT / "benches" / "kernels" / "gpu_validate.py"), "--cpu",
                        "--problems", "1_Swish", "--cheats", "reuse,pointer_cache,version_cache,torch_compute",
                        "--out", str(tmp_path), "--parallel", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((tmp_path / "kernels_gpu_validate_cpu_dryrun.json").read_text())
    assert rep["passed"] and rep["cpu_dry_run"]
    runs = rep["problems"]["level1/1_Swish"]["runs"]
    assert runs["fast"]["correct"] and runs["slow"]["correct"]
    assert not runs["wrong"]["correct"] and not runs["reuse"]["correct"] and not runs["pointer_cache"]["correct"]
    assert runs["version_cache"]["message"].startswith("right when checked, wrong while timed")
    # the op census, past the gate: ATen's maximum after the kernel
    assert runs["torch_compute"]["status"] == "gate" and "maximum (" in runs["torch_compute"]["message"]
    gate = rep["problems"]["level1/1_Swish"]["gate"]
    assert "stream-thread" in gate["side_stream"] and "output-cache" in gate["pointer_cache"]
    assert "torch-compute" in gate["torch_compute"]
    assert "CPU DRY RUN" in (tmp_path / "kernels_gpu_validate_cpu_dryrun.md").read_text()
    # the honest kernels' calls with new input values, measured for the time flag (enforced on a GPU)
    flag = {c["check"]: c for c in rep["checks"] if "not flagged by the time" in c["check"]}
    assert set(flag) == {f"level1/1_Swish: {n} kernel not flagged by the time of its calls with new input values"
                         for n in ("fast", "slow")}, sorted(flag)
    assert all(c["ok"] and not c["enforced"] and "per measurement: [" in c["detail"] and "[]" not in c["detail"]
               for c in flag.values()), flag


def _validate(out: Path, *extra: str) -> list[str]:  # one cheat: these tests are about the run, not the cheats
    return [sys.executable, str(ROOT / "benches" / "kernels" / "gpu_validate.py"), "--cpu", "--problems", "1_Swish",
            "--no-cuda-build", "--cheats", "reuse", "--out", str(out), "--parallel", "2", *extra]


@pytest.mark.slow
def test_gpu_validate_starts_no_timed_run_it_cannot_finish_within_its_wall_budget(tmp_path):
    r = subprocess.run(_validate(tmp_path, "--wall-s", "1"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((tmp_path / "kernels_gpu_validate_cpu_dryrun.json").read_text())
    assert not rep["partial"] and not rep["passed"]
    runs = rep["problems"]["level1/1_Swish"]["runs"]
    for name in ("fast", "slow"):  # the timed runs: not started, and said so
        assert runs[name]["status"] == "error" and "left of --wall-s 1" in runs[name]["message"]
    # the untimed ones still ran (the wrong kernel leaves its last element unwritten: a mismatch, or,
    # where the allocator hands it memory that held the right answer, a second call that differs)
    assert runs["wrong"]["status"] in ("mismatch", "nondeterministic") and not runs["reuse"]["correct"]
    assert "level1/1_Swish: fast kernel correct" in rep["summary"]["failed"]
    assert set(runs) == {"wrong", "reuse", "fast", "slow"}  # --cheats: the one cheat asked for


def test_gpu_validate_names_the_cheats_it_has_when_asked_for_another(tmp_path):
    r = subprocess.run(_validate(tmp_path, "--cheats", "reuse,teleport"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--cheats: no cheat named teleport; the cheats are reuse, side_stream" in r.stderr


@pytest.mark.slow
def test_gpu_validate_killed_mid_run_leaves_the_runs_it_finished(tmp_path):
    report = tmp_path / "kernels_gpu_validate_cpu_dryrun.json"
    (tmp_path / "tmp").mkdir()  # the script's workspaces, so that what it leaves can be found
    proc = subprocess.Popen(_validate(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    try:
        for line in proc.stdout:  # wait for the first finished run, then kill it all as the device tool would
            if "level1/1_Swish wrong:" in line:
                break
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        _kill_processes_naming(tmp_path / "tmp")
    rep = json.loads(report.read_text())
    assert rep["partial"] and "passed" not in rep and rep["machine"]["torch"]
    assert rep["problems"]["level1/1_Swish"]["runs"]["wrong"]["status"] in ("mismatch", "nondeterministic")
    assert "UNFINISHED" in report.with_suffix(".md").read_text()


def _kill_processes_naming(path: Path) -> None:
    """A sandbox whose bwrap was killed while it started waits forever for a word from that bwrap
    (bubblewrap arms --die-with-parent only after it): asleep, it never runs its command, but
    it would outlive the test. Scanned until none has been seen for a second: an orphaned bwrap
    goes on starting after its parent is killed, and one scan that came up empty once left a
    sandbox behind in a CI run."""
    deadline = time.monotonic() + 15
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1:
        for pid in procs_naming(str(path)):
            quiet_since = time.monotonic()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def test_runs_that_ran_out_of_device_memory_run_again_alone_once_the_rest_are_done():
    import importlib.util
    import threading

    from assay.kernels.evaluate import Verdict

    spec = importlib.util.spec_from_file_location("gpu_validate", ROOT / "benches" / "kernels" / "gpu_validate.py")
    gv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gv)
    oom = ("trial 0 raised:\nTraceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. "
           "Tried to allocate 4.00 GiB.")
    jobs = [(type("P", (), {"id": f"p{i}"})(), name, None, "", False) for i, name in enumerate("abcdef")]
    lock, running, calls, seen = threading.Lock(), [], [], []

    def run_job(job):
        p, name = job[0], job[1]
        with lock:
            running.append(name)
            first = name not in calls
            calls.append(name)
            alone = running == [name]
        time.sleep(0.05)
        with lock:
            running.remove(name)
        if name in "be" and first:
            return p.id, name, Verdict(name, "runtime", oom)
        if name == "c":
            return p.id, name, Verdict(name, "runtime", "ValueError: the candidate's own bug")
        return p.id, name, Verdict(name, "correct", f"ok, alone={alone}")

    rerun = gv.run_untimed(jobs, run_job, 4, lambda pid, name, v: seen.append((name, v.status, v.message)))
    assert [j[1] for j in rerun] == ["b", "e"]
    assert sorted(calls) == sorted("abcdefbe") and calls[-2:] == ["b", "e"]  # after the rest, one at a time
    assert seen[-2:] == [("b", "correct", "ok, alone=True"), ("e", "correct", "ok, alone=True")]
    assert ("c", "runtime", "ValueError: the candidate's own bug") in seen  # only memory runs again
    assert not gv.ran_out_of_device_memory(Verdict("x", "mismatch", "CUDA out of memory"))  # a verdict stands


def test_gemm_sweep_checks_every_configuration_of_the_kernels_it_is_given(tmp_path):
    sweep = ROOT / "benches" / "kernels" / "gemm_sweep.py"
    gemm = ROOT / "benches" / "kernels" / "candidates" / "3_Gemm_Bias_GELU_Scale_fp16"
    r = subprocess.run([sys.executable, str(sweep), "--cpu", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((tmp_path / "gemm_sweep.json").read_text())
    configs = [c for shape in rep["shapes"] for c in shape["configs"]]
    assert {c["kernel"] for c in configs} == {"fast.py", "persistent_tma.py"}
    assert len(rep["shapes"]) == 2 and len(configs) >= 32 and all(c["outside_tolerance"] == 0 for c in configs)
    # the wrong kernel (it forgets the scale) fails under every configuration
    r = subprocess.run([sys.executable, str(sweep), "--cpu", "--kernels", str(gemm / "wrong.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "wrong or failing" in r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    rep = json.loads((tmp_path / "gemm_sweep.json").read_text())
    assert all(c["outside_tolerance"] > 1000 for shape in rep["shapes"] for c in shape["configs"])
    # a --cpu report times nothing at the problem's shape: --apply refuses it and writes nothing
    target = tmp_path / "fast.py"
    r = subprocess.run([sys.executable, str(sweep), "--apply", str(tmp_path / "gemm_sweep.json"), "--to", str(target)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no sweep at the problem's shape 8192x2048x8192" in r.stderr, r.stderr
    assert not target.exists()


def test_gemm_sweep_starts_no_configuration_past_its_budget_and_still_writes_its_report(tmp_path):
    # a GPU call killed at its limit returns nothing its script had not written: the sweep stops
    # starting configurations at --budget-s (150 s by default on the GPU) and writes what it has
    sweep = ROOT / "benches" / "kernels" / "gemm_sweep.py"
    fast = ROOT / "benches" / "kernels" / "candidates" / "3_Gemm_Bias_GELU_Scale_fp16" / "fast.py"
    r = subprocess.run([sys.executable, str(sweep), "--cpu", "--kernels", str(fast), "--shapes", "300x96x520",
                        "--budget-s", "0", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "10 configurations not run at this shape: past --budget-s" in r.stdout, r.stdout
    rep = json.loads((tmp_path / "gemm_sweep.json").read_text())
    rows = rep["shapes"][0]["configs"]
    assert rep["budget_s"] == 0 and len(rows) == 10
    assert all(row["skipped"] == "not run: past --budget-s" and "outside_tolerance" not in row for row in rows)


def _sweep_report(path: Path, rows: list[dict], eager_ms: float = 0.52) -> Path:
    """A GPU sweep's report at the problem's shape, with the given rows (as gemm_sweep writes them)."""
    for row in rows:
        bm, bn, bk, w, s = row.pop("cfg")
        row.update(config=f"{bm}x{bn}x{bk} w{w} s{s}", CONFIG=dict(BM=bm, BN=bn, BK=bk, num_warps=w, num_stages=s))
    path.write_text(json.dumps({"shapes": [{"shape": [8192, 2048, 8192], "configs": rows, "eager_forward_ms": eager_ms},
                                           {"shape": [8192, 1024, 8192], "configs": [], "eager_forward_ms": 0.3}]}))
    return path


def test_gemm_sweep_apply_makes_fast_py_the_fastest_correct_kernel_and_configuration(tmp_path):
    from assay.kernels.worker import _load

    kernels = ROOT / "benches" / "kernels"
    gs = _load(str(kernels / "gemm_sweep.py"), "gemm_sweep_under_test")
    fast, tma = kernels / "candidates" / "3_Gemm_Bias_GELU_Scale_fp16" / "fast.py", kernels / "gemm_variants" / "persistent_tma.py"
    shape, target = [8192, 2048, 8192], tmp_path / "fast.py"
    target.write_text(fast.read_text())

    def differing(a: str, b: str) -> list[tuple[str, str]]:
        la, lb = a.splitlines(), b.splitlines()
        assert len(la) == len(lb)
        return [(x, y) for x, y in zip(la, lb) if x != y]

    # the TMA variant is fastest among the correct ones (a faster wrong one and a failing one are passed over)
    report = _sweep_report(tmp_path / "a.json", [
        {"kernel": "fast.py", "cfg": (128, 256, 64, 8, 3), "ms": 0.61, "outside_tolerance": 0},
        {"kernel": "persistent_tma.py", "cfg": (256, 128, 64, 8, 3), "ms": 0.45, "outside_tolerance": 0},
        {"kernel": "persistent_tma.py", "cfg": (128, 128, 64, 8, 3), "ms": 0.30, "outside_tolerance": 7},
        {"kernel": "persistent_tma.py", "cfg": (128, 256, 64, 8, 4), "error": "OutOfResources: shared memory"}])
    said = gs.apply(report, target, shape)
    assert differing(tma.read_text(), target.read_text()) == [
        ("CONFIG = dict(BM=128, BN=256, BK=64, num_warps=8, num_stages=3)",
         "CONFIG = dict(BM=256, BN=128, BK=64, num_warps=8, num_stages=3)")]
    assert "persistent_tma.py" in said and "1.16x eager" in said and "loses" not in said
    compile(target.read_text(), str(target), "exec")

    # fast.py's own kernel fastest, but slower than eager: applied, and said that the check will fail
    report = _sweep_report(tmp_path / "b.json", [
        {"kernel": "fast.py", "cfg": (128, 128, 64, 4, 4), "ms": 0.60, "outside_tolerance": 0},
        {"kernel": "persistent_tma.py", "cfg": (256, 128, 64, 8, 3), "ms": 0.66, "outside_tolerance": 0}])
    said = gs.apply(report, target, shape)
    assert differing(fast.read_text(), target.read_text()) == [
        ("CONFIG = dict(BM=128, BN=256, BK=64, num_warps=8, num_stages=3)",
         "CONFIG = dict(BM=128, BN=128, BK=64, num_warps=4, num_stages=4)")]
    assert "still loses to eager" in said

    # nothing correct at the problem's shape: an error naming it, the file as it was
    before = target.read_text()
    report = _sweep_report(tmp_path / "c.json", [
        {"kernel": "fast.py", "cfg": (128, 256, 64, 8, 3), "ms": 0.4, "outside_tolerance": 3}])
    with pytest.raises(ValueError, match="no configuration ran correctly"):
        gs.apply(report, target, shape)
    assert target.read_text() == before
