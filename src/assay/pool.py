"""Candidate pool files: fixed candidates + tests per task, for selection without generation.

JSONL, one task per line (DESIGN.md "Candidate pool file"). The hidden test is kept apart
from everything a selector sees: `PoolTask.task()`, `.candidates()` and `.tests()` never
carry it; only `.hidden_check()` does, and only the scorer calls that.
"""

from __future__ import annotations

import ast
import doctest
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from assay.errors import UserError
from assay.types import Candidate, Task, TestCase

REQUIRED = ("task_id", "prompt", "entry_point", "candidates", "hidden_test")
_LISTS = ("candidates", "generated_tests", "public_tests")


@dataclass(frozen=True)
class PoolTask:
    task_id: str
    prompt: str
    entry_point: str
    candidates: list[str]
    generated_tests: list[str]
    public_tests: list[str]
    hidden_test: str = field(repr=False)

    def task(self, derived_public: list[str] | None = None) -> Task:
        """The Task a selector sees: prompt and trusted public tests, never the hidden test.

        `derived_public` (e.g. asserts taken from the prompt's `>>>` examples) is used only
        when the pool gives no public tests of its own."""
        public = self.public_tests or list(derived_public or [])
        origin = "pool" if self.public_tests else "docstring"
        return Task(
            id=self.task_id,
            statement=self.prompt,
            entry_point=self.entry_point,
            public_tests=[TestCase(id=f"p{i}", source=s, origin="public", trusted=True)
                          for i, s in enumerate(public)],
            metadata={"public_tests_from": origin if public else None},
        )

    def candidate_list(self) -> list[Candidate]:
        return [Candidate(id=f"c{i}", task_id=self.task_id, content=c)
                for i, c in enumerate(self.candidates)]

    def generated(self) -> list[TestCase]:
        return [TestCase(id=f"g{i}", source=s, origin="generated", trusted=False)
                for i, s in enumerate(self.generated_tests)]

    def hidden_check(self) -> TestCase:
        """The scoring test (`check(candidate)`); for the scorer only."""
        return TestCase(id="hidden", source=self.hidden_test + "\n\ncheck(candidate)\n",
                        origin="repo", trusted=True)


def _parse_line(raw: str, lineno: int, where: str) -> PoolTask:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UserError(f"{where} line {lineno} is not valid JSON ({e.msg}); fix that line.") from None
    if not isinstance(obj, dict):
        raise UserError(f"{where} line {lineno} is not a JSON object; each line must be one task.")
    for key in REQUIRED:
        if key not in obj:
            raise UserError(f"{where} line {lineno} is missing the field {key!r}; every task needs "
                            f"{', '.join(REQUIRED)}.")
    for key in ("task_id", "prompt", "entry_point", "hidden_test"):
        if not isinstance(obj[key], str):
            raise UserError(f"{where} line {lineno}: field {key!r} must be a string.")
    for key in _LISTS:
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"{where} line {lineno}: field {key!r} must be a list of strings.")
    if not obj["candidates"]:
        raise UserError(f"{where} line {lineno}: field 'candidates' is empty; give at least one program.")
    return PoolTask(
        task_id=obj["task_id"], prompt=obj["prompt"], entry_point=obj["entry_point"],
        candidates=list(obj["candidates"]), generated_tests=list(obj.get("generated_tests", [])),
        public_tests=list(obj.get("public_tests", [])), hidden_test=obj["hidden_test"],
    )


def load_pool(path: str | Path, limit: int | None = None) -> list[PoolTask]:
    """Read and validate a pool file; a bad line raises UserError naming line and field."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"pool file {p} does not exist; pass an existing JSONL file with --pool.")
    tasks: list[PoolTask] = []
    seen: set[str] = set()
    with p.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            t = _parse_line(raw, lineno, str(p))
            if t.task_id in seen:
                raise UserError(f"{p} line {lineno}: task_id {t.task_id!r} appears twice; ids must be unique.")
            seen.add(t.task_id)
            tasks.append(t)
            if limit is not None and len(tasks) >= limit:
                break
    if not tasks:
        raise UserError(f"pool file {p} has no tasks; it must hold one JSON task per line.")
    return tasks


def write_pool(path: str | Path, tasks: list[dict]) -> None:
    """Write pool rows (dicts in the pool format), one per line."""
    with Path(path).open("w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")


_SEPARATORS = re.compile(r"^\s*(?:#\s*)?(?:==>|=>|➞|->|==|=|returns|should return|# returns)\s*")


def _expr_prefix(text: str) -> str | None:
    """The longest prefix of `text` that parses as a Python expression."""
    text = text.strip()
    for end in range(len(text), 0, -1):
        chunk = text[:end].rstrip(" .,;")
        if not chunk:
            continue
        try:
            body = ast.parse(chunk, mode="eval").body
        except SyntaxError:
            continue
        if isinstance(body, ast.Tuple) and not chunk.startswith("("):
            continue  # "y, if n is odd": prose after a comma, not a tuple
        return chunk
    return None


def _call_at(line: str, start: int) -> tuple[str, str] | None:
    """(call source, rest of line) for the call starting at `start`, if it closes on this line."""
    for end in range(start, len(line)):
        if line[end] == ")":
            call = line[start:end + 1]
            try:
                if isinstance(ast.parse(call, mode="eval").body, ast.Call):
                    return call, line[end + 1:]
            except SyntaxError:
                continue
    return None


def prompt_examples(prompt: str, entry_point: str) -> list[str]:
    """Asserts from the worked examples in a problem statement: `>>> f(x)` doctests and lines
    like `f(x) ==> y`, `f(x) ➞ y`, `f(x) = y`, `f(x) returns y`.

    The statement is legitimately available to a selector, so these are trusted tests. An
    example that does not parse is skipped; one that is wrong (or prose that happens to parse)
    makes every candidate fail it, which the `public` filter tolerates: it keeps the candidates
    passing the most trusted tests, not only those passing all. (The agent's
    `testgen.public_tests_from_docstring` is stricter and misses `f(x) = y` lines, which cost
    0.018 selected pass@1 on the dev pool; see benches/results/select_quality.md.)"""
    out: dict[str, None] = {}

    def add(call: str, want: str) -> None:
        text = f"assert {call} == {want}"
        try:
            ast.parse(text)
        except SyntaxError:
            return
        out.setdefault(text, None)

    try:
        examples = doctest.DocTestParser().get_examples(prompt)
    except ValueError:
        examples = []
    for ex in examples:
        want_lines = []
        for w in ex.want.strip().splitlines():
            if w.strip() in ('"""', "'''"):
                break
            want_lines.append(w.strip())
        want = " ".join(want_lines)
        src = ex.source.strip()
        if entry_point in src and want and "\n" not in src and not want.startswith("Traceback"):
            add(src, want)
    for line in prompt.splitlines():
        if line.lstrip().startswith((">>>", "def ")):
            continue
        for m in re.finditer(rf"\b{re.escape(entry_point)}\(", line):
            found = _call_at(line, m.start())
            if found is None:
                continue
            call, rest = found
            sep = _SEPARATORS.match(rest)
            if sep is None:
                continue
            want = _expr_prefix(rest[sep.end():].split(" # ")[0])
            if want is not None:
                add(call, want)
    return list(out)
