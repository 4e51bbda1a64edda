"""The static gate: every cheating fixture is rejected by the rule it was written for; the
legitimate kernels pass. No torch needed: the gate only reads the AST."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assay.kernels.gate import DEFAULT_ALLOWED_OPS, RULES, GatePolicy, check

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
    # --allow-op names the op; its nn module (nn.Linear here, nn.ConvTranspose3d as conv_transpose3d) follows
    assert check(cheat, GatePolicy().allowing("linear")).ok
    assert not check(cheat, GatePolicy().allowing("conv2d")).ok


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


@pytest.mark.parametrize("call", ["xc.relu()", "xc.mm(xc.t())", "xc.clamp_min(0)", "torch::nn::functional::relu(xc)",
                                  "at::_ops::relu::call(xc)"])
def test_aten_compute_in_cpp_is_torch_compute_whatever_the_spelling(call):
    # a __global__ kernel that does nothing beside ATen doing the work: torch compute in C++
    cuda = (CAND / "legit_cuda_relu.py").read_text()
    src = cuda.replace("auto y = torch::empty_like(xc);", f"auto y = {call}; return y;")
    assert src != cuda and "torch-compute" in check(src).rules, check(src).summary()
    allowed = call.split("(")[0].split("::")[-1].split(".")[-1] if "_ops" not in call else "relu"
    assert check(src, GatePolicy(allowed_ops=DEFAULT_ALLOWED_OPS | {allowed})).ok  # unless --allow-op lets it


@pytest.mark.parametrize("spelling", [
    "namespace F = torch::nn::functional;\n|F::relu(xc)",  # a namespace alias
    "#define ACT at::relu\n|ACT(xc)",  # a macro: the op's name, not followed by a call
    "using at::relu;\n|relu(xc)",  # a using-declaration
    "|at::cuda::relu(xc)",  # the device's own namespace
])
def test_aten_compute_in_cpp_behind_an_alias_macro_or_using_is_torch_compute(spelling):
    head, call = spelling.split("|")
    cuda = (CAND / "legit_cuda_relu.py").read_text()
    src = cuda.replace("auto y = torch::empty_like(xc);", f"auto y = {call}; return y;").replace(
        "__global__", head + "__global__", 1)
    assert src != cuda and "torch-compute" in check(src).rules, check(src).summary()


def test_cpp_source_split_across_strings_is_checked_whole():
    # each literal alone holds no ATen call; the source load_inline gets does
    cpp = (CAND / "legit_cpp_relu.py").read_text()
    src = cpp.replace("auto y = torch::empty_like(xc);", 'auto y = at""" + r"""::relu(xc); return y;')
    assert src != cpp and check(src, GatePolicy(allow_cpp=True)).rules == ["torch-compute"], \
        check(src, GatePolicy(allow_cpp=True)).summary()


def test_dispatcher_switches_in_cpp_are_rejected_and_device_helpers_are_not():
    cuda = (CAND / "legit_cuda_relu.py").read_text()
    hide = cuda.replace("auto y = torch::empty_like(xc);", "c10::impl::ExcludeDispatchKeyGuard g(c10::DispatchKey::"
                        "Python);\n    auto y = torch::empty_like(xc);")
    assert hide != cuda and "dynamic-code" in check(hide).rules
    helpers = cuda.replace("auto y = torch::empty_like(xc);", "int dev = at::cuda::current_device();\n"
                           "    auto y = torch::empty_like(xc);")
    assert helpers != cuda and check(helpers).ok, check(helpers).summary()


def test_docstrings_are_prose_not_sources():
    legit = (CAND / "legit_triton_relu.py").read_text()
    doc = legit.replace("class ModelNew(nn.Module):\n", "class ModelNew(nn.Module):\n"
                        "    \"\"\"Replaces torch::relu(x); the reference's x.sum(1) is another problem.\"\"\"\n\n")
    assert doc != legit and check(doc).ok, check(doc).summary()
    # and out of reach as a source: a docstring cannot smuggle C++ past the source rules
    assert "dynamic-code" in check(doc + "\nSRC = ModelNew.__doc__\n").rules
    assert "dynamic-code" in check(doc + "\nSRC = __doc__\n").rules


def test_cpp_views_metadata_and_allocation_stay_allowed():
    cuda = (CAND / "legit_cuda_relu.py").read_text()
    src = cuda.replace("auto y = torch::empty_like(xc);",
                       "auto y = torch::zeros({xc.size(0)}, xc.options()).view({-1}).contiguous();\n"
                       "    y = torch::empty_like(xc);")
    assert src != cuda and check(src).ok, check(src).summary()


@pytest.mark.parametrize("snippet,rule", [
    ("import subprocess", "stream-thread"),
    ("import ctypes", "forbidden-import"),
    ("from time import perf_counter", "timer"),
    ("torch.backends.cudnn.allow_tf32 = True", "monkeypatch"),
    ("x = eval('1')", "dynamic-code"),
    ("import triton.testing", "timer"),
    # standard-library modules re-exported by allowed ones, private internals, os beyond environ/path
    ("m = torch.sys.modules", "dynamic-code"),
    ("import collections\nm = collections._sys", "dynamic-code"),
    ("import os\nos._exit(0)", "dynamic-code"),
    ("from torch.utils.cpp_extension import subprocess", "dynamic-code"),
    # frames, closures and the object model
    ("b = print.__self__", "dynamic-code"),
    ("def g():\n    yield 1\nf = g().gi_frame", "dynamic-code"),
    ("import operator\nc = operator.attrgetter('_C')(torch)", "dynamic-code"),
    ("T = type('T', (torch.Tensor,), {})", "tensor-subclass"),
    ("p = '/proc/self/mem'", "dynamic-code"),
    ("w = torch.load('w.pt')", "dynamic-code"),
    # a second name for a module is still the module
    ("_F = torch.nn.functional\n_F.relu = print", "monkeypatch"),
    # torch's global settings, which the reference runs under too: flash attention off makes an
    # attention reference several times slower
    ("torch.backends.cuda.enable_flash_sdp(False)", "monkeypatch"),
    ("from torch.backends.cuda import enable_mem_efficient_sdp", "monkeypatch"),
    ("import torch.backends.cuda as _b\n_b.preferred_blas_library('cublaslt')", "monkeypatch"),
    ("torch.set_grad_enabled(True)", "monkeypatch"),
    ("torch.use_deterministic_algorithms(True)", "monkeypatch"),
    ("torch.autograd.set_detect_anomaly(True)", "monkeypatch"),
    ("torch.nn.attention.sdpa_kernel([]).__enter__()", "dynamic-code"),  # entered, never left
    ("from torch.nn.modules.module import register_module_forward_pre_hook", "monkeypatch"),
    ("torch.cuda.memory.set_per_process_memory_fraction(0.1)", "monkeypatch"),
])
def test_module_level_rules(snippet, rule):
    src = (CAND / "legit_triton_relu.py").read_text() + "\n" + snippet + "\n"
    assert rule in check(src).rules, check(src).summary()


def test_reading_torch_settings_stays_allowed():
    src = (CAND / "legit_triton_relu.py").read_text()
    ok = src + "\nTF32 = torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.is_available()\n"
    assert check(ok).ok, check(ok).summary()


def test_os_environ_and_path_stay_allowed():
    src = (CAND / "legit_triton_relu.py").read_text()
    ok = "import os\nos.environ['TORCH_CUDA_ARCH_LIST'] = '9.0'\nHERE = os.path.dirname(os.getenv('HOME', '.'))\n"
    assert check(ok + src).ok, check(ok + src).summary()


@pytest.mark.parametrize("before, forward, rule", [
    ("", "        f = torch.relu\n        x = f(x)\n", "torch-compute"),
    ("import functools\n_act = functools.partial(torch.relu)\n", "        x = _act(x)\n", "torch-compute"),
    ("class _Memo:\n    last = None\n", "        _Memo.last = x\n", "output-cache"),
    ("_seen = []\n", "        _seen.append(x)\n", "output-cache"),
    ("class _Act(nn.Module):\n    def forward(self, x):\n        return torch.sigmoid(x)\n",
     "        x = _Act()(x)\n", "torch-compute"),
])
def test_the_forward_path_includes_what_forward_reaches(before, forward, rule):
    legit = (CAND / "legit_triton_relu.py").read_text()
    src = legit.replace("class ModelNew", before + "\n\nclass ModelNew").replace(
        "        x = x.contiguous()\n", forward + "        x = x.contiguous()\n")
    assert src != legit
    assert rule in check(src).rules, check(src).summary()


HONEST = {
    "extension function held by self": ("cuda", """
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

src = "__global__ void k(float* y) {} torch::Tensor f(torch::Tensor x) { return x; }"
ext = load_inline(name="e", cpp_sources="torch::Tensor f(torch::Tensor x);", cuda_sources=src, functions=["f"])


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = ext.f

    def forward(self, x):
        return self.f(x.contiguous())
"""),
    "extension built in __init__ from a local source": ("cuda", """
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        cuda_src = "__global__ void k(float* y) {} torch::Tensor f(torch::Tensor x) { return x; }"
        self.ext = load_inline(name="e", cpp_sources="torch::Tensor f(torch::Tensor x);", cuda_sources=cuda_src,
                               functions=["f"])

    def forward(self, x):
        return self.ext.f(x)
"""),
    "kernel nested in its launcher": ("triton", """
import torch
import torch.nn as nn
import triton
import triton.language as tl


def launch(x):
    @triton.jit
    def k(x_ptr, n, B: tl.constexpr):
        offs = tl.program_id(0) * B + tl.arange(0, B)
        v = tl.load(x_ptr + offs, mask=offs < n)
        tl.store(x_ptr + offs, v.sum(axis=0), mask=offs < n)
    out = x.clone()
    k[(triton.cdiv(x.numel(), 128),)](out, x.numel(), B=128)
    return out


class ModelNew(nn.Module):
    def forward(self, x):
        return launch(x)
"""),
    "kernel as a static method": ("triton", """
import torch
import torch.nn as nn
import triton
import triton.language as tl


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        self._k[(triton.cdiv(x.numel(), 128),)](x, out, x.numel(), B=128)
        return out

    @staticmethod
    @triton.jit
    def _k(x_ptr, o_ptr, n, B: tl.constexpr):
        offs = tl.program_id(0) * B + tl.arange(0, B)
        tl.store(o_ptr + offs, tl.load(x_ptr + offs, mask=offs < n).exp(), mask=offs < n)
"""),
    "kernel launched by the base class's forward": ("triton", """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def k(x_ptr, o_ptr, n, B: tl.constexpr):
    offs = tl.program_id(0) * B + tl.arange(0, B)
    tl.store(o_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class Base(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        k[(triton.cdiv(x.numel(), 128),)](x, out, x.numel(), B=128)
        return out


class ModelNew(Base):
    def forward(self, x):
        return super().forward(x.contiguous())
"""),
}


@pytest.mark.parametrize("name", HONEST)
def test_honest_kernels_in_the_forms_models_write_them_pass(name):
    kind, src = HONEST[name]
    res = check(src)
    assert res.ok and res.kernel == kind, res.summary()


def test_syntax_error_and_missing_modelnew():
    assert check("def f(:\n").rules == ["syntax"]
    assert "no-modelnew" in check("import torch\n").rules


def test_every_rule_has_a_description():
    for v in ("syntax", "try-except", "reference-model", "torch-compute", "stream-thread", "timer",
              "monkeypatch", "tensor-subclass", "output-cache", "no-kernel"):
        assert RULES[v]
