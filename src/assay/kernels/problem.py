"""KernelBench problems: a Python file with `class Model(nn.Module)`, `get_inputs()`,
`get_init_inputs()` and module-level shape constants (`batch_size = 16`, `dim = 16384`).

Loading reads the file as text and checks its shape with `ast`; nothing is imported here (the
problem runs later in the worker process). `shrink` rewrites large module-level integer
constants so CPU tests and CPU smoke runs stay small.
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from assay.errors import UserError


@dataclass(frozen=True)
class Problem:
    id: str  # e.g. "level1/19_ReLU" or the file stem
    name: str
    source: str
    path: str = ""
    level: int | None = None
    number: int | None = None
    constants: dict[str, int | float] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]


_INT_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
            ast.FloorDiv: lambda a, b: a // b if b else None, ast.Pow: lambda a, b: a ** b if 0 <= b <= 64 else None,
            ast.LShift: lambda a, b: a << b if 0 <= b <= 64 else None}


def _int_value(node: ast.AST) -> int | None:
    """The value of an integer literal or of arithmetic on them (`16384 * 2`, `2 ** 20`), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _INT_OPS:
        a, b = _int_value(node.left), _int_value(node.right)
        return None if a is None or b is None else _INT_OPS[type(node.op)](a, b)
    return None


def _assignments(tree: ast.Module) -> list[tuple[str, ast.expr]]:
    """Module-level `name = value` statements, with `height, width = 256, 256` taken apart into
    one pair per name and `height = width = 256` into one pair per target (sharing one value
    node): where a problem keeps its shape constants."""
    out: list[tuple[str, ast.expr]] = []
    for n in tree.body:
        if not isinstance(n, ast.Assign):
            continue
        value = n.value
        for target in n.targets:
            if isinstance(target, ast.Name):
                out.append((target.id, value))
            elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                out += [(t.id, v) for t, v in zip(target.elts, value.elts) if isinstance(t, ast.Name)]
    return out


def _check_format(source: str, where: str) -> dict[str, int | float]:
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise UserError(f"{where} is not valid Python (line {e.lineno}: {e.msg}); fix the problem file.") from None
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if n not in names]
    if missing:
        raise UserError(f"{where} is not a KernelBench problem (it lacks {', '.join(missing)}); "
                        "give a file with class Model, get_inputs() and get_init_inputs().")
    consts: dict[str, int | float] = {}
    for name, node in _assignments(tree):
        if isinstance(node, ast.Constant) and type(node.value) is float:
            consts[name] = node.value
        elif (value := _int_value(node)) is not None:
            consts[name] = value
    return consts


def _clamped(value: int, cap: int, small: set[int]) -> int:
    """The largest size at or under `cap` that keeps every divisor of `value` among `small`: a
    channel count still splits into its groups, a width into its heads. `cap` where none fits."""
    step = math.lcm(*(d for d in small if value % d == 0))
    return cap // step * step if step <= cap else cap


def shrink_source(source: str, cap: int) -> str:
    """Clamp every module-level integer above `cap`, alone (`dim = 16384`, `M = 16384 * 2`), in a
    tuple or list (`input_shape = (32768,)`), assigned in a pair (`height, width = 256, 256`) or
    chained (`height = width = 256`): shapes for CPU runs. Each goes to the largest size at or
    under `cap` that is still a multiple of the module's other constants that divided it, the ones
    that stay (`n_embd = 768` with `n_head = 12` becomes 48 under a cap of 64, not 64, which 12
    does not divide)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    sizes = []  # (value, node) for each integer a shape constant may hold
    for _, node in _assignments(tree):
        for v in node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]:
            if (value := _int_value(v)) is not None:
                sizes.append((value, v))
    small = {value for value, _ in sizes if 1 < value <= cap}
    edits = set()  # a set: the targets of `height = width = 256` share one value node
    for value, v in sizes:
        if value > cap and v.lineno == v.end_lineno:
            edits.add((v.lineno - 1, v.col_offset, v.end_col_offset, str(_clamped(value, cap, small))))
    for line, c0, c1, text in sorted(edits, reverse=True):
        lines[line] = lines[line][:c0] + text + lines[line][c1:]
    return "".join(lines)


def load_problem(path: str | Path, *, shrink: int | None = None, problem_id: str | None = None) -> Problem:
    p = Path(path)
    if not p.is_file():
        what = "is not a file" if p.exists() else "does not exist"
        raise UserError(f"problem file {p} {what}; pass a KernelBench problem .py file.")
    source = p.read_text(encoding="utf-8")
    constants = _check_format(source, str(p))
    if shrink:
        source = shrink_source(source, shrink)
        constants = _check_format(source, str(p))
    m = re.match(r"(\d+)_(.*)", p.stem)
    level = None
    lm = re.search(r"level_?(\d+)", str(p.parent))
    if lm:
        level = int(lm.group(1))
    return Problem(
        id=problem_id or (f"level{level}/{p.stem}" if level else p.stem),
        name=m.group(2) if m else p.stem,
        source=source,
        path=str(p),
        level=level,
        number=int(m.group(1)) if m else None,
        constants=constants,
    )


def parse_ids(spec: str | None) -> set[int] | None:
    """`"1,2,5-9"` -> {1, 2, 5, 6, 7, 8, 9}; None or "" -> None (all)."""
    if not spec:
        return None
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad --ids item {part!r}; use a list like 1,2,5-9.")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise UserError(f"bad --ids range {part!r}; the end must not be below the start.")
        out.update(range(a, b + 1))
    return out


def problems_root(problems_dir: str | None) -> Path:
    d = problems_dir or os.environ.get("ASSAY_KERNELBENCH_DIR")
    if not d:
        raise UserError("no KernelBench problems given; pass --problems-dir DIR (a KernelBench checkout) "
                        "or set ASSAY_KERNELBENCH_DIR.")
    root = Path(d)
    if not root.is_dir():
        raise UserError(f"problems directory {root} does not exist; pass a KernelBench checkout.")
    return root


def level_dir(root: Path, level: int) -> Path:
    for cand in (root / f"level{level}", root / "KernelBench" / f"level{level}", root / f"level_{level}"):
        if cand.is_dir():
            return cand
    raise UserError(f"no level{level}/ folder under {root}; pass the KernelBench checkout (it has "
                    "KernelBench/level1 ...) or its KernelBench/ folder.")


def load_level(root: Path, level: int, ids: set[int] | None = None, *, shrink: int | None = None) -> list[Problem]:
    d = level_dir(root, level)
    out = []
    for p in sorted(d.glob("*.py"), key=lambda q: (int(m.group(1)) if (m := re.match(r"(\d+)_", q.name)) else 10**9,
                                                   q.name)):
        m = re.match(r"(\d+)_", p.name)
        if ids is not None and (m is None or int(m.group(1)) not in ids):
            continue
        out.append(load_problem(p, shrink=shrink, problem_id=f"level{level}/{p.stem}"))
    if not out:
        raise UserError(f"no problems matched in {d}; check --level and --ids.")
    return out
