"""`fuzz`: differential fuzzing between behaviour clusters; works without any model.

Candidates that agree on the shared inputs may still differ elsewhere (only on negative
numbers, only on empty lists). fuzz draws new inputs (hypothesis strategies from the entry
point's type hints, perturbations of the shared inputs, and the model-written `gen_input(rng)`
generators in task.metadata["input_generators"], which run only inside the sandbox), runs
the programs of the top clusters on them through the runner, and re-clusters on the longer
signatures. Where the best behaviours disagree it shrinks one disagreeing input to a minimal
one, then settles: (1) agreement on the disagreeing inputs (per input, the returned value
with the most candidate weight wins; raising or timing out loses to returning), (2) more
untrusted tests passed, (3) the judge model, if there is one, (4) total weight. Option
tests_first=True swaps (1) and (2).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from assay.selectors import fuzz_inputs as fi
from assay.selectors._common import abstain, loadable, ranked_selection, weight
from assay.words import counted
from assay.selectors.base import SelectContext
from assay.selectors.cluster import all_failed, behaviour
from assay.selectors.judge import compare, ranked_groups, total_cost, untrusted_passes
from assay.types import BudgetExceeded, Candidate, Cost, Evidence, Selection, Task

GEN_ENTRY = "_assay_gen_input"
_GEN_WRAPPER = f'''

def {GEN_ENTRY}(seed):
    import random as _random
    value = gen_input(_random.Random(seed))
    args = value if isinstance(value, tuple) else (value,)
    return ", ".join(repr(a) for a in args)
'''


@dataclass
class FuzzOptions:
    clusters: int = 6  # how many of the top behaviour clusters take part
    max_programs: int = 24  # distinct programs run on the new inputs
    hypothesis_inputs: int = 40
    mutated_inputs: int = 40
    generator_inputs: int = 12  # per generator
    shrink_rounds: int = 12
    shrink_pairs: int = 2  # the winner against this many runners-up
    screen: int = 8  # inputs first run on every program, to spot hangers
    judge_k: int = 2
    # settle by untrusted tests before agreement; off by default: on the cg16 dev pool, tests
    # decided 12 tasks wrongly for 5 rightly, agreement 3 wrongly for 13 rightly
    # (benches/results/fuzz_quality_cg16.md)
    tests_first: bool = False


class Fuzz:
    name = "fuzz"
    needs_model = False

    def __init__(self, **options: Any) -> None:
        self.opts = FuzzOptions(**options)

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        opts = FuzzOptions(**{**self.opts.__dict__, **ctx.options.get("fuzz", {})})
        pool = loadable(candidates, evidence)
        if not pool:
            return abstain("fuzz: no candidates")
        groups = ranked_groups(evidence, [c.id for c in pool], ctx)
        if ctx.runner is None or task.kind != "function" or not task.entry_point:
            return _by_groups(pool, groups, ctx, "fuzz: not a function task with a runner; "
                              "kept the behaviour-cluster order")
        seed = ctx.rng.getrandbits(32)
        # groups that only raise or time out on the shared inputs lose to any that returns
        # something whatever fuzz finds, and hangers are expensive to run: leave them out
        working = [g for g in groups if not _all_failed(evidence, g[0])] or groups
        programs, follow = _programs(pool, working[: opts.clusters], opts.max_programs)
        try:
            inputs, origin = _inputs(task, pool, evidence, ctx, opts, seed)
            inputs, outs = _run(task, ctx, programs, inputs, opts.screen)
        except BudgetExceeded as e:
            return _by_groups(pool, groups, ctx, f"fuzz: stopped ({e}); kept the behaviour-cluster order")
        if not inputs:
            return _by_groups(pool, groups, ctx, "fuzz: no new input to run; kept the behaviour-cluster order")
        return _settle(task, pool, evidence, ctx, opts, groups, programs, follow, inputs, origin, outs)


# --- which programs, which inputs ---------------------------------------------------------------


def _programs(pool: list[Candidate], groups: list[list[str]], cap: int):
    """Distinct programs of the given groups, round-robin across groups (so every group is
    represented before any gets a second member), at most `cap`. `follow` maps each member
    that is not run to the run programs it stands with: a duplicate to its program, one over
    the cap to the run programs of its group."""
    by_id = {c.id: c for c in pool}
    seen: dict[str, str] = {}
    follow: dict[str, list[str]] = {}
    over: dict[str, int] = {}
    queues = [[by_id[cid] for cid in g] for g in groups]
    programs: list[Candidate] = []
    while any(queues):
        for gi, q in enumerate(queues):
            while q:
                c = q.pop(0)
                key = c.content.strip()
                if key in seen:
                    follow[c.id] = [seen[key]]
                    continue
                if len(programs) < cap:
                    seen[key] = c.id
                    programs.append(c)
                else:
                    over[c.id] = gi
                break
    run = {c.id for c in programs}
    for cid, gi in over.items():
        follow[cid] = [m for m in groups[gi] if m in run]
    return programs, follow


def _inputs(task: Task, pool: list[Candidate], evidence: Evidence, ctx: SelectContext,
            opts: FuzzOptions, seed: int) -> tuple[list[str], dict[str, str]]:
    """New inputs (not already shared), with where each came from."""
    rng = random.Random(seed)
    examples = [a for a in (fi.literal_args(s) for s in evidence.inputs) if a]
    params = fi.find_params([task.statement] + [c.content for c in pool], task.entry_point)
    found: dict[str, str] = {}
    for src in fi.mutated_inputs(evidence.inputs, opts.mutated_inputs, rng):
        found.setdefault(src, "mutation")
    for src in fi.hypothesis_inputs(params, examples, opts.hypothesis_inputs, seed % (2**31)):
        found.setdefault(src, "hypothesis")
    for src in _generator_inputs(task, ctx, opts.generator_inputs, seed):
        found.setdefault(src, "generator")
    shared = set(evidence.inputs)
    kept = [s for s in found if s not in shared]
    return kept, {s: found[s] for s in kept}


def _generator_inputs(task: Task, ctx: SelectContext, n: int, seed: int) -> list[str]:
    """Inputs from the model-written `gen_input(rng)` sources, run as pseudo-candidates in the
    sandbox: `_assay_gen_input(seed)` returns the argument-list source as a string."""
    sources = [s for s in task.metadata.get("input_generators") or [] if isinstance(s, str)]
    if not sources or n <= 0:
        return []
    gens = [Candidate(id=f"gen{i}", task_id=task.id, content=src + _GEN_WRAPPER)
            for i, src in enumerate(sources)]
    gen_task = task.model_copy(update={"entry_point": GEN_ENTRY})
    seeds = [str(seed % 100000 + i) for i in range(n)]
    outs = ctx.runner.outputs(gen_task, gens, seeds)
    found: list[str] = []
    for g in gens:
        for out in outs.get(g.id, []):
            src = fi.literal_args(out)  # the repr of a str
            if src and isinstance(src[0], str) and fi.is_call_args(src[0]) and src[0] not in found:
                found.append(src[0])
    return found


def _run(task: Task, ctx: SelectContext, programs: list[Candidate], inputs: list[str],
         screen: int) -> tuple[list[str], dict[str, list[str]]]:
    """The inputs worth running and every program's outputs on them.

    The first `screen` inputs run on every program: one that times out on two of them is a
    hanger and is not run on the rest (they read "!skipped"; a hanger costs a timeout per
    input). Then an input on which the first other program times out is dropped: it is
    usually too big for the task, and would cost a timeout on every program.
    """
    if not inputs:
        return [], {c.id: [] for c in programs}
    screened = inputs[:screen]
    head = ctx.runner.outputs(task, programs, screened)
    hang = {c.id for c in programs if sum(o == "!timeout" for o in head.get(c.id, [])) >= 2}
    rest = [c for c in programs if c.id not in hang]
    if rest:
        probe = ctx.runner.outputs(task, rest[:1], inputs).get(rest[0].id) or []
        if len(probe) == len(inputs):
            inputs = [s for s, o in zip(inputs, probe) if o != "!timeout"]
    tail = ctx.runner.outputs(task, rest, inputs) if rest and inputs else {}
    out = {}
    for c in programs:
        if c.id in hang:
            first = dict(zip(screened, head[c.id]))
            out[c.id] = [first.get(s, "!skipped") for s in inputs]
        else:
            out[c.id] = list(tail.get(c.id) or ["!missing"] * len(inputs))
    return inputs, out


def _all_failed(evidence: Evidence, cid: str) -> bool:
    return cid in evidence.load_errors or all_failed(behaviour(evidence, cid))


# --- settling -----------------------------------------------------------------------------------


def _settle(task, pool, evidence, ctx, opts, groups, programs, follow, inputs, origin, outs) -> Selection:
    by_id = {c.id: c for c in pool}
    # refined behaviour: the shared signature plus the outputs on the new inputs
    refined: dict[tuple, list[str]] = {}
    for c in programs:
        refined.setdefault((behaviour(evidence, c.id), tuple(outs[c.id])), []).append(c.id)
    keys = list(refined)
    run_mass = {k: sum(weight(ctx, c) for c in refined[k]) for k in keys}
    members = {key: list(cids) for key, cids in refined.items()}
    for cid, alike in follow.items():
        # a duplicate joins its program's behaviour; a member not run (over the cap) is taken
        # to behave like the heaviest part of its cluster
        homes = [k for k in keys if set(refined[k]) & set(alike)]
        if homes:
            members[max(homes, key=lambda k: run_mass[k])].append(cid)
    mass = {k: sum(weight(ctx, c) for c in members[k]) for k in keys}
    tests = {k: sum(untrusted_passes(evidence, c) for c in refined[k]) / len(refined[k]) for k in keys}
    disagree = [i for i in range(len(inputs)) if len({k[1][i] for k in keys}) > 1]
    agree = _agreement(keys, mass, disagree)
    failing = {k: bool(k[0] + k[1]) and all(o.startswith("!") for o in k[0] + k[1]) for k in keys}
    def strength(k: tuple) -> tuple:
        first, second = (tests[k], agree[k]) if opts.tests_first else (agree[k], tests[k])
        return (failing[k], -first, -second, -mass[k])

    order = sorted(keys, key=strength)
    rep = {k: refined[k][0] for k in keys}

    # shrink a disagreeing input between the leader and its closest rivals
    shrunk: dict[tuple, tuple[str, str, str]] = {}
    try:
        lead = order[0]
        for rival in order[1:]:
            if len(shrunk) >= opts.shrink_pairs:
                break
            starts = [inputs[i] for i in disagree if lead[1][i] != rival[1][i]
                      and not {lead[1][i], rival[1][i]} & {"!timeout", "!skipped"}]
            if starts:
                shrunk[rival] = _shrink(task, ctx, by_id[rep[lead]], by_id[rep[rival]], starts,
                                        opts.shrink_rounds)
    except BudgetExceeded:
        pass  # settle with what we have

    settled_by = "only behaviour" if len(order) == 1 else _reason(order, failing, tests, agree, mass,
                                                                  opts.tests_first)
    costs: list[Cost] = []
    if len(order) > 1 and settled_by in ("weight", "tie") and ctx.model is not None:
        order, settled_by = _judge(task, ctx, evidence, opts, order, rep, by_id, shrunk, costs)

    score: dict[str, float] = {}
    level = float(len(order))
    for rank, k in enumerate(order):
        judged = rank == 1 and settled_by == "judge"
        if rank and (judged or strength(k) != strength(order[rank - 1])):
            level = float(len(order) - rank)  # equally strong behaviours share a score
        for cid in members[k]:
            score[cid] = level
    rest = [cid for g in groups for cid in g if cid not in score]
    for i, cid in enumerate(rest):
        score[cid] = -1.0 - i / (len(rest) + 1)
    group_of = {cid: ("f", i) for i, k in enumerate(order) for cid in members[k]}
    group_of.update({cid: ("g", cid) for cid in rest})
    rationale = _rationale(task, inputs, origin, programs, order, disagree, shrunk, settled_by, mass)
    evidence.judgements.append({
        "selector": "fuzz", "winner": rep[order[0]], "settled_by": settled_by,
        "behaviours": len(order), "inputs": len(inputs), "disagreeing": len(disagree),
        "distinguishing": [{"input": s[0], "winner_output": s[1], "rival": rep[k], "rival_output": s[2]}
                           for k, s in shrunk.items()],
    })
    sel = ranked_selection("fuzz", [by_id[c] for c in score if c in by_id], score, ctx, rationale,
                           groups=group_of)
    return sel.model_copy(update={"cost": total_cost(costs)})


def _agreement(keys: list[tuple], mass: dict, disagree: list[int]) -> dict[tuple, float]:
    """Per disagreeing input, the groups returning the heaviest value score 1 (shared on ties);
    exceptions and timeouts only count when no group returns a value."""
    agree = {k: 0.0 for k in keys}
    for i in disagree:
        tally: dict[str, float] = {}
        for k in keys:
            tally[k[1][i]] = tally.get(k[1][i], 0.0) + mass[k]
        values = {o: m for o, m in tally.items() if not o.startswith("!")} or tally
        best = max(values.values())
        winners = [o for o, m in values.items() if m == best]
        for k in keys:
            if k[1][i] in winners:
                agree[k] += 1.0 / len(winners)
    return agree


def _reason(order, failing, tests, agree, mass, tests_first: bool) -> str:
    a, b = order[0], order[1]
    if failing[a] != failing[b]:
        return "the rival only raises"
    for name, val in ([("tests", tests), ("agreement", agree)] if tests_first
                      else [("agreement", agree), ("tests", tests)]):
        if val[a] != val[b]:
            return name
    return "weight" if mass[a] != mass[b] else "tie"


def _shrink(task: Task, ctx: SelectContext, x: Candidate, y: Candidate, starts: list[str],
            rounds: int) -> tuple[str, str, str]:
    """Greedy shrink of a disagreeing input: take the smallest simplification on which x and y
    still disagree, re-running both in the sandbox each round. Returns (input, x's, y's output)."""
    def key(s: str):
        a = fi.literal_args(s)
        return (fi.size(a) if a is not None else (10**9, 0.0), len(s), s)

    current = min(starts, key=key)
    got = ctx.runner.outputs(task, [x, y], [current])
    best = (current, got[x.id][0], got[y.id][0])
    for _ in range(rounds):
        steps = fi.shrink_steps(current)
        if not steps:
            break
        got = ctx.runner.outputs(task, [x, y], steps)
        hit = next((i for i in range(len(steps)) if got[x.id][i] != got[y.id][i]
                    and "!timeout" not in (got[x.id][i], got[y.id][i])), None)
        if hit is None:
            break
        current = steps[hit]
        best = (current, got[x.id][hit], got[y.id][hit])
    return best


def _judge(task, ctx, evidence, opts, order, rep, by_id, shrunk, costs):
    """Last resort for two equally supported behaviours: ask the judge, showing both programs'
    outputs on the distinguishing input(s)."""
    a, b = order[0], order[1]
    rows = [s for k, s in shrunk.items() if k == b]
    outputs = {rep[a]: [(s[0], s[1]) for s in rows], rep[b]: [(s[0], s[2]) for s in rows]}
    wa, wb, _ = compare(ctx, "judge_pair.j2", rep[a], rep[b], opts.judge_k, costs, evidence, "fuzz", task,
                        programs={rep[a]: by_id[rep[a]].content, rep[b]: by_id[rep[b]].content},
                        outputs=outputs)
    if wa == wb:
        return order, "tie"
    if wb > wa:
        order = [b, a] + order[2:]
    return order, "judge"


def _rationale(task, inputs, origin, programs, order, disagree, shrunk, settled_by, mass) -> str:
    counts: dict[str, int] = {}
    for s in inputs:
        counts[origin[s]] = counts.get(origin[s], 0) + 1
    made = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "none"
    text = (f"fuzz: {counted(len(inputs), 'new input')} ({made}) on {counted(len(programs), 'program')} -> "
            f"{counted(len(order), 'behaviour')}, {counted(len(disagree), 'disagreeing input')}")
    for s in shrunk.values():
        text += f"; distinguishing input {task.entry_point}({s[0]}): winner {s[1]} vs {s[2]}"
    return text + f"; settled by {settled_by} (winner weight {mass[order[0]]:g})"


def _by_groups(pool: list[Candidate], groups: list[list[str]], ctx: SelectContext, why: str) -> Selection:
    score = {cid: float(len(groups) - i) for i, g in enumerate(groups) for cid in g}
    group_of = {cid: i for i, g in enumerate(groups) for cid in g}
    return ranked_selection("fuzz", pool, score, ctx, why, groups=group_of)
