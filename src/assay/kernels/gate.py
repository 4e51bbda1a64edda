"""Static gate: read a candidate `ModelNew` module's AST (never run it) and reject known
ways of faking a fast kernel before anything is built.

Every rejection names its rule. The Python part is checked on the AST; the C++/CUDA sources
handed to `load_inline` are plain strings to Python, so for them the gate looks for a few
forbidden API names (streams, threads, timers, ATen compute calls) token by token.

The gate cannot prove a candidate honest (the candidate runs in the same process as the
harness); the dynamic checks in the correctness worker catch what gets past it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from assay.kernels.worker import aten_base

RULES = {
    "syntax": "the candidate is not valid Python",
    "no-modelnew": "the candidate defines no class ModelNew",
    "try-except": "try/except (a fallback to the reference when the kernel fails) is not allowed",
    "reference-model": "the candidate subclasses, calls or imports the reference Model",
    "torch-compute": "the main computation is done with torch ops instead of the kernel",
    "stream-thread": "CUDA streams, threads or processes are not allowed",
    "timer": "touching timers, events, synchronisation or profilers is not allowed",
    "monkeypatch": "assigning attributes on torch/nn/F/triton modules, or changing torch's global settings, "
                   "is not allowed",
    "tensor-subclass": "tensor subclasses and __torch_function__/__torch_dispatch__ are not allowed",
    "output-cache": "state kept across calls (caches, globals, data_ptr/id keys) is not allowed",
    "dynamic-code": "exec/eval/getattr/open/sys.modules and similar introspection is not allowed",
    "forbidden-import": "this import is not allowed in a kernel candidate",
    "no-kernel": "no real kernel: need __global__ code passed to load_inline, or a @triton.jit "
                 "function that forward launches",
}

# Tensor ops ModelNew's forward path may call through torch (allocation, views, metadata).
DEFAULT_ALLOWED_OPS = frozenset("""
empty empty_like zeros zeros_like ones ones_like full full_like empty_strided new_empty new_zeros
new_ones new_full tensor as_tensor
view view_as reshape reshape_as contiguous flatten unflatten squeeze unsqueeze permute transpose t
expand expand_as narrow select split chunk unbind movedim as_strided
size shape numel dim stride is_contiguous element_size nelement
to cuda cpu float half bfloat16 double int long bool type type_as
device dtype get_device is_cuda requires_grad_ detach
cdiv next_power_of_2 Size
no_grad inference_mode is_grad_enabled is_tensor is_floating_point finfo iinfo is_available
""".split())

# Tensor *method* names that compute: `x.sum()` is torch compute even with no `torch.` prefix.
COMPUTE_METHODS = frozenset("""
matmul mm bmm addmm addbmm baddbmm mv dot outer einsum tensordot linear conv1d conv2d conv3d
conv_transpose1d conv_transpose2d conv_transpose3d softmax log_softmax relu relu_ gelu silu
sigmoid tanh exp exp_ log log_ sum mean max min amax amin var std norm prod argmax argmin
add add_ sub sub_ mul mul_ div div_ pow clamp clamp_ clip where abs sqrt rsqrt cumsum cumprod
sort topk logsumexp layer_norm batch_norm group_norm instance_norm dropout hardtanh leaky_relu
elu selu softplus mish hardswish hardsigmoid avg_pool1d avg_pool2d avg_pool3d max_pool1d
max_pool2d max_pool3d adaptive_avg_pool2d neg reciprocal square erf cos sin tril triu diag
scaled_dot_product_attention cross_entropy mse_loss nll_loss kl_div triplet_margin_loss
clamp_min clamp_max clamp_min_ clamp_max_ maximum minimum fmax fmin lerp addcmul addcdiv addmv
remainder fmod floor ceil round trunc sign log1p expm1 log2 log10 exp2 logaddexp logit sinh cosh
tan asin acos atan atan2 erfc erfinv softmin hardshrink softshrink logsigmoid threshold nan_to_num
normalize scatter scatter_add index_add gather index_select masked_fill masked_fill_ masked_select
cross cdist cummax cummin median quantile kthvalue logcumsumexp hypot sigmoid_ tanh_ sqrt_ pow_
abs_ neg_ silu_ gelu_ rms_norm softsign
""".split())

# For the worker's run-time op census (worker.op_census), which names an ATen op by what it
# computes (worker.aten_base) and lets a candidate's forward dispatch only these, what the policy
# allows, and Python's operators within a budget (worker.operator_math). An allowlist, as for
# torch.* calls above: tensor methods and C++ can reach compute the gate's lists do not name
# (`x.heaviside(y)`, `x.xlogy(2)`).
# ATen's ops that allocate, view, copy or read metadata.
ATEN_GLUE = frozenset("""
empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like new_zeros ones ones_like
new_ones full full_like new_full fill zero scalar_tensor lift lift_fresh lift_fresh_copy
view view_as unsafe_view reshape reshape_alias reshape_as as_strided expand expand_as permute
transpose t squeeze unsqueeze narrow select slice split split_with_sizes chunk unbind movedim
flatten unflatten alias detach clone contiguous copy to_copy copy_from copy_from_and_resize to
resize set local_scalar_dense size stride numel dim sym_size sym_stride sym_numel
sym_storage_offset is_contiguous is_same_size is_pinned
""".split())
# The ops Python's operators and builtins reach on tensors (`+ - * / // % **`, `-x`, `+x`,
# comparisons, `& | ^ ~ << >>`, abs(), round()), which the gate lets through as glue.
OPERATOR_OPS = frozenset("""
add sub rsub mul div true_divide floor_divide neg positive pow remainder abs round gt lt ge le eq ne
bitwise_and bitwise_or bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift
and or xor lshift rshift iand ior ixor ilshift irshift
""".split())
# An allowed op (or nn module) lets through the ATen ops it turns into.
_ALLOW_FAMILIES = {
    "linear": {"addmm", "mm", "matmul", "bmm", "baddbmm", "addmv", "mv"},
    "matmul": {"mm", "bmm", "mv", "dot", "addmm"}, "bmm": {"baddbmm"}, "mm": {"addmm"},
    "multihead_attention": {"scaled_dot_product_attention", "addmm", "mm", "bmm", "baddbmm", "softmax", "linear"},
    "cross_entropy": {"log_softmax", "nll_loss", "cross_entropy_loss"}, "group_norm": {"batch_norm"},
    "instance_norm": {"batch_norm"},
}


def allowed_calls(policy: GatePolicy) -> frozenset[str]:
    """The torch function names whose ATen ops the census leaves to them: the ops --allow-op
    added, and the functional names of the nn modules among them (Conv2d is conv2d)."""
    return frozenset(n for op in policy.allowed_ops - DEFAULT_ALLOWED_OPS for n in module_ops(op) | {op})


def census_permitted(policy: GatePolicy) -> frozenset[str]:
    """The op names (as worker.aten_base gives them) the run-time census lets a candidate's forward
    dispatch under `policy`: glue, Python's operators (within worker.operator_math's budget) and
    what the policy allows; any other op is torch computing what the kernel should."""
    allowed: set[str] = set()
    for op in policy.allowed_ops:
        for name in module_ops(op) | {op}:
            allowed |= {name, *_ALLOW_FAMILIES.get(name, ())}
            if aten_base(name) == "convolution":  # conv2d, conv_transpose3d: ATen runs them as convolution
                allowed.add("convolution")
    return frozenset(ATEN_GLUE | OPERATOR_OPS | allowed)


ALLOWED_IMPORTS = frozenset({
    "torch", "triton", "math", "typing", "functools", "operator", "numbers", "dataclasses",
    "enum", "collections", "__future__", "os",
})
# Reachable under an allowed root but still forbidden.
FORBIDDEN_DOTTED = {
    "torch.cuda.Event": "timer", "torch.cuda.synchronize": "timer", "torch.cuda.Stream": "stream-thread",
    "torch.cuda.stream": "stream-thread", "torch.cuda.current_stream": "stream-thread",
    "torch.cuda.default_stream": "stream-thread", "torch.cuda.set_stream": "stream-thread",
    "torch.cuda.ExternalStream": "stream-thread", "torch.cuda.graph": "stream-thread",
    "torch.cuda.CUDAGraph": "stream-thread", "torch.Stream": "stream-thread",
    "torch.cuda.Event.elapsed_time": "timer", "torch.profiler": "timer", "torch.autograd.profiler": "timer",
    "torch.utils.benchmark": "timer", "triton.testing": "timer", "torch.cuda.nvtx": "timer",
    "torch.multiprocessing": "stream-thread", "torch.overrides": "tensor-subclass",
    "torch.utils._python_dispatch": "tensor-subclass", "torch.library": "tensor-subclass",
    "torch.Tensor._make_subclass": "tensor-subclass", "torch._C": "dynamic-code",
    "torch.ops": "torch-compute", "torch.compile": "torch-compute", "torch.jit": "torch-compute",
    "torch.func": "torch-compute", "torch.vmap": "torch-compute",
    "functools.lru_cache": "output-cache", "functools.cache": "output-cache",
    "os.system": "stream-thread", "os.fork": "stream-thread", "os.popen": "stream-thread",
    "os.spawnv": "stream-thread", "os.execv": "stream-thread", "os.kill": "stream-thread",
    "operator.attrgetter": "dynamic-code", "operator.methodcaller": "dynamic-code",
    "typing.get_type_hints": "dynamic-code", "typing.ForwardRef": "dynamic-code",
    "torch.load": "dynamic-code", "torch.save": "dynamic-code", "torch.hub": "dynamic-code",
    "torch.package": "dynamic-code", "torch.serialization": "dynamic-code", "torch.classes": "dynamic-code",
}
# Setters of torch's process-wide state (attention backends, BLAS library, default dtype, grad
# and autocast modes, threads, hooks on every module): what they change, the reference then runs
# under too (flash attention off makes an attention reference several times slower; a global
# forward hook can give it any output).
GLOBAL_SETTER = re.compile(r"torch\.(set_\w+|use_deterministic_algorithms|autograd\.(set_\w+|grad_mode)"
                           r"|cuda(\.\w+)*\.set_\w+|backends(\.\w+)*\.(enable_\w+|preferred_\w+|set_\w+"
                           r"|allow_fp16_bf16_reduction_math_sdp)"
                           r"|(\w+\.)*register_module_\w+)\b")  # hooks every module's call runs, the reference's too
# What a kernel needs of `os`: the environment (TORCH_CUDA_ARCH_LIST, say) and path strings.
OS_ALLOWED = frozenset("environ path getenv cpu_count sep pathsep linesep name fspath devnull".split())
# Standard-library modules that torch, triton and the rest re-export as attributes (torch.sys,
# collections._sys, os.path.os): through them a candidate reaches frames, the module table or
# the process without importing anything.
REEXPORTED_MODULES = frozenset("""
sys os builtins inspect gc ctypes importlib subprocess threading multiprocessing signal traceback
pickle marshal io shutil socket weakref code codeop runpy pdb faulthandler atexit tracemalloc
""".split())
# Private names a kernel module may use: argument normalisers for conv-like ops, and the fan
# arithmetic nn.Linear and nn.Conv use to initialise weights.
PRIVATE_ALLOWED = frozenset({"_pair", "_single", "_triple", "_quadruple", "_ntuple", "_calculate_fan_in_and_fan_out",
                             "_calculate_correct_fan"})
FORBIDDEN_BUILTINS = {
    "exec": "dynamic-code", "eval": "dynamic-code", "compile": "dynamic-code",
    "__import__": "dynamic-code", "getattr": "dynamic-code", "setattr": "monkeypatch",
    "delattr": "monkeypatch", "globals": "dynamic-code", "locals": "dynamic-code",
    "vars": "dynamic-code", "open": "dynamic-code", "id": "output-cache", "hash": "output-cache", "breakpoint": "dynamic-code",
    "exit": "dynamic-code", "quit": "dynamic-code", "help": "dynamic-code", "input": "dynamic-code",
    "__build_class__": "dynamic-code", "__builtins__": "dynamic-code", "__loader__": "dynamic-code",
    "__spec__": "dynamic-code", "__doc__": "dynamic-code",
}
FORBIDDEN_ATTRS = {
    "data_ptr": "output-cache", "_version": "output-cache", "untyped_storage": "output-cache",
    "storage": "output-cache", "__dict__": "dynamic-code", "__class__": "dynamic-code",
    "__subclasses__": "dynamic-code", "__globals__": "dynamic-code", "__code__": "dynamic-code",
    "__torch_function__": "tensor-subclass", "__torch_dispatch__": "tensor-subclass",
    "f_back": "dynamic-code", "f_globals": "dynamic-code",
    # frames, closures and the object model: routes to the harness's locals and to any module
    **{a: "dynamic-code" for a in """
    f_locals f_code f_builtins f_trace gi_frame gi_code cr_frame ag_frame tb_frame tb_next __traceback__
    cell_contents __closure__ __self__ __func__ __builtins__ __getattribute__ __getattr__ __setattr__
    __delattr__ __doc__ __mro__ __bases__ __base__ __loader__ __spec__ __reduce__ __reduce_ex__ __wrapped__
    __defaults__ __kwdefaults__ __init_subclass__ __objclass__ __import__
    """.split()},
    # a context manager entered by hand is never left: its setting (no flash attention, autocast,
    # grad mode) stays on for the reference; `with` is fine
    "__enter__": "dynamic-code", "__exit__": "dynamic-code",
}
MUTATING_METHODS = frozenset("append extend insert update setdefault add pop popitem clear __setitem__".split())

# In C++/CUDA source strings.
_SRC_RULES = [
    (re.compile(r"\b(cudaStreamCreate\w*|getStreamFromPool|cudaStreamBeginCapture|cudaGraph\w*)\b"),
     "stream-thread"),
    (re.compile(r"\b(std::thread|std::async|pthread_create|#\s*include\s*<thread>|fork\s*\()"),
     "stream-thread"),
    (re.compile(r"\b(cudaEvent\w*|clock_gettime|std::chrono|gettimeofday)\b"), "timer"),
    (re.compile(r"\b_?Py[A-Z][A-Za-z]*_[A-Za-z]\w*"), "dynamic-code"),  # the Python C API
    (re.compile(r"\b(?:py|pybind11)::(?:module_?::import|exec|eval|eval_file|globals|builtins)\b"), "dynamic-code"),
    # files, processes and raw memory: nothing a kernel needs, everything a forger does (a file
    # written into the workspace, where a later process of its own starts: cheat_planted_module.py)
    (re.compile(r"\b(?:dlopen|dlsym|popen|system|execv\w*|execl\w*|fopen|freopen|mmap|mprotect|ptrace|syscall"
                r"|open(?:at)?(?:64)?|creat(?:64)?|(?:sym)?link(?:at)?|rename(?:at)?)"
                r"\(|\b(?:std::)?[io]?fstream\b"), "dynamic-code"),
    # the dispatcher's own switches: a kernel needs none, and with them C++ can hide its ATen calls
    # from the worker's op census (or notice it)
    (re.compile(r"\b(DispatchKey\w*|\w*DispatchKeyGuard|\w*DispatchMode\w*|AutoDispatch\w*|PythonTLSSnapshot"
                r"|RecordFunction\w*|tls_\w+)\b"), "dynamic-code"),
]
_ATEN_CALL = re.compile(r"\b(?:torch|at)::(native::|nn::functional::|_ops::|cpu::|cuda::)?([a-z_][a-z0-9_]*)\b"
                        r"(\s*(?:\(|::call))?")
# `namespace F = torch::nn::functional;`: F::relu is torch::nn::functional::relu
_NS_ALIAS = re.compile(r"\bnamespace\s+(\w+)\s*=\s*((?:::)?(?:torch|at)\b(?:\s*::\s*\w+)*)\s*;")
# `x.mm(w)`, `x.relu()`: ATen compute through a tensor's methods (metadata, views and allocation,
# `x.size(0)`, `x.view(...)`, `x.contiguous()`, are not in COMPUTE_METHODS)
_ATEN_METHOD = re.compile(r"\.\s*(" + "|".join(sorted(COMPUTE_METHODS, key=len, reverse=True)) + r")\s*\(")


def module_ops(cls_name: str) -> set[str]:
    """The op names an nn module class answers to in --allow-op: ConvTranspose3d is
    conv_transpose3d, BatchNorm2d is batch_norm (as in torch.nn.functional), ReLU is relu."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls_name).lower()
    return {cls_name, cls_name.lower(), snake, re.sub(r"\d+d$", "", snake)}


@dataclass(frozen=True)
class GatePolicy:
    backend: str | None = None  # "cuda" | "triton" | None (either)
    allowed_ops: frozenset[str] = DEFAULT_ALLOWED_OPS
    allow_cpp: bool = False  # accept a plain C++ load_inline function (CPU tests only)

    def allowing(self, *ops: str) -> "GatePolicy":
        return GatePolicy(self.backend, self.allowed_ops | frozenset(ops), self.allow_cpp)


@dataclass(frozen=True)
class Violation:
    rule: str
    line: int
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] line {self.line}: {self.detail}"


@dataclass
class GateResult:
    violations: list[Violation] = field(default_factory=list)
    kernel: str | None = None  # "cuda" | "triton" | "cpp" when a real kernel was found

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def rules(self) -> list[str]:
        return sorted({v.rule for v in self.violations})

    def summary(self) -> str:
        if self.ok:
            return f"gate passed ({self.kernel} kernel)"
        return "gate rejected: " + "; ".join(str(v) for v in self.violations[:6])


def check(source: str, policy: GatePolicy | None = None) -> GateResult:
    """Run every rule over `source`; an empty violation list means the candidate may be built."""
    policy = policy or GatePolicy()
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return GateResult([Violation("syntax", e.lineno or 0, str(e.msg))])
    return _Gate(tree, policy).run()


class _Gate:
    def __init__(self, tree: ast.Module, policy: GatePolicy) -> None:
        self.tree = tree
        self.policy = policy
        self.out: list[Violation] = []
        self.aliases: dict[str, str] = {}  # local name -> canonical dotted module/object
        self.consts: dict[str, str] = {}  # module-level name -> string constant
        self.top_level: dict[str, ast.AST] = {}  # module-level name -> its def, class or value (last wins)
        self.jit: set[str] = set()  # names of @triton.jit functions
        self.ext_names: set[str] = set()  # module names / self attrs bound to load_inline(...)
        self.ext_fns: set[str] = set()  # names / self attrs bound to one of its functions

    def add(self, rule: str, node: ast.AST | int, detail: str) -> None:
        line = node if isinstance(node, int) else getattr(node, "lineno", 0)
        self.out.append(Violation(rule, line, detail))

    # -- name resolution -------------------------------------------------------------------
    def dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        root = self.aliases.get(node.id)
        if root is None:
            return None
        return ".".join([root, *reversed(parts)])

    def const_str(self, node: ast.AST | None) -> str:
        if node is None:
            return ""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.consts.get(node.id, "")
        if isinstance(node, (ast.List, ast.Tuple)):
            return "\n".join(self.const_str(e) for e in node.elts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.const_str(node.left) + self.const_str(node.right)
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return ""

    def is_load_inline(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and (self.dotted(node.func) or "").endswith(
            "cpp_extension.load_inline")

    def inline_sources(self) -> list[tuple[ast.AST | None, ast.AST | None]]:
        """(cpp_sources, cuda_sources) of every load_inline call, by keyword or position."""
        out = []
        for call in (n for n in ast.walk(self.tree) if self.is_load_inline(n)):
            kw = {k.arg: k.value for k in call.keywords}
            out.append((kw.get("cpp_sources") or (call.args[1] if len(call.args) > 1 else None),
                        kw.get("cuda_sources") or (call.args[2] if len(call.args) > 2 else None)))
        return out

    # -- passes ----------------------------------------------------------------------------
    def run(self) -> GateResult:
        self.collect()
        # the last definition is the one that wins at run time
        model_new = next((n for n in reversed(self.tree.body) if isinstance(n, ast.ClassDef) and n.name == "ModelNew"),
                         None)
        if model_new is None:
            self.add("no-modelnew", 1, "define `class ModelNew(nn.Module)`")
        for node in ast.walk(self.tree):
            self.check_node(node)
        docstrings = {id(n.body[0].value) for n in ast.walk(self.tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for s in (n for n in ast.walk(self.tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)):
            if id(s) in docstrings:  # prose ("returns x.sum(1)"), never a source: __doc__ is out of reach
                continue
            self.check_source_string(s)
            if "/proc/" in s.value or "/dev/mem" in s.value:
                self.add("dynamic-code", s, f"{s.value[:40]!r}: the process's own memory and state")
        for sources in self.inline_sources():  # "at" + "::relu(x)": the text load_inline gets, whole
            for arg in filter(None, sources):
                known = {(v.rule, v.detail) for v in self.out}
                start = len(self.out)
                self.check_source_text(self.const_str(arg), arg)  # only what no single string showed
                self.out[start:] = [v for v in self.out[start:] if (v.rule, v.detail) not in known]
        if model_new is not None:
            self.check_model_new(model_new)
        kernel = self.kernel_kind()
        if kernel is None and model_new is not None:
            want = {"cuda": "__global__ code in load_inline(cuda_sources=...)",
                    "triton": "a @triton.jit function launched from forward"}.get(self.policy.backend or "")
            self.add("no-kernel", model_new, want or RULES["no-kernel"])
        seen, uniq = set(), []
        for v in self.out:
            if (v.rule, v.line, v.detail) not in seen:
                seen.add((v.rule, v.line, v.detail))
                uniq.append(v)
        return GateResult(sorted(uniq, key=lambda v: (v.line, v.rule)), kernel)

    def collect(self) -> None:
        self.inner_attrs = {id(n.value) for n in ast.walk(self.tree) if isinstance(n, ast.Attribute)}
        self.call_funcs = {id(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)}  # what is called
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.check_import(a.name, node)
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        self.aliases[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                self.check_import(mod, node)
                for a in node.names:
                    if a.name == "*":
                        self.add("forbidden-import", node, f"`from {mod} import *` hides what is used")
                        continue
                    self.aliases[a.asname or a.name] = f"{mod}.{a.name}"
                    self.check_dotted(f"{mod}.{a.name}", node)
        for _ in range(2):  # `_t = torch`, `_F = _t.nn.functional`: new names for the same module
            for node in ast.walk(self.tree):
                if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Attribute)):
                    target = self.dotted(node.value)
                    for t in node.targets:
                        if target and isinstance(t, ast.Name):
                            self.aliases.setdefault(t.id, target)
        for node in ast.walk(self.tree):  # sources may be named anywhere: cuda_src = """...""" in __init__
            if isinstance(node, ast.Assign) and self.const_str(node.value):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.consts[t.id] = self.const_str(node.value)
            elif isinstance(node, ast.FunctionDef) and any(self.is_jit_decorator(d) for d in node.decorator_list):
                self.jit.add(node.name)  # module level, nested in a launcher, or a @staticmethod
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.top_level[t.id] = node.value
                        if self.is_load_inline(node.value):
                            self.ext_names.add(t.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.top_level[node.name] = node
        for node in ast.walk(self.tree):  # self.ext = load_inline(...), or = a module-level extension
            if isinstance(node, ast.Assign) and (self.is_load_inline(node.value) or (
                    isinstance(node.value, ast.Name) and node.value.id in self.ext_names)):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        self.ext_names.add("self." + t.attr)
        for node in ast.walk(self.tree):  # self.fn = ext.fn, fn = ext.fn: the extension's function itself
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) \
                    and self._ext_receiver(node.value.value):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.ext_fns.add(t.id)
                    elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        self.ext_fns.add("self." + t.attr)

    def is_jit_decorator(self, d: ast.AST) -> bool:
        target = d.func if isinstance(d, ast.Call) else d
        name = self.dotted(target) or ""
        return name in ("triton.jit", "triton.autotune", "triton.heuristics") or name.endswith("triton.jit")

    def check_import(self, mod: str, node: ast.AST) -> None:
        root = mod.split(".")[0]
        if mod.startswith(".") or root not in ALLOWED_IMPORTS:
            rule = "stream-thread" if root in ("threading", "_thread", "multiprocessing", "concurrent",
                                               "asyncio", "subprocess") else (
                "timer" if root in ("time", "timeit", "cProfile", "profile") else "forbidden-import")
            self.add(rule, node, f"import of {mod!r}")
        else:
            self.check_dotted(mod, node)

    def check_dotted(self, name: str, node: ast.AST) -> None:
        for bad, rule in FORBIDDEN_DOTTED.items():
            if name == bad or name.startswith(bad + "."):
                self.add(rule, node, f"use of {name}")
                return
        if GLOBAL_SETTER.match(name):
            self.add("monkeypatch", node, f"use of {name} (changes torch's global settings, the reference's too)")
            return
        parts = name.split(".")
        if parts[0] == "os" and len(parts) > 1 and parts[1] not in OS_ALLOWED:
            self.add("dynamic-code", node, f"use of {name} (a kernel needs only os.environ and os.path of os)")
            return
        for part in parts[1:]:
            if part in REEXPORTED_MODULES:
                self.add("dynamic-code", node, f"use of {name} (the {part} module, reached through "
                                               f"{'.'.join(parts[:parts.index(part)])})")
                return
            if part.startswith("_") and not part.startswith("__") and part not in PRIVATE_ALLOWED:
                self.add("dynamic-code", node, f"use of {name} (private internals)")
                return

    def check_node(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))) and node.handlers:
            self.add("try-except", node, "a try/except block (fallback path)")
        elif isinstance(node, ast.With):
            for item in node.items:
                expr = item.context_expr
                name = self.dotted(expr.func if isinstance(expr, ast.Call) else expr) or ""
                if name.endswith("suppress"):
                    self.add("try-except", node, "contextlib.suppress hides failures")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type" \
                and len(node.args) == 3:
            self.add("tensor-subclass", node, "type(name, bases, namespace) builds a class at run time")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.add("output-cache", node, f"`{type(node).__name__.lower()}` state across calls")
        elif isinstance(node, ast.Attribute):
            if node.attr in FORBIDDEN_ATTRS:
                self.add(FORBIDDEN_ATTRS[node.attr], node, f"use of .{node.attr}")
            name = self.dotted(node) if id(node) not in self.inner_attrs else None  # judge torch.sys.x once
            if name:
                self.check_dotted(name, node)
                if name == "sys.modules" or name.endswith(".Tensor") and isinstance(node.ctx, ast.Store):
                    self.add("dynamic-code", node, name)
        elif isinstance(node, ast.Name):
            if node.id == "Model":
                self.add("reference-model", node, "reference to the reference `Model`")
            elif node.id in FORBIDDEN_BUILTINS and node.id not in self.aliases:
                self.add(FORBIDDEN_BUILTINS[node.id], node, f"use of builtin {node.id}()")
            elif node.id in ("__torch_function__", "__torch_dispatch__"):
                self.add("tensor-subclass", node, node.id)
            elif node.id in self.aliases:
                self.check_dotted(self.aliases[node.id], node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in ("__torch_function__", "__torch_dispatch__"):
                self.add("tensor-subclass", node, f"defines {node.name}")
            for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                if isinstance(d, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp)):
                    self.add("output-cache", d, f"{node.name}() has a mutable default argument (state across calls)")
            for d in node.decorator_list:
                name = self.dotted(d.func if isinstance(d, ast.Call) else d) or ""
                if name.startswith("functools.") and ("cache" in name):
                    self.add("output-cache", d, f"@{name} caches results")
        elif isinstance(node, ast.ClassDef):
            for b in node.bases:
                name = self.dotted(b) or (b.id if isinstance(b, ast.Name) else "")
                if name in ("torch.Tensor", "torch._C._TensorBase", "torch.nn.Parameter"):
                    self.add("tensor-subclass", node, f"class {node.name} subclasses {name}")
                if name.split(".")[-1] == "Model" or "reference" in name:
                    self.add("reference-model", node, f"class {node.name} subclasses the reference")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if (isinstance(sub, ast.Attribute) and self.dotted(sub.value) is not None
                            and self.dotted(sub) != "os.environ"):
                        self.add("monkeypatch", node, f"assigns {self.dotted(sub)}")
                        break
        elif isinstance(node, ast.ImportFrom) and node.module and "reference" in node.module:
            self.add("reference-model", node, f"imports {node.module}")

    def check_source_string(self, node: ast.Constant) -> None:
        self.check_source_text(node.value, node)

    def check_source_text(self, text: str, node: ast.AST) -> None:
        if len(text) < 20 or "(" not in text:
            return
        for rx, rule in _SRC_RULES:
            m = rx.search(text)
            if m:
                self.add(rule, node, f"{m.group(0)!r} in C++/CUDA source")
        for alias, target in _NS_ALIAS.findall(text):
            text = re.sub(rf"(?<![\w:]){alias}\s*::", re.sub(r"\s+", "", target) + "::", text)
        for m in _ATEN_CALL.finditer(text):
            space, name, called = m.group(1), m.group(2), m.group(3) is not None
            # a call, or a compute op's name passed on (a macro, `using at::relu;`, a function pointer);
            # at::cuda:: and at::cpu:: also hold the device's helpers (current_device, getCurrentCUDAStream)
            if (called and space not in ("cpu::", "cuda::") or name in COMPUTE_METHODS) \
                    and name not in self.policy.allowed_ops:
                what = "ATen call" if called else "ATen op"
                self.add("torch-compute", node, f"{what} {m.group(0).rstrip('(').strip()} in C++ source")
        for m in _ATEN_METHOD.finditer(text) if ";" in text else ():  # C++ statements, not prose
            if m.group(1) not in self.policy.allowed_ops:
                self.add("torch-compute", node, f"tensor method .{m.group(1)}() in C++ source")

    # -- ModelNew --------------------------------------------------------------------------
    # The forward path is everything forward can reach: module functions and classes it names
    # (called or passed around), what module-level names and its own attributes hold (lambdas,
    # helper nn.Modules, function references), and the methods of the classes those are. Only
    # __init__ code, of ModelNew and of helpers it builds there, runs outside it.
    def check_model_new(self, cls: ast.ClassDef) -> None:
        if "forward" not in self.methods(cls):
            self.add("no-modelnew", cls, "ModelNew has no forward()")
            return
        self.reached_launch: set[str] = set()
        self.reached_ext = False
        todo: list[tuple[ast.AST, ast.ClassDef | None, bool]] = [(self.methods(cls)["forward"], cls, True)]
        seen: set[int] = set()
        while todo:
            node, owner, runs = todo.pop()  # runs: executed per call (a body), or only a held value
            if id(node) in seen:
                continue
            seen.add(id(node))
            local = self.local_names(node) if runs else set()
            for sub in self.walk_host_code(node):
                todo.extend(self.reached_from(sub, owner, runs))
                if runs or isinstance(sub, ast.Lambda):
                    self.check_forward_node(sub, owner, local)
                elif isinstance(sub, ast.Attribute) and id(sub) not in self.call_funcs:
                    self.check_reference(sub)

    def lineage(self, cls: ast.ClassDef) -> list[ast.ClassDef]:
        """`cls` and the classes of this module it inherits from, nearest first."""
        out, todo = [], [cls]
        while todo:
            c = todo.pop(0)
            if c in out:
                continue
            out.append(c)
            todo.extend(self.top_level[b.id] for b in c.bases
                        if isinstance(b, ast.Name) and isinstance(self.top_level.get(b.id), ast.ClassDef))
        return out

    def methods(self, cls: ast.ClassDef, inherited_only: bool = False) -> dict[str, ast.FunctionDef]:
        """The class's methods, its own over inherited ones (those of this module's base classes),
        less @triton.jit ones (device code, launched, not called)."""
        out: dict[str, ast.FunctionDef] = {}
        for c in reversed(self.lineage(cls)[1:] if inherited_only else self.lineage(cls)):
            out.update((n.name, n) for n in c.body if isinstance(n, ast.FunctionDef) and n.name not in self.jit)
        return out

    def walk_host_code(self, node: ast.AST):
        """ast.walk, less the bodies of @triton.jit functions nested inside."""
        todo = [node]
        while todo:
            n = todo.pop()
            yield n
            todo.extend(c for c in ast.iter_child_nodes(n)
                        if not (isinstance(c, ast.FunctionDef) and any(self.is_jit_decorator(d) for d in c.decorator_list)))

    def reached_from(self, node: ast.AST, owner: ast.ClassDef | None, runs: bool) -> list:
        """What `node` (inside a reached body or value) adds to the forward path."""
        out: list[tuple[ast.AST, ast.ClassDef | None, bool]] = []
        if isinstance(node, ast.Lambda):
            out.append((node.body, owner, True))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            top = self.top_level.get(node.id)
            if isinstance(top, ast.FunctionDef) and node.id not in self.jit:
                out.append((top, None, True))
            elif isinstance(top, ast.ClassDef):
                called = runs and id(node) in self.call_funcs  # Helper(x) per call: its __init__ runs too
                out.extend((m, top, True) for name, m in self.methods(top).items() if name != "__init__" or called)
            elif top is not None and not isinstance(top, (ast.FunctionDef, ast.ClassDef)) \
                    and node.id not in self.ext_names:
                out.append((top, None, False))
        elif isinstance(node, ast.Attribute) and owner is not None and (
                isinstance(node.value, ast.Name) and node.value.id == "self"
                or isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "super"):
            method = self.methods(owner, inherited_only=isinstance(node.value, ast.Call)).get(node.attr)
            if method is not None and node.attr != "__init__":
                out.append((method, owner, True))
            out.extend((v, owner, False) for v in self.self_values(owner).get(node.attr, []))
        return out

    def self_values(self, cls: ast.ClassDef) -> dict[str, list[ast.AST]]:
        """self.<attr> -> the values any method of `cls` (or of its bases here) assigns to it."""
        out: dict[str, list[ast.AST]] = {}
        for node in (n for c in self.lineage(cls) for n in ast.walk(c)):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        out.setdefault(t.attr, []).append(node.value)
        return out

    def torch_held(self, cls: ast.ClassDef | None) -> set[str]:
        """self.<attr> of `cls` that holds a torch nn module or a torch compute function: calling
        it in forward is torch compute."""
        held: set[str] = set()
        for attr, values in (self.self_values(cls) if cls is not None else {}).items():
            for value in values:
                inner = value  # nn.Linear(...).half().cuda(): look through the method chain
                while (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute)
                       and isinstance(inner.func.value, ast.Call)):
                    inner = inner.func.value
                name = self.dotted(inner.func if isinstance(inner, ast.Call) else inner) or ""
                if isinstance(inner, ast.Call) and name.startswith("torch.nn.") and name not in (
                        "torch.nn.Parameter", "torch.nn.ParameterList") \
                        and not module_ops(name.split(".")[-1]) & self.policy.allowed_ops:
                    held.add(attr)
                elif not isinstance(inner, ast.Call) and self.compute_name(name):
                    held.add(attr)
        return held

    def compute_name(self, name: str) -> bool:
        """A dotted torch name that computes (not allocation, views, dtypes or metadata)."""
        parts = name.split(".")
        if parts[0] != "torch" or parts[-1] in self.policy.allowed_ops:
            return False
        if name.startswith(("torch.nn.functional", "torch.special", "torch.linalg", "torch.fft")):
            return True
        return parts[-1] in COMPUTE_METHODS or name in ("torch.nn.functional", "torch.special", "torch.linalg",
                                                        "torch.fft")

    def check_reference(self, node: ast.Attribute) -> None:
        name = self.dotted(node)
        if name and self.compute_name(name):
            self.add("torch-compute", node, f"{name} is held for the forward path")

    @staticmethod
    def local_names(fn: ast.AST) -> set[str]:
        names: set[str] = set()
        args = getattr(fn, "args", None)
        if isinstance(args, ast.arguments):
            for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if a is not None:
                    names.add(a.arg)
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
        names.discard("self")
        return names

    def _ext_receiver(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.ext_names
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return "self." + node.attr in self.ext_names
        return False

    def state_root(self, node: ast.AST, local: set[str]) -> str | None:
        """The name a store or mutation through `node` lands in when that outlives the call:
        self, or a module-level or class name (not a local, not an imported module)."""
        while isinstance(node, (ast.Subscript, ast.Attribute)):
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        if node.id == "self" or (node.id not in local and node.id not in self.aliases):
            return node.id
        return None

    def check_forward_node(self, node: ast.AST, owner: ast.ClassDef | None, local: set[str]) -> None:
        allowed = self.policy.allowed_ops
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            self.add("torch-compute", node, "the @ operator (matmul) in the forward path")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Subscript) and (
                    isinstance(f.value, ast.Name) and f.value.id in self.jit
                    or isinstance(f.value, ast.Attribute) and f.value.attr in self.jit):  # self._kernel[grid]
                self.reached_launch.add(getattr(f.value, "id", None) or f.value.attr)
                return
            if (isinstance(f, ast.Name) and f.id in self.ext_fns) or (
                    isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"
                    and "self." + f.attr in self.ext_fns):
                self.reached_ext = True
                return
            name = self.dotted(f)
            if name is not None:
                root = name.split(".")[0]
                if root == "torch" and name.split(".")[-1] not in allowed and not name.startswith(
                        ("torch.empty", "torch.float", "torch.int", "torch.bfloat", "torch.half", "torch.device",
                         "torch.Size", "torch.cuda.current_device", "torch.cuda.device", "torch.utils.cpp_extension")):
                    self.add("torch-compute", node, f"{name}() in the forward path")
                if name in ("triton.cdiv", "triton.next_power_of_2"):
                    return
            elif isinstance(f, ast.Attribute):
                if self._ext_receiver(f.value):
                    self.reached_ext = True
                    return
                if isinstance(f.value, ast.Name) and f.value.id == "self" and f.attr in self.torch_held(owner):
                    self.add("torch-compute", node, f"self.{f.attr}(...) runs a torch nn module or op in forward")
                elif f.attr in COMPUTE_METHODS and f.attr not in allowed:
                    self.add("torch-compute", node, f".{f.attr}() in the forward path")
                elif f.attr in MUTATING_METHODS and self.state_root(f.value, local):
                    self.add("output-cache", node, f"{ast.unparse(f)}() keeps state across calls")
            elif isinstance(f, ast.Name) and isinstance(self.top_level.get(f.id), ast.FunctionDef) and f.id in self.jit:
                self.add("no-kernel", node, f"{f.id} is @triton.jit but called without a grid")
            for arg in list(node.args) + [k.value for k in node.keywords]:  # functools.partial(torch.relu)
                if isinstance(arg, ast.Attribute):
                    self.check_reference(arg)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    if not (isinstance(node, ast.Assign) and (self.is_load_inline(node.value) or (
                            isinstance(node.value, ast.Name) and node.value.id in self.ext_names))):
                        self.add("output-cache", node, f"forward stores state in self.{t.attr}")
                elif isinstance(t, (ast.Subscript, ast.Attribute)) and self.state_root(t, local):
                    self.add("output-cache", node, f"forward writes into {ast.unparse(t)} (state kept across "
                                                   "calls)")
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
                self.check_reference(node.value)  # f = torch.relu; f(x)

    def kernel_kind(self) -> str | None:
        if getattr(self, "reached_launch", None):
            kind = "triton"
        else:
            kind = None
        if getattr(self, "reached_ext", False):
            for cpp_arg, cuda_arg in self.inline_sources():
                cuda, cpp = self.const_str(cuda_arg), self.const_str(cpp_arg)
                if "__global__" in cuda and kind is None:
                    kind = "cuda"
                elif self.policy.allow_cpp and cpp.strip() and kind is None:
                    kind = "cpp"
        if kind == "cpp" and self.policy.backend in ("cuda", "triton"):
            return None
        if self.policy.backend and kind not in (self.policy.backend, "cpp"):
            return None
        return kind
