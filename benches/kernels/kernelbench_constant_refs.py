"""Which KernelBench references give (nearly) the same output whatever their input, at full size.

`kernelbench_shrink.py --protocol` lists the problems whose shrunken reference hardly moves
between the correctness trials' inputs; shrinking can cause that (a GroupNorm left with one
channel per group outputs its bias). This runs the named problems' references at their own
sizes on CPU, on three inputs (seeds 43-45, after building the Model with seed 42), and reports
`change`: the smallest atol=rtol at which a kernel returning the first output would pass for the
others (kernels/worker.py's reference_change). Problem files are KernelBench's own code, run
without a sandbox, one process each with a timeout.

  python benches/kernels/kernelbench_constant_refs.py --problems-dir KernelBench/ --level 2 \
      --ids 80,83,9 --kernelbench-commit <sha>

Writes benches/results/<--name, default kernelbench_constant_refs>.{json,md}. The checkout is not
committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.kernels.problem import load_level, parse_ids, problems_root  # noqa: E402
from assay.machine import cpu_model  # noqa: E402
from kernelbench_shrink import run_script  # noqa: E402  (this script's folder is on sys.path)

RUN_ONE = r"""
import json, torch
from assay.kernels.worker import reference_change
torch.manual_seed(42)
model = m.Model(*m.get_init_inputs()).eval()
outs = []
with torch.no_grad():
    for seed in (43, 44, 45):
        torch.manual_seed(seed)
        outs.append(model(*m.get_inputs()))
change = max(reference_change(outs[0], o) for o in outs[1:])
print(json.dumps({"change": change if change != float("inf") else None}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems-dir", required=True)
    ap.add_argument("--level", type=int, required=True)
    ap.add_argument("--ids", required=True, help="e.g. 80,83,9")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--kernelbench-commit", default=None)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--name", default="kernelbench_constant_refs", help="result file stem")
    a = ap.parse_args()
    import torch

    rows = []
    for p in load_level(problems_root(a.problems_dir), a.level, parse_ids(a.ids)):
        t = time.perf_counter()
        res = run_script(RUN_ONE, str(p.path), a.timeout, {"PYTHONPATH": str(ROOT / "src")})
        row = json.loads(res["out"]) if "out" in res else {"error": res["error"]}
        rows.append({"problem_id": p.id, **row, "wall_s": round(time.perf_counter() - t, 1)})
        print(rows[-1], flush=True)
    result = {"command": "python " + " ".join(shlex.quote(x) for x in [os.path.relpath(__file__, ROOT)] + sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "torch": torch.__version__},
              "kernelbench_commit": a.kernelbench_commit, "problems": rows}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{a.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    lines = ["# KernelBench references at full size: does the output depend on the input?", "",
             f"- command: `{result['command']}`",
             f"- date: {result['date']}; KernelBench commit: {a.kernelbench_commit or 'not given'}",
             f"- machine: {m['nproc']} CPUs ({m['cpu']}), torch {m['torch']}", "",
             "`change`: the smallest atol=rtol at which a kernel returning the output for one input would pass "
             "for two others (0: the same output whatever the input). At or under 1e-2 (KernelBench's "
             "tolerance) such a kernel would be judged correct.", "",
             "| problem | change | constant passes at 1e-2 | at 1e-4 | wall s |", "|---|---|---|---|---|"]
    for r in rows:
        c = r.get("change")
        if "error" in r:
            lines.append(f"| {r['problem_id']} | {r['error'].replace('|', '/')} | - | - | {r['wall_s']} |")
        else:
            lines.append(f"| {r['problem_id']} | {'-' if c is None else f'{c:.3g}'} | "
                         f"{'yes' if c is not None and c <= 1e-2 else 'no'} | "
                         f"{'yes' if c is not None and c <= 1e-4 else 'no'} | {r['wall_s']} |")
    (out / f"{a.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
