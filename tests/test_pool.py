import json

import pytest

from assay.errors import UserError
from assay.pool import load_pool

GOOD = {"task_id": "T/0", "prompt": "def inc(x):\n    \"\"\"\n    >>> inc(1)\n    2\n    \"\"\"\n",
        "entry_point": "inc", "candidates": ["def inc(x):\n    return x + 1\n"],
        "generated_tests": ["assert inc(2) == 3"], "public_tests": [],
        "hidden_test": "def check(candidate):\n    assert candidate(0) == 1\n"}


def write(tmp_path, rows):
    p = tmp_path / "pool.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


def test_load_pool_builds_selector_inputs_without_the_hidden_test(tmp_path):
    (t,) = load_pool(write(tmp_path, [GOOD]))
    task = t.task(prompt_examples=True)
    assert [p.source for p in task.public_tests] == ["assert inc(1) == 2"]
    assert all(p.trusted for p in task.public_tests)
    assert "check" not in task.model_dump_json()
    assert [c.id for c in t.candidate_list()] == ["c0"]
    assert [(g.id, g.trusted) for g in t.generated()] == [("g0", False)]
    assert t.hidden_check().source.endswith("check(candidate)\n")
    assert "hidden_test" not in repr(t) and "candidate(0)" not in repr(t)


def test_pool_public_tests_win_over_derived_ones(tmp_path):
    (t,) = load_pool(write(tmp_path, [dict(GOOD, public_tests=["assert inc(5) == 6"])]))
    assert [p.source for p in t.task(prompt_examples=True).public_tests] == ["assert inc(5) == 6"]
    assert t.task(prompt_examples=True).metadata["public_tests_from"] == "pool"


@pytest.mark.parametrize("field", ["task_id", "prompt", "entry_point", "candidates", "hidden_test"])
def test_missing_field_names_line_and_field(tmp_path, field):
    bad = {k: v for k, v in GOOD.items() if k != field}
    p = write(tmp_path, [GOOD, dict(GOOD, task_id="T/1"), bad])
    with pytest.raises(UserError, match=rf"line 3 is missing the field '{field}'"):
        load_pool(p)


def test_bad_json_wrong_types_duplicates_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="line 2 is not valid JSON"):
        load_pool(write(tmp_path, [GOOD, "{oops"]))
    with pytest.raises(UserError, match="line 1: field 'candidates' must be a list of strings"):
        load_pool(write(tmp_path, [dict(GOOD, candidates="x")]))
    with pytest.raises(UserError, match="line 2: task_id 'T/0' appears twice"):
        load_pool(write(tmp_path, [GOOD, GOOD]))
    with pytest.raises(UserError, match="does not exist"):
        load_pool(tmp_path / "nope.jsonl")


def test_prompt_examples_read_doctests_and_arrow_examples(tmp_path):
    prompt = ('def f(a, b):\n    """Examples:\n    f(1, 2) ➞ 3\n    f(2, 2) ==> 4\n    f(5, 5) = 10\n'
              '    f(0, 0) returns 0.\n    f(n) = n + 1, if n is odd.\n    >>> f(3, 4)\n    7\n    """\n')
    (t,) = load_pool(write(tmp_path, [dict(GOOD, prompt=prompt, entry_point="f")]))
    task = t.task(prompt_examples=True)
    # `f(n) = n + 1` defines f with a free name: not an example (it could only raise NameError)
    assert [p.source for p in task.public_tests] == [
        "assert f(3, 4) == 7", "assert f(1, 2) == 3", "assert f(2, 2) == 4", "assert f(5, 5) == 10",
        "assert f(0, 0) == 0"]
    assert [(p.id, p.origin, p.trusted) for p in task.public_tests] == [
        (f"p{i}", "public", True) for i in range(5)]
    assert task.metadata["public_tests_from"] == "docstring"
    assert t.task().public_tests == []  # examples only when asked for
