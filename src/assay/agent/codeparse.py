"""Turn a model's answer into a complete program for a function task.

Takes the last fenced code block that defines the entry point (else the whole text if it
parses), and completes it with what the prompt provides: its imports and helper functions,
or the prompt itself when the model returned only the function body. Failures are returned
as a reason string, never raised, so they become invalid candidates.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_LANGS = {"", "python", "py", "python3", "py3"}


@dataclass
class Parsed:
    program: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.program is not None


def code_blocks(text: str) -> list[str]:
    """Python (or untagged) fenced blocks in order; an unterminated last fence counts too."""
    return [body for lang, body in _FENCE.findall(text) if lang.lower() in _PY_LANGS]


def _parse(src: str) -> ast.Module | None:
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError):
        return None


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _syntax_error(src: str) -> str:
    try:
        ast.parse(src)
    except SyntaxError as e:
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    return "does not parse"


def _strip_examples(src: str, tree: ast.Module) -> str:
    """Drop top-level asserts and print(...) calls: example usage the model left in would run
    (and may fail) when the program is imported."""
    lines = src.splitlines()
    drop: set[int] = set()
    for node in tree.body:
        is_print = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id == "print")
        if isinstance(node, ast.Assert) or is_print:
            drop.update(range(node.lineno - 1, (node.end_lineno or node.lineno)))
    if not drop:
        return src
    return "\n".join(line for i, line in enumerate(lines) if i not in drop) + "\n"


def _prelude(prompt: str, entry_point: str | None, code_tree: ast.Module) -> str:
    """The prompt's imports and the helpers it defines that the code does not (HumanEval/10
    defines is_palindrome before make_palindrome)."""
    tree = _parse(prompt)
    if tree is None:
        return ""
    have = _defined(code_tree)
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            parts.append(ast.get_source_segment(prompt, node) or "")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name != entry_point and node.name not in have:
                seg = ast.get_source_segment(prompt, node, padded=True) or ""
                deco = [ast.get_source_segment(prompt, d) or "" for d in node.decorator_list]
                parts.append("".join(f"@{d}\n" for d in deco) + seg)
        elif isinstance(node, ast.Assign) and not any(
                isinstance(t, ast.Name) and t.id in have for t in node.targets):
            parts.append(ast.get_source_segment(prompt, node) or "")
    return "\n".join(p for p in parts if p)


def _defines_entry(tree: ast.Module, entry_point: str | None) -> bool:
    return entry_point is None or entry_point in _defined(tree)


def _from_code(code: str, prompt: str, entry_point: str | None) -> Parsed:
    indented = code.lstrip("\n")[:1] in (" ", "\t")
    code = textwrap.dedent(code).strip("\n") + "\n"
    tree = _parse(code)
    if tree is not None and _defines_entry(tree, entry_point):
        code = _strip_examples(code, tree)
        tree = _parse(code) or tree
        prelude = _prelude(prompt, entry_point, tree)
        return Parsed(f"{prelude}\n\n{code}" if prelude else code)
    # Only the body (indented, or not valid on its own): it continues the prompt.
    if prompt.strip() and entry_point and (indented or tree is None):
        body = code if code[:1] in (" ", "\t") else textwrap.indent(code, "    ")
        whole = prompt.rstrip("\n") + "\n" + body
        wtree = _parse(whole)
        if wtree is not None and _defines_entry(wtree, entry_point):
            return Parsed(_strip_examples(whole, wtree))
    if tree is None:
        return Parsed(None, _syntax_error(code))
    return Parsed(None, f"the code does not define `{entry_point}`")


def extract_program(text: str, prompt: str = "", entry_point: str | None = None) -> Parsed:
    """A complete program from a model answer, or the reason there is none."""
    blocks = code_blocks(text)
    if not blocks:
        stripped = text.strip()
        if not stripped:
            return Parsed(None, "the answer is empty")
        r = _from_code(text, prompt, entry_point)  # a bare program, or a bare body
        if r.ok:
            return r
        return Parsed(None, f"the answer has no ```python code block and is not a program ({r.error})")
    # Prefer the last block that works; report the last block's failure otherwise.
    results = [_from_code(b, prompt, entry_point) for b in blocks]
    for r in reversed(results):
        if r.ok:
            return r
    return results[-1]


def extract_function_source(text: str, name: str) -> str | None:
    """The source of a function `name` from the last code block (or text) that defines it."""
    for code in reversed(code_blocks(text) or [text]):
        code = textwrap.dedent(code)
        tree = _parse(code)
        if tree is not None and any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body):
            return code.strip("\n") + "\n"
    return None
