"""`assay kernel` (search for a fast kernel), `assay kernel eval` (check one candidate) and
`assay bench kernelbench` (whole KernelBench levels, fast_p table).

torch is imported only inside the worker processes and behind `require_torch()`, so
`assay --help` works without the `kernels` extra."""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from assay.errors import UserError
from assay.words import counted

kernel_app = typer.Typer(help="KernelBench-style CUDA/Triton kernel search and evaluation.",
                         invoke_without_command=True)

_BASELINES = ("eager", "compile")

# The options the three commands share, declared once (typer reads Annotated metadata).
ProblemsDir = Annotated[str, typer.Option("--problems-dir",
                                          help="KernelBench checkout (or ASSAY_KERNELBENCH_DIR).")]
Ids = Annotated[str, typer.Option("--ids", help="Problem numbers, e.g. 1,2,5-9.")]
ModelName = Annotated[str, typer.Option("--model", help="Any litellm model name (or ASSAY_MODEL).")]
Backend = Annotated[str, typer.Option("--backend", help="cuda or triton.")]
Samples = Annotated[int, typer.Option("--samples", "-n", min=1, help="Parallel samples in round 0.")]
Rounds = Annotated[int, typer.Option("--rounds", min=1, help="Rounds (feedback refinement after the first).")]
Device = Annotated[str, typer.Option("--device", help="cuda:N, or cpu (correctness only, Triton interpreted).")]
Trials = Annotated[int, typer.Option("--trials", min=5, help="Correctness trials (at least 5).")]
AllowOps = Annotated[list[str], typer.Option(
    "--allow-op", help="Also allow this torch op in forward, and its nn module (conv2d: nn.Conv2d too).")]
Shrink = Annotated[int, typer.Option(
    "--shrink", min=1, help="Clamp problem shape constants to at most this, keeping their divisors (CPU runs).")]
Baseline = Annotated[str, typer.Option("--baseline", help="eager or compile: what speedup compares to.")]
Timing = Annotated[str, typer.Option("--timing", help="synced (KernelBench per-call) or device (do_bench).")]
Tolerance = Annotated[float, typer.Option(
    "--tolerance", min=0, help="atol=rtol for every float dtype (default: 1e-4 fp32; KernelBench used 1e-2).")]
CacheDir = Annotated[str, typer.Option("--cache-dir",
                                       help="Build cache (default ~/.cache/assay/kernels, or ASSAY_KERNEL_CACHE).")]
SandboxName = Annotated[str, typer.Option("--sandbox",
                                          help="local (bubblewrap), the default; the docker image has no torch.")]
Unsafe = Annotated[bool, typer.Option("--unsafe-no-sandbox",
                                      help="Run model code without isolation: only on a machine you trust.")]
RunId = Annotated[str, typer.Option("--run-id",
                                    help="Run id (default: derived from the inputs; same id resumes).")]
RunsDir = Annotated[str, typer.Option("--runs-dir", help="Run store root (default ./runs).")]
MaxUsd = Annotated[float, typer.Option("--max-usd", min=0, help="Stop generating after spending this much.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing; the results are still written.")]


def _config(*, device: str, backend: str | None, tolerance: float | None, trials: int, baseline: str,
            timing: str, cache_dir: str | None, profile: bool, time_on_cpu: bool,
            allow_ops: list[str] | None, compile_workers: int, timing_trials: int = 100, repeats: int = 1):
    from assay.kernels.evaluate import EvalConfig
    from assay.kernels.gate import GatePolicy

    if backend not in (None, "cuda", "triton"):
        raise UserError(f"unknown --backend {backend!r}; choose cuda or triton.")
    if baseline not in _BASELINES:
        raise UserError(f"unknown --baseline {baseline!r}; choose eager or compile.")
    if timing not in ("synced", "device"):
        raise UserError(f"unknown --timing {timing!r}; choose synced (KernelBench) or device (do_bench-like).")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UserError(f"unknown --device {device!r}; use cpu or cuda[:N].")
    on_cpu = device == "cpu"
    policy = GatePolicy(backend=backend, allow_cpp=on_cpu).allowing(*(allow_ops or []))
    return EvalConfig(device=device, trials=trials, tolerance=tolerance, timing=(True if time_on_cpu else None),
                      baseline=baseline, timing_basis=timing, profile=profile and not on_cpu,
                      cache_dir=cache_dir, policy=policy, compile_workers=compile_workers,
                      timing_trials=timing_trials, repeats=repeats,
                      baselines=("eager",) if on_cpu else _BASELINES)


def _require_device(device: str, kernel: str | None) -> None:
    """The machine can judge `kernel` ("triton", "cuda", ...) kernels on `device`, or exit 2."""
    from assay.kernels.evaluate import require_cuda, require_triton_interpreter

    if device.startswith("cuda"):
        require_cuda(device)
    elif kernel == "triton":
        require_triton_interpreter()


def _evaluator(cfg, name: str | None, unsafe: bool):
    """The evaluator whose candidates build and run in the local sandbox with this venv read-only
    (and /dev/nvidia* on CUDA), or in a plain child process only with --unsafe-no-sandbox. On
    CUDA it first checks that torch can use the GPU there, so a sandbox that cannot reach it is
    one sentence, not an `error` verdict for every candidate."""
    from assay.config import load_settings
    from assay.kernels.evaluate import KernelEvaluator
    from assay.kernels.sandbox import kernel_sandbox
    from assay.sandbox.base import make_sandbox

    settings = load_settings({"sandbox": name, "unsafe_no_sandbox": unsafe or None})
    if settings.unsafe_no_sandbox:
        box = make_sandbox(settings.sandbox, unsafe_no_sandbox=True)
    elif settings.sandbox == "docker":
        raise UserError("kernel mode cannot use the docker sandbox (its image has no torch); "
                        "use --sandbox local.")
    else:
        box = kernel_sandbox(cfg.device)
    ev = KernelEvaluator(cfg, box)
    if cfg.is_cuda:
        ev.check_device()
    return ev


def _load_problems(problem: Path | None, problems_dir: str | None, level: int | None, ids: str | None,
                   shrink: int | None):
    from assay.kernels.problem import load_level, load_problem, parse_ids, problems_root

    if problem is not None:
        return [load_problem(problem, shrink=shrink)]
    if level is None:
        raise UserError("give --problem FILE.py, or --problems-dir DIR with --level L.")
    return load_level(problems_root(problems_dir), level, parse_ids(ids), shrink=shrink)


def _print_verdict(out, v) -> None:
    from rich.markup import escape

    color = "green" if v.correct else "red"
    out.print(f"[{color}]{v.status.upper()}[/{color}] {escape(v.candidate_id)}: {escape(v.message)}", markup=True,
              highlight=False, soft_wrap=True)
    if v.status == "compile" and v.compile_log:
        out.print(v.compile_log[-3000:], markup=False, highlight=False)
    for note in v.review:
        out.print(f"[yellow]review:[/yellow] {note}")
    if v.input_seed is not None:
        out.print(f"test inputs drawn from seed {v.input_seed} (assay kernel eval --input-seed {v.input_seed} "
                  "draws the same)", highlight=False, soft_wrap=True)


@functools.lru_cache(maxsize=1)
def _hardware() -> tuple[int | None, str, str | None]:
    """CPU count, CPU model and GPU name; asked once per process (the results are rewritten after
    every problem)."""
    import os

    from assay.machine import cpu_model

    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        gpu = None
    return os.cpu_count(), cpu_model(), gpu


def _machine() -> dict[str, Any]:
    nproc, cpu, gpu = _hardware()
    return {"nproc": nproc, "cpu": cpu, "gpu": gpu, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _machine_line(m: dict[str, Any]) -> str:
    return f"{m['nproc']} CPUs ({m['cpu']}), {m['gpu'] or 'no GPU'}; {m['date']}"


@kernel_app.callback()
def kernel_search(
    ctx: typer.Context,
    problem: Path = typer.Option(None, "--problem", help="One KernelBench problem file."),
    problems_dir: ProblemsDir = None,
    level: int = typer.Option(None, "--level", min=1, help="KernelBench level (1, 2 or 3) under --problems-dir."),
    ids: Ids = None,
    model: ModelName = None,
    backend: Backend = "triton",
    samples: Samples = 4,
    rounds: Rounds = 3,
    device: Device = "cuda:0",
    baseline: Baseline = "eager",
    timing: Timing = "synced",
    tolerance: Tolerance = None,
    trials: Trials = 5,
    shrink: Shrink = None,
    allow_op: AllowOps = None,
    cache_dir: CacheDir = None,
    sandbox: SandboxName = None,
    unsafe_no_sandbox: Unsafe = False,
    run_id: RunId = None,
    runs_dir: RunsDir = None,
    max_usd: MaxUsd = None,
    api_base: str = typer.Option(None, "--api-base", help="OpenAI-compatible server URL."),
    quiet: Quiet = False,
) -> None:
    """Search for a fast, correct kernel for each problem (samples + feedback rounds). Every round
    is saved in the run store; re-running the same command resumes where it stopped."""
    if ctx.invoked_subcommand is not None:
        return
    from assay.commands.common import console, make_budget, make_model, open_store, run_id_for, settings_from
    from assay.kernels.evaluate import require_torch
    from assay.kernels.search import SearchConfig

    require_torch()
    settings = settings_from(model=model, api_base=api_base, max_usd=max_usd, runs_dir=runs_dir,
                             quiet=quiet or None)
    out = console(settings.quiet)
    probs = _load_problems(problem, problems_dir, level, ids, shrink)
    _require_device(device, backend)
    cfg = _config(device=device, backend=backend, tolerance=tolerance, trials=trials, baseline=baseline,
                  timing=timing, cache_dir=cache_dir, profile=True, time_on_cpu=False,
                  allow_ops=allow_op, compile_workers=4)
    search_cfg = SearchConfig(samples=samples, rounds=rounds, backend=backend, allowed_ops=tuple(allow_op or ()))
    settings_id = _run_settings(cfg, search_cfg, settings.model)
    rid = run_id or run_id_for("kernel", [p.digest for p in probs], settings_id)
    store = open_store(settings, rid, settings_id)
    budget = make_budget(settings)
    llm = make_model(settings, store, budget, required=True, what="assay kernel")
    ev = _evaluator(cfg, sandbox, unsafe_no_sandbox)
    for p in probs:
        res = _search_showing_rounds(out, p, llm, ev, search_cfg, budget, store)
        where = store.task_dir(p.id)
        if res.best is not None:
            out.print(f"{p.id}: best {res.best.cid} ({res.best.verdict.message}); {where}/result.py holds it",
                      highlight=False)
        else:
            tried = counted(len(res.attempts), "attempt")
            out.print(f"{p.id}: no correct kernel in {tried}; every round is in {where}", highlight=False)
        if res.stopped:
            out.print(f"[yellow]stopped early: {res.stopped}; re-running the same command goes on from here[/yellow]")
    out.print(f"run directory: {store.dir}", highlight=False)


def _search_showing_rounds(out, p, llm, ev, search_cfg, budget, store):
    """One problem's search, with a spinner naming the round under way (a round on a GPU is minutes
    of model calls, builds and timing) and each kernel's verdict as its round ends."""
    from assay.kernels.search import search

    def doing(r: int) -> str:
        return f"{p.id}: round {r + 1} of {search_cfg.rounds}: asking the model, then building and checking"

    with out.status(doing(0)) as status:
        def shown(r, attempts) -> None:
            for a in attempts:
                _print_verdict(out, a.verdict)
            if r + 1 < search_cfg.rounds:
                status.update(doing(r + 1))

        return search(p, llm, ev, search_cfg, budget, store=store, on_round=shown)


def _run_settings(cfg, search_cfg, model: str | None) -> dict[str, Any]:
    """What a run's results depend on: the run id is derived from it, so a change starts afresh."""
    return {"model": model, "backend": search_cfg.backend, "samples": search_cfg.samples,
            "rounds": search_cfg.rounds, "device": cfg.device, "baseline": cfg.baseline,
            "timing": cfg.timing_basis, "tolerance": cfg.tolerance, "trials": cfg.trials,
            "allowed_ops": sorted(cfg.policy.allowed_ops)}


@kernel_app.command("eval")
def kernel_eval(
    problem: Path = typer.Option(..., "--problem", help="KernelBench problem file."),
    candidate: Path = typer.Option(..., "--candidate", help="File defining ModelNew."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda:N."),
    backend: str = typer.Option(None, "--backend", help="Require this kernel kind: cuda or triton."),
    baseline: Baseline = "eager",
    timing: Timing = "synced",
    tolerance: Tolerance = None,
    trials: Trials = 5,
    shrink: Shrink = None,
    time_on_cpu: bool = typer.Option(False, "--time", help="Also time on CPU (host clock; not a GPU result)."),
    input_seed: int = typer.Option(None, "--input-seed", min=0, help=(
        "Draw the test inputs from this seed, as a verdict names it, to see the same inputs again "
        "(default: a secret seed per evaluation, so no kernel can know its inputs ahead).")),
    allow_op: AllowOps = None,
    cache_dir: CacheDir = None,
    sandbox: SandboxName = None,
    unsafe_no_sandbox: Unsafe = False,
    json_out: Path = typer.Option(None, "--json", help="Also write the verdict as JSON here."),
    quiet: Quiet = False,
) -> None:
    """Run one candidate through gate, build, correctness and timing; exit 0 only if it is correct."""
    from assay.commands.common import console
    from assay.kernels.evaluate import KernelEvaluator, require_torch
    from assay.kernels.problem import load_problem
    from assay.store import write_json

    out = console(quiet)
    if not candidate.is_file():
        what = "is not a file" if candidate.exists() else "does not exist"
        raise UserError(f"candidate file {candidate} {what}; pass a .py file defining ModelNew.")
    source = candidate.read_text(encoding="utf-8")
    prob = load_problem(problem, shrink=shrink)
    cfg = _config(device=device, backend=backend, tolerance=tolerance, trials=trials, baseline=baseline,
                  timing=timing, cache_dir=cache_dir, profile=False, time_on_cpu=time_on_cpu,
                  allow_ops=allow_op, compile_workers=1)
    cfg.input_seed = input_seed
    from assay.kernels.gate import check

    g = check(source, cfg.policy)
    if g.ok:
        require_torch()  # the gate needs no torch; everything after it does
        _require_device(device, g.kernel)
    ev = _evaluator(cfg, sandbox, unsafe_no_sandbox) if g.ok else KernelEvaluator(cfg)  # a rejection needs no sandbox
    v = ev.evaluate(prob, source, candidate.stem)
    _print_verdict(out, v)
    if "torch-compute" in v.gate_rules:
        out.print("(torch does some of the work in forward; where that is allowed, let the op through with "
                  "--allow-op, e.g. --allow-op conv2d, which also admits nn.Conv2d)")
    if json_out:
        write_json(json_out, v.to_dict())
    raise typer.Exit(0 if v.correct else 1)


def kernelbench(
    problems_dir: ProblemsDir = None,
    level: int = typer.Option(..., "--level", min=1, help="KernelBench level (1, 2 or 3) under --problems-dir."),
    ids: Ids = None,
    model: ModelName = None,
    candidates_dir: Path = typer.Option(None, "--candidates", help="Evaluate given <problem-stem>.py files "
                                        "instead of searching with a model."),
    backend: Backend = "triton",
    samples: Samples = 4,
    rounds: Rounds = 3,
    device: Device = "cuda:0",
    baseline: Baseline = "eager",
    timing: Timing = "synced",
    tolerance: Tolerance = None,
    allow_op: AllowOps = None,
    shrink: Shrink = None,
    out: Path = typer.Option(Path("benches/results"), "--out", help="Where the JSON + markdown go."),
    cache_dir: CacheDir = None,
    sandbox: SandboxName = None,
    unsafe_no_sandbox: Unsafe = False,
    run_id: RunId = None,
    runs_dir: RunsDir = None,
    max_usd: MaxUsd = None,
    quiet: Quiet = False,
) -> None:
    """A whole KernelBench level: per-problem results and the level's fast_p table. Each problem's
    result is kept in the run store as it finishes, and the table is rewritten after each one;
    re-running the same command resumes."""
    import hashlib

    from assay.commands.common import console, make_budget, make_model, open_store, run_id_for, settings_from
    from assay.kernels.evaluate import require_torch
    from assay.kernels.search import SearchConfig

    require_torch()
    settings = settings_from(model=model, max_usd=max_usd, runs_dir=runs_dir, quiet=quiet or None)
    con = console(settings.quiet)
    probs = _load_problems(None, problems_dir, level, ids, shrink)
    _require_device(device, backend)
    cfg = _config(device=device, backend=backend, tolerance=tolerance, trials=5, baseline=baseline,
                  timing=timing, cache_dir=cache_dir, profile=candidates_dir is None,
                  time_on_cpu=False, allow_ops=allow_op, compile_workers=4)
    search_cfg = SearchConfig(samples=samples, rounds=rounds, backend=backend, allowed_ops=tuple(allow_op or ()))
    given: dict[str, str] = {}
    if candidates_dir is not None:
        if not candidates_dir.is_dir():
            raise UserError(f"--candidates {candidates_dir} is not a directory; give the directory that holds "
                            "one <problem-stem>.py per problem.")
        given = {p.id: f.read_text(encoding="utf-8") for p in probs
                 if (f := candidates_dir / f"{Path(p.path).stem}.py").is_file()}
    settings_id = {**_run_settings(cfg, search_cfg, None if candidates_dir is not None else settings.model),
                   "candidates": {pid: hashlib.sha256(src.encode()).hexdigest()[:16] for pid, src in given.items()}
                   if candidates_dir is not None else None}
    rid = run_id or run_id_for(f"kernelbench-level{level}", [p.digest for p in probs], settings_id)
    store = open_store(settings, rid, settings_id)
    budget = make_budget(settings)
    llm = None if candidates_dir else make_model(settings, store, budget, required=True,
                                                   what="assay bench kernelbench (or pass --candidates DIR)")
    ev = _evaluator(cfg, sandbox, unsafe_no_sandbox)
    rows = []
    for p in probs:
        if candidates_dir is not None:
            with con.status(f"{p.id}: building and checking the given kernel"):
                row = _given_candidate_row(p, given.get(p.id), ev, store, candidates_dir)
        else:
            res = _search_showing_rounds(con, p, llm, ev, search_cfg, budget, store)
            d = res.to_dict()
            best = d["best_verdict"]
            row = {"problem_id": p.id, "correct": d["correct"], "speedup": d["speedup"],
                   "status": best["status"] if best else "none", "review": best["review"] if best else [],
                   "search": d}
        rows.append(row)
        sp = f", {row['speedup']:.2f}x" if row.get("speedup") else ""
        why = f" ({row['message']})" if row.get("message") else ""
        con.print(f"{p.id}: {row['status']}{sp}{why}", highlight=False)
        for note in row.get("review") or []:
            con.print(f"  review: {note}", highlight=False)
        written = write_kernelbench_results(rows, out, level=level, model=settings.model if llm else None,
                                            cfg=cfg, of=len(probs), run_dir=store.dir)
    from assay.kernels.metrics import fast_p_table

    table = fast_p_table(rows)
    fast = ", ".join(f"fast_{p} {v:.2f}" for p, v in table["fast_p"].items())
    gm = table["geomean_speedup_correct"]
    flagged = f", {table['flagged']} of them flagged for review" if table["flagged"] else ""
    con.print(f"{fast} over {counted(table['n'], 'problem')} ({table['correct']} correct{flagged}); geomean "
              f"speedup of the correct ones: {f'{gm:.2f}x' if gm else '-'}", highlight=False)
    con.print(f"written to {written.with_suffix('')}.json/.md; run directory {store.dir}", highlight=False)


def _given_candidate_row(p, source: str | None, ev, store, candidates_dir: Path) -> dict[str, Any]:
    """One problem's row from a given candidate file, evaluated once per run (kept in the store)."""
    if source is None:
        return {"problem_id": p.id, "correct": False, "speedup": None, "status": "missing",
                "message": f"no {Path(p.path).stem}.py in {candidates_dir}"}
    if store.has(p.id, "40_verdict.json"):
        return store.load(p.id, "40_verdict.json")
    v = ev.evaluate(p, source, Path(p.path).stem)
    row = {"problem_id": p.id, "correct": v.correct, "speedup": v.speedup, "status": v.status,
           "review": v.review, "verdict": v.to_dict()}
    if v.status != "error":  # the machine's or the problem's fault: judge it again next time
        store.save(p.id, "40_verdict.json", row)
    return row


def write_kernelbench_results(rows: list[dict], out: Path, *, level: int, model: str | None, cfg,
                              of: int | None = None, run_dir: Path | None = None) -> Path:
    """The level's JSON and markdown; `of` is how many problems the run has, so a table written
    while it is under way says how far it got."""
    from assay.kernels.metrics import fast_p_table
    from assay.store import atomic_write_text, write_json

    table = fast_p_table(rows)
    name = f"kernelbench_level{level}_{(model or 'candidates').replace('/', '_')}"
    out.mkdir(parents=True, exist_ok=True)
    of = len(rows) if of is None else of
    info = {"command": " ".join(shlex.quote(a) for a in sys.argv), "machine": _machine(), "seed": cfg.seed,
            "level": level, "model": model, "device": cfg.device, "baseline": cfg.baseline,
            "fast_p_uses": f"{cfg.timing_basis} time vs {cfg.baseline} "
                           "(synced = KernelBench's per-call time with a device-wide sync)",
            "tolerance": cfg.tolerance, "complete": len(rows) >= of, "problems_done": len(rows),
            "problems_total": of, "run_dir": str(run_dir) if run_dir else None, "summary": table, "problems": rows}
    write_json(out / f"{name}.json", info)
    progress = "" if len(rows) >= of else f"**Under way: {len(rows)} of {of} problems done.**  "
    lines = [f"# KernelBench level {level} ({model or 'given candidates'})", "",
             f"Command: `{info['command']}`  ", f"Machine: {_machine_line(info['machine'])}  ",
             f"Seed: {cfg.seed} (the models' weights; the test inputs' seed is secret, one per verdict, "
             "which names it)  ",
             f"fast_p uses {info['fast_p_uses']}.  "] + ([progress] if progress else []) + ["",
             "| problem | status | speedup | review |", "|---|---|---|---|"]
    for r in rows:
        sp = f"{r['speedup']:.2f}x" if r.get("speedup") else "-"
        notes = "; ".join(r.get("review") or []).replace("|", "/")
        lines.append(f"| {r['problem_id']} | {r['status']} | {sp} | {notes} |")
    gm = table["geomean_speedup_correct"]
    lines += ["", "| n | correct | flagged for review | " + " | ".join(f"fast_{p}" for p in table["fast_p"])
              + " | geomean speedup (correct) |", "|---" * (4 + len(table["fast_p"])) + "|",
              f"| {table['n']} | {table['correct']} | {table['flagged']} | "
              + " | ".join(f"{v:.2f}" for v in table["fast_p"].values()) + (f" | {gm:.2f}x |" if gm else " | - |"), ""]
    atomic_write_text(out / f"{name}.md", "\n".join(lines))
    return out / f"{name}.json"


def register_bench(bench_app: typer.Typer) -> None:
    bench_app.command("kernelbench")(kernelbench)


def register(app: typer.Typer) -> None:
    app.add_typer(kernel_app, name="kernel")
    from assay.commands import bench

    if getattr(bench, "bench_app", None) is not None:
        register_bench(bench.bench_app)
