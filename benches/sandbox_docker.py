"""Per-run overhead of the Docker backend (warm container) over a plain `python -c pass`.

Arms, interleaved run by run:
  docker      DockerSandbox.run([python3, -c, pass]) on a tiny workspace: the job goes to the
              container's agent over the attached stdin (workspace copied in and, if changed,
              back; rlimits; cleared env; kill of leftovers; exit code)
  docker-raw  a bare `docker exec` of the same command in a warm container (exec_create +
              exec_start + exec_inspect; no workspace, no limits, no clean-up): what a design
              with one exec per run pays at least
  host        the same interpreter build on the host (/usr/bin/python3) through UnsafeSandbox
The overhead is the median of paired differences docker - host. Target: <= 80 ms.
With --build it also times an offline image build (debootstrap + import) into a scratch tag.

    python benches/sandbox_docker.py --runs 60 [--build]
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
from assay.sandbox.base import Limits  # noqa: E402
from assay.sandbox.docker import DockerSandbox, connect  # noqa: E402
from assay.sandbox.image import DEFAULT_IMAGE, build_image, ensure_image  # noqa: E402
from assay.sandbox.unsafe import UnsafeSandbox  # noqa: E402




def stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10)
    return {"median_ms": round(statistics.median(xs) * 1000, 2), "p10_ms": round(q[0] * 1000, 2),
            "p90_ms": round(q[-1] * 1000, 2), "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--build", action="store_true", help="also time an offline image build")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    client = connect()
    ensure_image(DEFAULT_IMAGE)
    ws = Path(tempfile.mkdtemp(prefix="assay-bench-ws-"))
    (ws / "main.py").write_text("print('hi')\n")
    cmd = ["python3", "-c", "pass"]
    lim = Limits(wall_s=10)
    sb = DockerSandbox(DEFAULT_IMAGE, run_id="bench-docker", pool_size=1)
    host = UnsafeSandbox()
    host_py = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    raw_box = sb._checkout(lim)
    sb._checkin(raw_box, True)
    api = client.api

    def docker_arm():
        r = sb.run(cmd, ws, lim)
        assert r.exit_code == 0, r

    def raw_arm():
        ex = api.exec_create(raw_box.c.id, cmd, user="1000:1000")
        api.exec_start(ex["Id"])
        assert api.exec_inspect(ex["Id"])["ExitCode"] == 0

    def host_arm():
        r = host.run([host_py, "-c", "pass"], ws, lim)
        assert r.exit_code == 0, r

    arms = {"docker": docker_arm, "docker-raw": raw_arm, "host": host_arm}
    times: dict[str, list[float]] = {k: [] for k in arms}
    for i in range(args.warmup + args.runs):
        for name, fn in arms.items():
            t = time.perf_counter()
            fn()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t)
    sb.close()
    diffs = [d - h for d, h in zip(times["docker"], times["host"])]
    raw_diffs = [d - r for d, r in zip(times["docker"], times["docker-raw"])]
    build = None
    if args.build:
        tag = "assay-sandbox:bench-build"
        t = time.monotonic()
        info = build_image(client, tag, rebuild=True)
        build = {"seconds": round(time.monotonic() - t, 1), "size_mb": info["size_mb"]}
        client.images.remove(tag, force=True)
    result = {
        "command": "python benches/sandbox_docker.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "docker_server": client.version()["Version"],
                    "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)},
        "seed": 0,
        "arms": {k: stats(v) for k, v in times.items()},
        "overhead_vs_host_ms": round(statistics.median(diffs) * 1000, 2),
        "overhead_vs_raw_exec_ms": round(statistics.median(raw_diffs) * 1000, 2),
        "target_ms": 80,
        "image_build": build,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sandbox_docker.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    shared = "shared with other work while measured" if m["load_before"] > 0.5 else "otherwise idle"
    lines = [
        "# Docker sandbox: per-run overhead in a warm container", "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, Docker {m['docker_server']} "
        f"(cgroup v1, fuse-overlayfs); load average before/after {m['load_before']}/{m['load_after']} "
        f"({shared})  ",
        f"Seed: 0 (no randomness; arms interleaved run by run); {args.runs} runs per arm after "
        f"{args.warmup} warm-up rounds.", "",
        "| arm | median ms | p10 ms | p90 ms |", "|---|---|---|---|",
    ]
    for k, v in result["arms"].items():
        lines.append(f"| {k} | {v['median_ms']} | {v['p10_ms']} | {v['p90_ms']} |")
    lines += ["",
              f"Overhead of `DockerSandbox.run` over the host's `python3 -c pass` (median of paired "
              f"differences): **{result['overhead_vs_host_ms']} ms** (target <= 80 ms).  ",
              f"Compared with a bare `docker exec` of the same command (docker - docker-raw): "
              f"{result['overhead_vs_raw_exec_ms']} ms (negative: the agent design is cheaper than "
              f"one exec per run)."]
    if build:
        lines.append(f"\nOffline image build (debootstrap bookworm minbase + python3, git, "
                     f"ca-certificates; docker import): {build['seconds']} s, {build['size_mb']} MB.")
    (out / "sandbox_docker.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
