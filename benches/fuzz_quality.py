"""Selection quality of `fuzz` (model-free differential fuzzing) against the pipelines it extends.

Same evidence and scoring as benches/select_quality.py (and its evidence cache), but the
selectors get a Runner, so fuzz can run candidates on new inputs. Writes JSON + a markdown
table under benches/results/fuzz_quality_<name>.{json,md}.

    python benches/fuzz_quality.py --pool examples/pools/humaneval_dev.jsonl --name humaneval_dev
    python benches/fuzz_quality.py --pool /work/devdata/cg16_pool.jsonl --name cg16 \
        --evidence-cache /work/devdata/cg16_evidence.json.gz
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benches"))

from select_quality import cpu_model, load_or_run, without_public  # noqa: E402

from assay.commands.select import select_all, summarize  # noqa: E402

SPECS = ["public|dedup|cluster", "public|dedup|cluster|fuzz", "dedup|cluster", "dedup|cluster|fuzz",
         "dedup|fuzz"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--sandbox", default="local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--evidence-cache", default=None)
    ap.add_argument("--runner-cache", default=None, help="the Runner's per-candidate result cache")
    ap.add_argument("--no-prompt-examples", action="store_true",
                    help="also score the pipelines with `public` without the prompt's examples")
    ap.add_argument("--note", default="")
    args = ap.parse_args()

    from assay.sandbox.base import make_sandbox
    from assay.sandbox.runner import Runner

    evals, correct, timing = load_or_run(args)
    variants = [("prompt examples as trusted tests", evals)]
    if args.no_prompt_examples:
        variants.append(("no prompt examples", without_public(evals)))
    box = make_sandbox(args.sandbox)
    rows = []
    try:
        runner = Runner(box, test_timeout_s=args.timeout, workers=args.workers, cache_dir=args.runner_cache)
        for variant, ev_set in variants:
            for spec in args.specs.split(","):
                if variant == "no prompt examples" and "public" not in spec:
                    continue
                runs0 = runner.sandbox_runs
                t0 = time.monotonic()
                # selectors append judgements to the evidence: give each spec its own copy
                fresh = [type(e)(e.task, e.candidates, e.evidence.model_copy(deep=True)) for e in ev_set]
                sels = []
                for i, e in enumerate(fresh):  # select_all, one task at a time, with progress
                    sels += select_all([e], spec, seed=args.seed, runner=runner)
                    if spec.endswith("fuzz") and (i + 1) % 20 == 0:
                        print(f"  {spec}: {i + 1}/{len(fresh)} tasks, {time.monotonic() - t0:.0f} s",
                              file=sys.stderr, flush=True)
                res = summarize(spec, fresh, sels, correct)
                changed = None
                if spec.endswith("|fuzz"):
                    base = spec[: -len("|fuzz")]
                    prev = next((r for r in rows if r["selector"] == base and r["variant"] == variant), None)
                    if prev:
                        changed = {"better": 0, "worse": 0}
                        for a, b in zip(prev["per_task"], res["per_task"]):
                            if b["correct"] > a["correct"]:
                                changed["better"] += 1
                            elif b["correct"] < a["correct"]:
                                changed["worse"] += 1
                rows.append({"variant": variant, "selector": spec, "selected_pass1": res["selected_pass1"],
                             "abstained": res["abstained"], "select_s": round(time.monotonic() - t0, 1),
                             "sandbox_batches": runner.sandbox_runs - runs0, "vs_without_fuzz": changed,
                             "per_task": res["per_task"],
                             "rationales": [s.rationale for s, _ in sels]})
                print(f"{spec:32s} {variant[:9]:9s} pass@1 {res['selected_pass1']:.3f} "
                      f"({rows[-1]['select_s']} s) {changed or ''}", flush=True)
    finally:
        box.close()
    from assay.metrics import baseline_pass1, oracle

    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    meta = {
        "command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores (nproc {nproc}), {cpu_model()}", "shared_machine": True,
        "seed": args.seed, "pool": args.pool, "tasks": len(evals),
        "candidates": sum(len(e.candidates) for e in evals),
        "oracle": oracle(correct), "baseline_pass1": baseline_pass1(correct), "timing": timing,
        "workers": args.workers, "timeout_s": args.timeout, "sandbox": args.sandbox,
    }
    out = ROOT / "benches" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"fuzz_quality_{args.name}.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
    md = [f"# fuzz selection quality: {args.name}", "", args.note, "",
          f"- command: `{meta['command']}`", f"- date: {meta['date']}; seed {args.seed}",
          f"- machine: {meta['machine']}; shared with other work while it ran",
          f"- pool: {meta['tasks']} tasks, {meta['candidates']} candidates; oracle {meta['oracle']:.3f}; "
          f"random pass@1 {meta['baseline_pass1']:.3f}",
          "- fuzz: no model; new inputs from type hints (hypothesis) and mutations of the shared inputs",
          "",
          "| selector | prompt examples | selected pass@1 | tasks better / worse than without fuzz | "
          "selection time (s) | sandbox batches |",
          "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        ch = r["vs_without_fuzz"]
        delta = f"{ch['better']} / {ch['worse']}" if ch else ""
        name = r["selector"].replace("|", "\\|")  # a bare | would split the table cell
        md.append(f"| `{name}` | {'yes' if r['variant'].startswith('prompt') else 'no'} | "
                  f"{r['selected_pass1']:.3f} | {delta} | "
                  f"{r['select_s']} | {r['sandbox_batches']} |")
    (out / f"fuzz_quality_{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
