"""Tests for function tasks: trusted ones from the prompt's doctest examples, and untrusted
model-written ones (assert statements, random-input generators for fuzzing)."""

from __future__ import annotations

import ast
import doctest
import inspect
import logging
import re
from typing import Any

from assay.agent.codeparse import code_blocks, extract_function_source
from assay.agent.models import bind, within_budget
from assay.agent.render import problem_block, render
from assay.types import Budget, Task, TestCase

log = logging.getLogger("assay.testgen")

SYSTEM = "You are an expert Python programmer and a careful tester."


def _docstring_node(prompt: str, entry_point: str) -> ast.Expr | None:
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                return first
            return None
    return None


def _docstring_of(prompt: str, entry_point: str) -> str:
    """The entry point's docstring when the prompt parses, else the whole prompt."""
    try:
        ast.parse(prompt)
    except SyntaxError:
        return prompt
    node = _docstring_node(prompt, entry_point)
    return inspect.cleandoc(node.value.value) if node is not None else ""


def _raw_docstring(prompt: str, entry_point: str) -> str:
    """The docstring as written in the source, escapes unprocessed: `>>> f("a\\nb")` in a
    non-raw docstring is a real newline once evaluated, which breaks the doctest (HumanEval/51)."""
    node = _docstring_node(prompt, entry_point)
    seg = ast.get_source_segment(prompt, node) if node is not None else None
    if not seg:
        return ""
    seg = seg.lstrip("rRuUbB")
    quote = seg[:3] if seg[:3] in ('"""', "'''") else seg[:1]
    return seg[len(quote):len(seg) - len(quote)]


def _calls_entry(src: str, entry_point: str) -> bool:
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry_point
               for n in ast.walk(tree))


def _example_assert(source: str, want: str) -> str | None:
    """`assert <expr> == <want>` for one doctest example (abs tolerance for a float result);
    None when `want` is not a Python value. An example without output is kept only when it
    is itself a comparison (`>>> f(1) == 2`, a common docstring slip)."""
    want = want.strip()
    if not want:
        expr = ast.parse(source, mode="eval").body
        return f"assert {source}" if isinstance(expr, ast.Compare) else None
    if want.startswith("Traceback"):
        return None
    try:
        value = ast.parse(want, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(value, ast.Constant) and isinstance(value.value, float):
        return f"assert abs({source} - {want}) < 1e-6"
    if isinstance(value, ast.UnaryOp) and isinstance(value.operand, ast.Constant) \
            and isinstance(value.operand.value, float):
        return f"assert abs({source} - ({want})) < 1e-6"
    return f"assert {source} == {want}"


_SEPARATOR = re.compile(r"\s*(?:#\s*)?(?:==>|=>|➞|->|→|==|=|should return|returns|return)\s*")
# what may follow an expected value on its line: nothing, punctuation, or a remark in parentheses
_TAIL = re.compile(r"[\s.,;:]*(?:\s\(.*)?")


def _literal(text: str) -> str | None:
    """The Python literal `text` starts with, when only a remark may follow it: `'No' (the
    name should...)` gives `'No'`, `""aaa"` and `1 + 2` give None. `("Venus")` is refused:
    a one-element tuple written without its comma (HumanEval/148)."""
    text = text.split("  #")[0].split(" # ")[0].strip()
    for end in range(len(text), 0, -1):
        if not _TAIL.fullmatch(text[end:]):
            continue
        chunk = text[:end].rstrip(" .,;:")  # `should return 16.` ends a sentence, not a float
        if not chunk:
            continue
        try:
            value = ast.literal_eval(chunk)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, tuple) and not chunk.startswith("("):
            continue  # `3, if n is odd`: prose after a comma
        if chunk.startswith("(") and not isinstance(value, tuple):
            return None
        return chunk
    return None


def _expected(rest: str) -> str | None:
    """The expected value after a separator: a literal, or the literal ending a worked
    calculation (`19 - 5 - 6 = 8`, `1 + 9 + 0 + 0 = 10`)."""
    want = _literal(rest)
    if want is not None or " = " not in rest:
        return want
    *work, last = rest.split(" = ")
    try:
        for step in work:
            ast.parse(step.strip(), mode="eval")
    except SyntaxError:
        return None
    return _literal(last)


def _call_at(line: str, start: int) -> tuple[ast.Call, str] | None:
    """(the call starting at `start`, the rest of the line), if the call closes on this line."""
    for end in range(start, len(line)):
        if line[end] != ")":
            continue
        try:
            expr = ast.parse(line[start:end + 1], mode="eval").body
        except SyntaxError:
            continue
        return (expr, line[end + 1:]) if isinstance(expr, ast.Call) else None
    return None


def _prose_examples(doc: str, entry_point: str) -> list[tuple[str, str]]:
    """Examples written as prose lines, anywhere on a line: `f(1, 2) ==> 3`, `* f(x) ➞ True`,
    `f(x) = y`, `f(x)  # returns y`, `... and f("a") should return 'A'.` (HumanEval's later
    problems): (call source, expected literal), for calls whose arguments are all literals
    (`f(n) = n + 1` is a definition, not an example)."""
    # `tri(n) = tri(n - 1) + ...`: a recurrence; its `=` lines give the sequence's values, not
    # the function's results (HumanEval/130's tri returns a list)
    recurrence = re.search(rf"(?m)\b{re.escape(entry_point)}\(.*\)\s*=[^=>].*\b{re.escape(entry_point)}\(",
                           doc) is not None
    out = []
    for line in doc.splitlines():
        if line.lstrip().startswith((">>>", "...", "def ")):
            continue
        for m in re.finditer(rf"(?<![\w.]){re.escape(entry_point)}\(", line):
            found = _call_at(line, m.start())
            if found is None:
                continue
            call, rest = found
            sep = _SEPARATOR.match(rest)
            if sep is None or (recurrence and sep.group().strip() == "="):
                continue
            try:
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    ast.literal_eval(arg)  # literal arguments only (`f(a)` is prose)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            want = _expected(rest[sep.end():])
            if want is not None:
                out.append((ast.unparse(call), want))
    return out


def public_tests_from_docstring(prompt: str, entry_point: str) -> list[TestCase]:
    """Trusted tests from the examples in the entry point's docstring (HumanEval's public
    tests): `>>>` doctest examples, and `f(args) ==> value` style lines. Statement examples
    (`>>> x = 3`) become setup for the later ones."""
    doc = _docstring_of(prompt, entry_point)
    examples = _doctest_examples(doc)
    if examples is None:  # e.g. an escaped newline inside an example, evaluated: use the source text
        examples = _doctest_examples(_raw_docstring(prompt, entry_point)) or []
    examples += _prose_examples(doc, entry_point)
    tests: list[TestCase] = []
    setup: list[str] = []
    seen: set[str] = set()
    for source, want in examples:
        source = source.strip()
        try:
            source = ast.unparse(ast.parse(source, mode="eval"))  # also drops comments
        except SyntaxError:
            if _parses(source):
                setup.append(source)
            continue
        if not _calls_entry(source, entry_point):
            continue
        check = _example_assert(source, want)
        if check is None or not _parses(check):
            continue
        if check in seen:
            continue
        seen.add(check)
        full = "\n".join([*setup, check])
        tests.append(TestCase(id=f"public_{len(tests)}", source=full, origin="public", trusted=True))
    return tests


def _doctest_examples(doc: str) -> list[tuple[str, str]] | None:
    """(source, want) of the `>>>` examples; None when the text is not valid doctest."""
    try:
        return [(ex.source, ex.want) for ex in doctest.DocTestParser().get_examples(doc)]
    except ValueError:  # inconsistent indentation inside the docstring
        return None


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
    except SyntaxError:
        return False
    return True


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def generate_tests(task: Task, model: Any, n: int = 10, budget: Budget | None = None, *,
                   samples: int = 1, temperature: float | None = None) -> list[TestCase]:
    """Up to `n` model-written assert tests (untrusted, origin "generated"), deduplicated
    against each other and the task's public tests. `samples` answers are pooled.
    A spent budget stops cleanly with what was gathered."""
    from assay.asserts import parse_asserts

    entry = task.entry_point or ""
    prompt = render("testgen_asserts.j2", problem=problem_block(task.statement), entry_point=entry, n=n)
    m = bind(model, task_id=task.id, trajectory="testgen")
    seen = {_normal(t.source) for t in task.public_tests}
    tests: list[TestCase] = []
    answers = within_budget(budget, lambda: m.complete(_messages(prompt), n=samples, temperature=temperature),
                            f"test generation for {task.id}")
    if answers is None:
        return tests
    for ans in answers:
        for src in parse_asserts(ans.text, entry):
            key = _normal(src)
            if key in seen or len(tests) >= n:
                continue
            seen.add(key)
            tests.append(TestCase(id=f"gen_{len(tests)}", source=src, origin="generated", trusted=False))
    return tests


def _normal(src: str) -> str:
    try:
        return ast.unparse(ast.parse(src))
    except SyntaxError:
        return src.strip()


def _valid_generator(src: str) -> str | None:
    """Why `src` is not a usable `gen_input(rng)` definition, or None if it is."""
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        return f"SyntaxError: {e.msg}"
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "gen_input"), None)
    if fn is None:
        return "no function gen_input"
    if len(fn.args.args) != 1:
        return "gen_input must take exactly one argument (rng)"
    return None


def generate_input_generators(task: Task, model: Any, n: int = 1, budget: Budget | None = None, *,
                              temperature: float | None = None) -> list[str]:
    """Up to `n` sources each defining `gen_input(rng) -> tuple` (random valid arguments for
    the entry point, for fuzzing); answers that do not parse or lack it are dropped.
    The sources are untrusted and must only run inside a sandbox."""
    prompt = render("testgen_inputs.j2", problem=problem_block(task.statement),
                    entry_point=task.entry_point or "")
    m = bind(model, task_id=task.id, trajectory="input_generators")
    answers = within_budget(budget, lambda: m.complete(_messages(prompt), n=n, temperature=temperature),
                            f"input-generator generation for {task.id}")
    if answers is None:
        return []
    out: list[str] = []
    for ans in answers:
        src = extract_function_source(ans.text, "gen_input")
        if src is None:
            blocks = code_blocks(ans.text)
            src = blocks[-1] if blocks else ans.text
        reason = _valid_generator(src)
        if reason is not None:
            log.info("dropped an input generator for %s: %s", task.id, reason)
            continue
        if src not in out:
            out.append(src)
    return out
