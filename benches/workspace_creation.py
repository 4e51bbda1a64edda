"""Per-candidate workspace creation over one checkout of a 2,000-file repository.

Methods side by side in one run, interleaved: kernel overlay, fuse-overlayfs, copy of the
tracked files (assay.sandbox.workspace), and `git worktree add --detach` (what we do NOT use:
it lets untrusted code write the shared .git). Times creation, cleanup, and diff() after a
one-line edit. Target: overlay creation <= 20 ms per candidate.

    python benches/workspace_creation.py --files 2000 --runs 40 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.machine import cpu_model  # noqa: E402
from assay.sandbox.workspace import Workspace, _default_tmp  # noqa: E402




def make_repo(path: Path, files: int, seed: int) -> int:
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        d = path / f"pkg{i % 40}" / f"sub{(i // 40) % 5}"
        d.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f{j}(x):\n    return x * {rng.randint(0, 999)}\n\n" for j in range(rng.randint(5, 60)))
        (d / f"mod{i}.py").write_text(body)
        total += len(body)
    git = ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=path, check=True)
    return total


def ms(xs: list[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
    return {"median_ms": round(statistics.median(xs) * 1000, 2), "p10_ms": round(q[0] * 1000, 2),
            "p90_ms": round(q[-1] * 1000, 2), "n": len(xs)}


class Worktree:
    """`git worktree add` for comparison only."""

    def __init__(self, repo: Path, n: int):
        self.repo = repo
        # in the same place as assay's workspaces (tmpfs where there is one), for a fair comparison
        self.path = Path(_default_tmp() or tempfile.gettempdir()) / f"assay-bench-wt-{os.getpid()}-{n}"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(self.path), "HEAD"],
                       cwd=repo, check=True, capture_output=True)

    def diff(self) -> str:
        subprocess.run(["git", "add", "-A"], cwd=self.path, check=True)
        return subprocess.run(["git", "diff", "--cached", "--binary", "HEAD"], cwd=self.path,
                              check=True, capture_output=True, text=True).stdout

    def cleanup(self) -> None:
        subprocess.run(["git", "worktree", "remove", "--force", str(self.path)], cwd=self.repo,
                       check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--diff-runs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    base = Path(tempfile.mkdtemp(prefix="assay-bench-repo-"))  # the checkout itself: on disk
    repo = base / "repo"
    repo.mkdir()
    size = make_repo(repo, args.files, args.seed)
    methods = ["overlay", "fuse", "copy", "git-worktree"]
    available = []
    for m in methods[:3]:
        try:
            Workspace.create(repo, method=m).cleanup()
            available.append(m)
        except Exception as e:  # noqa: BLE001 - report and skip a method this machine lacks
            print(f"skipping {m}: {e}")
    available.append("git-worktree")
    create: dict[str, list[float]] = {m: [] for m in available}
    cleanup: dict[str, list[float]] = {m: [] for m in available}
    diff: dict[str, list[float]] = {m: [] for m in available}
    target = "pkg0/sub0/mod0.py"
    for i in range(args.runs + 2):
        for m in available:
            t = time.perf_counter()
            ws = Worktree(repo, i) if m == "git-worktree" else Workspace.create(repo, method=m)
            c = time.perf_counter() - t
            if i < args.diff_runs:
                p = Path(ws.path) / target
                p.write_text(p.read_text() + "# edit\n")
                t = time.perf_counter()
                d = ws.diff()
                diff[m].append(time.perf_counter() - t)
                assert "+# edit" in d and d.count("diff --git") == 1, d[:500]
            t = time.perf_counter()
            ws.cleanup()
            u = time.perf_counter() - t
            if i >= 2:  # the first rounds warm caches (git's, the page cache)
                create[m].append(c)
                cleanup[m].append(u)
    shutil.rmtree(base)
    result = {
        "command": "python benches/workspace_creation.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)},
        "seed": args.seed,
        "repo": {"files": args.files, "bytes": size},
        "create": {m: ms(v) for m, v in create.items()},
        "cleanup": {m: ms(v) for m, v in cleanup.items()},
        "diff_after_one_edit": {m: ms(v) for m, v in diff.items() if v},
        "target_ms": 20,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "workspace_creation.json").write_text(json.dumps(result, indent=2) + "\n")
    mach = result["machine"]
    shared = "shared with other work while measured" if mach["load_before"] > 0.5 else "otherwise idle"
    lines = [
        f"# Workspace creation per candidate ({args.files}-file repository)", "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        f"Machine: {mach['nproc']} CPUs, {mach['cpu']}, Linux {mach['kernel']}; load average "
        f"before/after {mach['load_before']}/{mach['load_after']} ({shared})  ",
        f"Seed: {args.seed} (repository contents); {args.runs} workspaces per method after 2 warm-up "
        f"rounds, methods interleaved; diff timed on the first {args.diff_runs} (one-line edit).", "",
        "| method | create median ms | create p90 ms | cleanup median ms | diff median ms |",
        "|---|---|---|---|---|",
    ]
    for m in available:
        c, u = result["create"][m], result["cleanup"][m]
        dm = result["diff_after_one_edit"].get(m, {}).get("median_ms", "")
        lines.append(f"| {m} | {c['median_ms']} | {c['p90_ms']} | {u['median_ms']} | {dm} |")
    lines += ["", "Target: overlay creation <= 20 ms per candidate. `git-worktree` is shown for "
              "comparison only: assay never uses it (untrusted code could write the shared .git)."]
    (out / "workspace_creation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
