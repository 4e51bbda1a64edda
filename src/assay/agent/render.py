"""Render the jinja2 prompt templates in agent/prompts/ (one file per prompt)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


@lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PROMPTS_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(name: str, **variables: Any) -> str:
    """The template `name` (e.g. "solve.j2") filled with `variables`, stripped."""
    return _env().get_template(name).render(**variables).strip()


def problem_block(statement: str) -> str:
    """The task statement as it appears in prompts: fenced when it is Python source (a
    signature with a docstring), plain text otherwise."""
    import ast

    try:
        tree = ast.parse(statement)
        is_code = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      for n in tree.body)
    except (SyntaxError, ValueError):
        is_code = False
    return f"```python\n{statement.rstrip()}\n```" if is_code else statement.strip()
