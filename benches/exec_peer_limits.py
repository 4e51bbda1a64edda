"""Do peer-relative CPU limits change any result, and what do they save?

The Runner gives each test a CPU limit of `peer_factor` x the slowest of the programs that
finished it, at least `peer_floor_s`, at most the timeout (full timeout when fewer than
`peer_quorum` of the programs finished it); see sandbox/runner.py. This runs a candidate pool
both ways, with the peer limits (the default) and with the fixed timeout for every test, and
counts the (candidate, test) outcomes and signature entries that differ, and what each way costs.

From the fixed run's per-unit CPU times it also estimates, for other (factor, floor, quorum)
settings, how many finished units would have read as timeouts: the calibration behind the
defaults.

    python benches/exec_peer_limits.py --pool /work/devdata/cg16_pool.jsonl

Writes benches/results/exec_peer_limits.{json,md}.
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

from assay.asserts import call_inputs  # noqa: E402
from assay.sandbox.base import make_sandbox  # noqa: E402
from assay.sandbox.runner import PEER_FACTOR, PEER_FLOOR_S, PEER_QUORUM, Runner, _Plan  # noqa: E402

SETTINGS = [(f, fl, q) for f in (5.0, 10.0, 20.0) for fl in (0.05, 0.1, 0.25, 0.5) for q in (0.25, 0.5)]


def unit_times(runner: Runner, jobs: list) -> list[dict[str, list]]:
    """Per task: unit key -> [(cpu s | None if it timed out, limit)] over the loaded programs
    (read back from the runner's in-memory records, the way evaluate_many planned them)."""
    out = []
    for task, cands, tests, _ in jobs:
        plan = _Plan(task.entry_point)
        for args in dict.fromkeys(a for t in tests for a in call_inputs(t.source, task.entry_point)):
            plan.call(args)
        for t in tests:
            plan.add_test(t)
        work = runner._prepare(plan, cands)
        per_unit: dict[str, list] = collections.defaultdict(list)
        for rec in work.records.values():
            if rec.load is None:
                for key in runner._unit_keys(plan):
                    if key in rec.ran:
                        per_unit[key].append(rec.ran[key])
        out.append(per_unit)
    return out


def simulate(times: list[dict[str, list]], T: float, factor: float, floor: float, quorum: float) -> dict:
    """Finished units (under the fixed timeout) that a peer limit would have cut, and the CPU
    the timed-out units would have cost at the first try (the probe) instead of the timeout."""
    cut = finished = 0
    for per_unit in times:
        for runs in per_unit.values():
            done = [c for c, _ in runs if c is not None]
            fast = [c for c in done if c <= floor]  # the peers that finish within the probe
            finished += len(done)
            if fast and len(fast) >= quorum * len(runs):
                limit = min(T, max(floor, factor * max(fast)))
                cut += sum(c > limit for c in done)
    return {"factor": factor, "floor_s": floor, "quorum": quorum, "finished_units": finished, "would_cut": cut}


def compare(evs_a, evs_b) -> tuple[collections.Counter, int, int, int, list]:
    diff: collections.Counter = collections.Counter()
    pairs = sig_entries = sig_diff = 0
    examples = []
    for x, y in zip(evs_a, evs_b):
        for c in x.candidate_ids:
            for t, o in x.outcomes[c].items():
                pairs += 1
                if o != y.outcomes[c][t]:
                    diff[f"{o} (peer) vs {y.outcomes[c][t]} (fixed)"] += 1
                    if len(examples) < 10:
                        examples.append([c, t, o, y.outcomes[c][t], x.messages.get(c, {}).get(t, "")[:300]])
            sig_entries += len(x.signatures[c])
            sig_diff += sum(p != q for p, q in zip(x.signatures[c], y.signatures[c]))
    return diff, pairs, sig_entries, sig_diff, examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=Path, required=True)
    ap.add_argument("--tasks", type=int, default=None, help="only the first N tasks")
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sandbox", default="local")
    ap.add_argument("--note", default=None)
    a = ap.parse_args()
    jobs = pool_jobs(a.pool, a.tasks)
    sandbox = make_sandbox(a.sandbox)
    result = base_result(__file__, a, None) | {
        "pool": str(a.pool), "tasks": len(jobs), "runs": {},
        "peer_defaults": {"factor": PEER_FACTOR, "floor_s": PEER_FLOOR_S, "quorum": PEER_QUORUM},
    }
    evs, runners = {}, {}
    for name, kw in (("peer", {}), ("fixed", {"peer_factor": None})):
        r = runners[name] = Runner(sandbox, test_timeout_s=a.timeout, workers=a.workers, **kw)
        t0 = time.monotonic()
        evs[name] = r.evaluate_many(jobs)
        hung = [s for s in r.stats if s["timeouts"]]
        result["runs"][name] = {"wall_s": round(time.monotonic() - t0, 1), "sandbox_runs": r.sandbox_runs,
                                "child_cpu_s": round(sum(s["cpu"] for s in r.stats), 1),
                                "programs_with_timeouts": len(hung),
                                "their_cpu_s": round(sum(s["cpu"] for s in hung), 1)}
        print(name, result["runs"][name], flush=True)
    diff, pairs, sig_entries, sig_diff, examples = compare(evs["peer"], evs["fixed"])
    times = unit_times(runners["fixed"], jobs)
    sims = [simulate(times, a.timeout, *s) for s in SETTINGS]
    done = [c for per_unit in times for runs in per_unit.values() for c, _ in runs if c is not None]
    result["finished_cpu_tail"] = {str(x): sum(c > x for c in done) for x in (0.01, 0.05, 0.1, 0.25, 0.5)}
    result.update({"pairs": pairs, "outcome_differences": dict(diff), "examples": examples,
                   "signature_entries": sig_entries, "signature_differences": sig_diff,
                   "calibration": sims, "loadavg_end": os.getloadavg(), "note": a.note})
    p, f = result["runs"]["peer"], result["runs"]["fixed"]
    md = header("Peer-relative CPU limits against one fixed timeout", result)
    md += [f"Pool `{a.pool}`, {len(jobs)} tasks: {pairs:,} (candidate, test) pairs (generated tests plus the "
           f"hidden check as one more test) and {sig_entries:,} signature entries. Peer limits: "
           f"{PEER_FACTOR:g}x the slowest finisher, floor {PEER_FLOOR_S:g} s, quorum {PEER_QUORUM:g}.", "",
           "| way | wall s | sandbox runs | children's CPU s | CPU s of programs with a timeout |",
           "|---|---:|---:|---:|---:|",
           f"| peer limits (default) | {p['wall_s']} | {p['sandbox_runs']} | {p['child_cpu_s']} | {p['their_cpu_s']} |",
           f"| fixed {a.timeout:g} s timeout | {f['wall_s']} | {f['sandbox_runs']} | {f['child_cpu_s']} | {f['their_cpu_s']} |",
           "",
           f"Outcomes that differ: {sum(diff.values())} of {pairs:,} {dict(diff) or ''}; signature entries "
           f"that differ: {sig_diff} of {sig_entries:,}.", ""]
    for c, t, o, fo, msg in examples:
        md.append(f"- `{c}` on `{t}`: {o} with peer limits, {fo} with the fixed timeout. {msg}")
    md += ["", "Calibration, estimated from the fixed run's CPU times: finished units that each setting "
           "would have cut to a timeout.", "",
           "| factor | floor s | quorum | would cut |", "|---:|---:|---:|---:|"]
    md += [f"| {s['factor']:g} | {s['floor_s']:g} | {s['quorum']:g} | {s['would_cut']} |" for s in sims]
    md += ["", f"{sims[0]['finished_units']:,} units finished under the fixed timeout; of them, by CPU time: "
           + ", ".join(f"over {k} s: {v}" for k, v in result["finished_cpu_tail"].items()) + ".", ""]
    write("exec_peer_limits", result, md)


if __name__ == "__main__":
    main()
