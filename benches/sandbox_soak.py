"""Sustained load on a sandbox backend: N runs with W workers, a share of them hostile.

Hostile runs (chosen with the seed): fork bomb, memory hog, endless output, sleep past the
timeout, setsid grandchild that tries to outlive the run. Benign runs compute and print a
number that is checked. At the end, after close(), it proves nothing leaked: no process with
the run's marker, no container labelled assay=sandbox, no new mount, temp dir or cgroup.

    python benches/sandbox_soak.py --backend docker --runs 1000 --workers 2 --hostile 0.1 --seed 0
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.machine import cpu_model  # noqa: E402
from assay.sandbox.base import Limits, make_sandbox  # noqa: E402

LIMITS = Limits(wall_s=2.0, memory_mb=256, pids=32, output_bytes=64 * 1024)

ATTACKS = {
    "fork_bomb": "import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n"
                 "    except OSError:\n        time.sleep(0.01)\n",
    "memory_hog": "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n",
    "endless_output": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
    "sleep_past_timeout": "import time\ntime.sleep(60)\n",
    "setsid_grandchild": "import subprocess, sys\n"
                         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)  # MARK'],"
                         " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                         "print('spawned')\n",
}
BENIGN = "import hashlib\nprint(sum(range({n})), hashlib.sha256(b'{n}').hexdigest()[:8])\n"




def procs_with(marker: str) -> list[str]:
    found = []
    for e in os.scandir("/proc"):
        if e.name.isdigit() and int(e.name) != os.getpid():
            try:
                cmd = Path(e.path, "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmd:
                found.append(e.name)
    return found


def mounts() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def temp_entries() -> set[str]:
    out = set()
    for d in {tempfile.gettempdir(), "/dev/shm"}:
        if os.path.isdir(d):
            out |= {os.path.join(d, x) for x in os.listdir(d)}
    return out


def cgroups() -> set[str]:
    out = set()
    base = Path("/sys/fs/cgroup")
    for ctrl in ("memory", "pids", "cpu", "unified"):
        top = base / ctrl
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            if dirpath.count("/") - str(top).count("/") >= 3:
                dirnames[:] = []
            out.add(dirpath)
    return out


def containers() -> int | None:
    try:
        from assay.sandbox.docker import connect

        c = connect(timeout=10)
        return len(c.containers.list(all=True, filters={"label": "assay=sandbox"}))
    except Exception:  # noqa: BLE001 - no engine: nothing to count
        return None


def check(kind: str, res, n: int) -> bool:
    """Whether the sandbox contained this run the way the contract says."""
    if kind == "benign":
        import hashlib

        return res.exit_code == 0 and res.stdout.split() == [str(sum(range(n))),
                                                             hashlib.sha256(str(n).encode()).hexdigest()[:8]]
    if kind == "sleep_past_timeout":
        return res.timed_out and res.exit_code == 124 and res.duration_s < LIMITS.wall_s + 3
    if kind == "endless_output":
        return res.stdout_truncated and len(res.stdout) <= LIMITS.output_bytes
    if kind == "setsid_grandchild":
        return res.stdout == "spawned\n" and res.duration_s < LIMITS.wall_s + 1
    if kind == "memory_hog":
        return res.exit_code != 0
    if kind == "fork_bomb":
        return res.exit_code != 0 or res.timed_out
    raise ValueError(kind)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["local", "docker"], required=True)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--hostile", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    plan = [(rng.choice(list(ATTACKS)) if rng.random() < args.hostile else "benign", rng.randint(10, 10**6))
            for _ in range(args.runs)]
    marker = f"assaysoak{uuid.uuid4().hex[:10]}"
    # A private temp dir: anything a sandbox leaves through tempfile lands here, attributable to us
    # (the machine is shared, so /tmp and /sys/fs/cgroup also change under other people's work).
    private_tmp = tempfile.mkdtemp(prefix=f"assay-soak-tmp-{marker}-")
    tempfile.tempdir = private_tmp
    before = {"mounts": mounts(), "temp": temp_entries(), "cgroups": cgroups(), "containers": containers()}
    load_before = os.getloadavg()[0]
    run_id = f"soak-{marker[-6:]}"
    sb = make_sandbox(args.backend, run_id=run_id)
    py = sb.python()
    outcomes = collections.Counter()
    failures: list[dict] = []
    durations = collections.defaultdict(list)
    lock = threading.Lock()

    def one(item):
        kind, n = item
        code = (BENIGN.format(n=n) if kind == "benign" else ATTACKS[kind]).replace("MARK", marker)
        ws = Path(tempfile.mkdtemp(prefix="assay-soak-ws-"))
        try:
            res = sb.run([py, "-c", code + f"# {marker}\n"], ws, LIMITS)
        finally:
            shutil.rmtree(ws)
        ok = check(kind, res, n)
        with lock:
            outcomes[(kind, ok)] += 1
            durations[kind].append(res.duration_s)
            if not ok and len(failures) < 20:
                failures.append({"kind": kind, "exit_code": res.exit_code, "timed_out": res.timed_out,
                                 "killed_reason": res.killed_reason, "stdout": res.stdout[:200],
                                 "stderr": res.stderr[-300:], "duration_s": round(res.duration_s, 3)})

    start = time.monotonic()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, plan))
    wall = time.monotonic() - start
    sb.close()
    time.sleep(1.0)  # let the engine / kernel finish tearing down
    after = {"mounts": mounts(), "temp": temp_entries(), "cgroups": cgroups(), "containers": containers()}
    started = list(getattr(sb, "started", []))
    ours = [marker, f"assay-{os.getpid()}-", *started]
    left_in_private = os.listdir(private_tmp)
    os.rmdir(private_tmp) if not left_in_private else None
    tempfile.tempdir = None
    leaks = {
        "processes": procs_with(marker),
        "containers": after["containers"],
        "new_mounts": sorted(m for m in after["mounts"] - before["mounts"]
                             if any(o in m for o in ours) or private_tmp in m),
        "new_temp_entries": left_in_private,
        "new_cgroups": sorted(c for c in after["cgroups"] - before["cgroups"] if any(o in c for o in ours)),
        "unattributed_new_temp_entries_named_assay": sorted(
            t for t in after["temp"] - before["temp"] if "assay" in t and marker not in t),
    }
    leak_free = (not leaks["processes"] and not leaks["new_mounts"] and not leaks["new_temp_entries"]
                 and not leaks["new_cgroups"] and leaks["containers"] in (0, None))
    by_kind = {}
    for kind in ["benign", *ATTACKS]:
        ok, bad = outcomes[(kind, True)], outcomes[(kind, False)]
        if ok + bad:
            ds = sorted(durations[kind])
            by_kind[kind] = {"runs": ok + bad, "contained": ok, "not_contained": bad,
                             "median_s": round(ds[len(ds) // 2], 3)}
    result = {
        "command": "python benches/sandbox_soak.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)},
        "seed": args.seed, "backend": args.backend, "runs": args.runs, "workers": args.workers,
        "hostile_share": args.hostile, "limits": LIMITS.__dict__,
        "wall_s": round(wall, 1), "throughput_runs_per_s": round(args.runs / wall, 2),
        "containers_started": len(started) if args.backend == "docker" else None,
        "by_kind": by_kind, "failures": failures, "leaks": leaks, "leak_free": leak_free,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"sandbox_soak_{args.backend}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    m = result["machine"]
    shared = "shared with other work while measured" if m["load_before"] > 0.5 else "otherwise idle"
    lines = [
        f"# Sandbox soak: {args.backend} backend, {args.runs} runs, {args.workers} workers, "
        f"{args.hostile:.0%} hostile", "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}; load average before/after "
        f"{m['load_before']}/{m['load_after']} ({shared})  ",
        f"Seed: {args.seed} (which runs are hostile, and which attack)  ",
        f"Limits: wall {LIMITS.wall_s} s, memory {LIMITS.memory_mb} MB, pids {LIMITS.pids}, "
        f"output {LIMITS.output_bytes} B per stream.", "",
        f"Throughput: **{result['throughput_runs_per_s']} runs/s** ({args.runs} runs in {result['wall_s']} s)"
        + (f"; containers started (pool + replacements): {result['containers_started']}"
           if result["containers_started"] is not None else ""), "",
        "| kind | runs | contained | not contained | median s |", "|---|---|---|---|---|",
    ]
    for k, v in by_kind.items():
        lines.append(f"| {k} | {v['runs']} | {v['contained']} | {v['not_contained']} | {v['median_s']} |")
    lines += ["", f"Leaks after close(): processes {len(leaks['processes'])}, containers "
              f"{leaks['containers'] if leaks['containers'] is not None else 'n/a (no engine)'}, "
              f"mounts {len(leaks['new_mounts'])}, temp dirs {len(leaks['new_temp_entries'])}, "
              f"cgroups {len(leaks['new_cgroups'])} -> **{'leak-free' if leak_free else 'LEAKS'}**."]
    if failures:
        lines += ["", "First runs not contained as the contract says (see the JSON for all fields):", ""]
        lines += [f"- {f['kind']}: exit {f['exit_code']}, timed_out {f['timed_out']}, "
                  f"killed {f['killed_reason']}, {f['duration_s']} s" for f in failures[:5]]
    (out / f"sandbox_soak_{args.backend}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
