"""Writes examples/demo/recording.jsonl: HAND-WRITTEN model responses for `make demo`.

Nothing here came from a model. The responses imitate what a model does on five HumanEval
problems: some samples are right, some are wrong in ways the docstring examples catch (the
self-debug round then repairs them), some are wrong in ways only other tests reveal (selection
must reject them), and the model-written tests contain a wrong assert.

Run: python examples/demo/make_recording.py
"""

import json
from pathlib import Path

MODEL = "hand-written-demo"


def block(code: str) -> str:
    return "```python\n" + code.strip("\n") + "\n```"


TASKS = {
    "HumanEval/0": {
        "samples": [
            """from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i in range(len(numbers)):
        for j in range(i + 1, len(numbers)):
            if abs(numbers[i] - numbers[j]) < threshold:
                return True
    return False""",
            # wrong: only compares neighbours in the given order; passes both docstring examples
            """from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for a, b in zip(numbers, numbers[1:]):
        if abs(a - b) < threshold:
            return True
    return False""",
            """from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    ordered = sorted(numbers)
    return any(b - a < threshold for a, b in zip(ordered, ordered[1:]))""",
        ],
        "repairs": {},
        "tests": """assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False
assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True
assert has_close_elements([1.0, 5.0, 1.1], 0.2) == True
assert has_close_elements([], 1.0) == False
assert has_close_elements([3.0], 1.0) == False
assert has_close_elements([1.0, 2.0], 1.0) == True
assert has_close_elements([10.0, 0.0, 10.05], 0.1) == True""",  # [1.0, 2.0], 1.0 is wrong: 1.0 < 1.0 is False
    },
    "HumanEval/4": {
        "samples": [
            """from typing import List

def mean_absolute_deviation(numbers: List[float]) -> float:
    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / len(numbers)""",
            # wrong: divides by n - 1; the docstring example catches it
            """from typing import List

def mean_absolute_deviation(numbers: List[float]) -> float:
    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / (len(numbers) - 1)""",
            # wrong: deviation around the median; equals the mean on the docstring example
            """from typing import List
import statistics

def mean_absolute_deviation(numbers: List[float]) -> float:
    centre = statistics.median(numbers)
    return sum(abs(x - centre) for x in numbers) / len(numbers)""",
        ],
        "repairs": {1: """from typing import List

def mean_absolute_deviation(numbers: List[float]) -> float:
    mean = sum(numbers) / len(numbers)
    return sum(abs(x - mean) for x in numbers) / len(numbers)"""},
        "tests": """assert mean_absolute_deviation([1.0, 2.0, 3.0, 4.0]) == 1.0
assert mean_absolute_deviation([1.0, 2.0, 6.0]) == 2.0
assert mean_absolute_deviation([5.0]) == 0.0
assert mean_absolute_deviation([2.0, 2.0, 2.0]) == 0.0
assert mean_absolute_deviation([0.0, 10.0]) == 5.0
assert mean_absolute_deviation([1.0, 1.0, 4.0]) == 1.5""",
    },
    "HumanEval/12": {
        "samples": [
            """from typing import List, Optional

def longest(strings: List[str]) -> Optional[str]:
    if not strings:
        return None
    best = strings[0]
    for s in strings[1:]:
        if len(s) > len(best):
            best = s
    return best""",
            # wrong: keeps the last of equally long strings; caught by an example
            """from typing import List, Optional

def longest(strings: List[str]) -> Optional[str]:
    best = None
    for s in strings:
        if best is None or len(s) >= len(best):
            best = s
    return best""",
            # wrong: max() of an empty list raises; caught by an example
            """from typing import List, Optional

def longest(strings: List[str]) -> Optional[str]:
    return max(strings, key=len)""",
        ],
        "repairs": {
            1: """from typing import List, Optional

def longest(strings: List[str]) -> Optional[str]:
    best = None
    for s in strings:
        if best is None or len(s) > len(best):
            best = s
    return best""",
            2: """from typing import List, Optional

def longest(strings: List[str]) -> Optional[str]:
    if not strings:
        return None
    return max(strings, key=len)""",
        },
        "tests": """assert longest([]) is None
assert longest(['a', 'b', 'c']) == 'a'
assert longest(['a', 'bb', 'ccc']) == 'ccc'
assert longest(['xyz', 'ab', 'uvw']) == 'xyz'
assert longest(['', 'a']) == 'a'
assert longest(['hello']) == 'hello'""",
    },
    "HumanEval/13": {
        "samples": [
            """def greatest_common_divisor(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a""",
            """import math

def greatest_common_divisor(a: int, b: int) -> int:
    return math.gcd(a, b)""",
            # wrong: only notices when one number divides the other; caught by an example
            """def greatest_common_divisor(a: int, b: int) -> int:
    small, big = min(a, b), max(a, b)
    return small if big % small == 0 else 1""",
        ],
        "repairs": {2: """def greatest_common_divisor(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return abs(a)"""},
        "tests": """assert greatest_common_divisor(3, 5) == 1
assert greatest_common_divisor(25, 15) == 5
assert greatest_common_divisor(12, 18) == 6
assert greatest_common_divisor(7, 7) == 7
assert greatest_common_divisor(100, 10) == 10
assert greatest_common_divisor(49, 14) == 8""",  # the last one is wrong (7): model tests are noisy
    },
    "HumanEval/29": {
        "samples": [
            """from typing import List

def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:
    return [s for s in strings if s.startswith(prefix)]""",
            # wrong: substring instead of prefix; passes both docstring examples
            """from typing import List

def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:
    return [s for s in strings if prefix in s]""",
            """from typing import List

def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:
    return [s for s in strings if s[:len(prefix)] == prefix]""",
        ],
        "repairs": {},
        "tests": """assert filter_by_prefix([], 'a') == []
assert filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'a') == ['abc', 'array']
assert filter_by_prefix(['xa', 'ab'], 'a') == ['ab']
assert filter_by_prefix(['pre', 'prefix', 'post'], 'pre') == ['pre', 'prefix']
assert filter_by_prefix(['abc'], '') == ['abc']""",
    },
}


def records():
    for task_id, t in TASKS.items():
        common = {"kind": "model_call", "model": MODEL, "task_id": task_id,
                  "note": "hand-written response, not from a model"}
        yield {**common, "trajectory": "self_debug",
               "prompt_contains": "Complete the following Python function",
               "responses": [block(s) for s in t["samples"]]}
        for i, fixed in t["repairs"].items():
            yield {**common, "trajectory": f"self_debug-{i}", "responses": [block(fixed)]}
        yield {**common, "trajectory": "testgen", "responses": [block(t["tests"])]}


if __name__ == "__main__":
    out = Path(__file__).with_name("recording.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in records()))
    print(f"wrote {out}")
