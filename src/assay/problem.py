"""Read a single function problem (`assay solve --problem FILE`) into a Task.

A problem file is Markdown (or a .py stub): prose plus code blocks. The entry point is
`--entry-point`, else the first function defined in the file's code. Trusted public tests are
the `>>>` examples and the `assert` lines that call the entry point.
"""

from __future__ import annotations

import re
from pathlib import Path

from assay.errors import UserError
from assay.types import Task, TestCase

_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)```", re.S)
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.M)


def code_of(text: str, is_python: bool) -> str:
    if is_python:
        return text
    return "\n".join(_FENCE.findall(text))


def load_problem(path: Path, entry_point: str | None = None) -> Task:
    if not path.is_file():
        raise UserError(f"problem file {path} does not exist; pass a Markdown or .py file with the problem.")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise UserError(f"problem file {path} is empty; write the problem statement into it.")
    code = code_of(text, path.suffix == ".py")
    if entry_point is None:
        m = _DEF.search(code) or _DEF.search(text)
        if m is None:
            raise UserError(f"no function signature found in {path}; add one in a code block "
                            "or pass --entry-point NAME.")
        entry_point = m.group(1)
    from assay.agent.testgen import public_tests_from_docstring
    from assay.asserts import parse_asserts

    tests = list(public_tests_from_docstring(code, entry_point))
    seen = {t.source for t in tests}
    for src in parse_asserts(code, entry_point):
        if src not in seen:
            seen.add(src)
            tests.append(TestCase(id=f"public_{len(tests)}", source=src, origin="public", trusted=True))
    return Task(id=path.stem, kind="function", statement=text, entry_point=entry_point, public_tests=tests,
                metadata={"problem_file": str(path)})
