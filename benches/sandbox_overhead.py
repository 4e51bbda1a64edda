"""Per-run overhead of a sandbox backend over a plain `python -c pass`.

Interleaves N runs of a command through the backend with N runs of the same command through
UnsafeSandbox (the same spawn/capture/rlimit code path, no isolation); reports medians
and the median of the paired differences, for `python -c pass`, `python -S -c pass` and
`/usr/bin/true`, with the backend's interpreter in every arm. The local backend is also
measured without cgroups. Writes benches/results/sandbox_overhead_<backend>.{json,md}.

    python benches/sandbox_overhead.py --backend local --runs 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.machine import cpu_model  # noqa: E402
from assay.sandbox.base import Limits, make_sandbox  # noqa: E402
from assay.sandbox.unsafe import UnsafeSandbox  # noqa: E402




def ms(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"median_ms": round(statistics.median(xs) * 1000, 2),
            "p10_ms": round(xs[len(xs) // 10] * 1000, 2),
            "p90_ms": round(xs[(len(xs) * 9) // 10] * 1000, 2)}


class _BwrapOnly:
    """The local backend's bwrap command line run bare: no uid slot, chown, cgroups, rlimits
    or pid handshake; shows what bubblewrap itself costs."""

    def __init__(self, box):
        self.box = box

    def python(self) -> str:
        return self.box.python()

    def run(self, cmd, workspace, limits):
        from assay.sandbox.local import UID_BASE
        from assay.sandbox.process import run_process

        uid = UID_BASE + 511 if os.geteuid() == 0 else None
        return run_process(self.box._argv(cmd, workspace, limits, uid), cwd="/", env={"PATH": "/usr/bin:/bin"},
                           wall_s=limits.wall_s, output_bytes=limits.output_bytes)


COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "python -S -c pass": ["-S", "-c", "pass"],
    "/usr/bin/true": None,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="local")
    ap.add_argument("--image", default=None)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="unused: the order is fixed (interleaved)")
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    box = make_sandbox(args.backend, image=args.image)
    arms = {args.backend: box, "unsafe": UnsafeSandbox()}
    if args.backend == "local":
        from assay.sandbox.local import LocalSandbox

        arms["local-no-cgroups"] = LocalSandbox(cgroups=False)
        arms["bwrap-argv-only"] = _BwrapOnly(box)
    python = box.python()  # the same interpreter in every arm
    limits = Limits(wall_s=30)
    load_before = os.getloadavg()
    table: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as ws:
        wsp = Path(ws)
        for label, tail in COMMANDS.items():
            cmd = ["/usr/bin/true"] if tail is None else [python, *tail]
            wall: dict[str, list[float]] = {name: [] for name in arms}
            for i in range(args.warmup + args.runs):
                for name, sb in arms.items():
                    t = time.perf_counter()
                    res = sb.run(cmd, wsp, limits)
                    dt = time.perf_counter() - t
                    if res.exit_code != 0:
                        raise SystemExit(f"{name}: {label} failed: {res.stderr}")
                    if i >= args.warmup:
                        wall[name].append(dt)
            paired = [a - b for a, b in zip(wall[args.backend], wall["unsafe"])]
            table[label] = {
                "arms": {name: ms(xs) for name, xs in wall.items()},
                "overhead_ms": round(statistics.median(paired) * 1000, 2),
            }
    box.close()
    result = {
        "bench": "sandbox_overhead",
        "backend": args.backend,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "seed": args.seed,
        "runs": args.runs,
        "warmup": args.warmup,
        "python": python,
        "results": table,
        "target_overhead_ms": 15.0,
        "note": args.note,
    }
    out = ROOT / "benches" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"sandbox_overhead_{args.backend}.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    rows = []
    for label, r in table.items():
        for name, v in r["arms"].items():
            extra = f"**{r['overhead_ms']}**" if name == args.backend else ""
            rows.append(f"| `{label}` | {name} | {v['median_ms']} | {v['p10_ms']} | {v['p90_ms']} | "
                        f"{extra} |")
    md = "\n".join([
        f"# Sandbox overhead: {args.backend}",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}; load average before/after "
        f"{m['loadavg_before'][0]}/{m['loadavg_after'][0]} (shared with other work while measured)  ",
        f"Seed: {args.seed} (no randomness; arms interleaved run by run)  ",
        f"Runs: {args.runs} per arm and command, after {args.warmup} warm-up rounds; interpreter `{python}`.",
        "",
        f"`unsafe` is the same spawn/capture/rlimit code without isolation, so the overhead column "
        f"(median of paired differences, {args.backend} minus unsafe, ms) is the cost of the sandbox. "
        f"Target: overhead <= 15 ms.",
        "",
        "| command | arm | median ms | p10 ms | p90 ms | overhead ms |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *([f"Note: {args.note}", ""] if args.note else []),
    ])
    (out / f"sandbox_overhead_{args.backend}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
