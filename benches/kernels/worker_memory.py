"""Peak memory of one kernel evaluation, as a multiple of the problem's input bytes (CPU).

The first H200 validation ran eight evaluations of 2 GiB problems at once and six of them ran
the GPU (141 GB) out of memory: an evaluation held over a dozen copies of its input at its peak.
This measures that multiple for the three kinds of evaluation gpu_validate.py runs, each in a
fresh process whose worker is its only child (the candidate's build is made first, in another
process): `check` (correctness only), `flag` (correctness, then a short timed run with eager as
the baseline, on one input set) and `timed` (as a fast kernel's run: four rotated input sets,
fewer trials than the GPU's 3 x 100, which the memory does not depend on). The problem is a ReLU whose input is
`--rows` x 16384 fp32, the candidate a C++ `load_inline` ReLU (the Triton interpreter is too slow
for such sizes). Each kind runs at a quarter of `--rows` and at `--rows`; the multiple is the growth
of the worker's peak resident memory between the two over the growth of the input, so what does
not grow with the input (torch itself; the comparisons' fixed-size slices) drops out. Both sizes
are past the 2**24 elements those slices hold. On a GPU the caching allocator keeps at least the
live peak, so this is a floor for the device memory an evaluation needs per input byte.

    python benches/kernels/worker_memory.py            # ~12 minutes on 2 cores; writes
                                                       # benches/results/kernels_worker_memory.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

PROBLEM = ROOT / "tests" / "kernels" / "problems" / "level1" / "1_ReLU.py"
CANDIDATE = ROOT / "tests" / "kernels" / "candidates" / "legit_cpp_relu.py"
DIM = 16384
KINDS = ("check", "flag", "timed")


def evaluator(kind: str, cache: str, input_bytes: int):
    from assay.kernels import gate as G
    from assay.kernels.evaluate import EvalConfig, KernelEvaluator
    from assay.sandbox.unsafe import UnsafeSandbox  # our own candidate: no sandbox needed to measure it

    common = dict(device="cpu", seed=42, cache_dir=cache, policy=G.GatePolicy(allow_cpp=True), eval_timeout_s=900)
    # As gpu_validate.py's ev_check, ev_flag and ev_fast, with the input sets they rotate through for
    # its 2 GiB problems (the default 2 GiB of sets: one; 8 GiB: four); fewer trials, which the
    # memory does not grow with.
    configs = {
        "check": EvalConfig(timing=False, **common),
        "flag": EvalConfig(timing=True, repeats=1, warmup=2, timing_trials=10, baselines=("eager",),
                           rotate_bytes=input_bytes, **common),
        "timed": EvalConfig(timing=True, repeats=1, warmup=4, timing_trials=10, baselines=("eager",), rotate=4,
                            rotate_bytes=4 * input_bytes, **common),
    }
    return KernelEvaluator(configs[kind], UnsafeSandbox())


def problem(rows: int, folder: Path):
    from assay.kernels.problem import load_problem

    f = folder / f"relu_{rows}" / "1_ReLU.py"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(PROBLEM.read_text().replace("batch_size = 16\n", f"batch_size = {rows}\n"))
    return load_problem(f)


def one(kind: str, rows: int, cache: str) -> dict:
    """In this process: one evaluation and its worker's peak RSS; or, for `build`, the build alone
    (cached by source hash, so the measured processes start no build)."""
    ev = evaluator("check" if kind == "build" else kind, cache, rows * DIM * 4)
    prob = problem(rows, Path(cache))
    src = CANDIDATE.read_text()
    if not ev.build(prob, src)["ok"]:
        raise SystemExit("the C++ candidate did not build")
    if kind == "build":
        return {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    v = ev.evaluate(prob, src, "cpp")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if before:
        raise SystemExit("a child ran before the evaluation: its peak would be counted")
    return {"kind": kind, "rows": rows, "input_bytes": rows * DIM * 4, "peak_rss_bytes": peak * 1024,
            "status": v.status, "seconds": round(time.perf_counter() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10240,
                    help="rows of the large input (x 16384 fp32; 10240: 640 MiB); the small one has a quarter")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--one", nargs=3, metavar=("KIND", "ROWS", "CACHE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.one[2])))
        return 0
    kinds = args.kinds.split(",")
    if bad := set(kinds) - set(KINDS):
        ap.error(f"--kinds: no kind {', '.join(sorted(bad))}; the kinds are {', '.join(KINDS)}")
    cache = tempfile.mkdtemp(prefix="assay_kmem_")

    def child(kind: str, rows: int) -> dict:
        r = subprocess.run([sys.executable, __file__, "--one", kind, str(rows), cache],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode:
            raise SystemExit(f"worker_memory: the {kind} run at {rows} rows failed:\n{r.stderr[-3000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    if args.rows // 4 * DIM < 2 ** 24:
        ap.error("--rows: at least 4096, so that both inputs fill the comparisons' slices of 2**24 elements")
    child("build", 16)
    rows_out = []
    for kind in kinds:
        small, large = child(kind, args.rows // 4), child(kind, args.rows)
        if small["status"] != "correct" or large["status"] != "correct":
            raise SystemExit(f"worker_memory: the candidate was not correct: {small} {large}")
        multiple = (large["peak_rss_bytes"] - small["peak_rss_bytes"]) / (large["input_bytes"] - small["input_bytes"])
        rows_out.append({"kind": kind, "small": small, "large": large, "input_multiple": round(multiple, 2)})
        print(f"{kind:>6}: peak {small['peak_rss_bytes'] / 2**20:7.0f} MiB at {small['input_bytes'] / 2**20:.0f} MiB "
              f"of input, {large['peak_rss_bytes'] / 2**20:7.0f} MiB at {large['input_bytes'] / 2**20:.0f} MiB: "
              f"{multiple:.2f} x the input ({large['seconds']} s)", flush=True)
    from assay.machine import cpu_model

    report = {"command": " ".join(["python", "benches/kernels/worker_memory.py", *sys.argv[1:]]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{cpu_model()}, {platform.system()} {platform.release()}", "results": rows_out}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kernels_worker_memory.json").write_text(json.dumps(report, indent=2))
    lines = ["# Kernel evaluation: peak memory per input byte (CPU)", "",
             f"Command: `{report['command']}`  ", f"Date: {report['date']}  ", f"Machine: {report['machine']}", "",
             "| kind | small input | peak | large input | peak | growth of the peak per input byte |",
             "|---|---|---|---|---|---|"]
    for r in rows_out:
        lines.append(f"| {r['kind']} | {r['small']['input_bytes'] / 2**20:.0f} MiB | "
                     f"{r['small']['peak_rss_bytes'] / 2**20:.0f} MiB | {r['large']['input_bytes'] / 2**20:.0f} MiB | "
                     f"{r['large']['peak_rss_bytes'] / 2**20:.0f} MiB | {r['input_multiple']:.2f} |")
    (out / "kernels_worker_memory.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
