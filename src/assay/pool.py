"""Candidate pool files: fixed candidates + tests per task, for selection without generation.

JSONL, one task per line (DESIGN.md "Candidate pool file"). The hidden test is kept apart
from everything a selector sees: `PoolTask.task()`, `.candidates()` and `.tests()` never
carry it; only `.hidden_check()` does, and only the scorer calls that.
"""

from __future__ import annotations

import json
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

    def task(self, prompt_examples: bool = False) -> Task:
        """The Task a selector sees: prompt and trusted public tests, never the hidden test.

        With `prompt_examples`, a task whose pool row gives no public tests gets the worked
        examples of its prompt instead (`testgen.public_tests_from_docstring`, the extractor
        the search pipeline uses). The statement is legitimately available to a selector, so
        these are trusted tests."""
        public = list(self.public_tests)
        if not public and prompt_examples:
            from assay.agent.testgen import public_tests_from_docstring

            public = [t.source for t in public_tests_from_docstring(self.prompt, self.entry_point)]
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
