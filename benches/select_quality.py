"""Selection quality of every model-free selector pipeline on candidate pools.

Runs the pool's public (or prompt-example) and generated tests once per pool through the
Runner (as `assay select` does), scores every candidate with the hidden test separately,
then applies each pipeline to the same Evidence. Writes JSON + a markdown table under
benches/results/.

    python benches/select_quality.py --pool examples/pools/humaneval_dev.jsonl --name humaneval_dev
    python benches/select_quality.py --pool /work/devdata/cg16_pool.jsonl --name cg16 \
        --evidence-cache /work/devdata/cg16_evidence.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assay.machine import cpu_model  # noqa: E402
from assay.commands.select import DEFAULT_TIMEOUT_S, HIDDEN_TIMEOUT_S, PoolEval, evaluate_pool, hidden_correct, select_all, summarize  # noqa: E402
from assay.asserts import call_inputs  # noqa: E402
from assay.pool import load_pool  # noqa: E402
from assay.selectors.pipeline import DEFAULT_PIPELINE  # noqa: E402
from assay.types import Candidate, Evidence, Task  # noqa: E402

SPECS = ["vote", "codet", "cluster", "consensus", "dedup|codet", "dedup|cluster", "dedup|consensus",
         "public", "public|vote", "public|codet", "public|cluster", "public|consensus",
         "public|dedup|codet", "public|dedup|cluster", "public|dedup|consensus"]




def load_or_run(args) -> tuple[list[PoolEval], list[dict[str, bool]], dict]:
    cache = Path(args.evidence_cache) if args.evidence_cache else None
    if cache and cache.exists():
        data = json.loads(gzip.decompress(cache.read_bytes()))
        evals = [PoolEval(Task.model_validate(e["task"]), [Candidate.model_validate(c) for c in e["candidates"]],
                          Evidence.model_validate(e["evidence"])) for e in data["evals"]]
        return evals, data["correct"], data["timing"]
    from assay.sandbox.base import make_sandbox
    from assay.sandbox.runner import Runner

    pool = load_pool(args.pool, limit=args.limit)
    box = make_sandbox(args.sandbox)
    try:
        runner = Runner(box, test_timeout_s=args.timeout, workers=args.workers, cache_dir=args.runner_cache)
        scorer = Runner(box, test_timeout_s=max(args.timeout, HIDDEN_TIMEOUT_S), workers=args.workers,
                        cache_dir=args.runner_cache, peer_factor=None)
        t0 = time.monotonic()
        evals = evaluate_pool(pool, runner, prompt_examples=True)
        t1 = time.monotonic()
        correct = hidden_correct(pool, scorer)
        t2 = time.monotonic()
    finally:
        box.close()
    timing = {"evidence_s": round(t1 - t0, 1), "hidden_s": round(t2 - t1, 1)}
    if cache:
        blob = {"evals": [{"task": e.task.model_dump(), "candidates": [c.model_dump() for c in e.candidates],
                           "evidence": e.evidence.model_dump()} for e in evals],
                "correct": correct, "timing": timing}
        cache.write_bytes(gzip.compress(json.dumps(blob).encode()))
    return evals, correct, timing


def hidden_only(args) -> None:
    from assay.metrics import baseline_pass1, oracle
    from assay.sandbox.base import make_sandbox
    from assay.sandbox.runner import Runner

    pool = load_pool(args.pool, limit=args.limit)
    box = make_sandbox(args.sandbox)
    try:
        scorer = Runner(box, test_timeout_s=max(args.timeout, HIDDEN_TIMEOUT_S), workers=args.workers,
                        cache_dir=args.runner_cache, peer_factor=None)
        correct = hidden_correct(pool, scorer)
    finally:
        box.close()
    print(json.dumps({"pool": args.pool, "tasks": len(pool), "oracle": oracle(correct),
                      "baseline_pass1": baseline_pass1(correct)}))


def without_public(evals: list[PoolEval]) -> list[PoolEval]:
    """The same evidence as if the prompt's examples had not been used as trusted tests."""
    out = []
    for e in evals:
        derived = e.task.metadata.get("public_tests_from") == "docstring"
        if not derived:
            out.append(e)
            continue
        keep = [t for t in e.evidence.tests if not t.trusted]
        ids = {t.id for t in keep}
        # inputs seen only in the examples go too: the statement without examples lacks them
        used = {a for t in keep for a in call_inputs(t.source, e.task.entry_point)}
        pos = [i for i, a in enumerate(e.evidence.inputs) if a in used]
        ev = e.evidence.model_copy(update={
            "tests": keep,
            "inputs": [e.evidence.inputs[i] for i in pos],
            "signatures": {c: [s[i] for i in pos] for c, s in e.evidence.signatures.items()},
            "outcomes": {c: {t: o for t, o in row.items() if t in ids} for c, row in e.evidence.outcomes.items()}})
        out.append(PoolEval(e.task.model_copy(update={"public_tests": []}), e.candidates, ev))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--name", required=True, help="results go to benches/results/select_quality_<name>.{json,md}")
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    ap.add_argument("--sandbox", default="local")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--evidence-cache", default=None, help="gzipped JSON of the pool's evidence (reused)")
    ap.add_argument("--runner-cache", default=None, help="the Runner's per-candidate result cache")
    ap.add_argument("--shared", action="store_true", help="say that other work shared the machine")
    ap.add_argument("--note", default="", help="extra line for the markdown (e.g. where the pool came from)")
    ap.add_argument("--hidden-only", action="store_true",
                    help="only score every candidate with the hidden test: print oracle and random pass@1")
    args = ap.parse_args()

    if args.hidden_only:
        hidden_only(args)
        return
    evals, correct, timing = load_or_run(args)
    rows = []
    t_sel = time.monotonic()
    for variant, ev_set in (("prompt examples as trusted tests", evals), ("no prompt examples", without_public(evals))):
        for spec in args.specs.split(","):
            if variant == "no prompt examples" and "public" not in spec:
                continue  # identical evidence for pipelines without `public`
            t0 = time.monotonic()
            res = summarize(spec, ev_set, select_all(ev_set, spec, seed=args.seed), correct)
            rows.append({"variant": variant, "selector": spec, "selected_pass1": res["selected_pass1"],
                         "abstained": res["abstained"], "select_s": round(time.monotonic() - t0, 2),
                         **({"per_task": res["per_task"]} if spec == DEFAULT_PIPELINE else {})})
    from assay.metrics import baseline_pass1, oracle

    meta = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores (nproc {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), {cpu_model()}",
        "shared_machine": args.shared, "seed": args.seed, "pool": args.pool, "tasks": len(evals),
        "candidates": sum(len(e.candidates) for e in evals),
        "generated_tests_mean": sum(sum(not t.trusted for t in e.evidence.tests) for e in evals) / len(evals),
        "tasks_with_prompt_examples": sum(bool(e.task.public_tests) for e in evals),
        "oracle": oracle(correct), "baseline_pass1": baseline_pass1(correct),
        "timing": dict(timing, selection_all_specs_s=round(time.monotonic() - t_sel, 1)),
        "workers": args.workers, "timeout_s": args.timeout, "sandbox": args.sandbox,
    }
    out = ROOT / "benches" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"select_quality_{args.name}.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
    md = [f"# Selection quality: {args.name}", "", args.note, "",
          f"- command: `{meta['command']}`", f"- date: {meta['date']}; seed {args.seed}",
          f"- machine: {meta['machine']}; "
          + ("shared with other work while it ran" if args.shared else "no other work ran while the tests ran"),
          f"- pool: {meta['tasks']} tasks, {meta['candidates']} candidates, "
          f"{meta['generated_tests_mean']:.1f} generated tests per task on average, "
          f"{meta['tasks_with_prompt_examples']} tasks with worked examples in the prompt",
          f"- oracle (any candidate correct): {meta['oracle']:.3f}; random pass@1: {meta['baseline_pass1']:.3f}",
          f"- time: tests {timing.get('evidence_s')} s + hidden scoring {timing.get('hidden_s')} s "
          f"({args.workers} workers, {args.timeout:g} s per test, hidden check {max(args.timeout, HIDDEN_TIMEOUT_S):g} s, {args.sandbox} sandbox)", "",
          "| selector | prompt examples | selected pass@1 | abstained |", "|---|---|---:|---:|"]
    for r in rows:
        md.append(f"| `{r['selector']}`{' (default)' if r['selector'] == DEFAULT_PIPELINE else ''} | {'yes' if r['variant'].startswith('prompt') else 'no'} | "
                  f"{r['selected_pass1']:.3f} | {r['abstained']} |")
    (out / f"select_quality_{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
