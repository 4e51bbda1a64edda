"""Where fuzz's inputs come from, and how a disagreeing input is made smaller.

Pure functions over source text and Python literals: nothing here runs model code. The
entry point's signature is read with `ast` from a candidate or the prompt; its type hints map
to hypothesis strategies, drawn deterministically (a `@given` collector under `@seed`);
existing shared inputs are mutated with a seeded `random.Random`; and argument values are
shrunk toward simpler ones (shorter lists and strings, integers toward 0).
"""

from __future__ import annotations

import ast
import math
import random
import string
from typing import Any

MAX_INPUT_CHARS = 2000
_INT_RANGE = (-30, 60)  # small: many tasks loop or recurse over n; big n only buys timeouts
_FLOAT_RANGE = (-100.0, 100.0)
_TEXT = string.ascii_letters + string.digits + " ,.-_()[]!?'"
_MAX_LEN = 6


# --- argument lists as source -------------------------------------------------------------


def to_source(value: Any) -> str:
    """Python source that evaluates to `value` (repr, except non-finite floats)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(to_source(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(to_source(v) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_source(k)}: {to_source(v)}" for k, v in value.items()) + "}"
    return repr(value)


def args_source(args: tuple) -> str:
    return ", ".join(to_source(a) for a in args)


def is_call_args(src: str) -> bool:
    """Whether `src` parses as the argument list of one call (and is not too long)."""
    if not src.strip() or len(src) > MAX_INPUT_CHARS:
        return False
    try:
        tree = ast.parse(f"_f({src})", mode="eval")
    except (SyntaxError, ValueError):
        return False
    return isinstance(tree.body, ast.Call) and isinstance(tree.body.func, ast.Name)


def literal_args(src: str) -> tuple | None:
    """The argument values of `src` when they are all literals (and positional), else None."""
    try:
        value = ast.literal_eval(f"({src},)")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, tuple) else None


# --- the entry point's signature ------------------------------------------------------------


def find_params(sources: list[str], entry_point: str) -> list[ast.arg] | None:
    """Positional parameters of the top-level `def entry_point` in the first source that parses
    and has one; None when none has it or it takes *args/**kwargs/keyword-only arguments."""
    for src in sources:
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
                a = node.args
                if a.vararg or a.kwarg or a.kwonlyargs:
                    return None
                return [p for p in a.posonlyargs + a.args if p.arg not in ("self", "cls")]
    return None


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.List
        return node.attr
    return ""


def _floats():
    """Whole numbers and multiples of 0.05: readable, and still hitting rounding edges (0.1 + 0.2)."""
    from hypothesis import strategies as st

    return st.one_of(st.integers(*_INT_RANGE).map(float),
                     st.integers(int(_FLOAT_RANGE[0] * 20), int(_FLOAT_RANGE[1] * 20)).map(lambda k: k / 20))


def strategy_for(ann: ast.expr | None):
    """A hypothesis strategy for a type annotation, or None when it is missing or unknown."""
    from hypothesis import strategies as st

    if ann is None:
        return None
    if isinstance(ann, ast.Constant):
        if ann.value is None:
            return st.none()
        if isinstance(ann.value, str):  # "List[int]" as a string annotation
            try:
                return strategy_for(ast.parse(ann.value, mode="eval").body)
            except SyntaxError:
                return None
        return None
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):  # int | None
        parts = [strategy_for(ann.left), strategy_for(ann.right)]
        return None if None in parts else st.one_of(*parts)
    scalars = {
        "int": st.integers(*_INT_RANGE),
        "float": _floats(),
        "str": st.text(alphabet=_TEXT, max_size=_MAX_LEN * 2),
        "bool": st.booleans(),
        "None": st.none(),
        "NoneType": st.none(),
        "list": st.lists(st.integers(*_INT_RANGE), max_size=_MAX_LEN),
        "List": st.lists(st.integers(*_INT_RANGE), max_size=_MAX_LEN),
        "tuple": st.lists(st.integers(*_INT_RANGE), max_size=_MAX_LEN).map(tuple),
        "dict": st.dictionaries(st.text(alphabet=string.ascii_lowercase, max_size=4),
                                st.integers(*_INT_RANGE), max_size=4),
    }
    if not isinstance(ann, ast.Subscript):
        return scalars.get(_name(ann))
    head = _name(ann.value)
    args = list(ann.slice.elts) if isinstance(ann.slice, ast.Tuple) else [ann.slice]
    inner = [strategy_for(a) if not (isinstance(a, ast.Constant) and a.value is Ellipsis) else ...
             for a in args]
    if any(s is None for s in inner):
        return None
    if head in ("List", "list", "Sequence", "Iterable", "Collection", "MutableSequence") and len(inner) == 1:
        return st.lists(inner[0], max_size=_MAX_LEN)
    if head in ("Set", "set", "FrozenSet", "frozenset") and len(inner) == 1:
        return st.sets(inner[0], max_size=_MAX_LEN)
    if head in ("Tuple", "tuple"):
        if len(inner) == 2 and inner[1] is ...:
            return st.lists(inner[0], max_size=_MAX_LEN).map(tuple)
        if ... in inner:
            return None
        return st.tuples(*inner)
    if head in ("Dict", "dict", "Mapping") and len(inner) == 2:
        return st.dictionaries(inner[0], inner[1], max_size=4)
    if head == "Optional" and len(inner) == 1:
        return st.one_of(st.none(), inner[0])
    if head == "Union":
        return st.one_of(*inner)
    return None


def strategy_from_value(value: Any):
    """A strategy for values shaped like `value` (for parameters without type hints)."""
    from hypothesis import strategies as st

    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(*_INT_RANGE)
    if isinstance(value, float):
        return _floats()
    if isinstance(value, str):
        alphabet = "".join(sorted(set(value))) if value and len(set(value)) > 1 else _TEXT
        return st.text(alphabet=alphabet, max_size=max(_MAX_LEN * 2, len(value)))
    if isinstance(value, (list, tuple)):
        elem = strategy_from_value(value[0]) if value else st.integers(*_INT_RANGE)
        if elem is None:
            return None
        s = st.lists(elem, max_size=_MAX_LEN)
        return s if isinstance(value, list) else s.map(tuple)
    if value is None:
        return st.none()
    return None


def hypothesis_inputs(params: list[ast.arg] | None, examples: list[tuple], n: int, seed: int) -> list[str]:
    """Up to `n` argument-list sources drawn from the parameters' strategies.

    A parameter without a usable hint takes its shape from the first existing input. Drawing
    runs a `@given` collector with a fixed `@seed` and no example database, so the same seed
    yields the same inputs (hypothesis's generation phase already favours small and edge-case
    values such as 0, [] and "").
    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from hypothesis import strategies as st

    if n <= 0:
        return []
    if params is None:
        if not examples:
            return []
        strats = [strategy_from_value(v) for v in examples[0]]
    else:
        strats = []
        for i, p in enumerate(params):
            s = strategy_for(p.annotation)
            if s is None and examples and len(examples[0]) == len(params):
                s = strategy_from_value(examples[0][i])
            strats.append(s)
    if not strats or any(s is None for s in strats):
        return []
    drawn: list[tuple] = []

    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck), derandomize=False)
    @hseed(seed)
    @given(st.tuples(*strats))
    def collect(args: tuple) -> None:
        drawn.append(args)

    collect()
    return _unique(args_source(a) for a in drawn)[:n]


def _unique(items) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        if is_call_args(it):
            seen.setdefault(it, None)
    return list(seen)


# --- mutation of existing inputs ---------------------------------------------------------------


def mutate_value(v: Any, rng: random.Random) -> Any:
    """One small random perturbation of a literal value."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return rng.choice([v + 1, v - 1, -v, 0, v * 2, v + rng.randint(-5, 5)])
    if isinstance(v, float):
        return rng.choice([v + 0.5, v - 0.5, -v, 0.0, v * 2, float(round(v)), v + 0.1])
    if isinstance(v, str):
        if not v:
            return rng.choice(["a", " ", "A1"])
        i = rng.randrange(len(v))
        return rng.choice([v[:i] + v[i + 1:], v[:i] + v[i] + v[i:], v.upper(), v.lower(),
                           v[::-1], v + " ", " " + v, "", v[:i] + rng.choice(_TEXT) + v[i + 1:]])
    if isinstance(v, (list, tuple)):
        items = list(v)
        ops = ["empty", "add", "reverse"]
        if items:
            ops += ["drop", "dup", "inner", "inner", "swap", "sort"]
        op = rng.choice(ops)
        if op == "empty":
            items = []
        elif op == "add":
            proto = items[rng.randrange(len(items))] if items else 0
            items.insert(rng.randrange(len(items) + 1), mutate_value(proto, rng))
        elif op == "reverse":
            items.reverse()
        elif op == "drop":
            items.pop(rng.randrange(len(items)))
        elif op == "dup":
            i = rng.randrange(len(items))
            items.insert(i, items[i])
        elif op == "inner":
            i = rng.randrange(len(items))
            items[i] = mutate_value(items[i], rng)
        elif op == "swap" and len(items) > 1:
            i, j = rng.sample(range(len(items)), 2)
            items[i], items[j] = items[j], items[i]
        elif op == "sort":
            try:
                items.sort(reverse=rng.random() < 0.5)
            except TypeError:
                items.reverse()
        return items if isinstance(v, list) else tuple(items)
    if isinstance(v, dict) and v:
        d = dict(v)
        k = rng.choice(list(d))
        if rng.random() < 0.5:
            del d[k]
        else:
            d[k] = mutate_value(d[k], rng)
        return d
    return v


def mutated_inputs(inputs: list[str], n: int, rng: random.Random) -> list[str]:
    """Up to `n` variants of the literal existing inputs, each with one argument perturbed
    (sometimes twice); non-literal inputs are left alone."""
    bases = [a for a in (literal_args(s) for s in inputs) if a]
    if not bases or n <= 0:
        return []
    existing = set(inputs)
    out: list[str] = []
    for _ in range(n * 4):
        if len(out) >= n:
            break
        args = list(rng.choice(bases))
        for _ in range(1 if rng.random() < 0.7 else 2):
            i = rng.randrange(len(args))
            args[i] = mutate_value(args[i], rng)
        src = args_source(tuple(args))
        if src not in existing and is_call_args(src):
            existing.add(src)
            out.append(src)
    return out


# --- shrinking ------------------------------------------------------------------------------


def size(value: Any) -> tuple[int, float]:
    """(structural size, numeric magnitude): what shrinking makes smaller."""
    if isinstance(value, bool):
        return (1, float(value))
    if isinstance(value, (int, float)):
        return (1, min(abs(float(value)), 1e18) + (0.5 if value < 0 else 0.0))
    if isinstance(value, str):
        return (1 + len(value), 0.0)
    if isinstance(value, (list, tuple, set, frozenset)):
        parts = [size(v) for v in value]
        return (1 + sum(p[0] for p in parts), sum(p[1] for p in parts))
    if isinstance(value, dict):
        parts = [size(k) for k in value] + [size(v) for v in value.values()]
        return (1 + sum(p[0] for p in parts), sum(p[1] for p in parts))
    return (1, 0.0)


def simpler_values(v: Any, depth: int = 0) -> list[Any]:
    """Values a little simpler than `v` (not necessarily all smaller; callers filter by size)."""
    out: list[Any] = []
    if isinstance(v, bool):
        return [False] if v else []
    if isinstance(v, int):
        return [0, int(v / 2), v - 1 if v > 0 else v + 1, -v] if v else []
    if isinstance(v, float):
        return [0.0, float(int(v)), v / 2, round(v, 1), -v] if v else []
    if isinstance(v, str):
        if not v:
            return []
        out = ["", v[: len(v) // 2], v[len(v) // 2:]]
        out += [v[:i] + v[i + 1:] for i in range(min(len(v), 12))]
        return out
    if isinstance(v, (list, tuple)):
        items = list(v)
        if not items:
            return []
        cands = [[], items[: len(items) // 2], items[len(items) // 2:]]
        cands += [items[:i] + items[i + 1:] for i in range(min(len(items), 10))]
        if depth < 2:
            for i, x in enumerate(items[:8]):
                for y in simpler_values(x, depth + 1)[:4]:
                    cands.append(items[:i] + [y] + items[i + 1:])
        return [c if isinstance(v, list) else tuple(c) for c in cands]
    if isinstance(v, dict) and v:
        out = [{}] + [{k: x for k, x in v.items() if k != key} for key in list(v)[:8]]
        if depth < 2:
            for key in list(v)[:4]:
                for y in simpler_values(v[key], depth + 1)[:3]:
                    out.append({**v, key: y})
        return out
    return []


def shrink_steps(src: str, limit: int = 60) -> list[str]:
    """Argument-list sources one step simpler than `src`, smallest first (literals only)."""
    args = literal_args(src)
    if not args:
        return []
    here = size(args)
    found: dict[str, tuple] = {}
    for i, a in enumerate(args):
        for b in simpler_values(a):
            new = args[:i] + (b,) + args[i + 1:]
            s = size(new)
            if s < here:
                text = args_source(new)
                if text != src and is_call_args(text):
                    found.setdefault(text, s)
    return sorted(found, key=lambda t: (found[t], len(t), t))[:limit]
