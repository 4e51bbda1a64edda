"""Filters: `public` (trusted examples) and `dedup` (AST-identical programs merged).

A filter's Selection keeps its survivors in `ranking` (and `tied`): the next stage sees those.
"""

from __future__ import annotations

import ast

from assay.selectors._common import MULTIPLICITY, abstain, loadable
from assay.words import counted
from assay.selectors.base import SelectContext
from assay.types import Candidate, Evidence, Selection, Task


def _kept(name: str, kept: list[Candidate], ctx: SelectContext, rationale: str,
          scores: dict[str, float] | None = None) -> Selection:
    if not kept:
        return abstain(f"{name}: no candidates")
    ids = [c.id for c in kept]
    return Selection(chosen=ctx.rng.choice(ids), ranking=ids, tied=ids, scores=scores or {},
                     rationale=rationale)


class PublicFilter:
    """Keep the candidates that pass the most trusted (public) tests, ideally all of them.

    If no candidate passes any trusted test (or there are none), everything is kept: a wrong
    or unparsable example must not wipe out the pool."""

    name = "public"
    needs_model = False

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        pool = loadable(candidates, evidence)
        trusted = [t.id for t in evidence.tests if t.trusted]
        if not pool:
            return abstain("public: no candidates")
        if not trusted:
            return _kept(self.name, pool, ctx, "public: no trusted tests; kept all loadable candidates")
        passed = {c.id: sum(evidence.outcomes.get(c.id, {}).get(t) == "pass" for t in trusted)
                  for c in pool}
        best = max(passed.values())
        if best == 0:
            return _kept(self.name, pool, ctx,
                         f"public: no candidate passes any of {len(trusted)} trusted tests; kept all",
                         {k: float(v) for k, v in passed.items()})
        kept = [c for c in pool if passed[c.id] == best]
        return _kept(self.name, kept, ctx,
                     f"public: {len(kept)}/{len(candidates)} pass {best}/{len(trusted)} trusted tests",
                     {k: float(v) for k, v in passed.items()})


class _Normalise(ast.NodeTransformer):
    """Drop docstrings and rename bound names (args, assignment targets) to v0, v1, ... in order."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _bind(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def _strip_doc(self, node):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_Module(self, node):
        return self.generic_visit(self._strip_doc(node))

    def visit_FunctionDef(self, node):
        return self.generic_visit(self._strip_doc(node))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        return self.generic_visit(self._strip_doc(node))

    def visit_arg(self, node):
        node.arg = self._bind(node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)) or node.id in self.names:
            node.id = self._bind(node.id)
        return node


def normal_form(source: str) -> str:
    """A key equal for programs that differ only in comments, docstrings, layout, annotations
    of arguments and the names of bound variables; the stripped text if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return "\0unparsed\0" + source.strip()
    return ast.dump(_Normalise().visit(tree), annotate_fields=False, include_attributes=False)


class Dedup:
    """Merge candidates with the same normal form: later rankers see each distinct program once.

    How many samples each survivor stands for goes to ctx.options["multiplicity"] (and the
    Selection's scores); rankers use it as votes only with ctx.options["multiplicity_votes"]."""

    name = "dedup"
    needs_model = False

    def select(self, task: Task, candidates: list[Candidate], evidence: Evidence,
               ctx: SelectContext) -> Selection:
        if not candidates:
            return abstain("dedup: no candidates")
        mult = ctx.options.setdefault(MULTIPLICITY, {})
        reps: dict[str, Candidate] = {}
        total: dict[str, float] = {}
        for c in candidates:
            key = normal_form(c.content)
            rep = reps.setdefault(key, c)
            total[rep.id] = total.get(rep.id, 0.0) + mult.get(c.id, 1.0)
        mult.update(total)
        kept = list(reps.values())
        return _kept(self.name, kept, ctx,
                     f"dedup: {counted(len(candidates), 'candidate')} -> {counted(len(kept), 'distinct program')}",
                     {c.id: total[c.id] for c in kept})
