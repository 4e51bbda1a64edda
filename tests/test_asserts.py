import ast

from assay.asserts import RESULT_VAR, call_inputs, parse_asserts, split_call_check

MESSY = '''Sure! Here are some tests for `add`:

```python
assert add(1, 2) == 3
assert add(1,2)==3, "same test, other message"
assert add(
    -1,
    1,
) == 0
assert other(1) == 2
assert add(x, 1) == 2
assert len(str(add(10, 20))) == 2
```

And a couple more:

```
assert add(0, 0) == 0  # zero
assert candidate(2, 2) == 4
assert add(5, 5) == 1
```
'''


def test_parse_asserts_messy_markdown():
    got = parse_asserts(MESSY, "add")
    assert got == [
        "assert add(1, 2) == 3",
        "assert add(-1, 1) == 0",
        "assert len(str(add(10, 20))) == 2",
        "assert add(0, 0) == 0",
        "assert candidate(2, 2) == 4",
        "assert add(5, 5) == 1",
    ]
    for a in got:
        assert isinstance(ast.parse(a).body[0], ast.Assert)


def test_parse_asserts_codet_style_broken_lines_and_truncation():
    # CodeT test samples continue a prompt that ends in "assert ": the expression starts on
    # the next line, and the last assert is cut off mid-way.
    text = ("assert \n    has_close_elements([], 1) == False, 'Empty list'\nassert \n"
            "    has_close_elements([1, 1, 2], 1) == False\nprint('done')\nassert \n"
            "    has_close_elements([1.0, 2.0], 0.5) == Fa\nassert has_close_elements([1, 2,")
    got = parse_asserts(text, "has_close_elements")
    assert got == [
        "assert has_close_elements([], 1) == False, 'Empty list'",
        "assert has_close_elements([1, 1, 2], 1) == False",
    ]


def test_parse_asserts_whole_program_and_nothing():
    prog = "def test():\n    assert f(1) == 1\n    y = 2\n    assert f(y) == 2\n\nassert f(3) == 3\n"
    assert parse_asserts(prog, "f") == ["assert f(1) == 1", "assert f(3) == 3"]
    assert parse_asserts("no tests here, sorry", "f") == []
    assert parse_asserts("", "f") == []


def test_call_inputs():
    src = ("def check(candidate):\n"
           "    assert candidate([1.0, 2.0], 0.5) == True\n"
           "    x = 3\n"
           "    assert candidate(x, 1)\n"
           "    assert f(f(2), k='a') == 1\n")
    assert call_inputs(src, "f") == ["[1.0, 2.0], 0.5", "2"]
    assert call_inputs("assert f(1, *[2], key=len, **{'a': 1})", "f") == ["1, *[2], key=len, **{'a': 1}"]
    assert call_inputs("this is not python", "f") == []
    assert call_inputs("assert f(-1) == g(2)", "f") == ["-1"]


def test_split_call_check():
    assert split_call_check("assert f([1, 2], 0.5) == False, 'msg'", "f") == (
        "[1, 2], 0.5", f"{RESULT_VAR} == False", "False")
    assert split_call_check("assert [1] == f(1)", "f") == ("1", f"[1] == {RESULT_VAR}", "[1]")
    assert split_call_check("assert abs(f(1) - 2.0) < 1e-6", "f") == ("1", f"abs({RESULT_VAR} - 2.0) < 1e-06", None)
    assert split_call_check("assert not f(1)", "f") == ("1", f"not {RESULT_VAR}", None)
    # not splittable: two calls, short-circuit, non-replayable args, several statements
    assert split_call_check("assert f(1) == f(2)", "f") is None
    assert split_call_check("assert True or f(1)", "f") is None
    assert split_call_check("assert f(x) == 1", "f") is None
    assert split_call_check("x = 1\nassert f(1) == 1", "f") is None
    assert split_call_check("assert (lambda: f(1))() == 1", "f") is None


def test_result_name_matches_the_harness():
    from assay.sandbox import harness

    assert harness.RESULT_VAR == RESULT_VAR
