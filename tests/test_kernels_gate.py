"""The static gate: every cheating fixture is rejected by the rule it was written for; the
legitimate kernels pass. No torch needed: the gate only reads the AST."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assay.kernels.gate import RULES, GatePolicy, check

CAND = Path(__file__).parent / "kernels" / "candidates"
CHEATS = sorted(p for p in CAND.glob("cheat_*.py") if "expected gate rule" in p.read_text())
LEGIT = sorted(CAND.glob("legit_*.py")) + [CAND / "wrong_triton_relu.py", CAND / "cheat_empty_reuse.py"]


def test_suite_covers_every_trick():
    names = {p.stem for p in CHEATS}
    for trick in ("try_fallback", "calls_reference", "torch_compute", "side_stream", "threads", "timer_patch",
                  "monkeypatch", "tensor_subclass", "result_cache", "pointer_cache", "no_kernel"):
        assert f"cheat_{trick}" in names


@pytest.mark.parametrize("path", CHEATS, ids=lambda p: p.stem)
def test_cheat_rejected_by_its_rule(path):
    src = path.read_text()
    expected = re.search(r"expected gate rule: (\S+)", src).group(1)
    res = check(src, GatePolicy(allow_cpp=True))
    assert not res.ok
    assert expected in res.rules, res.summary()
    assert f"[{expected}]" in res.summary()  # the message names the rule


@pytest.mark.parametrize("path", LEGIT, ids=lambda p: p.stem)
def test_legit_passes(path):
    res = check(path.read_text(), GatePolicy(allow_cpp=True))
    assert res.ok, res.summary()
    assert res.kernel in ("triton", "cuda", "cpp")


def test_kernel_kinds_and_backend_policy():
    triton = (CAND / "legit_triton_relu.py").read_text()
    cuda = (CAND / "legit_cuda_relu.py").read_text()
    cpp = (CAND / "legit_cpp_relu.py").read_text()
    assert check(triton).kernel == "triton"
    assert check(cuda).kernel == "cuda"
    assert check(cuda, GatePolicy(backend="triton")).rules == ["no-kernel"]
    assert check(triton, GatePolicy(backend="cuda")).rules == ["no-kernel"]
    # a plain C++ function is a kernel only where the policy allows it (CPU runs)
    assert check(cpp).rules == ["no-kernel"]
    assert check(cpp, GatePolicy(allow_cpp=True)).kernel == "cpp"


def test_allowed_ops_are_configurable():
    src = (CAND / "cheat_torch_compute.py").read_text()
    assert "torch-compute" in check(src).rules
    assert check(src, GatePolicy().allowing("relu")).ok


def test_nn_module_call_in_forward_is_compute_but_weights_are_fine():
    legit = (CAND / "legit_triton_linear_relu.py").read_text()
    assert check(legit).ok
    cheat = legit.replace("        linear_relu_kernel[grid](",
                          "        out = self.linear(x)\n        linear_relu_kernel[grid](")
    res = check(cheat)
    assert res.rules == ["torch-compute"] and "self.linear" in res.summary()


def test_jit_kernel_must_be_launched_from_forward():
    src = (CAND / "legit_triton_relu.py").read_text().replace(
        "relu_kernel[(triton.cdiv(n, 1024),)](x, out, n, BLOCK=1024)", "pass")
    assert check(src).rules == ["no-kernel"]


def test_cuda_source_strings_are_checked():
    cuda = (CAND / "legit_cuda_relu.py").read_text()
    stream = cuda.replace("relu_kernel<<<(n + 255) / 256, 256>>>",
                          "cudaStream_t s; cudaStreamCreate(&s);\n    relu_kernel<<<(n + 255) / 256, 256, 0, s>>>")
    assert "stream-thread" in check(stream).rules
    aten = cuda.replace("auto y = torch::empty_like(xc);", "auto y = torch::relu(xc); return y;")
    assert "torch-compute" in check(aten).rules
    timer = cuda.replace("int64_t n = xc.numel();", "int64_t n = xc.numel(); cudaEvent_t e; cudaEventCreate(&e);")
    assert "timer" in check(timer).rules


@pytest.mark.parametrize("snippet,rule", [
    ("import subprocess", "stream-thread"),
    ("import ctypes", "forbidden-import"),
    ("from time import perf_counter", "timer"),
    ("torch.backends.cudnn.allow_tf32 = True", "monkeypatch"),
    ("x = eval('1')", "dynamic-code"),
    ("import triton.testing", "timer"),
])
def test_module_level_rules(snippet, rule):
    src = (CAND / "legit_triton_relu.py").read_text() + "\n" + snippet + "\n"
    assert rule in check(src).rules


def test_syntax_error_and_missing_modelnew():
    assert check("def f(:\n").rules == ["syntax"]
    assert "no-modelnew" in check("import torch\n").rules


def test_every_rule_has_a_description():
    for v in ("syntax", "try-except", "reference-model", "torch-compute", "stream-thread", "timer",
              "monkeypatch", "tensor-subclass", "output-cache", "no-kernel"):
        assert RULES[v]
