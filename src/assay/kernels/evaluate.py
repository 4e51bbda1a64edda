"""The whole protocol for one candidate: gate -> build -> correctness -> timing -> verdict.

Builds run in their own process with their own build directory (one per candidate source
hash, which is also the build cache) and a timeout; many build in parallel on CPU threads
while evaluations (which own the GPU) run one at a time.

Every build and evaluation process runs candidate code, so it runs in a sandbox (by default
kernels/sandbox.py's: bubblewrap, the venv read-only, the build directory as the writable
workspace, no network, /dev/nvidia* on CUDA), in an isolated Python (-I), from that directory
emptied but for its builds (`fresh_workspace`): what a candidate's earlier process left there
reaches no later one. Only an UnsafeSandbox (--unsafe-no-sandbox) gets a plain child process
with rlimits.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import UserError
from assay.kernels import gate as G
from assay.kernels.problem import Problem
from assay.kernels.timing import REVIEW_SPEEDUP, escaped_stream, slow_when_inputs_change, speedup, time_on_new_inputs
from assay.kernels.toolkit import build_env
from assay.kernels.worker import MARK, PHASE, TAMPER, TAMPER_EXIT
from assay.sandbox.base import Limits, Sandbox, SandboxUnavailable
from assay.sandbox.process import rlimit_preexec, run_process
from assay.sandbox.workspace import remove_tree
from assay.types import ExecResult

STATUSES = ("gate", "compile", "runtime", "mismatch", "mutated", "nondeterministic", "stale", "tamper", "timeout",
            "error", "correct")


def default_memory_mb() -> int:
    """Each evaluation's memory cap: 32 GiB, or 3/4 of this machine's memory where that is less.
    A cap above the machine's memory (a full-size problem on a laptop) would leave the choice of
    victim to the kernel's global OOM killer, after the machine had thrashed. Never under 8 GiB:
    where the cap is RLIMIT_AS (no memory cgroup), importing torch and triton alone maps 3.3 GB."""
    try:
        total_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    except (ValueError, OSError):
        return 32768
    return max(8192, min(32768, total_mb * 3 // 4))


@dataclass
class EvalConfig:
    device: str = "cpu"
    trials: int = 5
    seed: int = 42  # both models are built after it (a candidate must make the reference's weights)
    # the test inputs' seed: None draws a secret one per evaluation (a known one would tell a
    # candidate its test inputs); set it only to draw a verdict's inputs again (Verdict.input_seed)
    input_seed: int | None = None
    tolerance: float | None = None  # None: per dtype (1e-4 fp32); KernelBench used 1e-2
    timing: bool | None = None  # None: only on CUDA
    warmup: int = 10
    timing_trials: int = 100
    repeats: int = 1
    rotate: int = 4  # input sets rotated through while timing ...
    rotate_bytes: int = 2 << 30  # ... as many as fit in this many bytes
    baselines: tuple[str, ...] = ("eager", "compile")
    baseline: str = "eager"  # which baseline speedup/fast_p compare against
    timing_basis: str = "synced"  # "synced" (KernelBench) or "device" (do_bench-like)
    profile: bool = False
    compile_timeout_s: float = 600.0
    eval_timeout_s: float = 600.0
    compile_workers: int = 2
    cache_dir: str | None = None
    policy: G.GatePolicy = field(default_factory=G.GatePolicy)
    # count the ATen ops the candidate dispatches and reject compute the policy does not allow;
    # off only where torch compute is the point (a bench running the reference as the candidate)
    census: bool = True
    memory_mb: int = field(default_factory=default_memory_mb)  # memory cgroup, else RLIMIT_AS (CPU only)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def timed(self) -> bool:
        return self.is_cuda if self.timing is None else self.timing


@dataclass
class Verdict:
    candidate_id: str
    status: str  # one of STATUSES
    message: str = ""
    gate_rules: list[str] = field(default_factory=list)
    compile_log: str = ""
    timing: dict[str, Any] | None = None
    ref_ms: float | None = None
    new_ms: float | None = None
    speedup: float | None = None
    speedups: dict[str, float | None] = field(default_factory=dict)  # per baseline and basis
    review: list[str] = field(default_factory=list)
    profile: str | None = None
    source_hash: str = ""
    # a review note says the kernel's own timing looks gamed (work off the timed stream, a call slow
    # only on new inputs): the search picks such a kernel only when nothing else is correct
    suspect: bool = False
    # how far the reference's output moved between the trials' inputs, as the smallest atol=rtol
    # that would let a kernel returning its first output pass (worker.reference_change); None where
    # not measured, or where no tolerance would do (exact values, shapes or dtypes differed)
    reference_change: float | None = None
    input_seed: int | None = None  # what the test inputs were drawn from (EvalConfig.input_seed draws them again)

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["correct"] = self.correct
        return d

    def feedback(self, limit: int = 3000) -> str:
        """What the model sees next round: the compiler error, the mismatch, or the timing."""
        if self.status == "gate":
            text = f"Your code was rejected ({', '.join(self.gate_rules)}): {self.message}"
        elif self.status == "compile":
            text = f"Your code failed to build:\n{self.compile_log or self.message}"
        elif self.status == "tamper":
            text = f"Your code was rejected: it reached into the evaluation harness. {self.message}"
        elif self.status == "error":  # the machine or the problem failed, not the kernel
            text = f"The evaluation could not judge your kernel: {self.message}"
        elif self.correct:
            text = f"Correct. {self.message}"
            if self.review:  # e.g. a timed call slow only on new inputs: the model should hear why
                text += "\nFlagged for review: " + " ".join(f"({i}) {r}" for i, r in enumerate(self.review, 1))
            if self.profile:
                text += f"\nProfiler summary (top ops):\n{self.profile}"
        else:
            text = f"Your kernel is not correct ({self.status}): {self.message}"
        return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2:]


def source_hash(source: str, device: str) -> str:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return hashlib.sha256(f"{kind}\0{source}".encode()).hexdigest()[:20]


# The worker's modules, copied into the workspace as assay_kernel_<name>.py for every run.
WORKER_MODULES = ("worker", "timing")
# What a run leaves in a workspace for the next one there: the extension builds (the
# TORCH_EXTENSIONS_DIR; a CUDA build takes a minute). The rest goes before every run: the
# candidate's earlier processes could write anything there, and a json.py or __pycache__ beside
# the worker, a .pth in the user site (HOME is the workspace), a Triton cache or a link where the
# harness writes would reach the next run or, through a link, out of the sandbox.
KEPT_IN_WORKSPACE = "build"


def fresh_workspace(ws: Path, files: dict[str, str]) -> None:
    """Empties `ws` but for its build directory (a real one, not a link), then writes `files`
    (name -> text) there as new files: nothing is left at their names to write through."""
    for entry in os.scandir(ws):
        if entry.name == KEPT_IN_WORKSPACE and entry.is_dir(follow_symlinks=False):
            continue
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            os.unlink(entry.path)
    for name, text in files.items():
        (ws / name).write_text(text)


def default_cache_dir() -> Path:
    env = os.environ.get("ASSAY_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "assay" / "kernels"


def require_torch() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UserError("kernel mode needs PyTorch, which is not installed; run "
                        "`pip install 'assay[kernels]'`.")


def require_cuda(device: str) -> None:
    """A CUDA `--device` must name a GPU that this Python's torch can use; say so before any
    model call or build instead of blaming every candidate for the machine."""
    import subprocess

    try:
        index = int(device.split(":", 1)[1]) if ":" in device else 0
    except ValueError:
        raise UserError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N.") from None
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    count = int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else 0
    if index >= count:
        raise UserError(f"--device {device} names a GPU that torch cannot use here ({count} CUDA device(s) "
                        "visible); use --device cpu, or a machine with an NVIDIA GPU and a CUDA build of torch.")


def require_triton_interpreter() -> None:
    """Triton kernels on the CPU run in Triton's interpreter. Up to Triton 3.6 it turns a loop
    bound into an int in a way numpy 2.4 refuses (a TypeError from every `range(0, n, BLOCK)`;
    Triton 3.7 fixed it): say so once instead of blaming every candidate that loops."""
    from importlib.metadata import PackageNotFoundError, version

    def release(v: str) -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", v)
        return (int(m[1]), int(m[2])) if m else (0, 0)

    try:
        triton, numpy = version("triton"), version("numpy")
    except PackageNotFoundError:
        return
    if release(triton) < (3, 7) and release(numpy) >= (2, 4):
        raise UserError(f"Triton {triton}'s CPU interpreter cannot run kernels that loop under numpy {numpy} "
                        "(Triton 3.7 fixed it); install 'numpy<2.4' or triton>=3.7, or use --device cuda.")


class KernelEvaluator:
    """Runs candidates through the protocol. `sandbox=None`: kernel_sandbox(device), made at
    first use; an UnsafeSandbox (--unsafe-no-sandbox only) means a plain child process."""

    def __init__(self, config: EvalConfig, sandbox: Sandbox | None = None) -> None:
        self.config = config
        self._sandbox = sandbox
        self.cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot make the kernel build cache {self.cache} ({e.strerror}); pass --cache-dir "
                            "or set ASSAY_KERNEL_CACHE to a writable directory.") from None
        self._lock = threading.Lock()

    # -- processes -------------------------------------------------------------------------
    @property
    def sandbox(self) -> Sandbox:
        with self._lock:
            if self._sandbox is None:
                from assay.kernels.sandbox import kernel_sandbox

                self._sandbox = kernel_sandbox(self.config.device)
            return self._sandbox

    def _env(self, ws: Path) -> dict[str, str]:
        bindir = str(Path(sys.executable).parent)
        env = {
            "PATH": f"{bindir}:/usr/local/cuda/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": ".", "LANG": "C.UTF-8",  # relative: the worker anchors them at its cwd, which
            "TORCH_EXTENSIONS_DIR": KEPT_IN_WORKSPACE, "TRITON_CACHE_DIR": "triton",  # a sandbox may remount
            "MAX_JOBS": os.environ.get("MAX_JOBS", "4"), "PYTHONDONTWRITEBYTECODE": "1",  # for child Pythons
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            # the sandbox uid has no passwd entry; getpass.getuser() (torch.compile's cache) needs one
            "USER": "sandbox", "LOGNAME": "sandbox",
        }
        for k in ("CUDA_VISIBLE_DEVICES", "CC", "CXX"):
            if k in os.environ:
                env[k] = os.environ[k]
        if not self.config.is_cuda:
            env["TRITON_INTERPRET"] = "1"  # Triton kernels run on CPU through the interpreter
            env["CUDA_VISIBLE_DEVICES"] = ""
        else:  # both modes: the eval process imports the candidate too, and load_inline rechecks its build
            env.update(build_env(ws))
        return env

    def _launch(self, ws: Path, args: list[str], timeout: float, stdin: bytes | None = None) -> ExecResult:
        """The sandbox's Python with `args`, in `ws`, with the environment candidates get."""
        sandbox = self.sandbox
        # -I: neither the workspace (the script's directory, the cwd) nor a user site-packages
        # (HOME is the workspace) on sys.path, and no PYTHON* variable read; -B: no bytecode written
        cmd = [sandbox.python(), "-I", "-B", *args]
        env = self._env(ws)
        if sandbox.name != "unsafe":
            # memory: the sandbox's cgroup (with /dev/nvidia* bound it sets no RLIMIT_AS)
            limits = Limits(wall_s=timeout, memory_mb=self.config.memory_mb, pids=512, fsize_mb=1024,
                            output_bytes=1 << 20, env=env)
            return sandbox.run(cmd, ws, limits, stdin=stdin)
        # --unsafe-no-sandbox: a plain child process
        return run_process(cmd, cwd=str(ws), env=env, wall_s=timeout, output_bytes=1 << 20, stdin=stdin,
                           # no address-space cap on CUDA: the driver reserves far more than it uses
                           preexec_fn=rlimit_preexec(timeout + 5, None if self.config.is_cuda
                                                     else self.config.memory_mb, None, 2048))

    def check_device(self) -> None:
        """Run a few torch ops on the configured device where candidates run (this sandbox, their
        environment). A sandbox that cannot reach the GPU (device nodes its uid may not open, a
        driver that needs more of the machine than is bound) fails here once, in one sentence,
        instead of as an `error` verdict for every candidate."""
        device = self.config.device
        code = (f"import torch; x = torch.arange(4.0, device={device!r}); "
                "assert float((x * 2).sum()) == 12.0; print('device ok')")
        with tempfile.TemporaryDirectory(prefix="device-check-", dir=self.cache) as d:
            res = self._launch(Path(d), ["-c", code], timeout=300)
        if res.exit_code != 0 or "device ok" not in res.stdout:
            why = "timed out" if res.timed_out else \
                (res.stderr.strip().splitlines() or [f"exit code {res.exit_code}"])[-1][:300]
            if self.sandbox.name == "unsafe":  # already a plain process: only the environment differs
                raise SandboxUnavailable(f"torch cannot use {device} where candidates run (a plain process with "
                                         f"the candidates' environment: {why}); check the CUDA install and "
                                         "CUDA_VISIBLE_DEVICES.")
            hint = "the sandbox's uid must be able to open /dev/nvidia*; or, " if self.config.is_cuda else ""
            raise SandboxUnavailable(f"torch cannot use {device} where candidates run ({self.sandbox.name} sandbox: "
                                     f"{why}); {hint}on a machine you trust, pass --unsafe-no-sandbox.")

    def _run(self, ws: Path, files: dict[str, str], spec: dict,
             timeout: float) -> tuple[dict | None, ExecResult, list[str]]:
        """Runs the worker on `spec` in `ws`, emptied but for its builds and given `files` and
        fresh copies of the worker's own. The worker's result (None if it printed none), the
        process, and the sides (reference, candidate-init, candidate, timing) it said it was
        running, in order. Signs that candidate code reached into the worker override any result:
        the audit guard's mark or exit code, a second result line, or one that is not the
        worker's JSON."""
        nonce = secrets.token_hex(8)
        spec_name = f"spec_{spec['mode']}.json"
        here = Path(__file__).parent
        fresh_workspace(ws, {**files, spec_name: json.dumps(spec),
                             **{f"assay_kernel_{m}.py": (here / f"{m}.py").read_text() for m in WORKER_MODULES}})
        res = self._launch(ws, ["assay_kernel_worker.py", spec_name], timeout, stdin=(nonce + "\n").encode())
        prefix, at = f"{MARK} {nonce} ", f"{PHASE} {nonce} "
        results, sides, tamper = [], [], None
        for line in res.stdout.splitlines():
            if line.startswith(prefix):
                results.append(line[len(prefix):])
            elif line.startswith(at):
                sides.append(line[len(at):].strip())
            elif line.startswith(TAMPER) and tamper is None:
                tamper = line[len(TAMPER):].strip()
        if tamper is None and res.exit_code == TAMPER_EXIT and not results:
            tamper = f"the process ended with the audit guard's exit code {TAMPER_EXIT}"
        if tamper is None and len(results) > 1:
            tamper = f"{len(results)} result lines were printed; the worker prints one"
        found = None
        if tamper is None and results:
            try:
                found = json.loads(results[0])
            except ValueError:
                tamper = "the result line is not the worker's JSON"
            if not isinstance(found, dict) or found.get("status") not in STATUSES + ("built",):
                tamper, found = tamper or "the result line is not the worker's", None
        if tamper is not None:
            found = {"status": "tamper", "message": (
                f"candidate code reached into the evaluation process ({tamper}); a verdict from that process "
                "cannot be trusted")}
        return found, res, sides

    @contextlib.contextmanager
    def _workspace(self, problem: Problem, source: str):
        """(the candidate's workspace, its source hash, the files a run there starts from), held
        for this thread and process alone: a run empties the workspace first."""
        h = source_hash(source, self.config.device)
        ws = self.cache / h
        ws.mkdir(parents=True, exist_ok=True)
        with open(self.cache / f"{h}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another open file, in this process too, waits here
            yield ws, h, {"candidate.py": source, f"problem_{problem.digest}.py": problem.source}

    # -- stages ----------------------------------------------------------------------------
    def gate(self, source: str) -> G.GateResult:
        return G.check(source, self.config.policy)

    def build(self, problem: Problem, source: str) -> dict:
        """Build in a separate process; cached by source hash (`build.json` in its directory)."""
        if self.gate(source).kernel == "triton":
            # Triton has nothing to build ahead of time: it compiles at first launch, in the
            # evaluation process, which reports its compile errors as build errors.
            return {"ok": True, "status": "built", "message": "triton kernels compile at first launch", "log": ""}
        with self._workspace(problem, source) as (ws, h, files):
            marker = self.cache / f"{h}.build.json"  # outside the workspace: the candidate cannot write it
            if marker.exists():
                return json.loads(marker.read_text())
            spec = {"mode": "compile", "problem_file": f"problem_{problem.digest}.py",
                    "candidate_file": "candidate.py", "device": self.config.device,
                    "seed": self.config.seed}
            found, res, _ = self._run(ws, files, spec, self.config.compile_timeout_s)
            log = (res.stdout[-4000:] + "\n" + res.stderr[-8000:]).strip()
            if res.timed_out:
                out = {"ok": False, "status": "timeout",
                       "message": f"the build took over {self.config.compile_timeout_s:.0f} s", "log": log}
            elif found is None:
                out = {"ok": False, "status": "compile",
                       "message": f"the build process died (exit {res.exit_code}, {res.killed_reason or 'no result'})",
                       "log": log}
            else:
                ok = found["status"] == "built"
                out = {"ok": ok, "status": found["status"], "message": found.get("message", ""),
                       "log": log, "seconds": round(res.duration_s, 2)}
            if out["status"] in ("built", "compile"):  # never cache a timeout or a broken environment
                marker.write_text(json.dumps(out))
            return out

    def check(self, problem: Problem, source: str) -> dict:
        """Correctness (+ timing, + profile) in a fresh process."""
        c = self.config
        spec = {"mode": "eval", "problem_file": f"problem_{problem.digest}.py",
                "candidate_file": "candidate.py", "device": c.device, "seed": c.seed, "input_seed": c.input_seed,
                "trials": max(5, c.trials), "tolerance": c.tolerance, "profile": c.profile,
                "census": {"permitted": sorted(G.census_permitted(c.policy)),
                           "allowed_calls": sorted(G.allowed_calls(c.policy)),
                           "operators": sorted(G.OPERATOR_OPS)} if c.census else None,
                "timing": {"warmup": c.warmup, "trials": c.timing_trials, "repeats": c.repeats,
                           "rotate": c.rotate, "rotate_bytes": c.rotate_bytes, "baselines": list(c.baselines)} if c.timed else None}
        with self._workspace(problem, source) as (ws, _, files):
            found, res, sides = self._run(ws, files, spec, c.eval_timeout_s)
        if found is not None and not res.timed_out:
            return found
        return self._died(res, sides)

    def _died(self, res: ExecResult, sides: list[str]) -> dict:
        """The verdict for an evaluation that timed out or ended with no result, by the side the
        worker said was running. The reference's fault (or this machine's), not fed back as the
        kernel's, only before the candidate's forward first ran: that could have used up the
        time or left the reference short of memory."""
        if res.timed_out:
            what = f"took over {self.config.eval_timeout_s:.0f} s"
        elif res.killed_reason == "memory":
            what = f"process ran out of memory (exit {res.exit_code}; the sandbox allows {self.config.memory_mb} MiB)"
        else:
            what = f"process died (exit {res.exit_code}, {res.killed_reason or 'no result'})"
        if sides[-1:] == ["reference"] and "candidate" not in sides:
            hint = "; pass --shrink N to check it at smaller shapes" if res.timed_out or res.killed_reason == "memory" \
                else ""
            return {"status": "error", "message": f"the evaluation {what} while the reference Model ran, so no "
                                                  f"candidate can be checked against this problem here{hint}"}
        who = {"candidate": " while the candidate ran", "candidate-init": " while ModelNew was constructed",
               "reference": " while the reference Model ran, after the candidate's forward had",
               "timing": " while the candidate and the reference were timed, after the candidate had passed "
                         "every correctness check"}.get(sides[-1] if sides else "", "")
        if res.timed_out:
            return {"status": "timeout", "message": f"the evaluation {what}{who}"}
        tail = "\n".join(line for line in (res.stderr or res.stdout).splitlines()[-40:]
                         if not line.startswith(PHASE)).strip()[-3000:]
        return {"status": "runtime", "message": f"the evaluation {what}{who}" + (f":\n{tail}" if tail else "")}

    def evaluate(self, problem: Problem, source: str, cid: str = "candidate") -> Verdict:
        g = self.gate(source)
        h = source_hash(source, self.config.device)
        if not g.ok:
            return Verdict(cid, "gate", g.summary(), gate_rules=g.rules, source_hash=h)
        built = self.build(problem, source)
        return self.evaluate_built(problem, source, cid, built)

    def evaluate_built(self, problem: Problem, source: str, cid: str, built: dict) -> Verdict:
        """The verdict on a candidate whose `build` result is `built`: correctness, then timing.
        No gate: `evaluate` puts it first; benches that check what the run alone catches skip it."""
        h = source_hash(source, self.config.device)
        if not built["ok"]:
            return Verdict(cid, built["status"] if built["status"] in STATUSES else "compile", built["message"],
                           compile_log=(built["message"] + "\n" + built.get("log", ""))[-8000:], source_hash=h)
        r = self.check(problem, source)
        v = Verdict(cid, r["status"] if r["status"] in STATUSES else "error", r.get("message", ""), source_hash=h,
                    gate_rules=list(r.get("rules", [])), profile=r.get("profile"),
                    reference_change=r.get("reference_change"), input_seed=r.get("input_seed"))
        if v.status == "compile":
            v.compile_log = v.message
        if v.correct and r.get("timing"):
            self._apply_timing(v, r["timing"])
        elif v.correct:
            v.message = f"matches the reference on {r.get('trials')} trials (both orders, inputs unchanged, " \
                        f"repeatable); not timed on {self.config.device}"
        if v.correct and r.get("constant_passes"):
            v.review.append(f"the reference gave the same output (within the tolerance) on all {r.get('trials')} "
                            "trials' inputs: a kernel that returns a constant would pass this problem too, so this "
                            "verdict and speedup say little about the kernel")
        return v

    def _apply_timing(self, v: Verdict, t: dict) -> None:
        c = self.config
        v.timing = t
        if t.get("wrong_while_timed"):
            v.status = "mismatch"
            v.message = ("right when checked, wrong while timed (work skipped once the checks seemed over, a "
                         "result cached for an input seen before and answered after its values changed in place, "
                         f"or an output buffer reused by later calls): {t['wrong_while_timed']}")
            return
        if t.get("stale_after_timing"):
            v.status = "stale"
            v.message = ("after the timing run the same input buffers got new values and the candidate's "
                         f"output was wrong (results cached across calls): {t['stale_after_timing']}")
            return

        def med(name: str, mode: str) -> float | None:
            runs = t["runs"].get(name, {}).get(mode) or []
            return statistics.median(r["median_ms"] for r in runs) if runs else None

        checked = t.get("checked_calls", [])
        slower = slow_when_inputs_change(checked)
        # A kernel that works only on inputs it has not seen is timed on the calls where it had to.
        new = {mode: (time_on_new_inputs(checked, mode) if slower else None) or med("candidate", mode)
               for mode in ("synced", "device")}
        for base in ("eager", "compile"):
            for mode in ("synced", "device"):
                v.speedups[f"{base}/{mode}"] = speedup(med(base, mode), new[mode])
        v.ref_ms, v.new_ms = med(c.baseline, c.timing_basis), new[c.timing_basis]
        v.speedup = v.speedups.get(f"{c.baseline}/{c.timing_basis}")
        if v.speedup is not None and v.speedup > REVIEW_SPEEDUP:
            v.review.append(f"speedup {v.speedup:.1f}x is over {REVIEW_SPEEDUP:.0f}x: check it by hand")
        dev, syn = med("candidate", "device"), med("candidate", "synced")
        if c.is_cuda and dev is not None and syn is not None and escaped_stream(dev, syn):
            v.suspect = True
            v.review.append(f"synced time {syn:.3f} ms is far above device time {dev:.3f} ms: work may run "
                            "outside the timed stream")
        if slower:
            v.suspect = True
            cached = med("candidate", c.timing_basis)
            v.review.append(f"each time its inputs had just been given new values, a timed call took {slower:.1f}x "
                            f"or more the median of the others ({len(checked)} measurements): a kernel that works "
                            "only on inputs it has not seen (results cached by input values) is timed on the cache, "
                            "so its time here is that of the calls with new values"
                            + (f" ({c.timing_basis} time {v.new_ms:.4f} ms, the others' median {cached:.4f} ms)"
                               if v.new_ms and cached else ""))
        parts = [f"candidate {v.new_ms:.4f} ms vs {c.baseline} {v.ref_ms:.4f} ms ({c.timing_basis} time)"
                 if v.new_ms and v.ref_ms else "timed"]
        if v.speedup:
            parts.append(f"speedup {v.speedup:.2f}x")
        v.message = "; ".join(parts)

    def evaluate_many(self, problem: Problem, items: list[tuple[str, str]]) -> list[Verdict]:
        """Gate all, build the survivors in parallel, evaluate each as soon as it is built (one at a
        time: evaluations own the device). Returns verdicts in input order."""
        verdicts: dict[str, Verdict] = {}
        to_build = []
        for cid, src in items:
            g = self.gate(src)
            if g.ok:
                to_build.append((cid, src))
            else:
                verdicts[cid] = Verdict(cid, "gate", g.summary(), gate_rules=g.rules,
                                        source_hash=source_hash(src, self.config.device))
        evaluator = ThreadPoolExecutor(max_workers=1)
        futures: list[Future] = []
        with ThreadPoolExecutor(max_workers=max(1, self.config.compile_workers)) as builders:
            builds = {builders.submit(self.build, problem, src): (cid, src) for cid, src in to_build}
            for fut in as_completed(builds):
                cid, src = builds[fut]
                futures.append(evaluator.submit(self.evaluate_built, problem, src, cid, fut.result()))
        for f in futures:
            v = f.result()
            verdicts[v.candidate_id] = v
        evaluator.shutdown()
        return [verdicts[cid] for cid, _ in items]

    def clear(self, source: str) -> None:
        h = source_hash(source, self.config.device)
        shutil.rmtree(self.cache / h, ignore_errors=True)
        (self.cache / f"{h}.build.json").unlink(missing_ok=True)
