"""Asserts written by models: split them out of messy text, find the inputs they call.

`parse_asserts` turns model text (markdown fences, prose, `assert` broken over lines,
truncated last lines) into single runnable assert statements that call the entry point.
`call_inputs` lists the argument lists (as Python source) of the entry-point calls in a test.
`split_call_check` recognises the common one-call assert (`assert f(X) == Y`) so the runner
can evaluate the call once and get both the output (signature) and the verdict from it.
"""

from __future__ import annotations

import ast
import builtins
import re

_BUILTINS = frozenset(dir(builtins))
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)
_ASSERT_START = re.compile(r"^\s*assert\b")
RESULT_VAR = "__assay_r__"  # must match harness.RESULT_VAR


def _callee_names(entry_point: str) -> set[str]:
    return {entry_point, "candidate"}


def _is_ep_call(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _free_names(node: ast.AST) -> set[str]:
    """Names read in `node` that it does not bind itself (comprehension/lambda/walrus)."""
    loaded, bound = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
    return loaded - bound


def _args_source(call: ast.Call) -> str:
    parts = [ast.unparse(a) for a in call.args]
    parts += [f"**{ast.unparse(k.value)}" if k.arg is None else f"{k.arg}={ast.unparse(k.value)}"
              for k in call.keywords]
    return ", ".join(parts)


def _pure_args(call: ast.Call) -> bool:
    """Arguments that can be evaluated on their own: only literals and builtins."""
    return all(_free_names(a) <= _BUILTINS for a in [*call.args, *call.keywords])


def call_inputs(test_source: str, entry_point: str) -> list[str]:
    """Argument-list sources of the entry-point (or `candidate`) calls in `test_source`, in
    source order, duplicates kept. Calls whose arguments use names other than builtins
    (local variables, other calls of the entry point) are skipped: they are not inputs that
    can be replayed on their own."""
    try:
        tree = ast.parse(test_source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names = _callee_names(entry_point)
    calls = [n for n in ast.walk(tree) if _is_ep_call(n, names) and _pure_args(n)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [_args_source(c) for c in calls]


# Nodes the single entry-point call may sit under for `split_call_check`: evaluating the call
# first is then the same as Python's own order (no short-circuit, no deferred evaluation).
_STRICT = (ast.Compare, ast.UnaryOp, ast.BinOp, ast.Call, ast.Subscript, ast.Attribute,
           ast.Tuple, ast.List, ast.Set, ast.keyword, ast.Starred, ast.Slice)


def split_call_check(test_source: str, entry_point: str) -> tuple[str, str, str | None] | None:
    """For a one-statement assert with exactly one replayable entry-point call, return
    (args source, check expression with the call replaced by RESULT_VAR, expected source
    when the assert is `call == expected`); else None (run the test as a whole)."""
    try:
        tree = ast.parse(test_source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    test = tree.body[0].test
    names = _callee_names(entry_point)
    calls = [n for n in ast.walk(test) if _is_ep_call(n, names)]
    if len(calls) != 1 or not _pure_args(calls[0]):
        return None
    call = calls[0]
    parents: dict[ast.AST, ast.AST] = {}
    for n in ast.walk(test):
        for c in ast.iter_child_nodes(n):
            parents[c] = n
    node = call
    while node is not test:
        node = parents[node]
        if not isinstance(node, _STRICT):
            return None
    args = _args_source(call)
    expected = None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        if test.left is call:
            expected = ast.unparse(test.comparators[0])
        elif test.comparators[0] is call:
            expected = ast.unparse(test.left)

    class _Swap(ast.NodeTransformer):
        def visit_Call(self, n: ast.Call) -> ast.AST:
            if n is call:
                return ast.copy_location(ast.Name(id=RESULT_VAR, ctx=ast.Load()), n)
            return self.generic_visit(n)

    check = ast.unparse(_Swap().visit(test))
    return args, check, expected


def _code_blocks(text: str) -> list[str]:
    blocks = _FENCE.findall(text)
    return blocks if blocks else [text]


def _assert_nodes_from_chunks(text: str) -> list[ast.Assert]:
    """Line-based recovery for text that does not parse as a whole."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _ASSERT_START.match(line)]
    found: list[ast.Assert] = []
    for k, i in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else min(len(lines), i + 30)
        for j in range(i + 1, min(end, i + 30) + 1):
            chunk = lines[i:j]
            for src in ("\n".join(s.strip() for s in chunk), " ".join(s.strip() for s in chunk)):
                try:
                    body = ast.parse(src).body
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    continue
                if len(body) == 1 and isinstance(body[0], ast.Assert):
                    found.append(body[0])
                    break
            else:
                continue
            break
    return found


def parse_asserts(text: str, entry_point: str) -> list[str]:
    """Individual, syntactically valid assert statements from model text that call the entry
    point (or `candidate`) and use no names but builtins and that function; deduplicated
    after normalisation (ast.unparse, message ignored), first occurrence kept, in order."""
    names = _callee_names(entry_point)
    allowed = _BUILTINS | names
    out: list[str] = []
    seen: set[str] = set()
    for block in _code_blocks(text):
        try:
            nodes = [n for n in ast.walk(ast.parse(block)) if isinstance(n, ast.Assert)]
            nodes.sort(key=lambda n: (n.lineno, n.col_offset))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            nodes = _assert_nodes_from_chunks(block)
        for node in nodes:
            if not any(_is_ep_call(n, names) for n in ast.walk(node.test)):
                continue
            if not _free_names(node) <= allowed:
                continue
            key = ast.unparse(node.test)
            if key in seen:
                continue
            seen.add(key)
            out.append(ast.unparse(node))
    return out
