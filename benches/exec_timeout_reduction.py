"""Does the Runner's reduced timeout for hanging candidates change any result?

After a candidate's first timeout the Runner gives its remaining items `reduced_timeout_s`
instead of the full timeout (see sandbox/runner.py). This runs the first N tasks of a
candidate pool both ways (reduced, and every item with the full timeout) and counts the
(candidate, test) outcomes and signature entries that differ, and the CPU each way costs.

    python benches/exec_timeout_reduction.py --pool /work/devdata/cg16_pool.jsonl --tasks 20

Writes benches/results/exec_timeout_reduction.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benches"))

from exec_throughput import base_result, header, pool_jobs, write  # noqa: E402

from assay.sandbox.base import make_sandbox  # noqa: E402
from assay.sandbox.runner import Runner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--reduced", type=float, default=None, help="reduced timeout (default: the Runner's)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sandbox", default="local")
    a = ap.parse_args()
    jobs = pool_jobs(a.pool, a.tasks)
    sandbox = make_sandbox(a.sandbox)
    result = base_result(__file__, a, None) | {"pool": str(a.pool), "tasks": len(jobs), "runs": {}}
    evs = {}
    for name, kw in (("reduced", {} if a.reduced is None else {"reduced_timeout_s": a.reduced}),
                     ("full", {"k_reduce": 10**9})):
        # fixed timeouts on both sides: this isolates the reduced timeout (peer limits: exec_peer_limits.py)
        r = Runner(sandbox, test_timeout_s=a.timeout, workers=a.workers, peer_factor=None, **kw)
        t0 = time.monotonic()
        evs[name] = r.evaluate_many(jobs)
        result["runs"][name] = {"wall_s": round(time.monotonic() - t0, 1),
                                "child_cpu_s": round(sum(s["cpu"] for s in r.stats), 1),
                                "reduced_timeout_s": r.reduced_timeout_s if name == "reduced" else None}
        print(name, result["runs"][name], flush=True)
    diff: collections.Counter = collections.Counter()
    sig_diff = pairs = sig_entries = 0
    for x, y in zip(evs["reduced"], evs["full"]):
        for c in x.candidate_ids:
            for t, o in x.outcomes[c].items():
                pairs += 1
                if o != y.outcomes[c][t]:
                    diff[f"{o} (reduced) vs {y.outcomes[c][t]} (full)"] += 1
            sig_entries += len(x.signatures[c])
            sig_diff += sum(p != q for p, q in zip(x.signatures[c], y.signatures[c]))
    result.update({"pairs": pairs, "outcome_differences": dict(diff), "signature_entries": sig_entries,
                   "signature_differences": sig_diff, "loadavg_end": os.getloadavg()})
    red, full = result["runs"]["reduced"], result["runs"]["full"]
    md = header("Reduced timeout after a candidate's first timeout: same results, less CPU", result)
    md += [f"Pool `{a.pool}`, first {len(jobs)} tasks: {pairs:,} (candidate, test) pairs (generated tests "
           f"plus the hidden check) and {sig_entries:,} signature entries.", "",
           "| way | wall s | children's CPU s |", "|---|---:|---:|",
           f"| reduced timeout ({red['reduced_timeout_s']} s after the first timeout) | {red['wall_s']} | {red['child_cpu_s']} |",
           f"| full timeout ({a.timeout} s) on every item | {full['wall_s']} | {full['child_cpu_s']} |", "",
           f"Outcomes that differ: {sum(diff.values())} {dict(diff) or ''}; signature entries that differ: {sig_diff}.", ""]
    write("exec_timeout_reduction", result, md)


if __name__ == "__main__":
    main()
