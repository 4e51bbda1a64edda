"""Which real KernelBench problems still run on CPU once `--shrink N` clamps their shapes.

`assay kernel --device cpu --shrink N` (and the CPU tests) rely on shrinking: every
module-level integer above N, alone or in a tuple, becomes N. This loads every problem of the
given levels from a KernelBench checkout with assay's loader, then runs each shrunken
reference `Model` once on CPU in its own process (the problems are the dataset's own code, not
model-written, so no sandbox) and records which run, which fail and why.

  python benches/kernels/kernelbench_shrink.py --problems-dir KernelBench/ --shrink 64 \
      --kernelbench-commit <sha>

With --protocol it also puts each problem that runs through assay's correctness protocol
(kernels/evaluate.py, in the local sandbox, gate and build skipped) with a candidate that is the
reference itself renamed to ModelNew: the same computation must be judged correct, so anything
else is a false rejection by the protocol (or a problem no candidate could pass). It also records
how far each reference's output moves between the trials' inputs (`reference_change`, the smallest
atol=rtol at which a kernel returning one fixed output would pass) and lists the problems where
a constant would pass at the default tolerance (1e-4) or at KernelBench's (1e-2).

With --protocol --census the worker's op census is on as well (default policy): every reference
it flags (`gate`, torch-compute) is one whose torch compute it sees, by an op it does not permit
or by Python's operators past their budget (the references that compute with operators alone);
the report counts both and lists any reference it lets through, which a candidate could copy
beside any kernel. (The constant-output counts need the census off: they count correct verdicts.)

With --protocol --timed the reference-as-candidate is timed as well (CPU host time, 5 timed calls
after 1 warm-up, eager baseline): timing's hidden checks (the renewed call with all-new values, the
mixed call with a few changed in place, the refill after timing) then run on every problem's own
inputs and reference, so an input they cannot change, or a reference that fails on them, shows as
a verdict other than correct. The verdicts' review notes are kept (on a CPU, time flags are noise).

Writes benches/results/<--name, default kernelbench_shrink_cpu>.{json,md}. The KernelBench checkout is
third-party data and is not committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.kernels.problem import load_level, problems_root  # noqa: E402
from assay.machine import cpu_model  # noqa: E402

RUN_ONE = r"""
import time, torch
torch.manual_seed(0)
model = m.Model(*m.get_init_inputs())
xs = m.get_inputs()
t = time.perf_counter()
with torch.no_grad():
    model(*xs)
print("OK", sum(x.numel() for x in xs if isinstance(x, torch.Tensor)), round(time.perf_counter() - t, 4))
"""


# Loads the problem file named by the script's argument as module `m`.
LOAD_PROBLEM = """import importlib.util, sys
spec = importlib.util.spec_from_file_location("problem", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
"""


def run_script(code: str, path: str, timeout: float, env: dict[str, str] | None = None) -> dict:
    """Runs `code`, with the problem file `path` loaded as module `m`, in a fresh interpreter:
    {"out": its last stdout line}, or {"status": "fail" | "timeout", "error": the last line of
    stderr, or the timeout}."""
    try:
        r = subprocess.run([sys.executable, "-c", LOAD_PROBLEM + code, path], capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": f"over {timeout:.0f} s"}
    if r.returncode == 0 and r.stdout.strip():
        return {"out": r.stdout.strip().splitlines()[-1]}
    return {"status": "fail", "error": (r.stderr.strip().splitlines() or ["(no output)"])[-1][:300]}


def run_one(source: str, timeout: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    t = time.perf_counter()
    try:
        out = run_script(RUN_ONE, f.name, timeout, {"OMP_NUM_THREADS": "2"})
    finally:
        os.unlink(f.name)
    if "out" in out:
        _, numel, forward_s = out.pop("out").split()[-3:]
        out = {"status": "ok", "input_elements": int(numel), "forward_s": float(forward_s)}
    out["wall_s"] = round(time.perf_counter() - t, 2)
    return out


def protocol_verdicts(problems: list, workers: int, census: bool = False, timed: bool = False) -> dict[str, dict]:
    """The reference renamed to ModelNew through the correctness check (no gate; timed only with
    `timed`). With `census`, the worker's op census is on, with the default policy: a reference it
    does not flag computes only with what the census lets through (Python's operators, allocation, views)."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    from assay.kernels.evaluate import EvalConfig, KernelEvaluator
    from assay.kernels.sandbox import kernel_sandbox

    # census off unless asked: the reference run as the candidate computes with torch by design
    timing = dict(timing=True, warmup=1, timing_trials=5, baselines=("eager",)) if timed else dict(timing=False)
    ev = KernelEvaluator(EvalConfig(device="cpu", eval_timeout_s=300, census=census, **timing,
                                    cache_dir=tempfile.mkdtemp(prefix="assay_kb_protocol_")), kernel_sandbox("cpu"))

    def one(p) -> tuple[str, dict]:
        source = re.sub(r"^class Model\(", "class ModelNew(", p.source, flags=re.M)
        source = re.sub(r"super\(Model, self\)", "super(ModelNew, self)", source)
        # nothing to build (no extension): straight to the fresh-process correctness check
        v = ev.evaluate_built(p, source, "reference-as-candidate", {"ok": True, "status": "built"})
        return p.id, {"status": v.status, "message": v.message[:300], "review": v.review,
                      "reference_change": v.reference_change}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, problems))


def constant_passes(row: dict, tol: float) -> bool:
    change = row.get("protocol", {}).get("reference_change")
    return row.get("protocol", {}).get("status") == "correct" and change is not None and change <= tol


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems-dir", required=True, help="a KernelBench checkout (or its KernelBench/ folder)")
    ap.add_argument("--levels", default="1,2,3")
    ap.add_argument("--shrink", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--kernelbench-commit", default=None, help="recorded in the report")
    ap.add_argument("--protocol", action="store_true", help="also run the correctness protocol (see above)")
    ap.add_argument("--workers", type=int, default=2, help="protocol evaluations at once")
    ap.add_argument("--census", action="store_true",
                    help="run the protocol with the op census on: which references it flags, and how")
    ap.add_argument("--timed", action="store_true", help="time the reference-as-candidate too (see above)")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--name", default="kernelbench_shrink_cpu", help="result file stem")
    a = ap.parse_args()
    import torch

    started = time.perf_counter()
    rows, runnable = [], []
    for level in (int(x) for x in a.levels.split(",")):
        for p in load_level(problems_root(a.problems_dir), level, shrink=a.shrink):
            row = {"problem_id": p.id, **run_one(p.source, a.timeout)}
            rows.append(row)
            if row["status"] != "ok":
                print(f"{p.id}: {row['status']}: {row.get('error')}", flush=True)
            else:
                runnable.append(p)
    if a.protocol:
        verdicts = protocol_verdicts(runnable, a.workers, a.census, a.timed)
        for r in rows:
            if r["problem_id"] in verdicts:
                r["protocol"] = verdicts[r["problem_id"]]
                if r["protocol"]["status"] != ("gate" if a.census else "correct"):
                    print(f"{r['problem_id']}: protocol says {r['protocol']['status']}: "
                          f"{r['protocol']['message'][:200]}", flush=True)
    by_level: dict[str, dict[str, int]] = {}
    for r in rows:
        lv = by_level.setdefault(r["problem_id"].split("/")[0], {"problems": 0, "ok": 0, "protocol_correct": 0,
                                                                  "census_flagged": 0, "census_by_operators": 0,
                                                                  "constant_passes_1e-4": 0,
                                                                  "constant_passes_1e-2": 0})
        lv["problems"] += 1
        lv["ok"] += r["status"] == "ok"
        lv["protocol_correct"] += r.get("protocol", {}).get("status") == "correct"
        lv["census_flagged"] += r.get("protocol", {}).get("status") == "gate"
        lv["census_by_operators"] += "with Python operators" in r.get("protocol", {}).get("message", "")
        for tol in ("1e-4", "1e-2"):
            lv[f"constant_passes_{tol}"] += constant_passes(r, float(tol))
    result = {
        "command": "python " + " ".join(shlex.quote(x) for x in [os.path.relpath(__file__, ROOT)] + sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__,
                    "python": sys.version.split()[0]},
        "kernelbench_commit": a.kernelbench_commit, "shrink": a.shrink,
        "wall_s": round(time.perf_counter() - started, 1), "by_level": by_level, "problems": rows,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{a.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    lines = [f"# KernelBench problems on CPU with --shrink {a.shrink}", "",
             f"- command: `{result['command']}`",
             f"- date: {result['date']}; KernelBench commit: {a.kernelbench_commit or 'not given'}",
             f"- machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, torch {m['torch']}; "
             f"wall {result['wall_s']} s", "",
             "| level | problems | reference runs shrunken on CPU | reference-as-candidate judged correct"
             + (" (timed)" if a.timed else "") + " "
             "| a constant output would pass (1e-4 / 1e-2) |",
             "|---|---|---|---|---|"]
    lines += [f"| {lv} | {c['problems']} | {c['ok']} | {c['protocol_correct'] if a.protocol else 'not run'} | "
              + (f"{c['constant_passes_1e-4']} / {c['constant_passes_1e-2']}" if a.protocol else "not run") + " |"
              for lv, c in by_level.items()]
    lines += ["", "Problems that do not run shrunken (use them at full size, on a GPU):", "",
              "| problem | status | error |", "|---|---|---|"]
    lines += [f"| {r['problem_id']} | {r['status']} | {r.get('error', '').replace('|', '/')} |"
              for r in rows if r["status"] != "ok"]
    if a.protocol and a.census:
        passed = [r for r in rows if r.get("protocol", {}).get("status") == "correct"]
        unjudged = [r for r in rows if r.get("protocol", {}).get("status") not in (None, "gate", "correct")]
        lines += ["", "With the op census on (default policy), the references it flags as torch compute, per level: "
                  + ", ".join(f"{lv} {c['census_flagged']} of {c['ok']} ({c['census_by_operators']} by Python's "
                              "operators past their budget, the rest by an op it does not permit)"
                              for lv, c in by_level.items())
                  + ". References it lets through (a candidate could compute as they do beside any kernel): "
                  + ("none." if not passed else ""), ""]
        if passed:
            lines += ["| problem | verdict | message |", "|---|---|---|"]
            lines += [f"| {r['problem_id']} | {r['protocol']['status']} | "
                      f"{r['protocol']['message'][:160].replace('|', '/').replace(chr(10), ' ')} |" for r in passed]
            lines += [""]
        if unjudged:
            lines += ["Not judged (the protocol stopped before the census was read):", "",
                      "| problem | verdict | message |", "|---|---|---|"]
            lines += [f"| {r['problem_id']} | {r['protocol']['status']} | "
                      f"{r['protocol']['message'][:160].replace('|', '/').replace(chr(10), ' ')} |" for r in unjudged]
    elif a.protocol:
        lines += ["", "Runnable problems whose own reference, as a candidate, the protocol did not judge correct:", "",
                  "| problem | verdict | message |", "|---|---|---|"]
        lines += [f"| {r['problem_id']} | {r['protocol']['status']} | "
                  f"{r['protocol']['message'][:200].replace('|', '/').replace(chr(10), ' ')} |"
                  for r in rows if r.get("protocol", {}).get("status") not in (None, "correct")]
        lines += ["", "Problems whose reference output hardly depends on its inputs: a kernel returning one fixed "
                  "output would be judged correct at KernelBench's tolerance (1e-2), so a speedup there measures "
                  "nothing. `change` is the smallest atol=rtol at which that constant would pass. At --shrink "
                  f"{a.shrink} some are artefacts of the smaller shapes (a GroupNorm left with one channel per "
                  "group outputs its bias); `benches/kernels/kernelbench_constant_refs.py` checks them at full "
                  "size:", "",
                  "| problem | change | passes at 1e-4 |", "|---|---|---|"]
        lines += [f"| {r['problem_id']} | {r['protocol']['reference_change']:.3g} | "
                  f"{'yes' if constant_passes(r, 1e-4) else 'no'} |" for r in rows if constant_passes(r, 1e-2)]
    (out / f"{a.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
