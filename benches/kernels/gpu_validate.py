"""Validate assay's kernel evaluation protocol on a real GPU, in one call.

For each KernelBench-style problem under benches/kernels/problems/ it runs, through the
same KernelEvaluator that `assay kernel` uses:
  fast   - a correct, faster hand-written kernel (Triton; plus one CUDA load_inline kernel)
  slow   - a correct but slower one
  wrong  - an incorrect one
  autotuned - (GPU only, where a problem has one) a correct kernel that triton.autotune tunes
  reuse, side_stream, pointer_cache, version_cache, value_cache, forged_verdict, global_hook,
         slowed_reference, torch_compute - cheats built from the fast kernel
and checks:
  1. every cheat is caught: by the static gate, and (gate bypassed) by the run itself
     (or, for the side stream, by the device-vs-synced timing flag);
  2. every wrong kernel is rejected;
  3. fast beats eager, slow loses to it;
  4. timing is repeatable: coefficient of variation of the per-repeat medians < 2 % (3 repeats);
  5. device-time speedups match a plain `triton.testing.do_bench` measurement within 5 %
     wherever the fast kernel runs >= 0.5 ms.
It writes JSON + markdown under benches/results/ and exits 0 only if every check passed.
Every build and run of a candidate goes through the same sandboxed worker as `assay kernel`:
the local bubblewrap sandbox with this interpreter's environment read-only and, on the GPU,
/dev/nvidia* bound (kernels/sandbox.py). --unsafe-no-sandbox uses plain processes instead.

  python benches/kernels/gpu_validate.py                 # on the GPU machine (about 5-8 minutes)
  python benches/kernels/gpu_validate.py --cpu --problems 1_Swish   # CPU dry run: gate + correctness
                                                                    # flow only, NOT a GPU result
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))

try:
    from assay.errors import UserError
    from assay.kernels import gate as G
    from assay.kernels.evaluate import EvalConfig, KernelEvaluator, Verdict
    from assay.kernels.problem import Problem, load_problem
    from assay.kernels.sandbox import kernel_sandbox
    from assay.sandbox.unsafe import UnsafeSandbox
    from assay.kernels.timing import cv, slow_when_inputs_change
    from assay.kernels.toolkit import cuda_home
    from assay.kernels.worker import _load as load_module
except ImportError as e:  # the GPU image has torch but not assay's own dependencies (pydantic)
    sys.exit(f"gpu_validate: cannot import assay ({e}); carry the wheels listed in benches/kernels/README.md.")

CV_LIMIT = 0.02
DO_BENCH_TOL = 0.05
DO_BENCH_MIN_MS = 0.5
RESERVE_S = 45.0  # of --wall-s, kept for the checks, the do_bench cross-checks and the report
MIN_RUN_S = 40.0  # a timed run is not started with less than this left (on the H200 each took 20-28 s)
# What a run must say to count as catching a wrong or cheating kernel: a verdict on its output.
# An error or timeout judged nothing (a broken machine would otherwise "catch" every cheat).
CAUGHT = ("mismatch", "nondeterministic", "stale", "mutated", "tamper")
RUN_CAUGHT = CAUGHT + ("gate",)  # a cheat run with the gate bypassed: `gate` is then the op census's verdict


def cheats(fast: str) -> dict[str, str]:
    """Cheating variants of a correct kernel module (they subclass its ModelNew)."""
    base = fast + "\n\n_Fast = ModelNew\n\n"
    return {
        # computes once, then returns uninitialised memory of the right shape (hoping the
        # allocator hands back the buffer that held the reference's answer)
        "reuse": base + '''
class ModelNew(_Fast):
    def __init__(self, *args):
        super().__init__(*args)
        self._like = None

    def forward(self, *xs):
        if self._like is None:
            out = super().forward(*xs)
            self._like = (out.shape, out.dtype, out.device)
            return out
        shape, dtype, device = self._like
        return torch.empty(shape, dtype=dtype, device=device)
''',
        # launches the real kernel on a side stream: the timed stream sees almost nothing
        "side_stream": base + '''
class ModelNew(_Fast):
    def __init__(self, *args):
        super().__init__(*args)
        self._stream = torch.cuda.Stream() if torch.cuda.is_available() else None

    def forward(self, *xs):
        if self._stream is None:
            return super().forward(*xs)
        with torch.cuda.stream(self._stream):
            return super().forward(*xs)
''',
        # caches outputs keyed on input pointers
        "pointer_cache": base + '''
class ModelNew(_Fast):
    def __init__(self, *args):
        super().__init__(*args)
        self._memo = {}

    def forward(self, *xs):
        key = tuple(x.data_ptr() for x in xs)
        if key not in self._memo:
            self._memo[key] = super().forward(*xs)
        return self._memo[key]
''',
        # caches outputs keyed on the input tensors themselves (kept alive, so no address is reused)
        # and their version counters: right whenever an input is new or was written in place
        "version_cache": base + '''
class ModelNew(_Fast):
    def __init__(self, *args):
        super().__init__(*args)
        self._memo = []

    def forward(self, *xs):
        versions = [getattr(x, "_version", None) for x in xs]
        for seen, seen_versions, out in self._memo:
            if all(a is b for a, b in zip(seen, xs)) and seen_versions == versions:
                return out
        out = super().forward(*xs)
        self._memo.append((xs, versions, out))
        return out
''',
        # caches outputs keyed on the input addresses and a few sampled values: it computes for
        # inputs it has not seen (so every check that gives all-new values finds it right) and
        # skips the work on timing's repeated inputs; where a few values changed in place it
        # answers with the output of the values before, and where that output would not have
        # moved, its time gives it away
        "value_cache": base + '''
class ModelNew(_Fast):
    def __init__(self, *args):
        super().__init__(*args)
        self._memo = []

    def forward(self, *xs):
        key = [(x.data_ptr(), x.reshape(-1)[::max(1, x.numel() // 3)].tolist()) for x in xs]
        for seen, out in self._memo:
            if seen == key:
                return out
        out = super().forward(*xs)
        self._memo.append((key, out))
        return out
''',
        # reads the result nonce from the harness's frames, prints a "correct" verdict, and exits
        "forged_verdict": base + '''
_depth = 1
_frame = torch.sys._getframe(_depth)
while "nonce" not in _frame.f_locals:
    _depth += 1
    _frame = torch.sys._getframe(_depth)
print("\\n@@ASSAY-RESULT " + _frame.f_locals["nonce"] + ' {"status": "correct", "trials": 5}', flush=True)
torch.os._exit(0)
''',
        # a process-wide forward hook that zeroes every module's output, the candidate's and the
        # reference's alike: the two agree on a wrong answer
        "global_hook": base + '''
torch.nn.modules.module.register_module_forward_hook(lambda module, args, output: output * 0)
''',
        # lets ATen do (a token part of) the work: a right answer, found only by the run's op census
        # (in C++, `using namespace at;` hides such a call from the gate; the CPU tests cover that)
        "torch_compute": base + '''
class ModelNew(_Fast):
    def forward(self, *xs):
        out = super().forward(*xs)
        return torch.maximum(out, out)
''',
        # makes every other module's call (the reference's, the compiled baseline's) run four times
        "slowed_reference": base + '''
_call = torch.nn.Module.__call__


def _slow_call(self, *args, **kwargs):
    if not isinstance(self, ModelNew):
        for _ in range(3):
            _call(self, *args, **kwargs)
    return _call(self, *args, **kwargs)


class ModelNew(_Fast):
    def forward(self, *xs):
        torch.nn.Module.__call__ = _slow_call
        return super().forward(*xs)
''',
    }


CHEATS = ("reuse", "side_stream", "pointer_cache", "version_cache", "value_cache", "forged_verdict",
          "global_hook", "slowed_reference", "torch_compute")


def machine() -> dict:
    from assay.machine import cpu_model

    cpu = cpu_model()
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        gpu = None
    versions = {}
    for mod in ("torch", "triton", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "gpu": gpu, **versions, "nvcc": nvcc_release(),
            "python": sys.version.split()[0]}


def nvcc_release() -> str | None:
    """'13.0, V13.0.88' from the nvcc that CUDA builds use, or None without one."""
    home = cuda_home()
    if home is None:
        return None
    try:
        out = subprocess.run([str(home / "bin" / "nvcc"), "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return next((line.split("release", 1)[1].strip() for line in out.splitlines() if "release" in line), None)


def medians(v: Verdict, name: str, mode: str) -> list[float]:
    if not v.timing:
        return []
    return [r["median_ms"] for r in v.timing["runs"].get(name, {}).get(mode, [])]


def do_bench_speedup(problem: Problem, fast_src: str, device: str, seed: int, workdir: Path) -> dict:
    """Plain triton.testing.do_bench on the reference and the fast kernel (trusted code, this process)."""
    import torch
    import triton

    (workdir / "p.py").write_text(problem.source)
    (workdir / "c.py").write_text(fast_src)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(workdir / "ext"))
    prob = load_module(str(workdir / "p.py"), f"vp_{problem.digest}")
    cand = load_module(str(workdir / "c.py"), f"vc_{problem.digest}")
    torch.manual_seed(seed)
    init = prob.get_init_inputs()
    torch.manual_seed(seed)
    ref = prob.Model(*init).to(device)
    torch.manual_seed(seed)
    new = cand.ModelNew(*init).to(device)
    torch.manual_seed(seed + 1)
    xs = [x.to(device) if hasattr(x, "to") else x for x in prob.get_inputs()]
    with torch.no_grad():
        r = triton.testing.do_bench(lambda: ref(*xs), warmup=50, rep=300, return_mode="median")
        n = triton.testing.do_bench(lambda: new(*xs), warmup=50, rep=300, return_mode="median")
    del ref, new, xs
    torch.cuda.empty_cache()
    return {"ref_ms": r, "new_ms": n, "speedup": r / n}


def ran_out_of_device_memory(v: Verdict) -> bool:
    """The run stopped on torch's out-of-memory error (the worker's message holds the traceback)."""
    return v.status in ("runtime", "error") and ("torch.OutOfMemoryError" in v.message
                                                 or "CUDA out of memory" in v.message)


def run_untimed(jobs: list, run_job, parallel: int, record) -> list:
    """`run_job` on every job, `parallel` at a time, passing each (problem id, name, verdict) to
    `record`; then each job whose run ran out of device memory again, alone (its verdict replaces
    the first). On the H200, 8 evaluations of 2 GiB problems at once (the cheats that keep every
    output alive most of all) ran the GPU out of memory: a verdict on the machine, not the kernel.
    Returns the jobs run again."""
    short_of_memory = []
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for job, (pid, name, v) in zip(jobs, pool.map(run_job, jobs)):
            record(pid, name, v)
            if ran_out_of_device_memory(v):
                short_of_memory.append(job)
    for job in short_of_memory:
        record(*run_job(job))
    return short_of_memory


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--cpu", action="store_true", help="dry run on CPU (shrunken shapes, Triton interpreter)")
    ap.add_argument("--problems", default=None, help="comma-separated problem stems (default: all)")
    ap.add_argument("--cheats", default=None, help=f"comma-separated cheats to run (default: all: {', '.join(CHEATS)})")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--no-compile-baseline", action="store_true", help="skip the torch.compile baseline")
    ap.add_argument("--no-cuda-build", action="store_true", help="skip the load_inline CUDA candidate")
    ap.add_argument("--parallel", type=int, default=8,
                    help="untimed GPU checks at once (each is mostly process start, imports and a Triton build)")
    ap.add_argument("--deadline-s", type=float, default=480.0,
                    help="start no timed run after this many seconds (the report is still written)")
    ap.add_argument("--wall-s", type=float, default=560.0,
                    help="have the final report written within this many seconds: each timed run's timeout is cut "
                         "to what is left (the device tool kills a call at 600 s; the report is also rewritten "
                         "after every run, so a kill keeps the runs so far)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--shared-machine", action="store_true", help="say in the report that other work shared the machine")
    ap.add_argument("--unsafe-no-sandbox", action="store_true",
                    help="run candidates in plain child processes (only where bubblewrap cannot run)")
    ap.add_argument("--sandbox-fallback", action="store_true",
                    help="where the sandbox cannot run torch on the device, run candidates in plain processes "
                         "and fail only the sandbox check (a one-call GPU session still gets every other result)")
    args = ap.parse_args()
    t_start = time.time()
    cheat_names = tuple(args.cheats.split(",")) if args.cheats else CHEATS
    if set(cheat_names) - set(CHEATS):
        ap.error(f"--cheats: no cheat named {', '.join(sorted(set(cheat_names) - set(CHEATS)))}; "
                 f"the cheats are {', '.join(CHEATS)}")
    device = "cpu" if args.cpu else args.device
    on_gpu = not args.cpu
    if on_gpu:
        import torch

        if not torch.cuda.is_available():
            print("gpu_validate: no CUDA device here; run with --cpu for the dry run.", file=sys.stderr)
            return 2
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "{}.{}".format(*torch.cuda.get_device_capability()))
    cache = Path(tempfile.mkdtemp(prefix="assay_kval_"))
    shrink = 64 if args.cpu else None
    probs = sorted((HERE / "problems").glob("level*/*.py"))
    if args.problems:
        keep = set(args.problems.split(","))
        probs = [p for p in probs if p.stem in keep]
    problems = [load_problem(p, shrink=shrink) for p in probs]

    common = dict(device=device, seed=args.seed, cache_dir=str(cache), compile_workers=8,
                  policy=G.GatePolicy(allow_cpp=args.cpu), eval_timeout_s=300, compile_timeout_s=420,
                  rotate=4 if on_gpu else 2)
    timing = dict(timing=True, repeats=3, warmup=10 if on_gpu else 1, timing_trials=100 if on_gpu else 5,
                  rotate_bytes=8 << 30)
    baselines = ("eager",) if (args.cpu or args.no_compile_baseline) else ("eager", "compile")
    # One sandbox for every evaluator: bubblewrap with the interpreter's environment read-only
    # and, on the GPU, /dev/nvidia* and /sys bound (what `assay kernel` uses), checked by running
    # torch on the device inside it.
    fallback = None
    try:
        box = UnsafeSandbox() if args.unsafe_no_sandbox else kernel_sandbox(device)
        KernelEvaluator(EvalConfig(**common), box).check_device()
    except UserError as e:  # no bwrap/setpriv here, bwrap cannot run, or torch cannot use the device in it
        if not args.sandbox_fallback or args.unsafe_no_sandbox:
            print(f"gpu_validate: {e}", file=sys.stderr)
            return 2
        fallback = str(e)
        print(f"gpu_validate: {fallback}\ngpu_validate: --sandbox-fallback: running candidates in plain "
              "processes; the sandbox check fails, every other check still runs", file=sys.stderr, flush=True)
        box = UnsafeSandbox()
    ev_fast = KernelEvaluator(EvalConfig(baselines=baselines, timing_basis="device",
                                         **common, **timing), box)
    ev_slow = KernelEvaluator(EvalConfig(baselines=("eager",), timing_basis="device",
                                         **common, **timing), box)
    ev_check = KernelEvaluator(EvalConfig(timing=False, **common), box)
    ev_flag = KernelEvaluator(EvalConfig(timing=True, repeats=1, warmup=2, timing_trials=10 if on_gpu else 3,
                                         baselines=("eager",), **common), box)

    report: dict = {"problems": {}, "checks": [], "cpu_dry_run": args.cpu, "partial": True,
                    "sandbox": {"name": box.name, "python": box.python(),
                                "dev_paths": getattr(box, "dev_paths", []),
                                "memory_cgroup": bool(getattr(getattr(box, "cgroups", None), "memory", None)),
                                "fallback_reason": fallback},
                    "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
                    "machine": machine(), "seed": args.seed, "device": device,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "shared_machine": args.shared_machine,
                    "timing_basis_for_checks": "device (do_bench-like); both device and synced are recorded"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "kernels_gpu_validate" + ("_cpu_dryrun" if args.cpu else "")

    def save() -> None:
        """The report as it stands; rewritten after every run, so a killed call keeps what it measured."""
        report["wall_s"] = round(time.time() - t_start, 1)
        (out / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
        (out / f"{stem}.md").write_text(markdown(report))

    jobs = []  # untimed / flag-only runs, in parallel
    build_only: dict[str, str] = {}  # CPU dry run: CUDA sources built (compiled and linked) but not run
    srcs: dict[str, dict[str, str]] = {}
    for p in problems:
        d = HERE / "candidates" / Path(p.path).stem
        s = {f.stem: f.read_text() for f in sorted(d.glob("*.py"))}
        if args.cpu:
            s.pop("autotuned", None)  # the Triton interpreter has no driver to autotune with
        if args.cpu or args.no_cuda_build:
            cuda_src = s.pop("fast_cuda", None)
            if args.cpu and cuda_src and not args.no_cuda_build and cuda_home() is not None:
                build_only[p.id] = cuda_src
        s.update(cheats(s["fast"]))
        srcs[p.id] = s
        report["problems"][p.id] = {"gate": {k: G.check(v, ev_check.config.policy).summary() for k, v in s.items()},
                                    "runs": {}}
        jobs.append((p, "wrong", ev_check, s["wrong"], False))
        if "autotuned" in s:
            jobs.append((p, "autotuned", ev_check, s["autotuned"], False))
        for c in cheat_names:
            jobs.append((p, c, ev_flag, s[c], True))  # gate bypassed: does the run itself catch it?
    save()

    def run_job(job):
        p, name, ev, src, bypass = job
        if bypass:
            built = ev.build(p, src)
            v = ev.evaluate_built(p, src, name, built)
        else:
            v = ev.evaluate(p, src, name)
        return p.id, name, v

    # CUDA builds start at once on CPU threads; the GPU checks run beside them.
    with ThreadPoolExecutor(max_workers=2) as builders:
        cuda_builds = {p.id: builders.submit(ev_fast.build, p, srcs[p.id]["fast_cuda"])
                       for p in problems if "fast_cuda" in srcs[p.id]}
        ev_build = KernelEvaluator(EvalConfig(**{**common, "device": "cuda:0"}), box) if build_only else None
        dry_builds = {p.id: builders.submit(ev_build.build, p, build_only[p.id]) for p in problems
                      if p.id in build_only}
        def record(pid: str, name: str, v: Verdict) -> None:
            report["problems"][pid]["runs"][name] = v.to_dict()
            save()
            print(f"[{time.time() - t_start:6.1f}s] {pid} {name}: {v.status} {v.message[:120]}", flush=True)

        rerun = run_untimed(jobs, run_job, args.parallel, record)
        report["rerun_alone_after_running_out_of_device_memory"] = [f"{j[0].id} {j[1]}" for j in rerun]
        save()
        # timed runs, one at a time (they own the GPU)
        # every fast kernel first, then the CUDA one (the build path runs nowhere else on the GPU),
        # then the slow ones: what matters most runs before the deadline
        timed: dict[str, dict[str, Verdict]] = {p.id: {} for p in problems}
        order = [(p, "fast", ev_fast) for p in problems] + [
            (p, "fast_cuda", ev_slow) for p in problems if "fast_cuda" in srcs[p.id]] + [
            (p, "slow", ev_slow) for p in problems]
        for p, name, ev in order:
            if name == "fast_cuda":
                cuda_builds[p.id].result()
            elapsed = time.time() - t_start
            left = args.wall_s - elapsed - RESERVE_S
            if elapsed > args.deadline_s:
                v = Verdict(name, "error", f"not run: past the {args.deadline_s:.0f} s deadline")
            elif left < MIN_RUN_S:
                v = Verdict(name, "error", f"not run: {max(left, 0):.0f} s left of --wall-s {args.wall_s:.0f} "
                                           f"after the checks' reserve; a timed run needs {MIN_RUN_S:.0f}")
            else:
                ev.config.eval_timeout_s = min(common["eval_timeout_s"], left)  # timed runs go one at a time
                v = ev.evaluate(p, srcs[p.id][name], name)
            timed[p.id][name] = v
            report["problems"][p.id]["runs"][name] = v.to_dict()
            save()
            print(f"[{time.time() - t_start:6.1f}s] {p.id} {name}: {v.status} {v.message[:160]}", flush=True)

    # -- checks ------------------------------------------------------------------------------
    def check(name: str, ok: bool, detail: str, enforced: bool = True) -> None:
        report["checks"].append({"check": name, "ok": bool(ok), "detail": detail, "enforced": enforced})

    if not args.unsafe_no_sandbox:
        check(f"candidates ran in the local sandbox, with torch working on {device} inside it", fallback is None,
              f"fell back to plain processes: {fallback}" if fallback else f"{box.name} sandbox")
    for pid, fut in dry_builds.items():
        built = fut.result()
        report["problems"][pid]["cuda_build_only"] = {k: v for k, v in built.items() if k != "log"}
        check(f"{pid}: fast_cuda builds with nvcc (compiled and linked; nothing runs it without a GPU)",
              built["ok"], f"{built['status']} in {built.get('seconds')} s {built['message'][:150]}"
              + ("" if built["ok"] else built.get("log", "")[-300:]))
    for p in problems:
        r = report["problems"][p.id]
        gate_ok = {k: G.check(v, ev_check.config.policy).ok for k, v in srcs[p.id].items()}
        for c in cheat_names:
            run = r["runs"][c]
            dynamic = run["status"] in RUN_CAUGHT or bool(run["review"])
            check(f"{p.id}: cheat {c} caught", (not gate_ok[c]) or dynamic,
                  f"gate: {'rejected' if not gate_ok[c] else 'passed'}; run (gate bypassed): {run['status']}"
                  + (f", review: {run['review']}" if run["review"] else ""))
            said = run["status"] + (f", review: {run['review']}" if run["review"] else "")
            if c != "side_stream":
                check(f"{p.id}: cheat {c} caught by the run alone", dynamic, said)
            elif on_gpu:  # informational: a side stream that finishes in time computes the right answer,
                # and then only the device-vs-synced timing flag can tell (on the H200 every one was
                # read before it finished: a mismatch)
                check(f"{p.id}: cheat side_stream caught by the run alone (a verdict, or the "
                      "device-vs-synced timing flag)", dynamic, said, enforced=False)
        wrong = r["runs"]["wrong"]
        check(f"{p.id}: wrong kernel rejected", wrong["status"] in CAUGHT, f"{wrong['status']}: {wrong['message'][:200]}")
        if "autotuned" in r["runs"]:  # the autotuner's benchmarking is glue to the op census
            tuned = r["runs"]["autotuned"]
            check(f"{p.id}: autotuned kernel correct (triton.autotune passes the op census)",
                  tuned["status"] == "correct", f"{tuned['status']}: {tuned['message'][:200]}")
        for name in ("fast", "slow", "fast_cuda"):
            if name in timed[p.id]:
                v = timed[p.id][name]
                check(f"{p.id}: {name} kernel correct", v.correct, v.message[:200])
                # an honest kernel's calls with new input values take as long as the rest: if not,
                # the time flag's 3x would be too close to the GPU's noise
                calls = v.timing.get("checked_calls", []) if v.timing else []
                ratios = [round(ms / others, 3) for ms, others, *_ in calls if others]
                check(f"{p.id}: {name} kernel not flagged by the time of its calls with new input values",
                      v.correct and slow_when_inputs_change(calls) is None,
                      f"those calls' time over the others' median, per measurement: {ratios}", enforced=on_gpu)
        f, s = timed[p.id]["fast"], timed[p.id]["slow"]
        if f.correct and s.correct:
            fs, ss = f.speedups.get("eager/device"), s.speedups.get("eager/device")
            check(f"{p.id}: fast beats eager (device time)", fs is not None and fs > 1.0, f"speedup {fs}",
                  enforced=on_gpu)
            check(f"{p.id}: slow loses to eager (device time)", ss is not None and ss < 1.0, f"speedup {ss}",
                  enforced=on_gpu)
            for v in (f, s):
                for who in ("candidate", "eager"):
                    for mode in ("device", "synced"):
                        m = medians(v, who, mode)
                        c = cv(m)
                        check(f"{p.id}: {v.candidate_id}/{who} {mode} median CV < 2%", c < CV_LIMIT,
                              f"medians {[round(x, 5) for x in m]} ms, CV {c:.4f}", enforced=on_gpu)
            if on_gpu:
                dev = statistics.median(medians(f, "candidate", "device"))
                db_check = f"{p.id}: device-time speedup matches do_bench within 5%"
                if dev >= DO_BENCH_MIN_MS and time.time() - t_start > args.wall_s - RESERVE_S / 3:
                    r["do_bench"] = "not measured: too little of --wall-s left"
                    check(db_check, False, r["do_bench"])
                elif dev >= DO_BENCH_MIN_MS:
                    try:
                        with tempfile.TemporaryDirectory() as td:
                            db = do_bench_speedup(p, srcs[p.id]["fast"], device, args.seed, Path(td))
                    except Exception as e:  # recorded as a failed check; the other problems still get theirs
                        r["do_bench"] = f"failed: {type(e).__name__}: {str(e)[:300]}"
                        check(db_check, False, r["do_bench"])
                        continue
                    ours = f.speedups["eager/device"]
                    rel = abs(ours / db["speedup"] - 1.0)
                    r["do_bench"] = {**db, "ours": ours, "rel_diff": rel}
                    check(db_check, rel < DO_BENCH_TOL,
                          f"ours {ours:.3f}x vs do_bench {db['speedup']:.3f}x ({db['ref_ms']:.3f}/{db['new_ms']:.3f} "
                          f"ms), diff {rel:.3%}")
                else:
                    r["do_bench"] = f"skipped: fast kernel runs {dev:.3f} ms < {DO_BENCH_MIN_MS} ms"

    enforced = [c for c in report["checks"] if c["enforced"]]
    report["passed"] = all(c["ok"] for c in enforced)
    report["summary"] = {"checks": len(enforced), "failed": [c["check"] for c in enforced if not c["ok"]],
                         "informational_failed": [c["check"] for c in report["checks"]
                                                  if not c["enforced"] and not c["ok"]]}
    report["partial"] = False
    save()
    print(f"{'PASSED' if report['passed'] else 'FAILED'}: {len(enforced)} checks, "
          f"{len(report['summary']['failed'])} failed; {out / stem}.json/.md ({report['wall_s']} s)")
    return 0 if report["passed"] else 1


def markdown(rep: dict) -> str:
    m = rep["machine"]
    lines = ["# Kernel evaluation protocol: GPU validation" + (" (CPU DRY RUN, not a GPU result)" if rep["cpu_dry_run"]
                                                               else ""), "",
             f"Command: `{rep['command']}`  ", f"Date: {rep['date']}  ", f"Seed: {rep['seed']}  ",
             f"Machine: {m['nproc']} CPUs ({m['cpu']}), GPU: {m['gpu']}  ",
             f"Software: Python {m.get('python')}, torch {m['torch']}, triton {m['triton']}, numpy {m.get('numpy')}, "
             f"nvcc {m.get('nvcc')}  ",
             f"Sandbox: {rep['sandbox']['name']} (devices: {', '.join(rep['sandbox']['dev_paths']) or 'none'}; "
             f"memory cgroup: {'yes' if rep['sandbox']['memory_cgroup'] else 'no'})"
             + (f"; **fell back to plain processes**: {rep['sandbox']['fallback_reason']}"
                if rep["sandbox"].get("fallback_reason") else "") + "  ",
             f"Wall time: {rep['wall_s']} s. Result: **"
             + ("UNFINISHED** (written while the run went on; it stopped before its checks)" if rep.get("partial")
                else f"{'PASSED' if rep['passed'] else 'FAILED'}**")
             + (" (the machine was shared with other work while this ran)" if rep.get("shared_machine") else ""), "",
             "| problem | candidate | status | speedup eager/device | eager/synced | compile/device | review |",
             "|---|---|---|---|---|---|---|"]
    for pid, r in rep["problems"].items():
        for name, v in r["runs"].items():
            sp = v.get("speedups") or {}

            def f(k):
                return f"{sp[k]:.2f}x" if sp.get(k) else "-"

            lines.append(f"| {pid} | {name} | {v['status']} | {f('eager/device')} | {f('eager/synced')} | "
                         f"{f('compile/device')} | {'; '.join(v.get('review') or []) or ''} |")
    lines += ["", "| check | ok | enforced | detail |", "|---|---|---|---|"]
    for c in rep["checks"]:
        lines.append(f"| {c['check']} | {'yes' if c['ok'] else '**NO**'} | {'yes' if c['enforced'] else 'info'} | "
                     f"{c['detail'].replace('|', '/')[:200]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
